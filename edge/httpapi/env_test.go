package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/edge/boltstore"
	"github.com/gatehouse-parking/gatehouse/edge/httpapi"
	"github.com/gatehouse-parking/gatehouse/edge/inmem"
	"github.com/gatehouse-parking/gatehouse/edge/plate"
	"github.com/gatehouse-parking/gatehouse/edge/tariff"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	_ httpapi.Garage = (*edge.Garage)(nil)
	_ httpapi.Store  = (*boltstore.Store)(nil)
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// Operator tokens of the test app.
const (
	aliceToken = "tok-alice-0123456789"
	kioskToken = "tok-kiosk-0123456789"
)

// testFacility is a small garage: zone Z of 10 spaces (2 held back) served by an entry
// lane "in" and an exit lane "out", zone EV of 3 sensor-counted spaces, and a rate of
// 2.00 EUR an hour after 15 free minutes.
func testFacility() *edge.Facility {
	dev := func(id string, k edge.DeviceKind) edge.Device { return edge.Device{ID: id, Kind: k, Protocol: "inmem"} }
	return &edge.Facility{
		ID: "test-garage", Name: "Test Garage", Timezone: "UTC", Currency: "EUR",
		Levels: []edge.Level{{ID: "L1"}},
		Zones: []edge.Zone{{ID: "Z", Name: "Main", Level: "L1", Capacity: 10, HeldBack: 2, Rate: "std", CountSource: edge.CountLanes},
			{ID: "EV", Name: "Charging", Level: "L1", Capacity: 3, Rate: "std", CountSource: edge.CountSensors,
				Spots: []edge.Spot{{ID: "EV1", Sensor: "s1"}, {ID: "EV2", Sensor: "s2"}, {ID: "EV3", Sensor: "s3"}}}},
		Lanes: []edge.Lane{
			{ID: "in", Name: "North entry", Direction: edge.Entry, Zone: "Z", ArmingLoop: "in-arm", SafetyLoop: "in-safe", Barrier: "in-bar", Cameras: []string{"in-cam"}, TicketReader: "in-tix", FailMode: edge.FailSecure},
			{ID: "out", Name: "North exit", Direction: edge.Exit, Zone: "Z", ArmingLoop: "out-arm", SafetyLoop: "out-safe", Barrier: "out-bar", Cameras: []string{"out-cam"}, TicketReader: "out-tix", FailMode: edge.FailSecure},
		},
		Devices: []edge.Device{dev("in-arm", edge.KindLoop), dev("in-safe", edge.KindLoop), dev("in-bar", edge.KindBarrier), dev("in-cam", edge.KindCamera), dev("in-tix", edge.KindTicketReader),
			dev("out-arm", edge.KindLoop), dev("out-safe", edge.KindLoop), dev("out-bar", edge.KindBarrier), dev("out-cam", edge.KindCamera), dev("out-tix", edge.KindTicketReader)},
		Tariffs: []tariff.Rate{{ID: "std", Currency: "EUR", FreeTime: tariff.Duration(15 * time.Minute), Increment: tariff.Duration(time.Hour),
			Tiers: []tariff.Tier{{PerIncrement: 200}}, DailyMax: 2000, LostTicket: 2500, Grace: tariff.Duration(15 * time.Minute)}},
		Policies: edge.Policies{AntiPassback: edge.PassbackSoft, PlateConfidence: 0.6, FuzzyPlates: true,
			CredentialWindow: edge.Duration(time.Minute), BarrierTimeout: edge.Duration(3 * time.Second), BarrierRetries: 2,
			PassTimeout: edge.Duration(30 * time.Second), StuckLoopAfter: edge.Duration(5 * time.Minute)},
	}
}

// env is a real garage on a temporary BoltDB file behind a real app. Barriers are
// manual: the test reports arm positions, as the lane tests of package edge do.
type env struct {
	t     testing.TB
	f     *edge.Facility
	g     *edge.Garage
	store *boltstore.Store
	path  string
	bars  map[string]*inmem.Barrier
	reg   *prometheus.Registry
	app   *fiber.App
	logs  *syncBuffer

	mu    sync.Mutex
	now   time.Time
	ready error
}

// envConfig adjusts the app's Config before New; nil keeps the defaults.
type envConfig func(cfg *httpapi.Config)

