package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/httpapi"
)

// fakeHub records the downlink documents published and answers Presence from its
// maps; fail makes PublishDown fail, as a hub that is down.
type fakeHub struct {
	mu     sync.Mutex
	docs   []downDoc
	fail   bool
	online map[string]bool
	since  map[string]time.Time
}

type downDoc struct {
	facility, kind string
	version        uint64
	body           []byte
}

func (h *fakeHub) Command(ctx context.Context, facility, verb string, body []byte) ([]byte, error) {
	// As cmd/gatehouse-cloud's adapter of an offline garage.
	return nil, cloud.Errorf(cloud.EUNAVAILABLE, "the garage is offline; the command was not sent")
}

func (h *fakeHub) PublishDown(ctx context.Context, facility, kind string, version uint64, body []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail {
		return errors.New("fake hub: down")
	}
	h.docs = append(h.docs, downDoc{facility, kind, version, body})
	return nil
}

func (h *fakeHub) Presence(facility string) (bool, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.online[facility], h.since[facility]
}

func (h *fakeHub) setFail(v bool) { h.mu.Lock(); h.fail = v; h.mu.Unlock() }

func (h *fakeHub) published() []downDoc {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]downDoc(nil), h.docs...)
}

// expect checks a response's status, printing the body when it differs.
func expect(t *testing.T, what string, res *response, status int) {
	t.Helper()
	if res.Status != status {
		t.Fatalf("%s: status %d, body %s; want %d", what, res.Status, res.Body, status)
	}
}

