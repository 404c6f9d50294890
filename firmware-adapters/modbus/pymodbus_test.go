package modbus_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/modbus"
)

// Debian's python3 with its python3-pymodbus; the python3 first on PATH may be
// another one without it.
const python = "/usr/bin/python3"

// pyServer is testdata/pymodbus_server.py running: a Modbus TCP server written with
// another library than ours, whose tables the test sets through a control port.
type pyServer struct {
	addr string
	ctl  *bufio.ReadWriter
}

func startPymodbus(t *testing.T) *pyServer {
	t.Helper()
	if out, err := exec.Command(python, "-c", "import pymodbus").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import pymodbus (%v: %s): `make test` installs python3-pymodbus (apt-get install python3-pymodbus)",
			python, err, strings.TrimSpace(string(out)))
	}
	script, err := filepath.Abs("testdata/pymodbus_server.py")
	if err != nil {
		t.Fatal(err)
	}
	port, ctlPort := freePort(t), freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, python, script, strconv.Itoa(port), strconv.Itoa(ctlPort))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- strings.TrimSpace(line)
	}()
	select {
	case line := <-ready:
		if line != "ready" {
			t.Fatalf("pymodbus server: %q, stderr: %s", line, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("pymodbus server not ready in 15s; stderr: %s", stderr.String())
	}
	c, err := net.DialTimeout("tcp", addr(ctlPort), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &pyServer{addr: addr(port), ctl: bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c))}
}

func (s *pyServer) do(t *testing.T, cmd string) string {
	t.Helper()
	fmt.Fprintln(s.ctl, cmd)
	if err := s.ctl.Flush(); err != nil {
		t.Fatal(err)
	}
	line, err := s.ctl.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	line = strings.TrimSpace(line)
	if strings.HasPrefix(line, "error") {
		t.Fatalf("pymodbus control %q: %s", cmd, line)
	}
	return line
}

// set sets one value: table co, di, hr or ir.
func (s *pyServer) set(t *testing.T, unit int, table string, address, value int) {
	t.Helper()
	s.do(t, fmt.Sprintf("set %d %s %d %d", unit, table, address, value))
}