func newEnv(tb testing.TB, edits ...envConfig) *env {
	tb.Helper()
	e := &env{t: tb, f: testFacility(), now: t0, path: filepath.Join(tb.TempDir(), "garage.db"), logs: &syncBuffer{}}
	st, err := boltstore.Open(e.path, e.f.ID, &boltstore.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	e.store = st
	e.bars = inmem.Barriers(e.f, 0)
	bars := map[string]edge.Barrier{}
	for id, b := range e.bars {
		b.Manual = true
		bars[id] = b
	}
	g, err := edge.Open(edge.Config{Facility: e.f, Store: st, Barriers: bars, Now: e.clock})
	if err != nil {
		tb.Fatal(err)
	}
	for _, b := range e.bars {
		b.Sink = g
	}
	e.g = g
	e.reg = prometheus.NewRegistry()
	cfg := httpapi.Config{
		Garage:         g,
		Store:          st,
		Logger:         slog.New(slog.NewTextHandler(e.logs, nil)),
		OperatorTokens: map[string]string{aliceToken: "alice", kioskToken: "kiosk-out"},
		Registry:       e.reg,
		Ready: func() error {
			e.mu.Lock()
			defer e.mu.Unlock()
			return e.ready
		},
	}
	for _, edit := range edits {
		edit(&cfg)
	}
	e.app = httpapi.New(cfg)
	return e
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	now := e.now
	e.mu.Unlock()
	e.g.Tick(now)
}

func (e *env) send(ev edge.DeviceEvent) {
	ev.At = e.clock()
	e.g.Deliver(ev)
}

func (e *env) loop(dev string, on bool) {
	e.send(edge.DeviceEvent{Device: dev, Kind: edge.LoopChanged, Occupied: on})
}

func (e *env) plate(cam, text string) {
	e.send(edge.DeviceEvent{Device: cam, Kind: edge.PlateRead, Read: plate.Read{Text: text, Confidence: 0.95}})
}

// present puts a vehicle on the lane's arming loop and shows its plate to the camera.
func (e *env) present(lane, plateText string) {
	e.loop(lane+"-arm", true)
	e.plate(lane+"-cam", plateText)
}

// passThrough drives the vehicle on the lane's loops through the opened barrier.
func (e *env) passThrough(lane string) {
	e.t.Helper()
	bar := lane + "-bar"
	if c := e.bars[bar].Commands(); len(c) == 0 || !c[len(c)-1] {
		e.t.Fatalf("lane %s: barrier not raised before the passage (commands %v)", lane, c)
	}
	e.send(edge.DeviceEvent{Device: bar, Kind: edge.ArmPosition, Position: edge.PositionUp})
	e.advance(time.Second)
	e.loop(lane+"-safe", true)
	e.loop(lane+"-arm", false)
	e.advance(time.Second)
	e.loop(lane+"-safe", false)
	e.send(edge.DeviceEvent{Device: bar, Kind: edge.ArmPosition, Position: edge.PositionDown})
	e.sync()
}

// enter drives a walk-in through the entry lane by plate.
func (e *env) enter(plateText string) {
	e.t.Helper()
	e.present("in", plateText)
	e.passThrough("in")
}

func (e *env) sync() {
	e.t.Helper()
	if err := e.g.Sync(); err != nil {
		e.t.Fatal(err)
	}
}

// do sends one request through the app and returns the response and its body.
func (e *env) do(method, path, body string, header ...string) (*http.Response, []byte) {
	e.t.Helper()
	var r io.Reader = http.NoBody
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.app.Test(req, 5000)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, b
}

// get sends a GET, checks for 200 and decodes the JSON body into v.
func (e *env) get(path string, v any, header ...string) {
	e.t.Helper()
	resp, body := e.do("GET", path, "", header...)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET %s = %d %s; want 200", path, resp.StatusCode, body)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			e.t.Fatalf("GET %s: %v in %s", path, err, body)
		}
	}
}

// operator returns the header arguments of do for an operator token.
func operator(token string) []string { return []string{"Authorization", "Bearer " + token} }

// problem decodes a problem response and checks the parts every problem has.
func problem(tb testing.TB, resp *http.Response, body []byte, wantStatus int) httpapi.Problem {
	tb.Helper()
	if resp.StatusCode != wantStatus {
		tb.Fatalf("status = %d %s; want %d", resp.StatusCode, body, wantStatus)
	}
	if ct := resp.Header.Get("Content-Type"); ct != httpapi.ProblemContentType {
		tb.Fatalf("Content-Type = %q; want %q", ct, httpapi.ProblemContentType)
	}
	var p httpapi.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		tb.Fatalf("problem body %s: %v", body, err)
	}
	if p.Status != wantStatus || p.Type == "" || p.Title == "" || p.Detail == "" || p.Instance == "" {
		tb.Fatalf("problem = %+v; want status %d and type, title, detail, instance set", p, wantStatus)
	}
	return p
}

// metric returns the value of one sample of the registry, and whether it exists.
func (e *env) metric(name string, labels ...string) (float64, bool) {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the log lines containing s.
func (b *syncBuffer) lines(s string) []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}
