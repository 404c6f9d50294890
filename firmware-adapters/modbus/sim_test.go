package modbus_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/modbus"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/sim/modbussim"
)

// simServer runs the simulator; stop ends one run, start begins another on the same
// addresses (a restarted device).
type simServer struct {
	*modbussim.Sim
	cancel context.CancelFunc
	done   chan error
}

func startSim(t testing.TB, devs []edge.Device, spots map[string]string) *simServer {
	t.Helper()
	s, err := modbussim.New(devs, spots, nil)
	if err != nil {
		t.Fatal(err)
	}
	ss := &simServer{Sim: s}
	ss.start(t)
	t.Cleanup(func() { ss.stop(t) })
	return ss
}

func (s *simServer) start(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan error, 1)
	go func() { s.done <- s.Run(ctx) }()
	// Run listens at once; make sure before the test talks to it.
	for _, a := range s.Addrs() {
		eventually(t, 5*time.Second, "simulator listening on "+a, func() bool {
			select {
			case err := <-s.done:
				t.Fatalf("simulator Run() = %v", err)
			default:
			}
			c, err := net.DialTimeout("tcp", a, 200*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
	}
}

func (s *simServer) stop(t testing.TB) {
	t.Helper()
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("simulator Run() = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("simulator did not stop within 5s")
	}
}

// TestSimBarriers opens and closes simulated barriers (a coil and a register
// command) and follows their arms by the end-stop inputs.
func TestSimBarriers(t *testing.T) {
	a := addr(freePort(t))
	devs := []edge.Device{
		device("coil-gate", edge.KindBarrier, a, "barrier-generic", "unit", "1", "travel", "300ms", "poll", "20ms"),
		device("reg-gate", edge.KindBarrier, a, "barrier-register", "unit", "2", "offset", "100", "travel", "300ms", "poll", "20ms"),
		device("arm", edge.KindLoop, a, "io-module-8di", "unit", "3", "resource", "di2", "poll", "20ms"),
		device("safe", edge.KindLoop, a, "io-module-8di", "unit", "3", "resource", "di5", "poll", "20ms", "invert", "true"),
		device("ss-0", edge.KindSpotSensor, a, "ultrasonic-spot", "unit", "4", "offset", "0", "poll", "50ms"),
		device("ss-1", edge.KindSpotSensor, a, "ultrasonic-spot", "unit", "4", "offset", "1", "poll", "50ms"),
		device("mag", edge.KindSpotSensor, a, "magnetic-spot", "unit", "5", "poll", "50ms"),
	}
	spots := map[string]string{"ss-0": "A0", "ss-1": "A1", "mag": "M"}
	s := startSim(t, devs, spots)
	simDevs := s.Devices()
	rec := newRecorder()
	drv := startDriver(t, modbus.Config{Devices: devs, Spots: spots, Sink: rec, Logger: testLogger(t)})
	const wait = 5 * time.Second

	for _, id := range []string{"coil-gate", "reg-gate"} {
		rec.waitFor(t, 0, wait, id+" down", armIs(id, edge.PositionDown))
	}
	rec.waitFor(t, 0, wait, "arm clear", loopIs("arm", false))
	rec.waitFor(t, 0, wait, "safe clear", loopIs("safe", false))
	rec.waitFor(t, 0, wait, "A0 free", spotIs("ss-0", "A0", false))

	for _, id := range []string{"coil-gate", "reg-gate"} {
		t.Run(id, func(t *testing.T) {
			b, sb := drv.Barriers()[id], simDevs.Barriers[id]
			ctx := context.Background()
			from := rec.len()
			start := time.Now()
			if err := b.Raise(ctx); err != nil {
				t.Fatalf("Raise() = %v", err)
			}
			from = rec.waitFor(t, from, wait, "moving", armIs(id, edge.PositionMoving))
			from = rec.waitFor(t, from, wait, "up", armIs(id, edge.PositionUp))
			if took := time.Since(start); took < 250*time.Millisecond || took > 2*time.Second {
				t.Errorf("arm up after %v; want about the 300ms travel", took)
			}
			if p := sb.Position(); p != edge.PositionUp {
				t.Errorf("simulated Position() = %v; want up", p)
			}
			if err := b.Lower(ctx); err != nil {
				t.Fatalf("Lower() = %v", err)
			}
			from = rec.waitFor(t, from, wait, "moving", armIs(id, edge.PositionMoving))
			rec.waitFor(t, from, wait, "down", armIs(id, edge.PositionDown))

			// A stuck arm ignores the command: no movement is reported.
			sb.SetStuck(true)
			defer sb.SetStuck(false)
			from = rec.len()
			if err := b.Raise(ctx); err != nil {
				t.Fatalf("Raise() stuck = %v", err)
			}
			time.Sleep(500 * time.Millisecond)
			if n := rec.count(is(id, edge.ArmPosition)) - countBefore(rec, from, is(id, edge.ArmPosition)); n != 0 || sb.Position() != edge.PositionDown {
				t.Errorf("stuck arm: %d position reports, Position() = %v; want none, down", n, sb.Position())
			}
			sb.SetStuck(false)
			if err := b.Lower(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("loops", func(t *testing.T) {
		from := rec.len()
		simDevs.Loops["arm"].SetOccupied(true)
		simDevs.Loops["safe"].SetOccupied(true)
		rec.waitFor(t, from, wait, "arm occupied", loopIs("arm", true))
		rec.waitFor(t, from, wait, "safe occupied", loopIs("safe", true))
		from = rec.len()
		simDevs.Loops["safe"].SetOccupied(false)
		rec.waitFor(t, from, wait, "safe clear", loopIs("safe", false))
	})

	t.Run("spots", func(t *testing.T) {
		from := rec.len()
		simDevs.Spots["ss-1"].SetOccupied(true)
		sp, ok := s.Spot("M")
		if !ok {
			t.Fatal(`Spot("M") not found`)
		}
		sp.SetOccupied(true)
		rec.waitFor(t, from, wait, "A1 occupied", spotIs("ss-1", "A1", true))
		rec.waitFor(t, from, wait, "M occupied", spotIs("mag", "M", true))
		time.Sleep(1500 * time.Millisecond) // the simulated distances jitter every second
		if n := rec.count(is("ss-0", edge.SpotChanged)); n != 1 {
			t.Errorf("ss-0 reported %d times; want once: noise is no change", n)
		}
	})

	for _, st := range drv.Status() {
		if !st.Healthy || st.Counters["errors"] != 0 {
			t.Errorf("Status(%s) = %+v; want healthy, no errors", st.ID, st)
		}
	}
}

func countBefore(rec *recorder, n int, pred func(edge.DeviceEvent) bool) int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	c := 0
	for _, ev := range rec.evs[:n] {
		if pred(ev) {
			c++
		}
	}
	return c
}

// TestSimReconnect restarts the simulator under a running driver: the devices go
// unhealthy, then healthy again once the driver has reconnected.
func TestSimReconnect(t *testing.T) {
	a := addr(freePort(t))
	devs := []edge.Device{
		device("gate", edge.KindBarrier, a, "barrier-generic", "poll", "20ms", "timeout", "200ms"),
		device("loop", edge.KindLoop, a, "io-module-8di", "unit", "2", "poll", "20ms", "timeout", "200ms"),
	}
	s := startSim(t, devs, nil)
	rec := newRecorder()
	drv := startDriver(t, modbus.Config{Devices: devs, Sink: rec, Logger: testLogger(t)})
	const wait = 5 * time.Second
	rec.waitFor(t, 0, wait, "gate down", armIs("gate", edge.PositionDown))

	s.stop(t)
	from := rec.len()
	for _, id := range []string{"gate", "loop"} {
		rec.waitFor(t, from, wait, id+" unhealthy", healthIs(id, false))
	}
	st := statusOf(t, drv, "gate")
	if st.Healthy || !strings.Contains(st.Detail, "failed requests in a row") {
		t.Errorf("Status(gate) = %+v; want unhealthy with the reason", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	if err := drv.Barriers()["gate"].Raise(ctx); err == nil {
		t.Error("Raise() with the controller gone = nil; want an error")
	} else if took := time.Since(start); took > 900*time.Millisecond {
		t.Errorf("Raise() took %v to fail; want it bounded by the device timeout", took)
	}

	s.start(t)
	from = rec.len()
	for _, id := range []string{"gate", "loop"} {
		rec.waitFor(t, from, 10*time.Second, id+" healthy again", healthIs(id, true))
	}
	st = statusOf(t, drv, "gate")
	if !st.Healthy || st.Counters["reconnects"] == 0 {
		t.Errorf("Status(gate) = %+v; want healthy and a reconnect counted", st)
	}
	if err := drv.Barriers()["gate"].Raise(context.Background()); err != nil {
		t.Errorf("Raise() after reconnect = %v", err)
	}
	rec.waitFor(t, from, wait, "gate up", armIs("gate", edge.PositionUp))
}

// TestSimFaults makes one unit silent, then send garbage, while another unit on the
// same connection carries on.
func TestSimFaults(t *testing.T) {
	a := addr(freePort(t))
	devs := []edge.Device{
		device("bad", edge.KindLoop, a, "io-module-8di", "unit", "1", "poll", "20ms", "timeout", "150ms"),
		device("bad-spot", edge.KindSpotSensor, a, "ultrasonic-spot", "unit", "1", "poll", "20ms", "timeout", "150ms"),
		device("good", edge.KindLoop, a, "io-module-8di", "unit", "2", "poll", "20ms", "timeout", "150ms"),
	}
	s := startSim(t, devs, map[string]string{"bad-spot": "B"})
	rec := newRecorder()
	drv := startDriver(t, modbus.Config{Devices: devs, Spots: map[string]string{"bad-spot": "B"}, Sink: rec, Logger: testLogger(t)})
	const wait = 8 * time.Second
	rec.waitFor(t, 0, wait, "bad clear", loopIs("bad", false))
	rec.waitFor(t, 0, wait, "good clear", loopIs("good", false))
	f, ok := s.Faulty("bad")
	if !ok {
		t.Fatal(`Faulty("bad") not found`)
	}
	good := s.Devices().Loops["good"]

	t.Run("offline", func(t *testing.T) {
		from := rec.len()
		f.SetOffline(true)
		rec.waitFor(t, from, wait, "bad unhealthy", healthIs("bad", false))
		rec.waitFor(t, from, wait, "bad-spot unhealthy", healthIs("bad-spot", false))
		good.SetOccupied(true)
		rec.waitFor(t, from, wait, "good still served", loopIs("good", true))
		st := statusOf(t, drv, "bad")
		if st.Counters["timeouts"] < 3 || !strings.Contains(st.Detail, "timeout") {
			t.Errorf("Status(bad) = %+v; want timeouts counted and named", st)
		}
		f.SetOffline(false)
		rec.waitFor(t, from, wait, "bad healthy", healthIs("bad", true))
	})

	t.Run("garbage", func(t *testing.T) {
		from := rec.len()
		before := statusOf(t, drv, "bad").Counters
		f.SetGarbage(true)
		rec.waitFor(t, from, wait, "bad unhealthy", healthIs("bad", false))
		// Every kind of garbage comes by turns; wait for all of them to be counted.
		eventually(t, wait, "malformed and exceptions counted", func() bool {
			c := statusOf(t, drv, "bad").Counters
			return c["malformed"] >= before["malformed"]+3 && c["exceptions"] > before["exceptions"]
		})
		good.SetOccupied(false)
		rec.waitFor(t, from, wait, "good still served", loopIs("good", false))
		f.SetGarbage(false)
		rec.waitFor(t, from, wait, "bad healthy", healthIs("bad", true))
		rec.waitFor(t, from, wait, "bad-spot healthy", healthIs("bad-spot", true))
	})

	if st := statusOf(t, drv, "good"); !st.Healthy || st.Counters["errors"] != 0 {
		t.Errorf("Status(good) = %+v; want healthy and no errors", st)
	}
}

func TestDriverConfig(t *testing.T) {
	t.Run("no sink", func(t *testing.T) {
		if _, err := modbus.New(modbus.Config{}); err == nil {
			t.Error("New() without sink = nil error")
		}
	})
	t.Run("every problem", func(t *testing.T) {
		_, err := modbus.New(modbus.Config{Sink: newRecorder(), Devices: []edge.Device{
			device("a", edge.KindLoop, "h:1", "nope"),
			device("b", edge.KindLoop, "h:1", "io-module-8di", "unit", "x"),
			device("b", edge.KindLoop, "h:1", "io-module-8di"),
			{ID: "c", Kind: edge.KindLoop, Protocol: modbus.ProtocolRTU, Address: "/dev/ttyX", Profile: "io-module-8di", Options: map[string]string{"baud": "9600"}},
			{ID: "d", Kind: edge.KindLoop, Protocol: modbus.ProtocolRTU, Address: "/dev/ttyX", Profile: "io-module-8di"},
		}})
		for _, w := range []string{`device "a"`, `device "b": option unit`, `"b": listed twice`, `device "d": serial settings`} {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("New() = %v\nwant it to contain %q", err, w)
			}
		}
	})
	t.Run("profile dir", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir+"/door.yaml", "name: door-contact\nkind: loop\nresources: [{name: closed, table: coil, address: 4}]\noccupied: {resource: closed, flag: false}\n")
		if _, err := modbus.New(modbus.Config{Sink: newRecorder(), ProfileDir: dir,
			Devices: []edge.Device{device("door", edge.KindLoop, "h:1", "door-contact")}}); err != nil {
			t.Errorf("New() with a profile from ProfileDir = %v", err)
		}
		writeFile(t, dir+"/broken.yaml", "name: x\n")
		if _, err := modbus.New(modbus.Config{Sink: newRecorder(), ProfileDir: dir}); err == nil {
			t.Error("New() with a broken profile = nil error")
		}
	})
	t.Run("not running", func(t *testing.T) {
		drv, err := modbus.New(modbus.Config{Sink: newRecorder(), Devices: []edge.Device{device("g", edge.KindBarrier, "127.0.0.1:1", "barrier-generic")}})
		if err != nil {
			t.Fatal(err)
		}
		if err := drv.Barriers()["g"].Raise(context.Background()); !errors.Is(err, modbus.ErrNotRunning) {
			t.Errorf("Raise() before Run = %v; want ErrNotRunning", err)
		}
		st := drv.Status()
		if len(st) != 1 || st[0].Healthy || st[0].Detail == "" || st[0].Protocol != modbus.ProtocolTCP {
			t.Errorf("Status() before Run = %+v; want one device, not yet healthy", st)
		}
	})
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
