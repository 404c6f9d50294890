package camera

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gofiber/fiber/v2"
)

var update = flag.Bool("update", false, "rewrite testdata/<vendor>/*.golden.json")

// t0 is the fake clock's start: the pushes in testdata were made a moment before.
var t0 = time.Date(2026, 3, 14, 9, 26, 55, 0, time.UTC)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// recSink records what it is given.
type recSink struct {
	mu     sync.Mutex
	events []edge.DeviceEvent
}

func (s *recSink) Deliver(ev edge.DeviceEvent) {
	s.mu.Lock()
	s.events = append(s.events, ev)
	s.mu.Unlock()
}

func (s *recSink) Events() []edge.DeviceEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]edge.DeviceEvent(nil), s.events...)
}

// kinds returns the kinds of the recorded events.
func (s *recSink) count(kind edge.EventKind) int {
	n := 0
	for _, ev := range s.Events() {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

// rig is a receiver under test with its app, sink, clock and the reads it made.
type rig struct {
	r     *Receiver
	app   *fiber.App
	sink  *recSink
	clock *fakeClock
	dir   string

	mu    sync.Mutex
	reads []Read
}

func (g *rig) Reads() []Read {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Read(nil), g.reads...)
}

// testDevices are the cameras of the tests: one per profile, and one with a token.
func testDevices() []edge.Device {
	return []edge.Device{
		{ID: "hik-1", Kind: edge.KindCamera, Protocol: "http_push", Address: "10.20.1.31", Profile: ProfileHikvision, Options: map[string]string{"timezone": "Europe/Amsterdam"}},
		{ID: "axis-1", Kind: edge.KindCamera, Protocol: "http_push", Profile: ProfileAxis, Options: map[string]string{"timezone": "UTC", "silence": "5m"}},
		{ID: "json-1", Kind: edge.KindCamera, Protocol: "http_push", Profile: ProfileJSON},
		{ID: "hik-sec", Kind: edge.KindCamera, Protocol: "http_push", Profile: ProfileHikvision, Options: map[string]string{"token": "s3cret", "invert_direction": "true"}},
	}
}

// newRig returns a receiver over testDevices with a fake clock and a temporary
// image directory; mod may change the config first.
func newRig(tb testing.TB, mod func(*Config)) *rig {
	tb.Helper()
	g := &rig{sink: &recSink{}, clock: &fakeClock{t: t0}, dir: tb.TempDir()}
	cfg := Config{
		Devices:  testDevices(),
		Sink:     g.sink,
		ImageDir: g.dir,
		Now:      g.clock.Now,
		OnRead: func(r Read) {
			g.mu.Lock()
			g.reads = append(g.reads, r)
			g.mu.Unlock()
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { r.Close() })
	g.r, g.app = r, r.App()
	return g
}

// do sends a request through the app in memory.
func (g *rig) do(tb testing.TB, method, path, contentType string, body []byte, header ...string) (int, http.Header, []byte) {
	tb.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := g.app.Test(req, -1)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// fixture returns a testdata push and its content type.
func fixture(tb testing.TB, vendor, name string) ([]byte, string) {
	tb.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", vendor, name+".http"))
	if err != nil {
		tb.Fatal(err)
	}
	ct, err := os.ReadFile(filepath.Join("testdata", vendor, name+".content-type"))
	if err != nil {
		tb.Fatal(err)
	}
	return body, strings.TrimSpace(string(ct))
}

// fixtureUUID is the event id of testdata/hikvision/isapi-namespace.http.
const fixtureUUID = "a0fe72d4-3652-464a-aebd-3f9190010236"

// hikPush returns the isapi-namespace fixture with its UUID replaced by one made of n.
func hikPush(tb testing.TB, n int) ([]byte, string) {
	tb.Helper()
	body, ct := fixture(tb, "hikvision", "isapi-namespace")
	return bytes.Replace(body, []byte(fixtureUUID), []byte(uuidOf(n)), 1), ct
}

func uuidOf(n int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n) }

// problemOf decodes a problem body, failing the test if it is not one.
func problemOf(tb testing.TB, h http.Header, body []byte) Problem {
	tb.Helper()
	if ct := h.Get("Content-Type"); ct != ProblemContentType {
		tb.Errorf("Content-Type = %q; want %q (body %s)", ct, ProblemContentType, body)
	}
	var p Problem
	if err := json.Unmarshal(body, &p); err != nil {
		tb.Fatalf("problem body %q: %v", body, err)
	}
	return p
}

// statusOf returns the status of one device.
func statusOf(tb testing.TB, r *Receiver, id string) edge.DeviceStatus {
	tb.Helper()
	for _, st := range r.Status() {
		if st.ID == id {
			return st
		}
	}
	tb.Fatalf("Status has no %s", id)
	return edge.DeviceStatus{}
}

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

// serve serves app on a loopback listener until the test ends and returns its URL.
func serve(tb testing.TB, app *fiber.App) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { app.Listener(ln); close(done) }()
	tb.Cleanup(func() {
		app.ShutdownWithTimeout(5 * time.Second)
		<-done
	})
	return "http://" + ln.Addr().String()
}

type fiberCtx = fiber.Ctx
