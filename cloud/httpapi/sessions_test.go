package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/httpapi"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// ourAuth is fakeAuth with driver accounts of their own ("driver=alice" is the driver
// alice) and API keys whose scopes may hold colons ("sessions:read,events:read@lot-a").
type ourAuth struct{ fakeAuth }

func (a ourAuth) AuthenticateToken(ctx context.Context, tok string) (*cloud.Principal, error) {
	if name, ok := strings.CutPrefix(tok, "driver="); ok && name != "" {
		return &cloud.Principal{UserID: name, Name: name + "@example.com", Role: cloud.RoleDriver}, nil
	}
	return a.fakeAuth.AuthenticateToken(ctx, tok)
}

func (a ourAuth) AuthenticateKey(ctx context.Context, key string) (*cloud.Principal, error) {
	scopes, facs, ok := strings.Cut(key, "@")
	if !ok {
		return nil, cloud.Errorf(cloud.EUNAUTHORIZED, "the API key is not valid")
	}
	return &cloud.Principal{APIKeyID: "k1", Name: "integrator", Role: cloud.RoleIntegrator,
		Scopes: strings.Split(scopes, ","), Facilities: strings.Split(facs, ",")}, nil
}

// ourConfig is httpapiConfig with ourAuth.
func ourConfig() httpapi.Config { return httpapi.Config{Auth: ourAuth{}} }

// outbox builds one facility's event stream, as a garage's outbox holds it.
type outbox struct {
	facility string
	seq      uint64
	now      time.Time
	out      []*gh.Envelope
}

func newOutbox(facility string, start time.Time) *outbox {
	return &outbox{facility: facility, now: start}
}

func (g *outbox) emit(lane string, payload proto.Message) {
	g.seq++
	env := &gh.Envelope{FacilityId: g.facility, Seq: g.seq,
		EventId:    fmt.Sprintf("%08x-0000-4000-8000-%012x", len(g.facility), g.seq),
		OccurredAt: timestamppb.New(g.now), LaneId: lane}
	env.SetPayload(payload)
	g.out = append(g.out, env)
}

// enter starts a stay; leave ends it. Each moves the clock a minute on first.
func (g *outbox) enter(id, plate string) {
	g.now = g.now.Add(time.Minute)
	g.emit("in-1", &gh.SessionStarted{SessionId: id, ZoneId: "L1", Plate: plate, Right: gh.Right_RIGHT_TRANSIENT, RateId: "std",
		Credential: &gh.Credential{Kind: gh.CredentialKind_CREDENTIAL_KIND_PLATE, Value: plate, Confidence: 0.9}})
}

func (g *outbox) leave(id string, fee int64) {
	g.now = g.now.Add(time.Minute)
	g.emit("out-1", &gh.SessionEnded{SessionId: id, ZoneId: "L1", FeeTotal: fee, Paid: fee, Currency: "EUR", Reason: "exit", DurationSeconds: 60})
}

// ingestEvents stores a stream in the env's database.
func ingestEvents(e *env, events []*gh.Envelope) {
	e.t.Helper()
	res, err := e.db.Ingest(context.Background(), events)
	if err != nil || len(res.Rejected) > 0 {
		e.t.Fatalf("ingest: %v %v", err, res.Err())
	}
}

// walk follows a list route's cursors to the end and returns every item.
func walkPages[T any](e *env, path string, headers ...string) []T {
	e.t.Helper()
	var all []T
	cursor := ""
	for range 1000 {
		p := path
		if cursor != "" {
			sep := "?"
			if u, _ := url.Parse(path); u.RawQuery != "" {
				sep = "&"
			}
			p += sep + "cursor=" + url.QueryEscape(cursor)
		}
		res := e.do(http.MethodGet, p, nil, headers...)
		if res.Status != http.StatusOK {
			e.t.Fatalf("GET %s: status %d: %s", p, res.Status, res.Body)
		}
		var page httpapi.Page[T]
		res.JSON(e.t, &page)
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all
		}
		cursor = page.NextCursor
	}
	e.t.Fatalf("GET %s: pages never end", path)
	return nil
}

func sessionIDs(ss []httpapi.Session) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

// operationsFixture ingests lot-a: 23 cars inside, 17 that left, a device alert and a
// lane status; and lot-b: one car inside.
func operationsFixture(e *env) (a, b *outbox) {
	a = newOutbox("lot-a", time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC))
	for i := range 40 {
		a.enter(fmt.Sprintf("S%03d", i), fmt.Sprintf("AB%03dCD", i))
	}
	for i := range 17 {
		a.leave(fmt.Sprintf("S%03d", i*2), int64(100*i))
	}
	a.emit("in-1", &gh.AlertTriggered{Code: "device.offline", Severity: "critical", Message: "camera offline", DeviceId: "in-1-cam"})
	a.emit("in-1", &gh.LaneStatusChanged{Status: "degraded", Reason: "device.offline"})
	a.emit("", &gh.AlertTriggered{Code: "device.offline", Severity: "warning", Message: "sensor offline", DeviceId: "ev-1"})
	ingestEvents(e, a.out)
	b = newOutbox("lot-b", a.now)
	b.enter("B1", "ZZ999ZZ")
	ingestEvents(e, b.out)
	return a, b
}

