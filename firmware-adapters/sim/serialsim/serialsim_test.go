package serialsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/serial"
)

const wait = 2 * time.Second

func loopDev(id, path, addr, ch string) edge.Device {
	return edge.Device{ID: id, Kind: edge.KindLoop, Protocol: "serial", Address: path,
		Options: map[string]string{"line_address": addr, "channel": ch}}
}

func barrierDev(id, path, addr, travel string) edge.Device {
	return edge.Device{ID: id, Kind: edge.KindBarrier, Protocol: "serial", Address: path,
		Options: map[string]string{"line_address": addr, "travel": travel}}
}

// runSim creates the simulator and runs it until the test ends.
func runSim(tb testing.TB, devices []edge.Device) *Sim {
	tb.Helper()
	s, err := New(devices)
	if err != nil {
		tb.Fatalf("New() = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("Run() = %v", err)
			}
		case <-time.After(3 * time.Second):
			tb.Errorf("Run did not return within 3s")
		}
	})
	return s
}

// edgeEnd is the test standing where the edge stands: on the slave of a sim port.
type edgeEnd struct {
	tb     testing.TB
	f      *os.File
	frames chan serial.Frame
}

func openEdgeEnd(tb testing.TB, path string) *edgeEnd {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		tb.Fatalf("open %s: %v", path, err)
	}
	e := &edgeEnd{tb: tb, f: f, frames: make(chan serial.Frame, 100)}
	go func() {
		rd := serial.NewReader(f)
		for {
			fr, err := rd.Next()
			if err != nil && !serial.IsDefect(err) {
				return
			}
			if err == nil {
				e.frames <- fr
			}
		}
	}()
	tb.Cleanup(func() { f.Close() })
	return e
}

func (e *edgeEnd) send(addr uint8, code string, fields ...string) {
	e.tb.Helper()
	b, err := serial.Frame{Addr: addr, Code: code, Fields: fields}.Append(nil)
	if err != nil {
		e.tb.Fatal(err)
	}
	if _, err := e.f.Write(b); err != nil {
		e.tb.Fatal(err)
	}
}

// expect returns the next frame other than a heartbeat, or fails after timeout;
// with timeout negative it expects none for -timeout.
func (e *edgeEnd) expect(timeout time.Duration) (serial.Frame, bool) {
	e.tb.Helper()
	none := timeout < 0
	if none {
		timeout = -timeout
	}
	deadline := time.After(timeout)
	for {
		select {
		case f := <-e.frames:
			if f.Code == serial.CodeLoopStatus || f.Code == serial.CodeArmStatus {
				continue
			}
			if none {
				e.tb.Fatalf("unexpected frame %v", f)
			}
			return f, true
		case <-deadline:
			if !none {
				e.tb.Fatalf("no frame within %v", timeout)
			}
			return serial.Frame{}, false
		}
	}
}

func TestSimAnswers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "line")
	runSim(t, []edge.Device{loopDev("l1", path, "01", "1"), barrierDev("b1", path, "11", "100ms")})
	e := openEdgeEnd(t, path)

	tests := []struct {
		name   string
		addr   uint8
		code   string
		fields []string
		want   []string // frames, as on the wire without checksum
	}{
		{"open", 0x11, serial.CodeOpen, nil, []string{"$11,ACK,OPEN", "$11,ARM,MOVING", "$11,ARM,UP"}},
		{"open when up", 0x11, serial.CodeOpen, nil, []string{"$11,ACK,OPEN", "$11,ARM,UP"}},
		{"close", 0x11, serial.CodeClose, nil, []string{"$11,ACK,CLOSE", "$11,ARM,MOVING", "$11,ARM,DOWN"}},
		{"status", 0x11, serial.CodeStatusQuery, nil, []string{"$11,ACK,STATUS?"}},
		{"open a detector", 0x01, serial.CodeOpen, nil, []string{"$01,NAK,OPEN,UNSUPPORTED"}},
		{"unknown command", 0x11, "JUMP", nil, []string{"$11,NAK,JUMP,UNKNOWN"}},
		{"fields", 0x11, serial.CodeOpen, []string{"1"}, []string{"$11,NAK,OPEN,SYNTAX"}},
		{"someone else", 0x22, serial.CodeOpen, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.tb = t
			e.send(tt.addr, tt.code, tt.fields...)
			for _, w := range tt.want {
				f, _ := e.expect(wait)
				if got := f.String(); got[:len(got)-3] != w {
					t.Fatalf("answer %q; want %q", got, w)
				}
			}
			e.expect(-300 * time.Millisecond)
		})
	}
	t.Run("bad checksum ignored", func(t *testing.T) {
		e.tb = t
		e.f.Write([]byte("$11,OPEN*00\r\n"))
		e.expect(-300 * time.Millisecond)
	})
}

