package httpapi_test

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud/httpapi"
)

// vehicleRows counts the rows of the vehicles tables, to show a request changed
// nothing.
func vehicleRows(t *testing.T, e *env) [2]int {
	t.Helper()
	var n [2]int
	if err := e.db.Pool().QueryRow(context.Background(), `SELECT (SELECT count(*) FROM vehicles), (SELECT count(*) FROM user_vehicles)`).
		Scan(&n[0], &n[1]); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestVehiclesCRUD registers, lists and removes a driver's vehicles: plates
// normalised, one owner per plate and country, removal by the owner only.
func TestVehiclesCRUD(t *testing.T) {
	e := newEnv(t, ourConfig())
	alice, bob := bearer("driver=alice"), bearer("driver=bob")

	res := e.do(http.MethodPost, "/v1/me/vehicles", `{"plate":" ab-123 cd ","country":"de","nickname":" Blue "}`, alice...)
	if res.Status != http.StatusCreated {
		t.Fatalf("add: %d %s", res.Status, res.Body)
	}
	var v httpapi.Vehicle
	res.JSON(t, &v)
	if v.ID == 0 || v.Plate != "AB123CD" || v.Country != "DE" || v.Nickname != "Blue" || v.AddedAt.IsZero() {
		t.Errorf("added %+v; want AB123CD, DE, Blue", v)
	}
	// Written another way, it is the same vehicle.
	for _, tok := range [][]string{alice, bob} {
		res := e.do(http.MethodPost, "/v1/me/vehicles", `{"plate":"AB 123 CD","country":"DE"}`, tok...)
		if res.Status != http.StatusConflict {
			t.Errorf("%s registers it again: %d; want 409", tok[1], res.Status)
		}
	}
	if res := e.do(http.MethodPost, "/v1/me/vehicles", `{"plate":"Ö-123","country":"AT"}`, bob...); res.Status != http.StatusCreated {
		t.Errorf("bob adds Ö-123: %d %s", res.Status, res.Body)
	}

	list := func(tok []string) []string {
		var page httpapi.Page[httpapi.Vehicle]
		res := e.do(http.MethodGet, "/v1/me/vehicles", nil, tok...)
		if res.Status != http.StatusOK {
			t.Fatalf("list: %d %s", res.Status, res.Body)
		}
		res.JSON(t, &page)
		var out []string
		for _, v := range page.Items {
			out = append(out, v.Plate+"/"+v.Country)
		}
		return out
	}
	if got := list(alice); !slices.Equal(got, []string{"AB123CD/DE"}) {
		t.Errorf("alice's vehicles = %v", got)
	}
	if got := list(bob); !slices.Equal(got, []string{"O123/AT"}) {
		t.Errorf("bob's vehicles = %v", got)
	}

	path := "/v1/me/vehicles/" + strconv.FormatInt(v.ID, 10)
	if res := e.do(http.MethodDelete, path, nil, bob...); res.Status != http.StatusNotFound {
		t.Errorf("bob removes alice's vehicle: %d; want 404", res.Status)
	}
	if res := e.do(http.MethodDelete, path, nil, alice...); res.Status != http.StatusNoContent {
		t.Errorf("alice removes hers: %d %s", res.Status, res.Body)
	}
	if res := e.do(http.MethodDelete, path, nil, alice...); res.Status != http.StatusNotFound {
		t.Errorf("removed twice: %d; want 404", res.Status)
	}
	if got := list(alice); len(got) != 0 {
		t.Errorf("alice's vehicles after removal = %v", got)
	}
	if res := e.do(http.MethodPost, "/v1/me/vehicles", `{"plate":"AB123CD","country":"DE"}`, bob...); res.Status != http.StatusCreated {
		t.Errorf("bob registers the freed plate: %d %s", res.Status, res.Body)
	}
}

// TestVehiclesStaffRefused checks that /me/vehicles and /me/sessions are for driver
// accounts only.
func TestVehiclesStaffRefused(t *testing.T) {
	e := newEnv(t, ourConfig())
	for _, h := range [][]string{bearer("operator:lot-a"), bearer("facility_manager:lot-a"), bearer("admin"),
		{httpapi.HeaderAPIKey, "sessions:read,status:read@lot-a"}} {
		for _, r := range []struct{ method, path, body string }{
			{http.MethodGet, "/v1/me/vehicles", ""},
			{http.MethodPost, "/v1/me/vehicles", `{"plate":"AB123CD","country":"DE"}`},
			{http.MethodDelete, "/v1/me/vehicles/1", ""},
			{http.MethodGet, "/v1/me/sessions", ""},
		} {
			var body any
			if r.body != "" {
				body = r.body
			}
			if res := e.do(r.method, r.path, body, h...); res.Status != http.StatusForbidden {
				t.Errorf("%s: %s %s = %d; want 403", h[1], r.method, r.path, res.Status)
			}
		}
	}
	if res := e.do(http.MethodGet, "/v1/me/vehicles", nil); res.Status != http.StatusUnauthorized {
		t.Errorf("anonymous: %d; want 401", res.Status)
	}
	if n := vehicleRows(t, e); n != [2]int{} {
		t.Errorf("staff requests changed the vehicles: %v rows", n)
	}
}

// TestVehiclesSessions checks that a driver's history holds the stays of their own
// plates, open and closed, made since they registered them, page by page.
func TestVehiclesSessions(t *testing.T) {
	registered := time.Date(2026, 3, 2, 8, 30, 0, 0, time.UTC)
	cfg := ourConfig()
	cfg.Now = func() time.Time { return registered }
	e := newEnv(t, cfg)
	for _, r := range []struct{ tok, plate string }{{"driver=alice", "AA111AA"}, {"driver=alice", "AA222AA"}, {"driver=bob", "BB111BB"}} {
		if res := e.do(http.MethodPost, "/v1/me/vehicles", `{"plate":"`+r.plate+`","country":"DE"}`, bearer(r.tok)...); res.Status != http.StatusCreated {
			t.Fatalf("add %s: %d %s", r.plate, res.Status, res.Body)
		}
	}
	a := newOutbox("lot-a", time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC))
	a.enter("early", "AA111AA") // before alice registered it
	a.leave("early", 0)
	a.now = registered
	for _, id := range []string{"a1", "a2", "a3", "a4", "a5"} {
		a.enter(id, "AA111AA")
		a.leave(id, 300)
	}
	a.enter("b1", "BB111BB")
	a.enter("x1", "XX999XX")
	ingestEvents(e, a.out)
	b := newOutbox("lot-b", a.now)
	b.enter("a6", "AA222AA") // another garage, still inside
	ingestEvents(e, b.out)

	got := walkPages[httpapi.Session](e, "/v1/me/sessions?limit=2", bearer("driver=alice")...)
	if ids := sessionIDs(got); !slices.Equal(ids, []string{"a6", "a5", "a4", "a3", "a2", "a1"}) {
		t.Errorf("alice's sessions = %v; want a6 to a1", ids)
	}
	if got[0].Facility != "lot-b" || got[0].ExitedAt != nil || got[1].ExitedAt == nil || got[1].Fee != 300 {
		t.Errorf("alice's sessions: %+v, %+v", got[0], got[1])
	}
	if ids := sessionIDs(walkPages[httpapi.Session](e, "/v1/me/sessions", bearer("driver=bob")...)); !slices.Equal(ids, []string{"b1"}) {
		t.Errorf("bob's sessions = %v; want [b1]", ids)
	}
	if ids := sessionIDs(walkPages[httpapi.Session](e, "/v1/me/sessions", bearer("driver=carol")...)); len(ids) != 0 {
		t.Errorf("carol, without vehicles, sees %v", ids)
	}
}