func (s *pyServer) get(t *testing.T, unit int, table string, address int) int {
	t.Helper()
	n, err := strconv.Atoi(s.do(t, fmt.Sprintf("get %d %s %d", unit, table, address)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPymodbus runs the driver against pymodbus: loops on an I/O module, ultrasonic
// and magnetic spot sensors, and a barrier whose command coil the test reads back.
func TestPymodbus(t *testing.T) {
	srv := startPymodbus(t)
	// Unit 1: an I/O module. Unit 2: a bank of ultrasonic sensors. Unit 3: magnetic
	// sensors. Unit 4: a barrier controller.
	srv.set(t, 2, "ir", 10, 300)
	srv.set(t, 2, "ir", 11, 280)
	srv.set(t, 4, "di", 1, 1) // arm down
	devs := []edge.Device{
		device("arm", edge.KindLoop, srv.addr, "io-module-8di", "unit", "1", "resource", "di3", "poll", "20ms"),
		device("safe", edge.KindLoop, srv.addr, "io-module-8di", "unit", "1", "resource", "di4", "poll", "20ms"),
		device("ss-10", edge.KindSpotSensor, srv.addr, "ultrasonic-spot", "unit", "2", "offset", "10", "poll", "50ms"),
		device("ss-11", edge.KindSpotSensor, srv.addr, "ultrasonic-spot", "unit", "2", "offset", "11", "poll", "50ms"),
		device("mag-5", edge.KindSpotSensor, srv.addr, "magnetic-spot", "unit", "3", "offset", "5", "poll", "50ms"),
		device("gate", edge.KindBarrier, srv.addr, "barrier-generic", "unit", "4", "poll", "20ms"),
	}
	rec := newRecorder()
	drv := startDriver(t, modbus.Config{
		Devices: devs,
		Spots:   map[string]string{"ss-10": "P10", "ss-11": "P11", "mag-5": "M5"},
		Sink:    rec,
		Logger:  testLogger(t),
	})
	const wait = 5 * time.Second

	t.Run("first poll reports the state", func(t *testing.T) {
		for _, w := range []struct {
			what string
			pred func(edge.DeviceEvent) bool
		}{
			{"arm clear", loopIs("arm", false)},
			{"safe clear", loopIs("safe", false)},
			{"P10 free", spotIs("ss-10", "P10", false)},
			{"P11 free", spotIs("ss-11", "P11", false)},
			{"M5 free", spotIs("mag-5", "M5", false)},
			{"gate down", armIs("gate", edge.PositionDown)},
		} {
			rec.waitFor(t, 0, wait, w.what, w.pred)
		}
	})

	t.Run("loops", func(t *testing.T) {
		from := rec.len()
		srv.set(t, 1, "di", 3, 1)
		from = rec.waitFor(t, from, wait, "arm occupied", loopIs("arm", true))
		srv.set(t, 1, "di", 3, 0)
		rec.waitFor(t, from, wait, "arm clear", loopIs("arm", false))
		if n := rec.count(is("safe", edge.LoopChanged)); n != 1 {
			t.Errorf("safe reported %d times; want once (changes only)", n)
		}
	})

	t.Run("spot sensors", func(t *testing.T) {
		from := rec.len()
		srv.set(t, 2, "ir", 11, 45)
		from = rec.waitFor(t, from, wait, "P11 occupied", spotIs("ss-11", "P11", true))
		srv.set(t, 3, "hr", 5, 1) // flag bit 0
		from = rec.waitFor(t, from, wait, "M5 occupied", spotIs("mag-5", "M5", true))
		srv.set(t, 3, "hr", 5, 0x8001) // bit 15: sensor fault
		rec.waitFor(t, from, wait, "mag-5 unhealthy", healthIs("mag-5", false))
		if st := statusOf(t, drv, "mag-5"); st.Healthy || !strings.Contains(st.Detail, "sensor_fault") {
			t.Errorf("Status(mag-5) = %+v; want unhealthy by its fault bit", st)
		}
		srv.set(t, 3, "hr", 5, 0)
		rec.waitFor(t, from, wait, "mag-5 healthy", healthIs("mag-5", true))
		rec.waitFor(t, from, wait, "M5 free", spotIs("mag-5", "M5", false))
		if n := rec.count(is("ss-10", edge.SpotChanged)); n != 1 {
			t.Errorf("ss-10 reported %d times; want once", n)
		}
	})

	t.Run("barrier command coil", func(t *testing.T) {
		gate := drv.Barriers()["gate"]
		if gate == nil {
			t.Fatal("Barriers() has no gate")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := gate.Raise(ctx); err != nil {
			t.Fatalf("Raise() = %v", err)
		}
		if got := srv.get(t, 4, "co", 0); got != 1 {
			t.Errorf("command coil after Raise = %d; want 1", got)
		}
		from := rec.len()
		srv.set(t, 4, "di", 1, 0) // the controller moves the arm: neither end stop
		from = rec.waitFor(t, from, wait, "gate moving", armIs("gate", edge.PositionMoving))
		srv.set(t, 4, "di", 0, 1)
		from = rec.waitFor(t, from, wait, "gate up", armIs("gate", edge.PositionUp))
		srv.set(t, 4, "di", 2, 1)
		rec.waitFor(t, from, wait, "gate fault", armIs("gate", edge.PositionFault))
		if err := gate.Lower(ctx); err != nil {
			t.Fatalf("Lower() = %v", err)
		}
		if got := srv.get(t, 4, "co", 0); got != 0 {
			t.Errorf("command coil after Lower = %d; want 0", got)
		}
	})

	t.Run("status", func(t *testing.T) {
		for _, st := range drv.Status() {
			if st.ID == "mag-5" {
				continue
			}
			if !st.Healthy || st.LastContact.IsZero() || st.Counters["requests"] == 0 || st.Counters["errors"] != 0 {
				t.Errorf("Status(%s) = %+v; want healthy, contacted, requests and no errors", st.ID, st)
			}
		}
	})

	t.Run("unknown unit", func(t *testing.T) {
		// pymodbus answers a unit it does not have with nothing or an exception;
		// either way the device goes unhealthy and nothing crashes.
		rec2 := newRecorder()
		drv2 := startDriver(t, modbus.Config{
			Devices: []edge.Device{device("ghost", edge.KindLoop, srv.addr, "io-module-8di", "unit", "99", "poll", "20ms", "timeout", "100ms")},
			Sink:    rec2,
		})
		rec2.waitFor(t, 0, wait, "ghost unhealthy", healthIs("ghost", false))
		st := statusOf(t, drv2, "ghost")
		if st.Counters["errors"] < 3 {
			t.Errorf("Status(ghost).Counters = %v; want at least 3 errors", st.Counters)
		}
	})
}