func TestSimLinks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "line")
	os.MkdirAll(filepath.Dir(path), 0o755)
	os.Symlink("/nonexistent", path) // stale, from a run that crashed
	s, err := New([]edge.Device{loopDev("l1", path, "01", "1")})
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	target, err := os.Readlink(path)
	if err != nil || target != s.Ports()[path].PTY() || !strings.HasPrefix(target, "/dev/pts/") {
		t.Fatalf("link %s -> %q, %v; want the pty %s", path, target, err, s.Ports()[path].PTY())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	cancel()
	<-done
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Run: Lstat(%s) = %v; want the link gone", path, err)
	}

	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := New([]edge.Device{loopDev("l1", file, "01", "1")}); err == nil {
		t.Errorf("New() over a regular file succeeded; want an error")
	}
	if _, err := New([]edge.Device{barrierDev("b", filepath.Join(dir, "x"), "11", "soon")}); err == nil {
		t.Errorf("New() with travel %q succeeded; want an error", "soon")
	}
}

// recorder is an edge.Sink keeping events; next consumes them in order.
type recorder struct {
	mu     sync.Mutex
	evs    []edge.DeviceEvent
	cursor map[string]int // per device: events before it are consumed or passed
	wake   chan struct{}
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
}

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
			tb.Fatalf("no event %s within %v; after the cursor: %+v", what, timeout, r.pending())
		}
	}
}

func (r *recorder) none(tb testing.TB, what string, match func(edge.DeviceEvent) bool) {
	tb.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, ev := range r.evs {
		if i >= r.cursor[ev.Device] && match(ev) {
			tb.Fatalf("unexpected event %s: %+v", what, ev)
		}
	}
}

func health(id string, ok bool) func(edge.DeviceEvent) bool {
	return func(ev edge.DeviceEvent) bool {
		return ev.Device == id && ev.Kind == edge.DeviceHealth && ev.Healthy == ok
	}
}

func loop(id string, occ bool) func(edge.DeviceEvent) bool {
	return func(ev edge.DeviceEvent) bool {
		return ev.Device == id && ev.Kind == edge.LoopChanged && ev.Occupied == occ
	}
}

func arm(id string, p edge.Position) func(edge.DeviceEvent) bool {
	return func(ev edge.DeviceEvent) bool {
		return ev.Device == id && ev.Kind == edge.ArmPosition && ev.Position == p
	}
}