// TestSessionsOperatorViews walks lot-a's open sessions, history and events page by
// page and checks each item comes once, in order, with what the garage sent.
func TestSessionsOperatorViews(t *testing.T) {
	e := newEnv(t, ourConfig())
	a, _ := operationsFixture(e)
	op := bearer("operator:lot-a")

	open := walkPages[httpapi.Session](e, "/v1/facilities/lot-a/sessions?limit=7", op...)
	var wantOpen []string
	for i := range 40 {
		if i%2 == 1 || i >= 34 {
			wantOpen = append(wantOpen, fmt.Sprintf("S%03d", i))
		}
	}
	if got := sessionIDs(open); !slices.Equal(got, wantOpen) {
		t.Errorf("open sessions = %v; want %v", got, wantOpen)
	}
	for _, s := range open {
		if s.Facility != "lot-a" || s.ExitedAt != nil || s.Plate == "" || s.EntryLane != "in-1" || s.Right != "transient" {
			t.Errorf("open session %+v", s)
		}
	}

	got := walkPages[httpapi.Session](e, "/v1/facilities/lot-a/sessions?plate=ab-035", op...)
	if ids := sessionIDs(got); !slices.Equal(ids, []string{"S035"}) {
		t.Errorf("?plate=ab-035 = %v; want [S035]", ids)
	}

	history := walkPages[httpapi.Session](e, "/v1/facilities/lot-a/sessions/history?limit=4", op...)
	var wantClosed []string
	for i := 16; i >= 0; i-- {
		wantClosed = append(wantClosed, fmt.Sprintf("S%03d", i*2))
	}
	if ids := sessionIDs(history); !slices.Equal(ids, wantClosed) {
		t.Errorf("history = %v; want %v", ids, wantClosed)
	}
	for _, s := range history {
		if s.ExitedAt == nil || s.ExitLane != "out-1" || s.Currency != "EUR" {
			t.Errorf("closed session %+v", s)
		}
	}
	from, to := history[10].ExitedAt.Format(time.RFC3339Nano), history[3].ExitedAt.Format(time.RFC3339Nano)
	window := walkPages[httpapi.Session](e, "/v1/facilities/lot-a/sessions/history?limit=2&from="+url.QueryEscape(from)+"&to="+url.QueryEscape(to), op...)
	if ids := sessionIDs(window); !slices.Equal(ids, wantClosed[4:11]) {
		t.Errorf("history from %s to %s = %v; want %v", from, to, ids, wantClosed[4:11])
	}

	events := walkPages[httpapi.Event](e, "/v1/facilities/lot-a/events?limit=9", op...)
	if len(events) != len(a.out) {
		t.Fatalf("events = %d; want %d", len(events), len(a.out))
	}
	for i, ev := range events {
		want := a.out[len(a.out)-1-i]
		if ev.Seq != want.Seq || ev.Type != want.Type || ev.Lane != want.LaneId || !ev.OccurredAt.Equal(want.OccurredAt.AsTime()) {
			t.Fatalf("event %d = seq %d %s; want seq %d %s", i, ev.Seq, ev.Type, want.Seq, want.Type)
		}
	}
	fwd := walkPages[httpapi.Event](e, "/v1/facilities/lot-a/events?limit=5&type=session.ended&after_seq=50", op...)
	if len(fwd) != 7 || fwd[0].Seq != 51 {
		t.Fatalf("session.ended after 50: %d events; want 7, seqs 51 to 57", len(fwd))
	}
	var payload struct {
		SessionID string `json:"session_id"`
		FeeTotal  string `json:"fee_total"` // protojson writes int64 as a string
		Reason    string `json:"reason"`
	}
	var last httpapi.Event
	for _, ev := range fwd {
		if ev.Seq <= 50 || ev.Type != "session.ended" || ev.Seq <= last.Seq {
			t.Errorf("forward event seq %d %s after %d", ev.Seq, ev.Type, last.Seq)
		}
		last = ev
	}
	if err := json.Unmarshal(last.Payload, &payload); err != nil || payload.SessionID != "S032" || payload.FeeTotal != "1600" || payload.Reason != "exit" {
		t.Errorf("last session.ended payload = %s (%v); want S032, fee 1600", last.Payload, err)
	}

	var alerts httpapi.Page[httpapi.Alert]
	e.do(http.MethodGet, "/v1/facilities/lot-a/alerts", nil, op...).JSON(t, &alerts)
	if len(alerts.Items) != 2 || alerts.Items[0].Code != "device.offline" {
		t.Errorf("alerts = %+v; want the two device.offline", alerts.Items)
	}
	var lanes httpapi.Lanes
	e.do(http.MethodGet, "/v1/facilities/lot-a/lanes", nil, op...).JSON(t, &lanes)
	if len(lanes.Lanes) != 1 || lanes.Lanes[0].Lane != "in-1" || lanes.Lanes[0].Status != "degraded" ||
		len(lanes.Lanes[0].Devices) != 1 || lanes.Lanes[0].Devices[0].Device != "in-1-cam" || lanes.Lanes[0].Devices[0].Severity != "critical" ||
		len(lanes.OtherDevices) != 1 || lanes.OtherDevices[0].Device != "ev-1" {
		t.Errorf("lanes = %+v", lanes)
	}
}

