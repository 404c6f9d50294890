package httpapi_test

import (
	"encoding/json"
	"fmt"
	"github.com/gofiber/fiber/v2"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/edge/httpapi"
	bolt "go.etcd.io/bbolt"
)

func TestOccupancy(t *testing.T) {
	e := newEnv(t)
	e.enter("XY123")
	e.enter("XY456")
	var got httpapi.OccupancyResponse
	e.get("/v1/occupancy", &got)
	if got.FacilityID != "test-garage" || len(got.Zones) != 2 || got.At.IsZero() {
		t.Fatalf("occupancy = %+v; want 2 zones of test-garage with a time", got)
	}
	want := edge.ZoneView{ID: "Z", Name: "Main", Level: "L1", Capacity: 10, HeldBack: 2, Occupied: 2, Available: 8, AvailableWalkIn: 6}
	if got.Zones[0] != want {
		t.Errorf("zone Z = %+v; want %+v", got.Zones[0], want)
	}
	if wantTotal := (httpapi.Total{Capacity: 13, Occupied: 2, Available: 11}); got.Total != wantTotal {
		t.Errorf("total = %+v; want %+v", got.Total, wantTotal)
	}
}

func TestLanes(t *testing.T) {
	e := newEnv(t)
	var all httpapi.LanesResponse
	e.get("/v1/lanes", &all)
	if len(all.Lanes) != 2 || all.Lanes[0].ID != "in" || all.Lanes[1].ID != "out" {
		t.Fatalf("lanes = %+v; want in and out", all.Lanes)
	}

	e.present("in", "XY123")
	var in edge.LaneView
	e.get("/v1/lanes/in", &in)
	if in.ID != "in" || in.Direction != edge.Entry || in.Decision == nil || !in.Decision.Allowed {
		t.Fatalf("lane in = %+v; want an allowed entry decision", in)
	}

	resp, body := e.do("GET", "/v1/lanes/nope", "")
	p := problem(t, resp, body, http.StatusNotFound)
	if p.Instance != "/v1/lanes/nope" || !strings.Contains(p.Detail, "nope") {
		t.Errorf("problem = %+v; want the path as instance and the lane named", p)
	}
}

func TestAlerts(t *testing.T) {
	e := newEnv(t)
	var got httpapi.AlertsResponse
	e.get("/v1/alerts", &got)
	if got.Alerts == nil || len(got.Alerts) != 0 {
		t.Fatalf("alerts of a quiet garage = %#v; want an empty list", got.Alerts)
	}
	// A loop occupied for longer than StuckLoopAfter is a lasting alert, and takes the
	// lane out of service.
	e.loop("in-arm", true)
	for range 7 {
		e.advance(time.Minute)
	}
	e.sync()
	e.get("/v1/alerts", &got)
	if len(got.Alerts) != 1 || got.Alerts[0].Code != edge.AlertLoopStuck || got.Alerts[0].Lane != "in" {
		t.Fatalf("alerts = %+v; want one %s on lane in", got.Alerts, edge.AlertLoopStuck)
	}
	var in edge.LaneView
	e.get("/v1/lanes/in", &in)
	if in.Status != "degraded" {
		t.Fatalf("lane in = %+v; want degraded", in)
	}
	if v, ok := e.metric("gatehouse_lane_degraded", "lane", "in"); !ok || v != 1 {
		t.Errorf("gatehouse_lane_degraded{lane=in} = %v; want 1", v)
	}
	_, body := e.do("GET", "/kiosk/in", "")
	if !strings.Contains(string(body), `<body class="closed"`) {
		t.Errorf("kiosk of a degraded lane does not show it closed")
	}
}

