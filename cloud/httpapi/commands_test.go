package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/httpapi"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	"github.com/gatehouse-parking/gatehouse/edge/natsync"
)

// cmdHub is a hub to garages that records the commands sent and answers them with
// reply, or fails with err.
type cmdHub struct {
	mu    sync.Mutex
	sent  []sentCommand
	reply []byte
	err   error
}

type sentCommand struct {
	facility, verb string
	body           []byte
}

var _ httpapi.Hub = (*cmdHub)(nil)

func (h *cmdHub) Command(ctx context.Context, facility, verb string, body []byte) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sent = append(h.sent, sentCommand{facility, verb, bytes.Clone(body)})
	if h.err != nil {
		return nil, h.err
	}
	if h.reply == nil {
		return []byte(`{"ok":true}`), nil
	}
	return h.reply, nil
}

func (h *cmdHub) PublishDown(ctx context.Context, facility, kind string, version uint64, body []byte) error {
	return nil
}

func (h *cmdHub) Presence(facility string) (bool, time.Time) { return true, time.Time{} }

func (h *cmdHub) commands() []sentCommand {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]sentCommand(nil), h.sent...)
}

// edgeCommand decodes a command body as the garage does (edge/natsync.Command, no
// unknown members), failing the test when the garage would refuse it as malformed.
func edgeCommand(t *testing.T, body []byte) natsync.Command {
	t.Helper()
	var cmd natsync.Command
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cmd); err != nil {
		t.Fatalf("the garage cannot read the command %s: %v", body, err)
	}
	return cmd
}

