package modbus_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/modbus"
)

// recorder is an edge.Sink that keeps every event.
type recorder struct {
	mu      sync.Mutex
	evs     []edge.DeviceEvent
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

func (r *recorder) Deliver(ev edge.DeviceEvent) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.evs)
}

func (r *recorder) count(pred func(edge.DeviceEvent) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.evs {
		if pred(ev) {
			n++
		}
	}
	return n
}

// waitFor waits for an event at index from or later that matches pred and returns
// the index after it.
func (r *recorder) waitFor(tb testing.TB, from int, timeout time.Duration, what string, pred func(edge.DeviceEvent) bool) int {
	tb.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		for i := from; i < len(r.evs); i++ {
			if pred(r.evs[i]) {
				r.mu.Unlock()
				return i + 1
			}
		}
		r.mu.Unlock()
		select {
		case <-r.changed:
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			for _, ev := range r.evs[min(from, len(r.evs)):] {
				tb.Logf("event: %s %s occupied=%v pos=%v code=%q healthy=%v %s", ev.Device, ev.Kind, ev.Occupied, ev.Position, ev.Code, ev.Healthy, ev.Detail)
			}
			tb.Fatalf("no event %s within %v", what, timeout)
			return 0
		}
	}
}

func is(dev string, kind edge.EventKind) func(edge.DeviceEvent) bool {
	return func(ev edge.DeviceEvent) bool { return ev.Device == dev && ev.Kind == kind }
}

func loopIs(dev string, on bool) func(edge.DeviceEvent) bool {
	return func(ev edge.DeviceEvent) bool { return is(dev, edge.LoopChanged)(ev) && ev.Occupied == on }
}

func spotIs(dev, spot string, on bool) func(edge.DeviceEvent) bool {
	return func(ev edge.DeviceEvent) bool {
		return is(dev, edge.SpotChanged)(ev) && ev.Occupied == on && ev.Code == spot
	}
}

func armIs(dev string, p edge.Position) func(edge.DeviceEvent) bool {
	return func(ev edge.DeviceEvent) bool { return is(dev, edge.ArmPosition)(ev) && ev.Position == p }
}

func healthIs(dev string, ok bool) func(edge.DeviceEvent) bool {
	return func(ev edge.DeviceEvent) bool { return is(dev, edge.DeviceHealth)(ev) && ev.Healthy == ok }
}

// freePort returns a loopback port that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// testLogger logs to the test with GATEHOUSE_TEST_LOG=1 in the environment, else nowhere.
func testLogger(tb testing.TB) *slog.Logger {
	if os.Getenv("GATEHOUSE_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) { w.tb.Log(string(p)); return len(p), nil }

// device builds a facility device.
func device(id string, kind edge.DeviceKind, address, profile string, opts ...string) edge.Device {
	o := map[string]string{}
	for i := 0; i+1 < len(opts); i += 2 {
		o[opts[i]] = opts[i+1]
	}
	return edge.Device{ID: id, Kind: kind, Protocol: modbus.ProtocolTCP, Address: address, Profile: profile, Options: o}
}

// startDriver runs a driver until the test ends.
func startDriver(tb testing.TB, cfg modbus.Config) *modbus.Driver {
	tb.Helper()
	drv, err := modbus.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- drv.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("Run() = %v", err)
			}
		case <-time.After(5 * time.Second):
			tb.Error("Run did not return within 5s of its context ending")
		}
	})
	return drv
}

func statusOf(tb testing.TB, drv *modbus.Driver, id string) edge.DeviceStatus {
	tb.Helper()
	for _, st := range drv.Status() {
		if st.ID == id {
			return st
		}
	}
	tb.Fatalf("Status() has no %s", id)
	return edge.DeviceStatus{}
}

// eventually polls cond until it holds or timeout passes.
func eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
