package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/auth"
	"github.com/gatehouse-parking/gatehouse/cloud/httpapi"
	"github.com/gatehouse-parking/gatehouse/cloud/pgtest"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
)

var t0 = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

// seedGarage writes a garage as the ingest leaves it (facility row with its last
// contact, zone counts) and the cloud's configuration of one zone, by SQL.
func seedGarage(tb testing.TB, db *postgres.DB, id string, public bool) {
	tb.Helper()
	ctx := context.Background()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO facilities (id, name, last_contact, last_event_at, public, lat, lon) VALUES ($1, $1, $2, $2, $3, 48.1, 11.5)`,
			[]any{id, t0.Add(-30 * time.Second), public}},
		// L1 is configured (capacity 100, 10 held back); L2 only reported by the garage.
		{`INSERT INTO zones (facility_id, id, name, capacity, held_back) VALUES ($1, 'L1', 'Level 1', 100, 10)`, []any{id}},
		{`INSERT INTO zone_occupancy (facility_id, zone_id, occupied, capacity, updated_at) VALUES
			($1, 'L1', 60, 120, $2), ($1, 'L2', 50, 50, $2)`, []any{id, t0.Add(-time.Minute)}},
		{`INSERT INTO active_alerts (facility_id, key, code, severity, raised_at) VALUES
			($1, 'a', 'barrier.fault', 'warning', $2), ($1, 'b', 'device.offline', 'critical', $2)`, []any{id, t0}},
	} {
		if _, err := db.Pool().Exec(ctx, q.sql, q.args...); err != nil {
			tb.Fatal(err)
		}
	}
}

// TestAvailability checks the numbers against the projection and configuration
// seeded, the data's age and the link state, and who may read a private facility.
func TestAvailability(t *testing.T) {
	offline := t0.Add(-5 * time.Minute)
	hub := &fakeHub{online: map[string]bool{"pub": true}, since: map[string]time.Time{"priv": offline}}
	e := newEnv(t, httpapi.Config{Hub: hub, Auth: keyAuth{}, Now: func() time.Time { return t0 }})
	seedGarage(t, e.db, "pub", true)
	seedGarage(t, e.db, "priv", false)

	res := e.do(http.MethodGet, "/v1/facilities/pub/availability", nil)
	expect(t, "anonymous, public", res, http.StatusOK)
	var a httpapi.Availability
	res.JSON(t, &a)
	want := []httpapi.ZoneAvailability{
		{Zone: "L1", Name: "Level 1", Capacity: 100, HeldBack: 10, Occupied: 60, Free: 30, UpdatedAt: t0.Add(-time.Minute)},
		{Zone: "L2", Capacity: 50, Occupied: 50, Free: 0, UpdatedAt: t0.Add(-time.Minute)},
	}
	if len(a.Zones) != 2 {
		t.Fatalf("zones %+v; want %+v", a.Zones, want)
	}
	for i := range want {
		if g := a.Zones[i]; g.Zone != want[i].Zone || g.Capacity != want[i].Capacity || g.HeldBack != want[i].HeldBack ||
			g.Occupied != want[i].Occupied || g.Free != want[i].Free || !g.UpdatedAt.Equal(want[i].UpdatedAt) || g.Name != want[i].Name {
			t.Errorf("zone %d = %+v; want %+v", i, g, want[i])
		}
	}
	if a.Capacity != 150 || a.Occupied != 110 || a.Free != 30 || a.HeldBack != 10 {
		t.Errorf("totals capacity %d occupied %d free %d held %d; want 150, 110, 30, 10", a.Capacity, a.Occupied, a.Free, a.HeldBack)
	}
	if a.AgeSeconds == nil || *a.AgeSeconds != 30 {
		t.Errorf("age_seconds = %v; want 30", a.AgeSeconds)
	}
	if a.Online == nil || !*a.Online || a.OfflineSince != nil {
		t.Errorf("online %v offline_since %v; want online", a.Online, a.OfflineSince)
	}

	// A private facility: hidden from anonymous callers, drivers, other staff and keys
	// without the scope; shown to its staff and keys.
	for _, tc := range []struct {
		name    string
		headers []string
		status  int
	}{
		{"anonymous", nil, http.StatusNotFound},
		{"driver", bearer("driver"), http.StatusNotFound},
		{"other manager", bearer("facility_manager:pub"), http.StatusNotFound},
		{"key without scope", []string{"X-API-Key", "key|status:read|priv"}, http.StatusNotFound},
		{"key for another facility", []string{"X-API-Key", "key|availability:read|pub"}, http.StatusNotFound},
		{"operator", bearer("operator:priv"), http.StatusOK},
		{"key", []string{"X-API-Key", "key|availability:read|priv"}, http.StatusOK},
		{"admin", bearer("admin"), http.StatusOK},
	} {
		res := e.do(http.MethodGet, "/v1/facilities/priv/availability", nil, tc.headers...)
		expect(t, "private, "+tc.name, res, tc.status)
		if tc.status == http.StatusOK {
			var a httpapi.Availability
			res.JSON(t, &a)
			if a.Online == nil || *a.Online || a.OfflineSince == nil || !a.OfflineSince.Equal(offline) {
				t.Errorf("%s: online %v offline_since %v; want offline since %v", tc.name, a.Online, a.OfflineSince, offline)
			}
		}
	}
	expect(t, "unknown", e.do(http.MethodGet, "/v1/facilities/nope/availability", nil), http.StatusNotFound)
	expect(t, "bad id", e.do(http.MethodGet, "/v1/facilities/NOPE!/availability", nil), http.StatusBadRequest)

	// The cache is short: a change in the projection shows within a second.
	if _, err := e.db.Pool().Exec(context.Background(), `UPDATE zone_occupancy SET occupied = 61 WHERE facility_id = 'pub' AND zone_id = 'L1'`); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var a httpapi.Availability
		e.do(http.MethodGet, "/v1/facilities/pub/availability", nil).JSON(t, &a)
		if a.Zones[0].Occupied == 61 {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the new count did not show within 3 s")
		}
	}
}

// TestAvailabilityWithoutHub reports no link state, and the last contact for
// garages the hub has not seen since it started.
func TestAvailabilityWithoutHub(t *testing.T) {
	e := newEnv(t, httpapi.Config{Now: func() time.Time { return t0 }})
	seedGarage(t, e.db, "pub", true)
	var a httpapi.Availability
	e.do(http.MethodGet, "/v1/facilities/pub/availability", nil).JSON(t, &a)
	if a.Online != nil || a.OfflineSince != nil {
		t.Errorf("without a hub: online %v offline_since %v; want both absent", a.Online, a.OfflineSince)
	}
	e2 := newEnv(t, httpapi.Config{Hub: &fakeHub{}, Now: func() time.Time { return t0 }})
	seedGarage(t, e2.db, "pub", true)
	e2.do(http.MethodGet, "/v1/facilities/pub/availability", nil).JSON(t, &a)
	if a.Online == nil || *a.Online || a.OfflineSince == nil || !a.OfflineSince.Equal(t0.Add(-30*time.Second)) {
		t.Errorf("never seen by the hub: online %v offline_since %v; want offline since the last contact", a.Online, a.OfflineSince)
	}
}

// TestFleet checks that managers see their own garages only, with their totals,
// alerts and link state, and that drivers are refused.
func TestFleet(t *testing.T) {
	hub := &fakeHub{online: map[string]bool{"g1": true}}
	e := newEnv(t, httpapi.Config{Hub: hub, Now: func() time.Time { return t0 }})
	for _, id := range []string{"g1", "g2", "g3"} {
		seedGarage(t, e.db, id, false)
	}
	var page httpapi.Page[httpapi.FleetGarage]
	res := e.do(http.MethodGet, "/v1/fleet", nil, bearer("facility_manager:g1,g3")...)
	expect(t, "manager", res, http.StatusOK)
	res.JSON(t, &page)
	if len(page.Items) != 2 || page.Items[0].Facility != "g1" || page.Items[1].Facility != "g3" {
		t.Fatalf("manager's fleet = %+v; want g1, g3", page.Items)
	}
	g := page.Items[0]
	if g.Capacity != 150 || g.Occupied != 110 || g.Free != 30 || g.ActiveAlerts != 2 || g.WorstSeverity != "critical" ||
		g.Online == nil || !*g.Online {
		t.Errorf("g1 = %+v; want capacity 150, occupied 110, free 30, 2 alerts, critical, online", g)
	}
	if g3 := page.Items[1]; g3.Online == nil || *g3.Online {
		t.Errorf("g3 online = %v; want false", g3.Online)
	}
	res = e.do(http.MethodGet, "/v1/fleet?limit=2", nil, bearer("admin")...)
	res.JSON(t, &page)
	if len(page.Items) != 2 || page.NextCursor == "" {
		t.Fatalf("admin page 1 = %+v; want 2 items and a cursor", page)
	}
	var page2 httpapi.Page[httpapi.FleetGarage]
	e.do(http.MethodGet, "/v1/fleet?limit=2&cursor="+page.NextCursor, nil, bearer("admin")...).JSON(t, &page2)
	if len(page2.Items) != 1 || page2.Items[0].Facility != "g3" || page2.NextCursor != "" {
		t.Errorf("admin page 2 = %+v; want g3 only", page2)
	}
	expect(t, "driver", e.do(http.MethodGet, "/v1/fleet", nil, bearer("driver")...), http.StatusForbidden)
	expect(t, "anonymous", e.do(http.MethodGet, "/v1/fleet", nil), http.StatusUnauthorized)
}

// benchEnv is the API on a fresh database holding the garage "bench" (public, two
// zones), and the headers of an authenticated caller, for BenchmarkAvailabilityWrk.
func benchEnv(b *testing.B) (*env, []string) {
	b.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgtest.ForTest(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(db.Close)
	if err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	seedGarage(b, db, "bench", true)
	// The real account service: every request verifies an EdDSA-signed access token
	// and looks its account up, as a driver's app does.
	svc, err := auth.New(ctx, db, auth.Options{Params: cheapHashing})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := svc.CreateUser(ctx, "bench@example.com", "", testPassword, cloud.RoleDriver, nil); err != nil {
		b.Fatal(err)
	}
	toks, err := svc.Login(ctx, "bench@example.com", testPassword, "")
	if err != nil {
		b.Fatal(err)
	}
	app := httpapi.New(httpapi.Config{DB: db, Auth: svc, Hub: &fakeHub{online: map[string]bool{"bench": true}}, Limits: noLimits})
	return &env{db: db, app: app}, bearer(toks.AccessToken)
}

// keyAuth is fakeAuth with keys "key|scope,scope|facility,facility", for scopes
// that hold colons ("availability:read").
type keyAuth struct{ fakeAuth }

func (keyAuth) AuthenticateKey(ctx context.Context, key string) (*cloud.Principal, error) {
	parts := strings.Split(key, "|")
	if len(parts) != 3 || parts[0] != "key" {
		return nil, cloud.Errorf(cloud.EUNAUTHORIZED, "the API key is not valid")
	}
	return &cloud.Principal{APIKeyID: "k1", Name: "integrator", Role: cloud.RoleIntegrator,
		Scopes: strings.Split(parts[1], ","), Facilities: strings.Split(parts[2], ",")}, nil
}