// TestSessions drives a car in and out, paying at the exit lane's kiosk, and follows
// its session from the open list to the closed one.
func TestSessions(t *testing.T) {
	e := newEnv(t)
	e.enter("XY123")
	var open httpapi.SessionsResponse
	e.get("/v1/sessions?open=true", &open)
	if !open.Open || len(open.Sessions) != 1 || open.Sessions[0].Plate != "XY123" {
		t.Fatalf("open sessions = %+v; want XY123", open)
	}
	e.get("/v1/sessions", &open) // open is the default
	if len(open.Sessions) != 1 {
		t.Fatalf("default sessions = %+v; want the open one", open)
	}
	id := open.Sessions[0].ID

	e.advance(2 * time.Hour)
	e.present("out", "XY123")
	var out edge.LaneView
	e.get("/v1/lanes/out", &out)
	d := out.Decision
	if d == nil || d.Allowed || d.FeeDue <= 0 || d.Currency != "EUR" {
		t.Fatalf("exit decision = %+v; want a fee due in EUR", d)
	}
	// The kiosk's view shows the fee but not who owes it.
	_, raw := e.do("GET", "/v1/lanes/out/display", "")
	var disp httpapi.Display
	if err := json.Unmarshal(raw, &disp); err != nil || disp.Decision == nil || disp.Decision.FeeDue != d.FeeDue {
		t.Fatalf("display = %s (%v); want the fee %d", raw, err, d.FeeDue)
	}
	if strings.Contains(string(raw), "XY123") || strings.Contains(string(raw), id) {
		t.Fatalf("display %s shows the plate or session id", raw)
	}
	resp, body := e.do("POST", "/v1/lanes/out/pay", fmt.Sprintf(`{"amount": %d, "method": "kiosk_card", "reference": "auth 4711"}`, d.FeeDue), operator(kioskToken)...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("pay at lane = %d %s; want 200", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Decision == nil || !out.Decision.Allowed {
		t.Fatalf("lane after paying = %s (%v); want an allowed decision", body, err)
	}
	e.passThrough("out")

	e.get("/v1/sessions?open=true", &open)
	if len(open.Sessions) != 0 {
		t.Fatalf("open sessions after exit = %+v; want none", open.Sessions)
	}
	var closed httpapi.SessionsResponse
	e.get("/v1/sessions?open=false&limit=10", &closed)
	if closed.Open || len(closed.Sessions) != 1 {
		t.Fatalf("closed sessions = %+v; want one", closed)
	}
	s := closed.Sessions[0]
	if s.ID != id || s.Paid != d.FeeDue || s.ExitLane != "out" || s.Exited.IsZero() {
		t.Errorf("closed session = %+v; want %s paid %d, out by lane out", s, id, d.FeeDue)
	}
}

func TestClosedSessionsNewestFirst(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"AA1", "BB2", "CC3"} {
		e.enter(p)
	}
	for _, p := range []string{"AA1", "BB2", "CC3"} {
		e.advance(time.Minute) // within the free time
		e.present("out", p)
		e.passThrough("out")
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"open=false", []string{"CC3", "BB2", "AA1"}},
		{"open=false&limit=2", []string{"CC3", "BB2"}},
		{"open=false&limit=5000", []string{"CC3", "BB2", "AA1"}}, // clamped to MaxLimit
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			var got httpapi.SessionsResponse
			e.get("/v1/sessions?"+tt.query, &got)
			var plates []string
			for _, s := range got.Sessions {
				plates = append(plates, s.Plate)
			}
			if strings.Join(plates, ",") != strings.Join(tt.want, ",") {
				t.Errorf("sessions?%s = %v; want %v", tt.query, plates, tt.want)
			}
		})
	}
}

func TestPaySession(t *testing.T) {
	e := newEnv(t)
	e.enter("XY123")
	id := e.g.OpenSessions()[0].ID
	resp, body := e.do("POST", "/v1/sessions/"+id+"/payments", `{"amount": 400, "method": "app", "reference": "order-9"}`, operator(aliceToken)...)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("pay session = %d %s; want 201", resp.StatusCode, body)
	}
	var s edge.Session
	if err := json.Unmarshal(body, &s); err != nil || s.ID != id || s.Paid != 400 {
		t.Fatalf("session after payment = %s (%v); want %s paid 400", body, err, id)
	}
	resp, body = e.do("POST", "/v1/sessions/nope/payments", `{"amount": 400, "method": "app"}`, operator(aliceToken)...)
	problem(t, resp, body, http.StatusNotFound)
}

