package postgres_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
)

func sha(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func TestAccountsStore(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	u, err := db.CreateUser(ctx, postgres.NewAccount{Email: "ana@example.com", PasswordHash: "h", Role: cloud.RoleOperator,
		Facilities: []string{"lot-2", "lot-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(u.Facilities, []string{"lot-1", "lot-2"}) || u.Role != cloud.RoleOperator {
		t.Errorf("created %+v", u)
	}
	_, err = db.CreateUser(ctx, postgres.NewAccount{Email: "ANA@example.com", PasswordHash: "h", Role: cloud.RoleDriver})
	if cloud.ErrorCode(err) != cloud.ECONFLICT {
		t.Errorf("same email in upper case: %v; want ECONFLICT", err)
	}
	_, err = db.CreateUser(ctx, postgres.NewAccount{Email: "x@example.com", PasswordHash: "h", Role: "root"})
	if err == nil {
		t.Error("a role outside the CHECK was stored")
	}
	a, err := db.AccountByEmail(ctx, "Ana@Example.com")
	if err != nil || a.ID != u.ID || a.TokenVersion != 1 {
		t.Fatalf("AccountByEmail = %+v, %v", a, err)
	}
	for _, id := range []string{"", "nope", "00000000-0000-0000-0000-000000000000", "'; DROP TABLE users; --"} {
		if _, err := db.Account(ctx, id); cloud.ErrorCode(err) != cloud.ENOTFOUND {
			t.Errorf("Account(%q) = %v; want ENOTFOUND", id, err)
		}
	}
	before, after, err := db.SetRole(ctx, u.ID, cloud.RoleManager, []string{"lot-3"})
	if err != nil || before.Role != cloud.RoleOperator || after.Role != cloud.RoleManager || !slices.Equal(after.Facilities, []string{"lot-3"}) {
		t.Fatalf("SetRole = %+v, %+v, %v", before, after, err)
	}
	if a, _ := db.Account(ctx, u.ID); a.TokenVersion != 2 {
		t.Errorf("token version after a role change = %d; want 2", a.TokenVersion)
	}

	// TOTP steps only move forward.
	if err := db.SetTOTPSecret(ctx, u.ID, "SECRET"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		step int64
		want bool
	}{{100, true}, {100, false}, {99, false}, {101, true}} {
		if ok, err := db.UseTOTPStep(ctx, u.ID, tc.step, true); ok != tc.want || err != nil {
			t.Errorf("UseTOTPStep(%d) = %v, %v; want %v", tc.step, ok, err, tc.want)
		}
	}
	if err := db.SetTOTPSecret(ctx, u.ID, "OTHER"); cloud.ErrorCode(err) != cloud.ECONFLICT {
		t.Errorf("re-enrol with TOTP enabled: %v; want ECONFLICT", err)
	}
}

func TestRefreshTokenStore(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	u, _ := db.CreateUser(ctx, postgres.NewAccount{Email: "d@example.com", PasswordHash: "h", Role: cloud.RoleDriver})
	now := time.Now()
	if err := db.AddRefreshToken(ctx, postgres.RefreshToken{Hash: sha("a"), UserID: u.ID, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	next := func(s string, at time.Time) postgres.RefreshToken {
		return postgres.RefreshToken{Hash: sha(s), IssuedAt: at, ExpiresAt: at.Add(time.Hour)}
	}
	if a, err := db.RotateRefreshToken(ctx, sha("a"), next("b", now)); err != nil || a.ID != u.ID {
		t.Fatalf("rotate a: %v, %v", a, err)
	}
	if _, err := db.RotateRefreshToken(ctx, sha("b"), next("c", now)); err != nil {
		t.Fatalf("rotate b: %v", err)
	}
	_, err := db.RotateRefreshToken(ctx, sha("a"), next("x", now))
	var reuse *cloud.RefreshReuseError
	if !errors.As(err, &reuse) || cloud.ErrorCode(err) != cloud.EUNAUTHORIZED {
		t.Fatalf("reuse of a: %v; want EUNAUTHORIZED with RefreshReuseError", err)
	}
	if dead, _ := db.RefreshFamilyRevoked(ctx, sha("c")); !dead {
		t.Error("the family lives on after the reuse")
	}
	if _, err := db.RotateRefreshToken(ctx, sha("c"), next("d", now)); cloud.ErrorCode(err) != cloud.EUNAUTHORIZED || errors.As(err, &reuse) {
		t.Errorf("rotate c after the reuse: %v; want EUNAUTHORIZED, not a reuse", err)
	}
	// The token a reuse attempt would have issued was not stored.
	if _, err := db.RotateRefreshToken(ctx, sha("x"), next("y", now)); cloud.ErrorCode(err) != cloud.EUNAUTHORIZED {
		t.Errorf("the reuse's token: %v", err)
	}
	// Expiry.
	db.AddRefreshToken(ctx, postgres.RefreshToken{Hash: sha("e"), UserID: u.ID, IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	if _, err := db.RotateRefreshToken(ctx, sha("e"), next("f", now.Add(2*time.Hour))); cloud.ErrorCode(err) != cloud.EUNAUTHORIZED {
		t.Errorf("expired: %v", err)
	}

	// Concurrent rotations of one token: exactly one wins.
	db.AddRefreshToken(ctx, postgres.RefreshToken{Hash: sha("g"), UserID: u.ID, IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 8 {
		wg.Go(func() {
			if _, err := db.RotateRefreshToken(ctx, sha("g"), next("g"+string(rune('0'+i)), now)); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d concurrent rotations of one token succeeded; want 1", wins)
	}
}

func TestSigningKeyStore(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			if _, err := db.EnsureSigningKey(ctx, postgres.SigningKey{KID: string(rune('a' + i)), Seed: make([]byte, 32)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	keys, err := db.SigningKeys(ctx)
	if err != nil || len(keys) != 1 {
		t.Fatalf("instances starting together made %d keys (%v); want 1", len(keys), err)
	}
	if err := db.RotateSigningKey(ctx, postgres.SigningKey{KID: "z", Seed: make([]byte, 32)}); err != nil {
		t.Fatal(err)
	}
	keys, _ = db.SigningKeys(ctx)
	if len(keys) != 2 || keys[0].KID != "z" || !keys[0].RetiredAt.IsZero() || keys[1].RetiredAt.IsZero() {
		t.Errorf("after rotation: %+v; want z signing first, the old one retired", keys)
	}
}

func TestAPIKeyStoreAndAuditIn(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	for i, facs := range [][]string{{"lot-1"}, {"lot-1", "lot-2"}, {"lot-3"}} {
		if _, err := db.CreateAPIKey(ctx, cloud.APIKey{Prefix: string(rune('a' + i)), Name: "k", Scopes: []string{"status:read"}, Facilities: facs}, sha("k")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.CreateAPIKey(ctx, cloud.APIKey{Prefix: "a", Name: "dup"}, sha("x")); cloud.ErrorCode(err) != cloud.ECONFLICT {
		t.Errorf("duplicate prefix: %v", err)
	}
	all, _ := db.APIKeys(ctx, nil, "", 10)
	mine, _ := db.APIKeys(ctx, []string{"lot-1"}, "", 10)
	both, _ := db.APIKeys(ctx, []string{"lot-1", "lot-2"}, "", 10)
	none, _ := db.APIKeys(ctx, []string{}, "", 10)
	if len(all) != 3 || len(mine) != 1 || len(both) != 2 || len(none) != 0 {
		t.Errorf("keys: all %d, lot-1 %d, lot-1+2 %d, none %d; want 3, 1, 2, 0", len(all), len(mine), len(both), len(none))
	}
	page, _ := db.APIKeys(ctx, nil, all[0].ID, 10)
	if len(page) != 2 || page[0].ID != all[1].ID {
		t.Errorf("page after the first: %+v", page)
	}

	for _, f := range []string{"lot-1", "lot-2", "lot-3", "", "lot-1"} {
		db.Audit(ctx, cloud.AuditEntry{Actor: "a", Action: "x", Facility: f, Outcome: cloud.OutcomeOK})
	}
	es, err := db.AuditLogIn(ctx, []string{"lot-2", "lot-1"}, 0, 10)
	if err != nil || len(es) != 3 || es[0].ID < es[1].ID || es[1].ID < es[2].ID {
		t.Errorf("AuditLogIn = %+v, %v; want lot-1's two and lot-2's one, newest first", es, err)
	}
	es, _ = db.AuditLogIn(ctx, []string{"lot-1", "lot-2"}, 0, 2)
	if len(es) != 2 {
		t.Errorf("limit 2: %d entries", len(es))
	}
}