func layoutVersion(t *testing.T, e *env, fac string) uint64 {
	t.Helper()
	var v uint64
	if err := e.db.Pool().QueryRow(context.Background(), "SELECT layout_version FROM facilities WHERE id = $1", fac).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestFacilitiesCRUD walks a manager through building a facility's layout: allowed
// on the facility assigned, refused on another and to drivers; every change bumps the
// layout version by one and publishes it; refused requests change nothing.
func TestFacilitiesCRUD(t *testing.T) {
	hub := &fakeHub{}
	e := newEnv(t, httpapi.Config{Hub: hub})
	admin, mgr, driver := bearer("admin"), bearer("facility_manager:fac1"), bearer("driver")
	for _, id := range []string{"fac1", "fac2"} {
		res := e.do(http.MethodPost, "/v1/facilities", map[string]any{"id": id, "name": "Garage " + id,
			"timezone": "Europe/Berlin", "location": map[string]any{"lat": 52.52, "lon": 13.40}}, admin...)
		expect(t, "admin creates "+id, res, http.StatusCreated)
	}
	expect(t, "manager creates a facility", e.do(http.MethodPost, "/v1/facilities", map[string]any{"id": "fac3", "name": "x"}, mgr...), http.StatusForbidden)

	steps := []struct {
		name   string
		method string
		path   string
		body   any
		auth   []string
		status int
	}{
		{"level", http.MethodPost, "/v1/facilities/fac1/levels", map[string]any{"id": "L0", "name": "Ground"}, mgr, http.StatusCreated},
		{"zone", http.MethodPost, "/v1/facilities/fac1/zones", map[string]any{"id": "A", "level": "L0", "capacity": 40, "held_back": 5}, mgr, http.StatusCreated},
		{"spot", http.MethodPost, "/v1/facilities/fac1/spots", map[string]any{"id": "A-001", "zone": "A", "kind": "ev", "features": []string{"charger"}}, mgr, http.StatusCreated},
		{"patch zone", http.MethodPatch, "/v1/facilities/fac1/zones/A", map[string]any{"capacity": 50}, mgr, http.StatusOK},
		{"patch facility", http.MethodPatch, "/v1/facilities/fac1", map[string]any{"public": true, "city": "Berlin"}, mgr, http.StatusOK},
		{"delete spot", http.MethodDelete, "/v1/facilities/fac1/spots/A-001", nil, mgr, http.StatusNoContent},
		// Refused: nothing changes.
		{"other facility", http.MethodPost, "/v1/facilities/fac2/zones", map[string]any{"id": "A", "capacity": 1}, mgr, http.StatusForbidden},
		{"driver", http.MethodPost, "/v1/facilities/fac1/zones", map[string]any{"id": "B", "capacity": 1}, driver, http.StatusForbidden},
		{"anonymous", http.MethodPatch, "/v1/facilities/fac1", map[string]any{"name": "x"}, nil, http.StatusUnauthorized},
		{"duplicate zone", http.MethodPost, "/v1/facilities/fac1/zones", map[string]any{"id": "A", "capacity": 1}, mgr, http.StatusConflict},
		{"zone in use", http.MethodDelete, "/v1/facilities/fac1/levels/L0", nil, mgr, http.StatusConflict},
		{"unknown zone", http.MethodPatch, "/v1/facilities/fac1/zones/Z", map[string]any{"name": "x"}, mgr, http.StatusNotFound},
	}
	want := layoutVersion(t, e, "fac1")
	for _, s := range steps {
		res := e.do(s.method, s.path, s.body, s.auth...)
		expect(t, s.name, res, s.status)
		if s.status < 300 {
			want++
		}
		if got := layoutVersion(t, e, "fac1"); got != want {
			t.Fatalf("after %s: layout_version %d; want %d", s.name, got, want)
		}
	}
	var z httpapi.Zone
	e.do(http.MethodGet, "/v1/facilities/fac1/zones", nil).JSON(t, &struct{ Items []*httpapi.Zone }{Items: []*httpapi.Zone{&z}})
	if z.ID != "A" || z.Capacity != 50 || z.HeldBack != 5 || z.Level != "L0" {
		t.Errorf("zone A = %+v; want capacity 50, held back 5 on L0", z)
	}

	docs := hub.published()
	last := docs[len(docs)-1]
	if last.facility != "fac1" || last.kind != httpapi.LayoutKind || last.version != want {
		t.Fatalf("last document %s/%s v%d; want fac1/layout v%d", last.facility, last.kind, last.version, want)
	}
	var doc httpapi.LayoutDocument
	if err := json.Unmarshal(last.body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != want || len(doc.Zones) != 1 || doc.Zones[0].Capacity != 50 || len(doc.Spots) != 0 || doc.Timezone != "Europe/Berlin" {
		t.Errorf("layout document = %+v; want v%d, zone A of 50, no spots", doc, want)
	}
	var n int
	e.db.Pool().QueryRow(context.Background(), "SELECT count(*) FROM audit_logs WHERE facility_id = 'fac1' AND action LIKE 'zone.%'").Scan(&n)
	if n != 2 {
		t.Errorf("zone audit entries = %d; want 2 (create, update)", n)
	}
}

// TestFacilitiesValidation sends bad bodies: each gets a problem naming the field (or
// 400 for what is not a valid request at all), and nothing changes.
func TestFacilitiesValidation(t *testing.T) {
	e := newEnv(t, httpapiConfig())
	admin := bearer("admin")
	expect(t, "create", e.do(http.MethodPost, "/v1/facilities", map[string]any{"id": "fac1", "name": "One"}, admin...), http.StatusCreated)
	expect(t, "zone", e.do(http.MethodPost, "/v1/facilities/fac1/zones", map[string]any{"id": "A", "capacity": 10}, admin...), http.StatusCreated)
	before := layoutVersion(t, e, "fac1")
	cases := []struct {
		name, method, path string
		body               any
		status             int
		field              string
	}{
		{"bad facility id", http.MethodPost, "/v1/facilities", map[string]any{"id": "Fac 1", "name": "x"}, 422, "id"},
		{"bad timezone", http.MethodPatch, "/v1/facilities/fac1", map[string]any{"timezone": "Mars/Olympus"}, 422, "timezone"},
		{"bad currency", http.MethodPatch, "/v1/facilities/fac1", map[string]any{"currency": "euro"}, 422, "currency"},
		{"bad latitude", http.MethodPatch, "/v1/facilities/fac1", map[string]any{"location": map[string]any{"lat": 91, "lon": 0}}, 422, "location.lat"},
		{"empty name", http.MethodPatch, "/v1/facilities/fac1", map[string]any{"name": "  "}, 422, "name"},
		{"unknown member", http.MethodPatch, "/v1/facilities/fac1", map[string]any{"owner": "me"}, 400, "owner"},
		{"wrong type", http.MethodPost, "/v1/facilities/fac1/zones", `{"id":"B","capacity":"ten"}`, 422, "capacity"},
		{"no capacity", http.MethodPost, "/v1/facilities/fac1/zones", map[string]any{"id": "B"}, 422, "capacity"},
		{"held back over capacity", http.MethodPost, "/v1/facilities/fac1/zones", map[string]any{"id": "B", "capacity": 2, "held_back": 3}, 422, "held_back"},
		{"held back over stored capacity", http.MethodPatch, "/v1/facilities/fac1/zones/A", map[string]any{"held_back": 11}, 422, "held_back"},
		{"bad kind", http.MethodPost, "/v1/facilities/fac1/zones", map[string]any{"id": "B", "capacity": 2, "kind": "vip"}, 422, "kind"},
		{"unknown level", http.MethodPost, "/v1/facilities/fac1/zones", map[string]any{"id": "B", "capacity": 2, "level": "L9"}, 422, "level"},
		{"unknown zone", http.MethodPost, "/v1/facilities/fac1/spots", map[string]any{"id": "S1", "zone": "Q"}, 422, "zone"},
		{"bad feature", http.MethodPost, "/v1/facilities/fac1/spots", map[string]any{"id": "S1", "zone": "A", "features": []string{"EV Charger"}}, 422, "features[0]"},
		{"not JSON", http.MethodPost, "/v1/facilities/fac1/levels", `{"id":`, 400, ""},
		{"bad path id", http.MethodPatch, "/v1/facilities/fac1/zones/a%20b", map[string]any{"name": "x"}, 400, "zone"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := e.do(tc.method, tc.path, tc.body, admin...)
			p := res.Problem(t)
			if p.Status != tc.status {
				t.Fatalf("status %d (%s); want %d", p.Status, res.Body, tc.status)
			}
			if tc.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != tc.field) {
				t.Errorf("errors %+v; want field %q", p.Errors, tc.field)
			}
		})
	}
	if got := layoutVersion(t, e, "fac1"); got != before {
		t.Errorf("layout_version %d after refused requests; want %d", got, before)
	}
}