func TestResetCount(t *testing.T) {
	e := newEnv(t)
	resp, body := e.do("POST", "/v1/zones/Z/count", `{"occupied": 7, "reason": "physical count at 09:00"}`, operator(aliceToken)...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reset = %d %s; want 200", resp.StatusCode, body)
	}
	var z edge.ZoneView
	if err := json.Unmarshal(body, &z); err != nil || z.ID != "Z" || z.Occupied != 7 {
		t.Fatalf("zone after reset = %s (%v); want Z with 7", body, err)
	}
	ev := lastEvent(t, e, "occupancy.reset")
	r := ev["occupancy_reset"].(map[string]any)
	if r["operator"] != "alice" || r["reason"] != "physical count at 09:00" || r["occupied"] != float64(7) {
		t.Errorf("occupancy.reset payload = %v; want alice, the reason and 7", r)
	}

	resp, body = e.do("POST", "/v1/zones/Z/count", `{"occupied": 11, "reason": "count"}`, operator(aliceToken)...)
	problem(t, resp, body, http.StatusUnprocessableEntity) // over capacity: the garage says so
	resp, body = e.do("POST", "/v1/zones/nope/count", `{"occupied": 1, "reason": "count"}`, operator(aliceToken)...)
	problem(t, resp, body, http.StatusNotFound)
}

// lastEvent returns the newest event of type typ from /v1/events, as JSON.
func lastEvent(tb testing.TB, e *env, typ string) map[string]any {
	tb.Helper()
	e.sync()
	var r struct {
		Events []map[string]any `json:"events"`
	}
	e.get("/v1/events?limit=1000", &r)
	for i := len(r.Events) - 1; i >= 0; i-- {
		if r.Events[i]["type"] == typ {
			return r.Events[i]
		}
	}
	tb.Fatalf("no %s event in %v", typ, r.Events)
	return nil
}