// TestSessionsAccess checks who may read a facility's operations: its operators and
// managers, admins, and API keys with the scope for it; nobody else.
func TestSessionsAccess(t *testing.T) {
	e := newEnv(t, ourConfig())
	operationsFixture(e)
	paths := []string{"/sessions", "/sessions/history", "/events", "/alerts", "/lanes"}
	scope := map[string]string{"/sessions": "sessions:read", "/sessions/history": "sessions:read", "/events": "events:read",
		"/alerts": "status:read", "/lanes": "status:read"}
	for _, p := range paths {
		cases := []struct {
			name    string
			fac     string
			headers []string
			want    int
		}{
			{"operator of A", "lot-a", bearer("operator:lot-a"), 200},
			{"manager of A and B", "lot-b", bearer("facility_manager:lot-a,lot-b"), 200},
			{"admin", "lot-b", bearer("admin"), 200},
			{"operator of A on B", "lot-b", bearer("operator:lot-a"), 403},
			{"manager of B on A", "lot-a", bearer("facility_manager:lot-b"), 403},
			{"driver", "lot-a", bearer("driver"), 403},
			{"key with scope", "lot-a", []string{httpapi.HeaderAPIKey, scope[p] + "@lot-a"}, 200},
			{"key with scope, other facility", "lot-b", []string{httpapi.HeaderAPIKey, scope[p] + "@lot-a"}, 403},
			{"key without scope", "lot-a", []string{httpapi.HeaderAPIKey, "availability:read,status:write@lot-a"}, 403},
			{"anonymous", "lot-a", nil, 401},
		}
		for _, tc := range cases {
			res := e.do(http.MethodGet, "/v1/facilities/"+tc.fac+p, nil, tc.headers...)
			if res.Status != tc.want {
				t.Errorf("%s: GET %s%s = %d; want %d (%s)", tc.name, tc.fac, p, res.Status, tc.want, res.Body)
			}
			if tc.want != 200 {
				res.Problem(t)
			}
		}
	}
	// What B holds never shows through A.
	for _, s := range walkPages[httpapi.Session](e, "/v1/facilities/lot-a/sessions", bearer("admin")...) {
		if s.Facility != "lot-a" {
			t.Errorf("lot-a's sessions hold %s of %s", s.ID, s.Facility)
		}
	}
}

// TestSessionsBadQueries checks that bad query parameters get 400 problems naming
// them.
func TestSessionsBadQueries(t *testing.T) {
	e := newEnv(t, ourConfig())
	op := bearer("operator:lot-a")
	for _, tc := range []struct{ path, field string }{
		{"/sessions?limit=0", "limit"},
		{"/sessions?limit=abc", "limit"},
		{"/sessions?cursor=bm9wZQ", "cursor"},
		{"/sessions?plate=" + url.QueryEscape("'; DROP TABLE sessions;--"), "plate"},
		{"/sessions/history?from=yesterday", "from"},
		{"/sessions/history?from=2026-03-02T10:00:00Z&to=2026-03-02T09:00:00Z", "to"},
		{"/events?after_seq=-1", "after_seq"},
		{"/events?type=" + url.QueryEscape("x' OR 1=1"), "type"},
		{"/events?cursor=eyJhIjoiMTIzIn0", "cursor"}, // {"a":"123"}: no direction
	} {
		res := e.do(http.MethodGet, "/v1/facilities/lot-a"+tc.path, nil, op...)
		if res.Status != http.StatusBadRequest {
			t.Errorf("GET %s = %d; want 400 (%s)", tc.path, res.Status, res.Body)
			continue
		}
		if p := res.Problem(t); len(p.Errors) != 1 || p.Errors[0].Field != tc.field {
			t.Errorf("GET %s: problem %+v; want it to name %s", tc.path, p, tc.field)
		}
	}
}