// auditOf returns the facility's audit entries, oldest first.
func auditOf(t *testing.T, db *postgres.DB, facility string) []cloud.AuditEntry {
	t.Helper()
	es, err := db.AuditLog(context.Background(), postgres.AuditFilter{Facility: facility, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for i, j := 0, len(es)-1; i < j; i, j = i+1, j-1 {
		es[i], es[j] = es[j], es[i]
	}
	return es
}

// TestCommandsReachTheGarage sends both gate commands and checks the garage gets the
// body it reads, and the audit log holds who did what to what, with the outcome.
func TestCommandsReachTheGarage(t *testing.T) {
	hub := &cmdHub{}
	cfg := ourConfig()
	cfg.Hub = hub
	e := newEnv(t, cfg)

	res := e.do(http.MethodPost, "/v1/facilities/lot-a/lanes/in-1/open", `{"reason":"  ticket machine jammed "}`, bearer("operator:lot-a")...)
	if res.Status != http.StatusOK {
		t.Fatalf("open: %d %s", res.Status, res.Body)
	}
	var out httpapi.CommandResult
	res.JSON(t, &out)
	if out != (httpapi.CommandResult{Facility: "lot-a", Command: "open", Target: "lane:lot-a/in-1", Operator: "cloud:operator@example.com"}) {
		t.Errorf("open = %+v", out)
	}
	res = e.do(http.MethodPost, "/v1/facilities/lot-a/zones/L1/count", map[string]any{"occupied": 0, "reason": "recount"}, bearer("facility_manager:lot-a")...)
	if res.Status != http.StatusOK {
		t.Fatalf("count: %d %s", res.Status, res.Body)
	}

	sent := hub.commands()
	if len(sent) != 2 {
		t.Fatalf("hub got %d commands; want 2", len(sent))
	}
	if sent[0].facility != "lot-a" || sent[0].verb != "open" {
		t.Errorf("open went to %s %s; want lot-a open", sent[0].facility, sent[0].verb)
	}
	if cmd := edgeCommand(t, sent[0].body); cmd.Operator != "operator@example.com" || cmd.Lane != "in-1" || cmd.Reason != "ticket machine jammed" || cmd.Occupied != nil {
		t.Errorf("open body = %+v", cmd)
	}
	if sent[1].verb != "reset_count" {
		t.Errorf("count verb = %s; want reset_count", sent[1].verb)
	}
	if cmd := edgeCommand(t, sent[1].body); cmd.Operator != "facility_manager@example.com" || cmd.Zone != "L1" || cmd.Occupied == nil || *cmd.Occupied != 0 || cmd.Reason != "recount" {
		t.Errorf("count body = %+v (occupied %v)", cmd, cmd.Occupied)
	}

	audit := auditOf(t, e.db, "lot-a")
	if len(audit) != 2 {
		t.Fatalf("audit = %+v; want 2 entries", audit)
	}
	a := audit[0]
	if a.Actor != "user:u-operator" || a.Action != "gate.open" || a.Target != "lane:lot-a/in-1" || a.Outcome != cloud.OutcomeOK ||
		a.Detail["reason"] != "ticket machine jammed" || a.RequestID == "" || a.At.IsZero() {
		t.Errorf("open audit = %+v", a)
	}
	a = audit[1]
	if a.Actor != "user:u-facility_manager" || a.Action != "zone.count" || a.Target != "zone:lot-a/L1" || a.Outcome != cloud.OutcomeOK ||
		a.Detail["occupied"] != float64(0) {
		t.Errorf("count audit = %+v", a)
	}
}

// TestCommandsFailures checks each way a command can fail: the status and message the
// operator gets, and the audit entry's outcome.
func TestCommandsFailures(t *testing.T) {
	timeout := &cloud.Error{Code: cloud.EUNAVAILABLE, Message: "no answer", Err: fmt.Errorf("natshub: garage did not answer in time: %w", context.DeadlineExceeded)}
	cases := []struct {
		name    string
		hub     *cmdHub // nil: no hub configured
		status  int
		detail  string
		outcome string
	}{
		{"offline", &cmdHub{err: &cloud.Error{Code: cloud.EUNAVAILABLE, Message: "offline", Err: fmt.Errorf("natshub: garage offline")}},
			503, "the garage is offline; the command was not sent", cloud.OutcomeFailed},
		{"no answer", &cmdHub{err: timeout}, 503, "the garage did not answer; the command may have been applied", cloud.OutcomeFailed},
		{"no hub", nil, 503, "the command was not sent", cloud.OutcomeFailed},
		{"garbage answer", &cmdHub{reply: []byte("\x00\xff")}, 503, "could not be read", cloud.OutcomeFailed},
		{"already open", &cmdHub{reply: []byte(`{"ok":false,"code":"conflict","message":"lane in-1 is already open","error":"lane in-1 is already open"}`)},
			409, "lane in-1 is already open", cloud.OutcomeDenied},
		{"no such lane", &cmdHub{reply: []byte(`{"ok":false,"code":"not_found","message":"no lane \"in-1\""}`)},
			404, `no lane "in-1"`, cloud.OutcomeDenied},
		{"refused", &cmdHub{reply: []byte(`{"ok":false,"code":"invalid","message":"a reason is required"}`)},
			422, "a reason is required", cloud.OutcomeDenied},
		{"garage error", &cmdHub{reply: []byte(`{"ok":false,"code":"internal","message":"internal error"}`)},
			503, "could not carry out", cloud.OutcomeDenied},
	}
	// One database for all: each case commands a facility of its own.
	hub := &cmdHub{}
	cfg := ourConfig()
	cfg.Hub = hub
	withHub := newEnv(t, cfg)
	withoutHub := newEnv(t, ourConfig())
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, fac := withHub, fmt.Sprintf("fail-%d", i)
			if tc.hub == nil {
				e = withoutHub
			} else {
				hub.mu.Lock()
				hub.reply, hub.err = tc.hub.reply, tc.hub.err
				hub.mu.Unlock()
			}
			res := e.do(http.MethodPost, "/v1/facilities/"+fac+"/lanes/in-1/open", `{"reason":"stuck"}`, bearer("operator:"+fac)...)
			if res.Status != tc.status {
				t.Fatalf("status %d; want %d (%s)", res.Status, tc.status, res.Body)
			}
			if p := res.Problem(t); !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("detail %q; want it to say %q", p.Detail, tc.detail)
			}
			audit := auditOf(t, e.db, fac)
			if len(audit) != 1 || audit[0].Outcome != tc.outcome || audit[0].Action != "gate.open" || audit[0].Detail["error"] == nil {
				t.Errorf("audit = %+v; want one gate.open, outcome %s, with the error", audit, tc.outcome)
			}
		})
	}
}