func TestOpenLaneAuth(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name      string
		header    []string
		challenge string
	}{
		{"no token", nil, `Bearer realm="gatehouse-edge"`},
		{"wrong token", operator("tok-mallory"), `Bearer realm="gatehouse-edge", error="invalid_token"`},
		{"empty bearer", []string{"Authorization", "Bearer "}, `Bearer realm="gatehouse-edge", error="invalid_request"`},
		{"basic scheme", []string{"Authorization", "Basic YWxpY2U6eA=="}, `Bearer realm="gatehouse-edge", error="invalid_request"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.do("POST", "/v1/lanes/in/open", `{"reason": "driver has no ticket"}`, tt.header...)
			problem(t, resp, body, http.StatusUnauthorized)
			if got := resp.Header.Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate = %q; want %q", got, tt.challenge)
			}
		})
	}
	if cmds := e.bars["in-bar"].Commands(); len(cmds) != 0 {
		t.Fatalf("barrier commands after refused requests = %v; want none", cmds)
	}

	resp, body := e.do("POST", "/v1/lanes/in/open", `{"reason": "  driver has no ticket "}`, operator(aliceToken)...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("open lane = %d %s; want 200", resp.StatusCode, body)
	}
	var v edge.LaneView
	if err := json.Unmarshal(body, &v); err != nil || v.ID != "in" || v.State != "opening" {
		t.Fatalf("lane after open = %s (%v); want in opening", body, err)
	}
	if cmds := e.bars["in-bar"].Commands(); len(cmds) != 1 || !cmds[0] {
		t.Fatalf("barrier commands = %v; want one raise", cmds)
	}
	ev := lastEvent(t, e, "gate.manual_open")
	m := ev["gate_manual_open"].(map[string]any)
	if m["operator"] != "alice" || m["reason"] != "driver has no ticket" || ev["lane_id"] != "in" {
		t.Errorf("gate.manual_open = %v; want alice's reason on lane in", ev)
	}

	resp, body = e.do("POST", "/v1/lanes/in/open", `{"reason": "again"}`, operator(aliceToken)...)
	problem(t, resp, body, http.StatusConflict) // already open
}

func TestOperatorRoutesNeedToken(t *testing.T) {
	e := newEnv(t)
	for _, r := range []struct{ method, path string }{
		{"POST", "/v1/lanes/in/open"},
		{"POST", "/v1/lanes/out/pay"},
		{"POST", "/v1/sessions/x/payments"},
		{"POST", "/v1/zones/Z/count"},
		{"GET", "/v1/backup"},
	} {
		t.Run(r.path, func(t *testing.T) {
			resp, body := e.do(r.method, r.path, `{}`)
			problem(t, resp, body, http.StatusUnauthorized)
		})
	}
}

func TestNoTokensConfigured(t *testing.T) {
	e := newEnv(t, func(cfg *httpapi.Config) { cfg.OperatorTokens = map[string]string{"": "nobody"} })
	resp, body := e.do("POST", "/v1/lanes/in/open", `{"reason": "x"}`, "Authorization", "Bearer ")
	problem(t, resp, body, http.StatusUnauthorized)
}

func TestValidation(t *testing.T) {
	e := newEnv(t)
	op := operator(aliceToken)
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		status int
		field  string // named in errors, when not ""
	}{
		{"missing reason", "POST", "/v1/lanes/in/open", `{}`, 422, "reason"},
		{"blank reason", "POST", "/v1/lanes/in/open", `{"reason": "   "}`, 422, "reason"},
		{"null body", "POST", "/v1/lanes/in/open", `null`, 422, "reason"},
		{"long reason", "POST", "/v1/lanes/in/open", `{"reason": "` + strings.Repeat("x", 501) + `"}`, 422, "reason"},
		{"malformed JSON", "POST", "/v1/lanes/in/open", `{"reason": `, 400, ""},
		{"syntax error", "POST", "/v1/lanes/in/open", `{"reason" "x"}`, 400, ""},
		{"empty body", "POST", "/v1/lanes/in/open", ``, 400, ""},
		{"not an object", "POST", "/v1/lanes/in/open", `["reason"]`, 400, ""},
		{"trailing data", "POST", "/v1/lanes/in/open", `{"reason": "x"} {}`, 400, ""},
		{"unknown field", "POST", "/v1/lanes/in/open", `{"reason": "x", "force": true}`, 400, "force"},
		{"wrong type", "POST", "/v1/lanes/in/open", `{"reason": 42}`, 422, "reason"},
		{"unknown lane", "POST", "/v1/lanes/nope/open", `{"reason": "x"}`, 404, ""},
		{"negative amount", "POST", "/v1/lanes/out/pay", `{"amount": -100, "method": "cash"}`, 422, "amount"},
		{"zero amount", "POST", "/v1/lanes/out/pay", `{"amount": 0, "method": "cash"}`, 422, "amount"},
		{"missing amount", "POST", "/v1/lanes/out/pay", `{"method": "cash"}`, 422, "amount"},
		{"fractional amount", "POST", "/v1/lanes/out/pay", `{"amount": 1.5, "method": "cash"}`, 422, "amount"},
		{"huge amount", "POST", "/v1/lanes/out/pay", `{"amount": 1e30, "method": "cash"}`, 422, "amount"},
		{"string amount", "POST", "/v1/lanes/out/pay", `{"amount": "400", "method": "cash"}`, 422, "amount"},
		{"bad method", "POST", "/v1/lanes/out/pay", `{"amount": 400, "method": "bitcoin"}`, 422, "method"},
		{"app at a lane", "POST", "/v1/lanes/out/pay", `{"amount": 400, "method": "app"}`, 422, "method"},
		{"long reference", "POST", "/v1/sessions/x/payments", `{"amount": 400, "method": "app", "reference": "` + strings.Repeat("r", 201) + `"}`, 422, "reference"},
		{"nothing to pay", "POST", "/v1/lanes/out/pay", `{"amount": 400, "method": "cash"}`, 409, ""},
		{"unknown lane pay", "POST", "/v1/lanes/nope/pay", `{"amount": 400, "method": "cash"}`, 404, ""},
		{"negative count", "POST", "/v1/zones/Z/count", `{"occupied": -1, "reason": "count"}`, 422, "occupied"},
		{"missing count", "POST", "/v1/zones/Z/count", `{"reason": "count"}`, 422, "occupied"},
		{"count without reason", "POST", "/v1/zones/Z/count", `{"occupied": 1}`, 422, "reason"},
		{"bad limit", "GET", "/v1/events?limit=abc", ``, 400, "limit"},
		{"zero limit", "GET", "/v1/events?limit=0", ``, 400, "limit"},
		{"negative after", "GET", "/v1/events?after=-1", ``, 400, "after"},
		{"bad open", "GET", "/v1/sessions?open=maybe", ``, 400, "open"},
		{"bad closed limit", "GET", "/v1/sessions?open=false&limit=-5", ``, 400, "limit"},
		{"unknown route", "GET", "/v1/nope", ``, 404, ""},
		{"unknown kiosk lane", "GET", "/kiosk/nope", ``, 404, ""},
		{"wrong method", "DELETE", "/v1/lanes", ``, 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.do(tt.method, tt.path, tt.body, op...)
			p := problem(t, resp, body, tt.status)
			if tt.field == "" {
				return
			}
			for _, f := range p.Errors {
				if f.Field == tt.field && f.Message != "" {
					return
				}
			}
			t.Errorf("errors = %+v; want field %q named", p.Errors, tt.field)
		})
	}
}

func TestPayLessThanDue(t *testing.T) {
	e := newEnv(t)
	e.enter("XY123")
	e.advance(2 * time.Hour)
	e.present("out", "XY123")
	resp, body := e.do("POST", "/v1/lanes/out/pay", `{"amount": 1, "method": "cash"}`, operator(kioskToken)...)
	p := problem(t, resp, body, http.StatusUnprocessableEntity)
	if !strings.Contains(p.Detail, "less than the fee due") {
		t.Errorf("detail = %q; want the garage's reason", p.Detail)
	}
}

func TestEventsPagination(t *testing.T) {
	e := newEnv(t)
	e.enter("XY123")
	e.sync()
	last := e.g.Seq()
	if last < 4 {
		t.Fatalf("seq after an entry = %d; want several events", last)
	}
	type page struct {
		Events    []map[string]any `json:"events"`
		NextAfter uint64           `json:"next_after"`
	}
	tests := []struct {
		query     string
		wantFirst uint64 // 0: no events
		wantN     int
		wantNext  uint64
	}{
		{"", 1, int(last), last},
		{"limit=2", 1, 2, 2},
		{"after=2&limit=2", 3, 2, 4},
		{fmt.Sprintf("after=%d", last-1), last, 1, last},
		{fmt.Sprintf("after=%d", last), 0, 0, last},
		{"after=1000000&limit=1000", 0, 0, 1000000},
		{"limit=100000", 1, int(last), last}, // clamped to MaxLimit
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			var p page
			e.get("/v1/events?"+tt.query, &p)
			if len(p.Events) != tt.wantN || p.NextAfter != tt.wantNext {
				t.Fatalf("events?%s = %d events, next_after %d; want %d, %d", tt.query, len(p.Events), p.NextAfter, tt.wantN, tt.wantNext)
			}
			for i, ev := range p.Events {
				// protojson writes uint64 as a string.
				if want := fmt.Sprint(tt.wantFirst + uint64(i)); ev["seq"] != want {
					t.Errorf("event %d seq = %v; want %s", i, ev["seq"], want)
				}
				typ, _ := ev["type"].(string)
				if _, ok := ev[strings.ReplaceAll(typ, ".", "_")]; !ok || ev["facility_id"] != "test-garage" {
					t.Errorf("event %v: want facility_id and the payload under its oneof field name", ev)
				}
			}
		})
	}
	// Walking the pages with next_after visits every event once.
	var seen []string
	for after := uint64(0); ; {
		var p page
		e.get(fmt.Sprintf("/v1/events?after=%d&limit=3", after), &p)
		if len(p.Events) == 0 {
			break
		}
		for _, ev := range p.Events {
			seen = append(seen, ev["seq"].(string))
		}
		after = p.NextAfter
	}
	if len(seen) != int(last) || seen[0] != "1" || seen[len(seen)-1] != fmt.Sprint(last) {
		t.Errorf("pages visited %v; want 1..%d", seen, last)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	e.enter("XY123")
	e.do("GET", "/v1/lanes/nope", "") // one bad request
	resp, body := e.do("GET", "/metrics", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics = %d; want 200", resp.StatusCode)
	}
	text := string(body)
	for _, want := range []string{
		`gatehouse_zone_occupied{zone="Z"} 1`,
		`gatehouse_zone_occupied{zone="EV"} 0`,
		`gatehouse_zone_capacity{zone="Z"} 10`,
		`gatehouse_lane_degraded{lane="in"} 0`,
		`gatehouse_passages_total 1`,
		`gatehouse_decisions_total 1`,
		`gatehouse_denials_total 0`,
		`gatehouse_http_bad_requests_total 1`,
		`gatehouse_http_request_duration_seconds_count{code="404",method="GET",route="/v1/lanes/:id"} 1`,
		"gatehouse_events_written_total ",
		"gatehouse_device_events_total ",
		"gatehouse_alerts_total ",
		"gatehouse_barrier_errors_total 0",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if v, _ := e.metric("gatehouse_events_written_total"); v != float64(e.g.Seq()) {
		t.Errorf("events written = %v; want %d", v, e.g.Seq())
	}
}

func TestBadRequestsCountedAndLogged(t *testing.T) {
	e := newEnv(t)
	e.get("/v1/lanes", nil)
	e.do("POST", "/v1/lanes/in/open", `{"reason": 1}`, operator(aliceToken)...)
	e.do("GET", "/v1/nope", "")
	if v, _ := e.metric("gatehouse_http_bad_requests_total"); v != 2 {
		t.Errorf("bad requests = %v; want 2", v)
	}
	if lines := e.logs.lines("bad request"); len(lines) != 2 {
		t.Errorf("bad request log lines = %q; want 2", lines)
	}
	if v, ok := e.metric("gatehouse_http_request_duration_seconds", "route", "unmatched", "code", "404"); !ok || v != 1 {
		t.Errorf("unmatched request observations = %v; want 1", v)
	}
}

// failingStore fails as a broken disk does, with a message that must not reach clients.
type failingStore struct{}

func (failingStore) ClosedSessions(int) ([][]byte, error) {
	return nil, fmt.Errorf("read /var/lib/gatehouse/secret.db: input/output error")
}

func (failingStore) Backup(io.Writer) (int64, error) {
	return 0, fmt.Errorf("read /var/lib/gatehouse/secret.db: input/output error")
}

func TestInternalErrorNotLeaked(t *testing.T) {
	e := newEnv(t, func(cfg *httpapi.Config) { cfg.Store = failingStore{} })
	for _, r := range []struct {
		path   string
		header []string
	}{
		{"/v1/sessions?open=false", nil},
		{"/v1/backup", operator(aliceToken)},
	} {
		t.Run(r.path, func(t *testing.T) {
			resp, body := e.do("GET", r.path, "", r.header...)
			p := problem(t, resp, body, http.StatusInternalServerError)
			if strings.Contains(string(body), "secret") || p.RequestID == "" {
				t.Errorf("problem = %s; want no internal text and a request id", body)
			}
			if lines := e.logs.lines(p.RequestID); len(lines) == 0 || !strings.Contains(strings.Join(lines, "\n"), "secret.db") {
				t.Errorf("log for %s = %q; want the internal error", p.RequestID, lines)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, in string
		keep     bool
	}{
		{"none", "", false},
		{"sane", "edge-req_42.a:b", true},
		{"spaces", "id with spaces", false},
		{"newline", "abc\x01def", false},
		{"too long", strings.Repeat("a", 65), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.in != "" {
				hdr = []string{"X-Request-Id", tt.in}
			}
			resp, _ := e.do("GET", "/healthz", "", hdr...)
			got := resp.Header.Get("X-Request-Id")
			switch {
			case tt.keep && got != tt.in:
				t.Errorf("X-Request-Id = %q; want %q kept", got, tt.in)
			case !tt.keep && (got == "" || got == tt.in):
				t.Errorf("X-Request-Id = %q; want a fresh id", got)
			}
		})
	}
	resp, body := e.do("GET", "/v1/nope", "", "X-Request-Id", "trace-1")
	if p := problem(t, resp, body, http.StatusNotFound); p.RequestID != "trace-1" {
		t.Errorf("problem request_id = %q; want trace-1", p.RequestID)
	}
}

func TestHealth(t *testing.T) {
	e := newEnv(t)
	resp, body := e.do("GET", "/healthz", "")
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		t.Fatalf("healthz = %d %q; want 200 ok", resp.StatusCode, body)
	}
	resp, body = e.do("GET", "/readyz", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz = %d %s; want 200", resp.StatusCode, body)
	}
	e.mu.Lock()
	e.ready = fmt.Errorf("nats leaf link down: dial tcp 10.0.0.9:7422: refused")
	e.mu.Unlock()
	resp, body = e.do("GET", "/readyz", "")
	p := problem(t, resp, body, http.StatusServiceUnavailable)
	if strings.Contains(string(body), "10.0.0.9") || p.Detail != "not ready" {
		t.Errorf("readyz problem = %s; want \"not ready\" without the cause", body)
	}
	if len(e.logs.lines("10.0.0.9")) == 0 {
		t.Errorf("log = %s; want the cause of not being ready", e.logs.String())
	}
}

func TestBackup(t *testing.T) {
	e := newEnv(t)
	e.enter("XY123")
	e.sync()
	resp, body := e.do("GET", "/v1/backup", "", operator(aliceToken)...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("backup = %d %s; want 200", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("Content-Type = %q; want application/octet-stream", ct)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="gatehouse-test-garage-`) {
		t.Errorf("Content-Disposition = %q; want an attachment named after the garage", cd)
	}
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("open backup: %v", err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		out := tx.Bucket([]byte("outbox"))
		if out == nil {
			return fmt.Errorf("no outbox bucket")
		}
		if n := out.Stats().KeyN; n != int(e.g.Seq()) {
			return fmt.Errorf("outbox holds %d events; want %d", n, e.g.Seq())
		}
		if tx.Bucket([]byte(edge.BucketSessions)) == nil {
			return fmt.Errorf("no sessions bucket")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestKiosk(t *testing.T) {
	e := newEnv(t)
	resp, body := e.do("GET", "/kiosk/in", "")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("kiosk = %d %s; want 200 HTML", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	page := string(body)
	for _, want := range []string{"North entry", "Welcome", `data-url="/v1/lanes/in/display"`, `data-currency="EUR"`, "Lane closed", `lang="en"`} {
		if !strings.Contains(page, want) {
			t.Errorf("kiosk page lacks %q", want)
		}
	}
	for _, banned := range []string{"http://", "https://", "<link", " src="} {
		if strings.Contains(page, banned) {
			t.Errorf("kiosk page has %q: it must be self-contained", banned)
		}
	}
	csp := resp.Header.Get("Content-Security-Policy")
	nonce, _, _ := strings.Cut(strings.TrimPrefix(csp[strings.Index(csp, "'nonce-"):], "'nonce-"), "'")
	if nonce == "" || !strings.Contains(page, `<script nonce="`+nonce+`">`) {
		t.Errorf("CSP %q does not match the page's script nonce", csp)
	}

	_, body = e.do("GET", "/kiosk/out", "")
	if !strings.Contains(string(body), "Goodbye") {
		t.Errorf("exit kiosk lacks Goodbye")
	}

	for _, path := range []string{"/kiosk/", "/kiosk"} {
		resp, body = e.do("GET", path, "")
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `href="/kiosk/in"`) || !strings.Contains(string(body), `href="/kiosk/out"`) {
			t.Errorf("GET %s = %d; want 200 listing both lanes", path, resp.StatusCode)
		}
	}
}

func TestDevices(t *testing.T) {
	seen := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	e := newEnv(t, func(cfg *httpapi.Config) {
		cfg.Devices = func() []edge.DeviceStatus {
			return []edge.DeviceStatus{
				{ID: "in-bar", Kind: "barrier", Protocol: "modbus_tcp", Healthy: false, Detail: "timeout", Counters: map[string]uint64{"timeouts": 3}},
				{ID: "cam-1", Kind: "camera", Protocol: "http_push", Healthy: true, LastContact: seen},
			}
		}
	})
	var got httpapi.DevicesResponse
	e.get("/v1/devices", &got)
	if len(got.Devices) != 2 || got.Devices[0].ID != "cam-1" || got.Devices[1].Healthy || got.Devices[1].Counters["timeouts"] != 3 || !got.Devices[0].LastContact.Equal(seen) {
		t.Fatalf("devices = %+v; want cam-1 then an unhealthy in-bar with its counters", got.Devices)
	}
	// With no drivers the list is empty, not null.
	_, body := newEnv(t).do("GET", "/v1/devices", "")
	if !strings.Contains(string(body), `"devices":[]`) {
		t.Fatalf("devices without drivers = %s", body)
	}
}

// TestPlateReads: the plate reader's reads, newest first, the unsure ones with
// their reason and confidence 0, one camera's with ?device=.
func TestPlateReads(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	e := newEnv(t, func(cfg *httpapi.Config) {
		cfg.PlateReads = func() []edge.ReaderRead {
			return []edge.ReaderRead{
				{Device: "e1-cam", EventID: "a", Plate: "AB123CD", Confidence: 0.93, Frames: 4, Votes: 4, At: at,
					Images: []string{"2026-03-02/e1-cam/a-1.jpg", "2026-03-02/e1-cam/a-2.jpg"}},
				{Device: "x1-cam", EventID: "b", Plate: "KL467RT", Unsure: true, Reason: "frames disagree", Frames: 4, Votes: 2, At: at.Add(time.Minute)},
				{Device: "e1-cam", EventID: "c", Plate: "VX39NF", Confidence: 0.81, Frames: 3, Votes: 3, At: at.Add(2 * time.Minute)},
			}
		}
	})
	var got httpapi.PlateReadsResponse
	e.get("/v1/lpr/reads", &got)
	var ids []string
	for _, r := range got.Reads {
		ids = append(ids, r.EventID)
	}
	if strings.Join(ids, ",") != "c,b,a" || !got.Reads[1].Unsure || got.Reads[1].Reason != "frames disagree" ||
		got.Reads[2].Confidence != 0.93 || len(got.Reads[2].Images) != 2 {
		t.Fatalf("reads = %+v; want c, b (unsure, with its reason), a (0.93, two images)", got.Reads)
	}
	got = httpapi.PlateReadsResponse{}
	e.get("/v1/lpr/reads?device=e1-cam", &got)
	if len(got.Reads) != 2 || got.Reads[0].EventID != "c" || got.Reads[1].EventID != "a" {
		t.Fatalf("reads of e1-cam = %+v; want c, a", got.Reads)
	}
	// With no plate reader the list is empty, not null.
	_, body := newEnv(t).do("GET", "/v1/lpr/reads", "")
	if !strings.Contains(string(body), `"reads":[]`) {
		t.Fatalf("reads without a plate reader = %s", body)
	}
}

func TestMountedRoutesTakeLargeBodies(t *testing.T) {
	e := newEnv(t, func(cfg *httpapi.Config) {
		cfg.Mount = func(app *fiber.App) {
			app.Post("/camera/json/:device", func(c *fiber.Ctx) error { return c.SendString(fmt.Sprint(len(c.Body()))) })
		}
	})
	big := strings.Repeat("x", 1<<20)
	resp, body := e.do("POST", "/camera/json/cam", big)
	if resp.StatusCode != 200 || string(body) != fmt.Sprint(len(big)) {
		t.Fatalf("mounted route with 1 MiB = %d %s", resp.StatusCode, body)
	}
	resp, _ = e.do("POST", "/v1/lanes/in/open", `{"reason":"`+big+`"}`, operator(aliceToken)...)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("API route with 1 MiB = %d; want 413", resp.StatusCode)
	}
}

// TestPayByCardRoute: the card route needs an operator token, refuses a body with
// fields, and answers 409 at a lane whose kiosk has no card terminal.
func TestPayByCardRoute(t *testing.T) {
	e := newEnv(t)
	e.enter("XY123")
	e.advance(2 * time.Hour)
	e.present("out", "XY123")
	resp, body := e.do("POST", "/v1/lanes/out/card", "")
	problem(t, resp, body, http.StatusUnauthorized)
	resp, body = e.do("POST", "/v1/lanes/out/card", `{"amount": 1}`, operator(kioskToken)...)
	problem(t, resp, body, http.StatusBadRequest)
	resp, body = e.do("POST", "/v1/lanes/out/card", "", operator(kioskToken)...)
	problem(t, resp, body, http.StatusConflict)
	if !strings.Contains(string(body), "no card terminal") {
		t.Errorf("409 body %s; want it to say the lane has no card terminal", body)
	}
}