// TestVehiclesBadInput checks that bad bodies get 400, 413 or 422 and change nothing,
// SQL-looking plates included.
func TestVehiclesBadInput(t *testing.T) {
	e := newEnv(t, ourConfig())
	alice := bearer("driver=alice")
	if res := e.do(http.MethodPost, "/v1/me/vehicles", `{"plate":"AB123CD","country":"DE"}`, alice...); res.Status != http.StatusCreated {
		t.Fatalf("add: %d %s", res.Status, res.Body)
	}
	before := vehicleRows(t, e)
	cases := []struct {
		name, body string
		status     int
		field      string
	}{
		{"malformed JSON", `{"plate":"AB`, 400, ""},
		{"unknown field", `{"plate":"CD456EF","country":"DE","user_id":"bob"}`, 400, "user_id"},
		{"plate a number", `{"plate":123,"country":"DE"}`, 422, "plate"},
		{"country an array", `{"plate":"CD456EF","country":["DE"]}`, 422, "country"},
		{"sql plate", `{"plate":"'; DROP TABLE vehicles;--","country":"DE"}`, 422, "plate"},
		{"sql country", `{"plate":"CD456EF","country":"DE' OR '1'='1"}`, 422, "country"},
		{"no plate", `{"country":"DE"}`, 422, "plate"},
		{"one character", `{"plate":"A","country":"DE"}`, 422, "plate"},
		{"too long", `{"plate":"ABCDEFGHIJKLM","country":"DE"}`, 422, "plate"},
		{"emoji", `{"plate":"AB🚗12","country":"DE"}`, 422, "plate"},
		{"nickname control", `{"plate":"CD456EF","country":"DE","nickname":"a\tb"}`, 422, "nickname"},
		{"nickname long", `{"plate":"CD456EF","country":"DE","nickname":"` + strings.Repeat("n", 41) + `"}`, 422, "nickname"},
	}
	for _, tc := range cases {
		res := e.do(http.MethodPost, "/v1/me/vehicles", tc.body, alice...)
		if res.Status != tc.status {
			t.Errorf("%s: %d; want %d (%s)", tc.name, res.Status, tc.status, res.Body)
			continue
		}
		if p := res.Problem(t); tc.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != tc.field) {
			t.Errorf("%s: problem %+v; want it to name %s", tc.name, p, tc.field)
		}
	}
	huge := `{"plate":"CD456EF","country":"DE","nickname":"` + strings.Repeat("x", httpapi.BodyLimit) + `"}`
	if status, ct := overNetwork(t, e, "/v1/me/vehicles", huge, alice...); status != http.StatusRequestEntityTooLarge || ct != httpapi.ProblemContentType {
		t.Errorf("huge body: %d %s; want a 413 problem", status, ct)
	}
	for _, path := range []string{"/v1/me/vehicles/abc", "/v1/me/vehicles/0", "/v1/me/vehicles/1%20OR%201=1"} {
		if res := e.do(http.MethodDelete, path, nil, alice...); res.Status != http.StatusBadRequest {
			t.Errorf("DELETE %s: %d; want 400", path, res.Status)
		}
	}
	if after := vehicleRows(t, e); after != before {
		t.Errorf("bad requests changed the vehicles: %v rows; %v before", after, before)
	}
}