// TestCommandsAccess checks that only staff assigned to the facility may command its
// gates, never API keys, and that refused requests reach no garage.
func TestCommandsAccess(t *testing.T) {
	hub := &cmdHub{}
	cfg := ourConfig()
	cfg.Hub = hub
	e := newEnv(t, cfg)
	cases := []struct {
		name    string
		headers []string
		want    int
	}{
		{"operator of B", bearer("operator:lot-b"), 403},
		{"manager of B", bearer("facility_manager:lot-b"), 403},
		{"driver", bearer("driver"), 403},
		{"key with every scope", []string{httpapi.HeaderAPIKey, "sessions:read,events:read,status:read,gate:write@lot-a"}, 403},
		{"anonymous", nil, 401},
		{"admin", bearer("admin"), 200},
	}
	for _, tc := range cases {
		for path, body := range map[string]string{
			"/v1/facilities/lot-a/lanes/in-1/open": `{"reason":"test"}`,
			"/v1/facilities/lot-a/zones/L1/count":  `{"reason":"test","occupied":3}`,
		} {
			before := len(hub.commands())
			res := e.do(http.MethodPost, path, body, tc.headers...)
			if res.Status != tc.want {
				t.Errorf("%s: POST %s = %d; want %d (%s)", tc.name, path, res.Status, tc.want, res.Body)
			}
			if sent := len(hub.commands()) - before; (sent == 1) != (tc.want == 200) {
				t.Errorf("%s: POST %s sent %d commands", tc.name, path, sent)
			}
		}
	}
}

// TestCommandsBadInput checks that bad bodies get 400, 413 or 422 problems and reach
// neither the garage nor the audit log.
func TestCommandsBadInput(t *testing.T) {
	hub := &cmdHub{}
	cfg := ourConfig()
	cfg.Hub = hub
	e := newEnv(t, cfg)
	op := bearer("operator:lot-a")
	open, count := "/v1/facilities/lot-a/lanes/in-1/open", "/v1/facilities/lot-a/zones/L1/count"
	huge := `{"reason":"` + strings.Repeat("x", httpapi.BodyLimit) + `"}`
	cases := []struct {
		name, path, body string
		status           int
		field            string
	}{
		{"malformed JSON", open, `{"reason":`, 400, ""},
		{"not an object", open, `["reason"]`, 400, ""},
		{"two objects", open, `{"reason":"a"}{"reason":"b"}`, 400, ""},
		{"empty", open, ``, 400, ""},
		{"unknown field", open, `{"reason":"x","operator":"someone else"}`, 400, "operator"},
		{"wrong type", count, `{"reason":"x","occupied":"12"}`, 422, "occupied"},
		{"fraction", count, `{"reason":"x","occupied":1.5}`, 422, "occupied"},
		{"reason not a string", open, `{"reason":42}`, 422, "reason"},
		{"no reason", open, `{"reason":"   "}`, 422, "reason"},
		{"reason too long", open, `{"reason":"` + strings.Repeat("é", 201) + `"}`, 422, "reason"},
		{"control characters", open, `{"reason":"a\u0000b"}`, 422, "reason"},
		{"no count", count, `{"reason":"x"}`, 422, "occupied"},
		{"negative count", count, `{"reason":"x","occupied":-1}`, 422, "occupied"},
		{"bad lane id", "/v1/facilities/lot-a/lanes/in%201'--/open", `{"reason":"x"}`, 400, "lane"},
	}
	for _, tc := range cases {
		res := e.do(http.MethodPost, tc.path, tc.body, op...)
		if res.Status != tc.status {
			t.Errorf("%s: status %d; want %d (%s)", tc.name, res.Status, tc.status, res.Body)
			continue
		}
		p := res.Problem(t)
		if tc.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != tc.field) {
			t.Errorf("%s: problem %+v; want it to name %q", tc.name, p, tc.field)
		}
	}
	// A body over the limit is refused by the server before any handler; app.Test
	// cannot send one, so it goes over a real connection.
	if status, ct := overNetwork(t, e, open, huge, op...); status != http.StatusRequestEntityTooLarge || ct != httpapi.ProblemContentType {
		t.Errorf("huge body: status %d, %s; want 413, a problem", status, ct)
	}
	if n := len(hub.commands()); n != 0 {
		t.Errorf("bad requests sent %d commands to the garage", n)
	}
	if audit := auditOf(t, e.db, "lot-a"); len(audit) != 0 {
		t.Errorf("bad requests were audited: %+v", audit)
	}
}

// overNetwork serves the env's app on a loopback port and POSTs body to path, for the
// requests app.Test cannot make; it returns the status and content type.
func overNetwork(t *testing.T, e *env, path, body string, headers ...string) (int, string) {
	t.Helper()
	res := e.overTCP(http.MethodPost, path, body, headers...)
	return res.Status, res.Header.Get("Content-Type")
}
