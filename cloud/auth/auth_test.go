package auth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/auth"
	"github.com/gatehouse-parking/gatehouse/cloud/pgtest"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	"github.com/golang-jwt/jwt/v5"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// cheap are argon2id parameters that keep tests fast; DefaultParams are tested once.
var cheap = auth.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// mustDB opens a fresh, migrated database.
func mustDB(tb testing.TB) *postgres.DB {
	tb.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgtest.ForTest(tb), nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(db.Close)
	if err := db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	return db
}

func mustService(tb testing.TB, db *postgres.DB, clk *clock) *auth.Service {
	tb.Helper()
	s, err := auth.New(context.Background(), db, auth.Options{Params: cheap, Now: clk.Now})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := cloud.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v (code %q); want code %q", what, err, got, code)
	}
}

func TestPasswordHash(t *testing.T) {
	h, err := auth.HashPassword("correct horse battery", auth.DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("HashPassword = %q; want a PHC string with the default parameters", h)
	}
	h2, _ := auth.HashPassword("correct horse battery", auth.DefaultParams)
	if h == h2 {
		t.Error("two hashes of one password are equal: no salt")
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{
		{"correct horse battery", true},
		{"correct horse batterY", false},
		{"", false},
		{"correct horse battery ", false},
	} {
		if ok, err := auth.VerifyPassword(tc.pw, h); ok != tc.want || err != nil {
			t.Errorf("VerifyPassword(%q) = %v, %v; want %v", tc.pw, ok, err, tc.want)
		}
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "$argon2id$v=19$m=64,t=1,p=1$!!$aGFzaA",
		strings.Replace(h, "v=19", "v=16", 1)} {
		if ok, err := auth.VerifyPassword("x", bad); ok || err == nil {
			t.Errorf("VerifyPassword(x, %q) = %v, %v; want false and an error", bad, ok, err)
		}
	}
}

// TestTOTPVectors checks the code generator against RFC 6238's SHA-1 test vectors
// (8 digits there; the last 6 here, as truncation mod 10^6 gives).
func TestTOTPVectors(t *testing.T) {
	secret := "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" // "12345678901234567890"
	for _, tc := range []struct {
		unix int64
		want string
	}{
		{59, "94287082"}, {1111111109, "07081804"}, {1111111111, "14050471"},
		{1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000, "65353130"},
	} {
		got, err := auth.TOTPCode(secret, time.Unix(tc.unix, 0))
		if err != nil || got != tc.want[2:] {
			t.Errorf("TOTPCode(%d) = %q, %v; want %q", tc.unix, got, err, tc.want[2:])
		}
	}
	if uri := auth.TOTPURI("Gatehouse", "ana@example.com", "ABC"); !strings.HasPrefix(uri, "otpauth://totp/Gatehouse:ana@example.com?") ||
		!strings.Contains(uri, "secret=ABC") || !strings.Contains(uri, "issuer=Gatehouse") {
		t.Errorf("TOTPURI = %q", uri)
	}
}

func TestLoginAndTokens(t *testing.T) {
	ctx := context.Background()
	db := mustDB(t)
	clk := &clock{t: time.Now()}
	s := mustService(t, db, clk)
	u, err := s.CreateUser(ctx, "  Ana@Example.COM ", "Ana", "long enough password", cloud.RoleOperator, []string{"lot-1", "lot-2"})
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "ana@example.com" {
		t.Errorf("email = %q; want it normalised", u.Email)
	}
	_, err = s.CreateUser(ctx, "ANA@example.com", "", "long enough password", cloud.RoleDriver, nil)
	wantCode(t, "duplicate email", err, cloud.ECONFLICT)

	_, err = s.Login(ctx, "ana@example.com", "wrong password!", "")
	wantCode(t, "wrong password", err, cloud.EUNAUTHORIZED)
	_, err2 := s.Login(ctx, "nobody@example.com", "wrong password!", "")
	wantCode(t, "unknown email", err2, cloud.EUNAUTHORIZED)
	if cloud.ErrorMessage(err) != cloud.ErrorMessage(err2) {
		t.Errorf("wrong password says %q, unknown email %q: they must not differ", cloud.ErrorMessage(err), cloud.ErrorMessage(err2))
	}

	toks, err := s.Login(ctx, "ANA@example.com", "long enough password", "")
	if err != nil {
		t.Fatal(err)
	}
	if toks.ExpiresIn != 900 || toks.TokenType != "Bearer" || toks.UserID != u.ID {
		t.Errorf("tokens = %+v", toks)
	}
	p, err := s.AuthenticateToken(ctx, toks.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if p.UserID != u.ID || p.Role != cloud.RoleOperator || strings.Join(p.Facilities, ",") != "lot-1,lot-2" || p.Name != u.Email {
		t.Errorf("principal = %+v", p)
	}

	// The claims: iss, aud, sub, exp, iat, jti, role, facilities, kid header.
	var claims jwt.MapClaims
	tok, _, err := jwt.NewParser().ParseUnverified(toks.AccessToken, &claims)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header["alg"] != "EdDSA" || tok.Header["kid"] == "" {
		t.Errorf("header = %v", tok.Header)
	}
	for _, k := range []string{"iss", "aud", "sub", "exp", "iat", "jti", "role", "facilities", "ver"} {
		if _, ok := claims[k]; !ok {
			t.Errorf("claim %s missing: %v", k, claims)
		}
	}

	// A second instance on the database verifies the first's tokens: one key.
	s2 := mustService(t, db, clk)
	if _, err := s2.AuthenticateToken(ctx, toks.AccessToken); err != nil {
		t.Errorf("second instance: %v", err)
	}

	clk.Add(16 * time.Minute)
	_, err = s.AuthenticateToken(ctx, toks.AccessToken)
	wantCode(t, "expired token", err, cloud.EUNAUTHORIZED)
}

// forge signs claims with key under alg, with the kid header.
func forge(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokenForgeries(t *testing.T) {
	ctx := context.Background()
	db := mustDB(t)
	clk := &clock{t: time.Now()}
	s := mustService(t, db, clk)
	if _, err := s.CreateUser(ctx, "admin@example.com", "", "long enough password", cloud.RoleAdmin, nil); err != nil {
		t.Fatal(err)
	}
	toks, err := s.Login(ctx, "admin@example.com", "long enough password", "")
	if err != nil {
		t.Fatal(err)
	}
	var claims jwt.MapClaims
	good, _, _ := jwt.NewParser().ParseUnverified(toks.AccessToken, &claims)
	kid := good.Header["kid"].(string)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	parts := strings.Split(toks.AccessToken, ".")

	// A driver's token turned into an admin's by editing the payload.
	tampered := jwt.MapClaims{}
	for k, v := range claims {
		tampered[k] = v
	}
	tampered["role"] = "admin"
	tamperedTok := strings.Split(forge(t, jwt.SigningMethodEdDSA, other, kid, tampered), ".")

	expired := jwt.MapClaims{}
	for k, v := range claims {
		expired[k] = v
	}
	expired["exp"] = float64(clk.Now().Add(-time.Hour).Unix())

	noAud := jwt.MapClaims{}
	for k, v := range claims {
		if k != "aud" {
			noAud[k] = v
		}
	}
	// The real key, to show that only the missing claim fails the token.
	keys, _ := db.SigningKeys(ctx)
	real := ed25519.NewKeyFromSeed(keys[0].Seed)
	if tok := forge(t, jwt.SigningMethodEdDSA, real, kid, claims); func() error { _, err := s.AuthenticateToken(ctx, tok); return err }() != nil {
		t.Fatal("a token re-signed with the real key fails: the forgeries below prove nothing")
	}

	for name, tok := range map[string]string{
		"another key, same kid":  forge(t, jwt.SigningMethodEdDSA, other, kid, claims),
		"another key, no kid":    forge(t, jwt.SigningMethodEdDSA, other, "", claims),
		"unknown kid":            forge(t, jwt.SigningMethodEdDSA, other, "deadbeef", claims),
		"alg none":               forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, claims),
		"alg HS256 with pub key": forge(t, jwt.SigningMethodHS256, []byte(real.Public().(ed25519.PublicKey)), kid, claims),
		"tampered payload":       parts[0] + "." + tamperedTok[1] + "." + parts[2],
		"expired":                forge(t, jwt.SigningMethodEdDSA, real, kid, expired),
		"no audience":            forge(t, jwt.SigningMethodEdDSA, real, kid, noAud),
		"garbage":                "not.a.token",
		"empty":                  "",
	} {
		if p, err := s.AuthenticateToken(ctx, tok); cloud.ErrorCode(err) != cloud.EUNAUTHORIZED {
			t.Errorf("%s: AuthenticateToken = %v, %v; want EUNAUTHORIZED", name, p, err)
		}
	}
}

func TestRefreshRotationAndReuse(t *testing.T) {
	ctx := context.Background()
	db := mustDB(t)
	clk := &clock{t: time.Now()}
	s := mustService(t, db, clk)
	u, err := s.CreateUser(ctx, "d@example.com", "", "long enough password", cloud.RoleDriver, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.Login(ctx, "d@example.com", "long enough password", "")
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Login(ctx, "d@example.com", "long enough password", "") // another device
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.Refresh(ctx, first.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if second.RefreshToken == first.RefreshToken {
		t.Fatal("refresh did not rotate the refresh token")
	}
	third, err := s.Refresh(ctx, second.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}

	// The first token again: reuse. The family dies, including the newest token.
	_, err = s.Refresh(ctx, first.RefreshToken)
	wantCode(t, "reuse", err, cloud.EUNAUTHORIZED)
	var reuse *cloud.RefreshReuseError
	if !errors.As(err, &reuse) || reuse.UserID != u.ID {
		t.Fatalf("reuse error = %v; want a *cloud.RefreshReuseError for %s", err, u.ID)
	}
	_, err = s.Refresh(ctx, third.RefreshToken)
	wantCode(t, "newest token of a revoked family", err, cloud.EUNAUTHORIZED)
	if errors.As(err, &reuse) {
		t.Error("a revoked token is reported as reused")
	}
	// The other device's session is another family: alive.
	if _, err := s.Refresh(ctx, other.RefreshToken); err != nil {
		t.Errorf("other family: %v", err)
	}

	for name, tok := range map[string]string{"empty": "", "short": "abc", "unknown": strings.Repeat("A", 43)} {
		_, err := s.Refresh(ctx, tok)
		wantCode(t, name, err, cloud.EUNAUTHORIZED)
	}

	// Expiry: 30 days.
	fresh, _ := s.Login(ctx, "d@example.com", "long enough password", "")
	clk.Add(30*24*time.Hour + time.Second)
	_, err = s.Refresh(ctx, fresh.RefreshToken)
	wantCode(t, "expired refresh token", err, cloud.EUNAUTHORIZED)
}

func TestPasswordChangeAndLogout(t *testing.T) {
	ctx := context.Background()
	db := mustDB(t)
	clk := &clock{t: time.Now()}
	s := mustService(t, db, clk)
	u, _ := s.CreateUser(ctx, "m@example.com", "", "long enough password", cloud.RoleManager, []string{"lot-1"})
	a, _ := s.Login(ctx, "m@example.com", "long enough password", "")
	b, _ := s.Login(ctx, "m@example.com", "long enough password", "")

	_, err := s.ChangePassword(ctx, u.ID, "not the password", "a new long password")
	wantCode(t, "wrong current password", err, cloud.EFORBIDDEN)
	_, err = s.ChangePassword(ctx, u.ID, "long enough password", "short")
	wantCode(t, "short new password", err, cloud.EINVALID)

	n, err := s.ChangePassword(ctx, u.ID, "long enough password", "a new long password")
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"a": a.AccessToken, "b": b.AccessToken} {
		_, err := s.AuthenticateToken(ctx, tok)
		wantCode(t, "access token "+name+" after the password change", err, cloud.EUNAUTHORIZED)
	}
	for name, tok := range map[string]string{"a": a.RefreshToken, "b": b.RefreshToken} {
		_, err := s.Refresh(ctx, tok)
		wantCode(t, "refresh token "+name+" after the password change", err, cloud.EUNAUTHORIZED)
	}
	if _, err := s.AuthenticateToken(ctx, n.AccessToken); err != nil {
		t.Errorf("the tokens the change returned: %v", err)
	}
	_, err = s.Login(ctx, "m@example.com", "long enough password", "")
	wantCode(t, "old password", err, cloud.EUNAUTHORIZED)

	// Logout revokes the session's family only.
	c, _ := s.Login(ctx, "m@example.com", "a new long password", "")
	if err := s.Logout(ctx, u.ID, n.RefreshToken, false); err != nil {
		t.Fatal(err)
	}
	_, err = s.Refresh(ctx, n.RefreshToken)
	wantCode(t, "refresh after logout", err, cloud.EUNAUTHORIZED)
	// Another user cannot log a session out.
	d, _ := s.CreateUser(ctx, "x@example.com", "", "long enough password", cloud.RoleDriver, nil)
	if err := s.Logout(ctx, d.ID, c.RefreshToken, false); err != nil {
		t.Fatal(err)
	}
	c2, err := s.Refresh(ctx, c.RefreshToken)
	if err != nil {
		t.Fatalf("another user's logout revoked the session: %v", err)
	}
	// Everywhere kills access tokens too.
	if err := s.Logout(ctx, u.ID, "", true); err != nil {
		t.Fatal(err)
	}
	_, err = s.AuthenticateToken(ctx, c2.AccessToken)
	wantCode(t, "access token after logout everywhere", err, cloud.EUNAUTHORIZED)
	_, err = s.Refresh(ctx, c2.RefreshToken)
	wantCode(t, "refresh token after logout everywhere", err, cloud.EUNAUTHORIZED)
}

func TestTOTPLogin(t *testing.T) {
	ctx := context.Background()
	db := mustDB(t)
	clk := &clock{t: time.Unix(1_900_000_000, 0)}
	s := mustService(t, db, clk)
	u, _ := s.CreateUser(ctx, "op@example.com", "", "long enough password", cloud.RoleOperator, []string{"lot-1"})
	secret, uri, err := s.EnrollTOTP(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(uri, "secret="+secret) {
		t.Errorf("uri %q lacks the secret", uri)
	}
	// Not enabled until confirmed: login without a code works.
	if _, err := s.Login(ctx, "op@example.com", "long enough password", ""); err != nil {
		t.Fatalf("login before confirmation: %v", err)
	}
	wrong, _ := auth.TOTPCode(secret, clk.Now().Add(-time.Hour))
	wantCode(t, "confirm with a wrong code", s.ConfirmTOTP(ctx, u.ID, wrong), cloud.EINVALID)
	code, _ := auth.TOTPCode(secret, clk.Now())
	if err := s.ConfirmTOTP(ctx, u.ID, code); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "confirm twice", s.ConfirmTOTP(ctx, u.ID, code), cloud.ECONFLICT)
	_, _, err = s.EnrollTOTP(ctx, u.ID)
	wantCode(t, "enrol when enabled", err, cloud.ECONFLICT)

	_, err = s.Login(ctx, "op@example.com", "long enough password", "")
	wantCode(t, "login without a code", err, cloud.EUNAUTHORIZED)
	// The confirmation's code is spent.
	_, err = s.Login(ctx, "op@example.com", "long enough password", code)
	wantCode(t, "login replaying the confirmation's code", err, cloud.EUNAUTHORIZED)

	clk.Add(30 * time.Second)
	code, _ = auth.TOTPCode(secret, clk.Now())
	_, err = s.Login(ctx, "op@example.com", "wrong password!!", code)
	wantCode(t, "right code, wrong password", err, cloud.EUNAUTHORIZED)
	if _, err := s.Login(ctx, "op@example.com", "long enough password", code); err != nil {
		t.Fatalf("login with the code: %v", err)
	}
	_, err = s.Login(ctx, "op@example.com", "long enough password", code)
	wantCode(t, "replay within the window", err, cloud.EUNAUTHORIZED)
	// A code of the previous step, older than the one accepted, is refused too.
	prev, _ := auth.TOTPCode(secret, clk.Now().Add(-30*time.Second))
	_, err = s.Login(ctx, "op@example.com", "long enough password", prev)
	wantCode(t, "older step", err, cloud.EUNAUTHORIZED)
	// Drift: the next step's code is accepted.
	next, _ := auth.TOTPCode(secret, clk.Now().Add(30*time.Second))
	if _, err := s.Login(ctx, "op@example.com", "long enough password", next); err != nil {
		t.Errorf("code of the next step: %v", err)
	}
}

func TestAPIKeys(t *testing.T) {
	ctx := context.Background()
	db := mustDB(t)
	s := mustService(t, db, &clock{t: time.Now()})
	u, _ := s.CreateUser(ctx, "admin@example.com", "", "long enough password", cloud.RoleAdmin, nil)
	k, key, err := s.CreateAPIKey(ctx, u.ID, "parkopedia", []string{"availability:read"}, []string{"lot-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, "gh_"+k.Prefix+"_") || len(key) != 64 {
		t.Errorf("key %q (prefix %q): want gh_<prefix>_<52 chars>", key, k.Prefix)
	}
	p, err := s.AuthenticateKey(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if p.APIKeyID != k.ID || p.Role != cloud.RoleIntegrator || !p.HasScope("availability:read") || p.HasScope("sessions:read") ||
		!p.CanAccess("lot-1") || p.CanAccess("lot-2") {
		t.Errorf("principal = %+v", p)
	}
	if got, _ := db.APIKey(ctx, k.ID); got.LastUsedAt.IsZero() {
		t.Error("last_used_at not recorded")
	}
	// The secret is not stored.
	var n int
	db.Pool().QueryRow(ctx, `SELECT count(*) FROM api_keys WHERE position($1 in encode(hash, 'escape')) > 0 OR name = $1`, key).Scan(&n)
	if n != 0 {
		t.Error("the key is stored in the clear")
	}

	tampered := key[:len(key)-1] + string("ab"[len(key)%2])
	if tampered == key {
		tampered = key[:len(key)-1] + "c"
	}
	for name, bad := range map[string]string{
		"tampered secret": tampered, "empty": "", "no prefix": strings.TrimPrefix(key, "gh_"),
		"upper case": strings.ToUpper(key), "trailing": key + "a", "sql": "gh_' OR 1=1 --_" + strings.Repeat("a", 38),
	} {
		_, err := s.AuthenticateKey(ctx, bad)
		wantCode(t, name, err, cloud.EUNAUTHORIZED)
	}
	if err := db.RevokeAPIKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.AuthenticateKey(ctx, key)
	wantCode(t, "revoked key", err, cloud.EUNAUTHORIZED)
}

func TestRoleChangeInvalidatesAccessTokens(t *testing.T) {
	ctx := context.Background()
	db := mustDB(t)
	s := mustService(t, db, &clock{t: time.Now()})
	u, _ := s.CreateUser(ctx, "o@example.com", "", "long enough password", cloud.RoleOperator, []string{"lot-1"})
	toks, _ := s.Login(ctx, "o@example.com", "long enough password", "")
	if _, _, err := db.SetRole(ctx, u.ID, cloud.RoleDriver, nil); err != nil {
		t.Fatal(err)
	}
	_, err := s.AuthenticateToken(ctx, toks.AccessToken)
	wantCode(t, "access token after a role change", err, cloud.EUNAUTHORIZED)
	n, err := s.Refresh(ctx, toks.RefreshToken)
	if err != nil {
		t.Fatalf("refresh after a role change: %v", err)
	}
	p, err := s.AuthenticateToken(ctx, n.AccessToken)
	if err != nil || p.Role != cloud.RoleDriver || len(p.Facilities) != 0 {
		t.Errorf("after refresh: %+v, %v; want a driver with no facilities", p, err)
	}
}

func TestSigningKeyRotation(t *testing.T) {
	ctx := context.Background()
	db := mustDB(t)
	clk := &clock{t: time.Now()}
	s1 := mustService(t, db, clk)
	s2 := mustService(t, db, clk)
	s1.CreateUser(ctx, "r@example.com", "", "long enough password", cloud.RoleDriver, nil)
	old, _ := s1.Login(ctx, "r@example.com", "long enough password", "")
	if err := s1.RotateSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	n, _ := s1.Login(ctx, "r@example.com", "long enough password", "")
	clk.Add(11 * time.Second) // past the reload guard
	for name, tok := range map[string]string{"old": old.AccessToken, "new": n.AccessToken} {
		if _, err := s2.AuthenticateToken(ctx, tok); err != nil {
			t.Errorf("instance 2, token signed with the %s key: %v", name, err)
		}
	}
}