func counters(d *serial.Driver, id string) map[string]uint64 {
	for _, st := range d.Status() {
		if st.ID == id {
			return st.Counters
		}
	}
	return nil
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(b []byte) (int, error) { w.tb.Logf("%s", b); return len(b), nil }

// TestEndToEnd runs the edge's serial driver, opening ports with tarm/serial as in
// production, against the simulator's ptys: the garage-sim.yaml layout of one
// 4-channel detector on one line and two barrier controllers on another.
func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	loops, gates := filepath.Join(dir, "lane2-loops"), filepath.Join(dir, "lane2-barriers")
	devices := []edge.Device{
		loopDev("e2-arm", loops, "01", "1"), loopDev("e2-safe", loops, "01", "2"),
		loopDev("x2-arm", loops, "01", "3"), loopDev("x2-safe", loops, "01", "4"),
		barrierDev("e2-barrier", gates, "11", "200ms"), barrierDev("x2-barrier", gates, "12", "200ms"),
	}
	s := runSim(t, devices)
	simDevs := s.Devices()
	rec := &recorder{wake: make(chan struct{}, 1), cursor: map[string]int{}}
	d, err := serial.New(serial.Config{Devices: devices, Sink: rec,
		Logger: slog.New(slog.NewTextHandler(tbWriter{t}, nil))})
	if err != nil {
		t.Fatalf("serial.New() = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	for _, dev := range devices {
		rec.next(t, 3*time.Second, dev.ID+" healthy", health(dev.ID, true))
	}
	rec.next(t, wait, "x2-safe clear", loop("x2-safe", false))
	rec.next(t, wait, "e2-barrier down", arm("e2-barrier", edge.PositionDown))

	t.Run("loop", func(t *testing.T) {
		simDevs.Loops["e2-arm"].SetOccupied(true)
		rec.next(t, wait, "e2-arm occupied", loop("e2-arm", true))
	})
	t.Run("barrier", func(t *testing.T) {
		if err := d.Barriers()["e2-barrier"].Raise(ctx); err != nil {
			t.Fatalf("Raise() = %v; want nil", err)
		}
		rec.next(t, wait, "moving", arm("e2-barrier", edge.PositionMoving))
		rec.next(t, wait, "up", arm("e2-barrier", edge.PositionUp))
		if p := simDevs.Barriers["e2-barrier"].Position(); p != edge.PositionUp {
			t.Errorf("simulated arm at %v; want up", p)
		}
	})
	t.Run("stuck", func(t *testing.T) {
		simDevs.Barriers["x2-barrier"].SetStuck(true)
		if err := d.Barriers()["x2-barrier"].Raise(ctx); err != nil {
			t.Fatalf("Raise() of a stuck arm = %v; want nil (acknowledged)", err)
		}
		time.Sleep(400 * time.Millisecond)
		rec.none(t, "from the stuck arm", arm("x2-barrier", edge.PositionUp))
		simDevs.Barriers["x2-barrier"].SetStuck(false)
	})
	t.Run("loop fault", func(t *testing.T) {
		s.Loop("x2-arm").SetFault(serial.FaultShort)
		ev := rec.next(t, wait, "x2-arm unhealthy", health("x2-arm", false))
		if !strings.Contains(ev.Detail, "short circuit") {
			t.Errorf("Detail = %q; want short circuit", ev.Detail)
		}
		s.Loop("x2-arm").SetFault(serial.FaultNone)
		rec.next(t, wait, "x2-arm healthy", health("x2-arm", true))
	})
	t.Run("garbage", func(t *testing.T) {
		s.PortOf("e2-safe").SetGarbage(true)
		for i := range 10 {
			simDevs.Loops["e2-safe"].SetOccupied(i%2 == 0)
			rec.next(t, wait, fmt.Sprintf("e2-safe change %d", i), loop("e2-safe", i%2 == 0))
		}
		time.Sleep(1100 * time.Millisecond) // a heartbeat or two through the noise
		s.PortOf("e2-safe").SetGarbage(false)
		rec.none(t, "e2-safe unhealthy", health("e2-safe", false))
		c := counters(d, "e2-safe")
		if c["garbage_bytes"] == 0 || c["bad_checksum"] == 0 {
			t.Errorf("counters = %v; want garbage bytes and bad checksums counted", c)
		}
	})
	t.Run("offline", func(t *testing.T) {
		// One barrier controller loses power while the other on its line goes on, and
		// the loop line goes silent altogether.
		simDevs.Faulty["e2-barrier"].SetOffline(true)
		s.PortOf("e2-arm").SetOffline(true)
		ev := rec.next(t, 5*time.Second, "e2-barrier unhealthy", health("e2-barrier", false))
		if !strings.Contains(ev.Detail, "silent") {
			t.Errorf("Detail = %q; want silent", ev.Detail)
		}
		for _, id := range []string{"e2-arm", "e2-safe", "x2-arm", "x2-safe"} {
			rec.next(t, wait, id+" unhealthy", health(id, false))
		}
		rec.none(t, "x2-barrier unhealthy", health("x2-barrier", false))
		if err := d.Barriers()["e2-barrier"].Lower(ctx); !errors.Is(err, serial.ErrTimeout) {
			t.Errorf("Lower() of an offline controller = %v; want ErrTimeout", err)
		}
		if err := d.Barriers()["x2-barrier"].Lower(ctx); err != nil {
			t.Errorf("Lower() of its neighbour = %v; want nil", err)
		}
		simDevs.Faulty["e2-barrier"].SetOffline(false)
		s.PortOf("e2-arm").SetOffline(false)
		rec.next(t, wait, "e2-barrier healthy", health("e2-barrier", true))
		rec.next(t, wait, "e2-barrier state", arm("e2-barrier", edge.PositionUp))
		rec.next(t, wait, "e2-arm healthy", health("e2-arm", true))
		rec.next(t, wait, "e2-arm state", loop("e2-arm", true))
	})
}
