package serial

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// recorder is an edge.Sink that keeps every event; tests consume them in order.
type recorder struct {
	mu     sync.Mutex
	evs    []edge.DeviceEvent
	cursor map[string]int // per device: events before it are consumed or passed
	wake   chan struct{}
	// onDeliver, if set, runs inside Deliver, as the garage's lane logic does.
	onDeliver func(edge.DeviceEvent)
}

func newRecorder() *recorder {
	return &recorder{wake: make(chan struct{}, 1), cursor: map[string]int{}}
}

// pending returns the events not yet consumed or passed.
func (r *recorder) pending() []edge.DeviceEvent {
	var out []edge.DeviceEvent
	for i, ev := range r.evs {
		if i >= r.cursor[ev.Device] {
			out = append(out, ev)
		}
	}
	return out
}

func (r *recorder) Deliver(ev edge.DeviceEvent) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	if r.onDeliver != nil {
		r.onDeliver(ev)
	}
}

// next returns the first event after its device's cursor that matches, and moves that
// cursor past it; it fails the test after timeout. Events of one device keep their
// order; events of different devices (ports) interleave as they will.
func (r *recorder) next(tb testing.TB, timeout time.Duration, what string, match func(edge.DeviceEvent) bool) edge.DeviceEvent {
	tb.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		for i, ev := range r.evs {
			if i >= r.cursor[ev.Device] && match(ev) {
				r.cursor[ev.Device] = i + 1
				r.mu.Unlock()
				return ev
			}
		}
		r.mu.Unlock()
		select {
		case <-r.wake:
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			tb.Fatalf("no event %s within %v; events after the cursor: %v", what, timeout, describe(r.pending()))
		}
	}
}

// none fails the test if an event after its device's cursor matches.
func (r *recorder) none(tb testing.TB, what string, match func(edge.DeviceEvent) bool) {
	tb.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, ev := range r.evs {
		if i >= r.cursor[ev.Device] && match(ev) {
			tb.Fatalf("unexpected event %s: %v", what, describe([]edge.DeviceEvent{ev}))
		}
	}
}

func describe(evs []edge.DeviceEvent) string {
	s := ""
	for _, ev := range evs {
		switch ev.Kind {
		case edge.LoopChanged:
			s += fmt.Sprintf("[%s loop %v] ", ev.Device, ev.Occupied)
		case edge.ArmPosition:
			s += fmt.Sprintf("[%s arm %v] ", ev.Device, ev.Position)
		case edge.DeviceHealth:
			s += fmt.Sprintf("[%s healthy=%v %q] ", ev.Device, ev.Healthy, ev.Detail)
		default:
			s += fmt.Sprintf("[%s %v] ", ev.Device, ev.Kind)
		}
	}
	return s
}

func isHealth(id string, healthy bool) func(edge.DeviceEvent) bool {
	return func(ev edge.DeviceEvent) bool {
		return ev.Device == id && ev.Kind == edge.DeviceHealth && ev.Healthy == healthy
	}
}

func isLoop(id string, occupied bool) func(edge.DeviceEvent) bool {
	return func(ev edge.DeviceEvent) bool {
		return ev.Device == id && ev.Kind == edge.LoopChanged && ev.Occupied == occupied
	}
}

func isArm(id string, p edge.Position) func(edge.DeviceEvent) bool {
	return func(ev edge.DeviceEvent) bool {
		return ev.Device == id && ev.Kind == edge.ArmPosition && ev.Position == p
	}
}

func anyOf(id string) func(edge.DeviceEvent) bool {
	return func(ev edge.DeviceEvent) bool { return ev.Device == id }
}

// peer is the controllers' end of a line: it sends frames and collects the commands
// the driver writes.
type peer struct {
	tb   testing.TB
	rw   io.ReadWriteCloser
	wmu  sync.Mutex
	cmds chan Frame
}

func newPeer(tb testing.TB, rw io.ReadWriteCloser) *peer {
	p := &peer{tb: tb, rw: rw, cmds: make(chan Frame, 100)}
	go func() {
		rd := NewReader(rw)
		for {
			f, err := rd.Next()
			if err != nil && !IsDefect(err) {
				return
			}
			if err == nil {
				p.cmds <- f
			}
		}
	}()
	tb.Cleanup(func() { rw.Close() })
	return p
}

// send writes raw bytes.
func (p *peer) send(s string) {
	p.tb.Helper()
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if _, err := io.WriteString(p.rw, s); err != nil {
		// A line that vanished on purpose; a real failure shows as missing events.
		p.tb.Logf("peer write: %v", err)
	}
}

// frame writes one frame made of an address, a code and fields.
func (p *peer) frame(addr uint8, code string, fields ...string) {
	p.tb.Helper()
	b, err := Frame{Addr: addr, Code: code, Fields: fields}.Append(nil)
	if err != nil {
		p.tb.Fatal(err)
	}
	p.send(string(b))
}

// command returns the next command the driver wrote.
func (p *peer) command(timeout time.Duration) Frame {
	p.tb.Helper()
	select {
	case f := <-p.cmds:
		return f
	case <-time.After(timeout):
		p.tb.Fatalf("no command from the driver within %v", timeout)
		return Frame{}
	}
}

// heartbeat sends fn every interval until stop is called or the test ends.
func (p *peer) heartbeat(interval time.Duration, fn func()) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	var once sync.Once
	stop = func() {
		once.Do(func() { close(done) })
		<-exited
	}
	go func() {
		defer close(exited)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			fn()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	p.tb.Cleanup(stop)
	return stop
}

// memLine is a serial line in memory: every Open hands the driver one end of a
// net.Pipe and the test the other (on conns). While fail is set, Open fails.
type memLine struct {
	mu    sync.Mutex
	fail  error
	opens int
	conns chan net.Conn
}

func newMemLine() *memLine { return &memLine{conns: make(chan net.Conn, 10)} }

func (l *memLine) open(path string, baud int) (io.ReadWriteCloser, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.opens++
	if l.fail != nil {
		return nil, l.fail
	}
	a, b := net.Pipe()
	l.conns <- b
	return a, nil
}

func (l *memLine) setFail(err error) {
	l.mu.Lock()
	l.fail = err
	l.mu.Unlock()
}

// accept returns the test's end of the driver's next connection.
func (l *memLine) accept(tb testing.TB, timeout time.Duration) *peer {
	tb.Helper()
	select {
	case c := <-l.conns:
		return newPeer(tb, c)
	case <-time.After(timeout):
		tb.Fatalf("the driver did not open the line within %v", timeout)
		return nil
	}
}

// start runs d until the test ends and checks that Run returns promptly then.
func start(tb testing.TB, d *Driver) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("Run() = %v; want nil", err)
			}
		case <-time.After(3 * time.Second):
			tb.Errorf("Run did not return within 3s of its context ending")
		}
	})
}

// testLogger logs through tb, so a failing test shows what the driver said.
func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(b []byte) (int, error) {
	w.tb.Helper()
	w.tb.Logf("%s", b)
	return len(b), nil
}

func statusOf(tb testing.TB, d *Driver, id string) edge.DeviceStatus {
	tb.Helper()
	for _, st := range d.Status() {
		if st.ID == id {
			return st
		}
	}
	tb.Fatalf("Status() has no device %s", id)
	return edge.DeviceStatus{}
}

var errNoPort = errors.New("no such port")