// TestLayoutRepublished checks that a change made while the hub is down is saved and
// published later by RepublishLayouts, at the current version.
func TestLayoutRepublished(t *testing.T) {
	hub := &fakeHub{fail: true}
	e := newEnv(t, httpapi.Config{Hub: hub})
	admin := bearer("admin")
	expect(t, "create", e.do(http.MethodPost, "/v1/facilities", map[string]any{"id": "fac1", "name": "One"}, admin...), http.StatusCreated)
	expect(t, "zone", e.do(http.MethodPost, "/v1/facilities/fac1/zones", map[string]any{"id": "A", "capacity": 10}, admin...), http.StatusCreated)
	if docs := hub.published(); len(docs) != 0 {
		t.Fatalf("published %d documents with the hub down", len(docs))
	}
	hub.setFail(false)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { httpapi.RepublishLayouts(ctx, e.db, hub, 10*time.Millisecond, testWarner{t}); close(done) }()
	defer func() { cancel(); <-done }()
	for end := time.Now().Add(5 * time.Second); len(hub.published()) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("layout not republished")
		}
	}
	if d := hub.published()[0]; d.version != 2 || d.kind != "layout" {
		t.Errorf("republished %s v%d; want layout v2", d.kind, d.version)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(hub.published()); n != 1 {
		t.Errorf("published %d documents; want 1 (once accepted, not again)", n)
	}
}

type testWarner struct{ t *testing.T }

func (w testWarner) Warn(msg string, args ...any) { w.t.Log(append([]any{msg}, args...)...) }
