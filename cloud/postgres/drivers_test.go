package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
)

// TestDriversVehicles registers, lists and removes vehicles: one owner at a time, a
// cap per account, removal by the owner only.
func TestDriversVehicles(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

	v, err := db.AddVehicle(ctx, "alice", "AB123CD", "DE", "blue car", at)
	if err != nil {
		t.Fatal(err)
	}
	if v.ID == 0 || v.Plate != "AB123CD" || v.Country != "DE" || v.Nickname != "blue car" || !v.AddedAt.Equal(at) {
		t.Errorf("AddVehicle = %+v", v)
	}
	for _, owner := range []string{"alice", "bob"} {
		if _, err := db.AddVehicle(ctx, owner, "AB123CD", "DE", "", at); cloud.ErrorCode(err) != cloud.ECONFLICT {
			t.Errorf("AddVehicle(%s, a registered vehicle) = %v; want conflict", owner, err)
		}
	}
	// The same plate under another country is refused too: garages record plates
	// without countries, so its owner would see the stays of alice's car.
	if _, err := db.AddVehicle(ctx, "bob", "AB123CD", "FR", "", at); cloud.ErrorCode(err) != cloud.ECONFLICT {
		t.Errorf("AddVehicle(bob, AB123CD FR) while alice owns AB123CD DE = %v; want conflict", err)
	}
	if err := db.RemoveVehicle(ctx, "bob", v.ID, at); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("RemoveVehicle(bob, alice's) = %v; want not found", err)
	}
	if err := db.RemoveVehicle(ctx, "alice", v.ID, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.RemoveVehicle(ctx, "alice", v.ID, at.Add(time.Hour)); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("RemoveVehicle twice = %v; want not found", err)
	}
	// Removed, it may be registered again, by anyone.
	if _, err := db.AddVehicle(ctx, "bob", "AB123CD", "DE", "", at.Add(2*time.Hour)); err != nil {
		t.Errorf("AddVehicle(bob) after alice removed it = %v", err)
	}
	got, err := db.Vehicles(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	var plates []string
	for _, v := range got {
		plates = append(plates, v.Plate+"/"+v.Country)
	}
	if want := []string{"AB123CD/DE"}; !slices.Equal(plates, want) {
		t.Errorf("Vehicles(bob) = %v; want %v", plates, want)
	}
	if got, _ := db.Vehicles(ctx, "alice"); len(got) != 0 {
		t.Errorf("Vehicles(alice) = %v; want none", got)
	}

	for i := range postgres.MaxVehicles {
		if _, err := db.AddVehicle(ctx, "carol", "CAR"+string(rune('A'+i)), "NL", "", at); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.AddVehicle(ctx, "carol", "ONEMORE", "NL", "", at); cloud.ErrorCode(err) != cloud.ECONFLICT {
		t.Errorf("AddVehicle past the cap = %v; want conflict", err)
	}
}

// TestDriversSessions checks that a driver's history holds the stays of their
// plates made while the plate was theirs, open and closed, and nobody else's, and that
// paging walks it once.
func TestDriversSessions(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	day := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	s := newStream("drv", 1)
	stay := func(id, plate string, in time.Duration, out time.Duration) {
		s.now = day.Add(in)
		s.emit("in-1", &gh.SessionStarted{SessionId: id, ZoneId: "L1", Plate: plate, Right: gh.Right_RIGHT_TRANSIENT, RateId: "std"})
		if out > 0 {
			s.now = day.Add(out)
			s.emit("out-1", &gh.SessionEnded{SessionId: id, ZoneId: "L1", Currency: "EUR", Reason: "exit"})
		}
	}
	stay("before", "AA111AA", 1*time.Hour, 2*time.Hour) // before alice registered it
	for i := range 12 {
		stay("a"+string(rune('a'+i)), "AA111AA", time.Duration(10+i)*time.Hour, time.Duration(10+i)*time.Hour+30*time.Minute)
	}
	stay("b-open", "BB222BB", 30*time.Hour, 0)  // alice's second car, still inside
	stay("other", "ZZ999ZZ", 11*time.Hour, 0)   // someone else's
	stay("after", "AA111AA", 50*time.Hour, 0)   // after alice removed it: bob's
	stay("bob-own", "AA111AA", 60*time.Hour, 0) // bob's, still inside
	if _, err := db.Ingest(ctx, s.out); err != nil {
		t.Fatal(err)
	}
	a1, err := db.AddVehicle(ctx, "alice", "AA111AA", "DE", "", day.Add(5*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddVehicle(ctx, "alice", "BB222BB", "DE", "", day.Add(5*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.RemoveVehicle(ctx, "alice", a1.ID, day.Add(40*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddVehicle(ctx, "bob", "AA111AA", "DE", "", day.Add(45*time.Hour)); err != nil {
		t.Fatal(err)
	}

	history := func(user string, limit int) []string {
		var ids []string
		var after postgres.SessionKey
		for range 100 {
			page, err := db.DriverSessions(ctx, user, after, limit)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range page {
				ids = append(ids, s.ID)
			}
			if len(page) < limit {
				return ids
			}
			last := page[len(page)-1]
			after = postgres.SessionKey{At: last.EnteredAt, Facility: last.Facility, Session: last.ID}
		}
		t.Fatal("pages never end")
		return nil
	}
	want := []string{"b-open"}
	for i := 11; i >= 0; i-- {
		want = append(want, "a"+string(rune('a'+i)))
	}
	for _, limit := range []int{1, 4, 13, 100} {
		if got := history("alice", limit); !slices.Equal(got, want) {
			t.Errorf("alice's history by %d = %v; want %v", limit, got, want)
		}
	}
	if got, want := history("bob", 10), []string{"bob-own", "after"}; !slices.Equal(got, want) {
		t.Errorf("bob's history = %v; want %v", got, want)
	}
	if got := history("mallory", 10); len(got) != 0 {
		t.Errorf("history of an account without vehicles = %v", got)
	}
}

// TestDriversSchema checks the guarantees the schema gives by itself: the history of
// reservations cannot be rewritten, payment methods hold no card numbers, and
// parking_sessions shows each stay once.
func TestDriversSchema(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	pool := db.Pool()
	if _, err := db.Ingest(ctx, generate("schema", 2, 300)); err != nil {
		t.Fatal(err)
	}
	var viewN, openN, closedN int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM parking_sessions), (SELECT count(*) FROM open_sessions),
		(SELECT count(*) FROM sessions)`).Scan(&viewN, &openN, &closedN); err != nil {
		t.Fatal(err)
	}
	if viewN != openN+closedN || openN == 0 || closedN == 0 {
		t.Errorf("parking_sessions has %d rows; want %d open + %d closed", viewN, openN, closedN)
	}

	var resID string
	if err := pool.QueryRow(ctx, `INSERT INTO reservations (facility_id, zone_id, user_id, plate, period)
		VALUES ('schema', 'L1', 'alice', 'AB123CD', tstzrange(now(), now() + interval '2 hours')) RETURNING id`).Scan(&resID); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO reservation_history (reservation_id, to_status, actor) VALUES ($1, 'pending', 'user:alice')`, resID); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		`UPDATE reservation_history SET to_status = 'confirmed'`,
		`DELETE FROM reservation_history`,
		`TRUNCATE reservation_history`,
	} {
		if _, err := pool.Exec(ctx, sql); err == nil {
			t.Errorf("%s: succeeded; want refused (append-only)", sql)
		}
	}
	bad := []string{
		`INSERT INTO user_payment_methods (user_id, provider, provider_token) VALUES ('alice', 'stripe', '4242424242424242')`,
		`INSERT INTO user_payment_methods (user_id, provider, provider_token) VALUES ('alice', 'stripe', '4242 4242 4242 4242')`,
		`INSERT INTO user_payment_methods (user_id, provider, provider_token, last4) VALUES ('alice', 'stripe', 'pm_1', '42424')`,
		`INSERT INTO reservations (facility_id, zone_id, user_id, plate, period) VALUES ('schema', 'L1', 'a', 'AB1', tstzrange(now(), NULL))`,
		`INSERT INTO payments (amount, currency, provider, idempotency_key) VALUES (0, 'EUR', 'stripe', 'k0')`,
		`INSERT INTO vehicles (plate, country) VALUES ('''; DROP', 'DE')`,
	}
	for _, sql := range bad {
		if _, err := pool.Exec(ctx, sql); err == nil {
			t.Errorf("%s: succeeded; want a check violation", sql)
		}
	}
	if _, err := pool.Exec(ctx, `INSERT INTO user_payment_methods (user_id, provider, provider_token, brand, last4) VALUES ('alice', 'stripe', 'pm_1Nx', 'visa', '4242')`); err != nil {
		t.Errorf("a token payment method: %v", err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO payments (amount, currency, provider, idempotency_key, reservation_id) VALUES (500, 'EUR', 'stripe', 'k1', $1)`, resID); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO payments (amount, currency, provider, idempotency_key) VALUES (500, 'EUR', 'stripe', 'k1')`); err == nil {
		t.Error("a second payment with the same idempotency key: succeeded")
	}
}
