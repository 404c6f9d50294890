package modbussim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	mbclient "github.com/goburrow/modbus"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/modbus"
)

func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func dev(id string, kind edge.DeviceKind, address, profile string, opts ...string) edge.Device {
	o := map[string]string{}
	for i := 0; i+1 < len(opts); i += 2 {
		o[opts[i]] = opts[i+1]
	}
	return edge.Device{ID: id, Kind: kind, Protocol: modbus.ProtocolTCP, Address: address, Profile: profile, Options: o}
}

// run starts s until the test ends and waits until it listens.
func run(t *testing.T, s *Sim) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Devices().Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run() = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return within 5s")
		}
	})
	for _, a := range s.Addrs() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", a, 100*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			select {
			case err := <-done:
				t.Fatalf("Run() = %v", err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("simulator not listening on %s: %v", a, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// mbpollLine is one value line of mbpoll's output: "[ref]: \tvalue".
var mbpollLine = regexp.MustCompile(`(?m)^\[(\d+)\]:\s+(-?\d+)`)

// mbpoll runs Debian's mbpoll once against addr, 0-based references, and returns
// the values it read by reference.
func mbpoll(t *testing.T, address string, args ...string) (map[int]int, string, error) {
	t.Helper()
	if _, err := exec.LookPath("mbpoll"); err != nil {
		t.Fatal("mbpoll not found: `make test` installs it (apt-get install mbpoll)")
	}
	host, port, _ := net.SplitHostPort(address)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts, writes := args, []string(nil)
	if i := slices.Index(args, "--"); i >= 0 { // write values go after the host
		opts, writes = args[:i], args[i+1:]
	}
	all := append([]string{"-m", "tcp", "-0", "-1", "-o", "0.5", "-p", port}, opts...)
	all = append(append(all, host), writes...)
	out, err := exec.CommandContext(ctx, "mbpoll", all...).CombinedOutput()
	vals := map[int]int{}
	for _, m := range mbpollLine.FindAllStringSubmatch(string(out), -1) {
		ref, _ := strconv.Atoi(m[1])
		v, _ := strconv.Atoi(m[2])
		vals[ref] = v
	}
	return vals, string(out), err
}

// TestMbpoll reads and writes the simulator with Debian's mbpoll (libmodbus): the
// simulated devices must look like real ones to a third-party master.
func TestMbpoll(t *testing.T) {
	a := freeAddr(t)
	devs := []edge.Device{
		dev("gate", edge.KindBarrier, a, "barrier-generic", "unit", "1", "travel", "500ms"),
		dev("arm", edge.KindLoop, a, "io-module-8di", "unit", "2", "resource", "di3"),
		dev("safe", edge.KindLoop, a, "io-module-8di", "unit", "2", "resource", "di6"),
		dev("ss-0", edge.KindSpotSensor, a, "ultrasonic-spot", "unit", "3", "offset", "0"),
		dev("ss-1", edge.KindSpotSensor, a, "ultrasonic-spot", "unit", "3", "offset", "1"),
		dev("ss-2", edge.KindSpotSensor, a, "ultrasonic-spot", "unit", "3", "offset", "2"),
		dev("mag", edge.KindSpotSensor, a, "magnetic-spot", "unit", "4", "offset", "2"),
		{ID: "cam", Kind: edge.KindCamera, Protocol: "http_push"}, // not ours: ignored
	}
	s, err := New(devs, map[string]string{"ss-2": "P2"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	d := s.Devices()
	d.Loops["arm"].SetOccupied(true)
	d.Spots["ss-1"].SetOccupied(true)
	d.Spots["mag"].SetOccupied(true)

	read := func(t *testing.T, args ...string) map[int]int {
		t.Helper()
		vals, out, err := mbpoll(t, a, args...)
		if err != nil {
			t.Fatalf("mbpoll %v: %v\n%s", args, err, out)
		}
		return vals
	}
	t.Run("discrete inputs of the I/O module", func(t *testing.T) {
		vals := read(t, "-a", "2", "-t", "1", "-r", "0", "-c", "8")
		for i := range 8 {
			want := 0
			if i == 3 {
				want = 1
			}
			if vals[i] != want {
				t.Errorf("di%d = %d; want %d (all: %v)", i, vals[i], want, vals)
			}
		}
	})
	t.Run("ultrasonic distances", func(t *testing.T) {
		vals := read(t, "-a", "3", "-t", "3", "-r", "0", "-c", "3")
		for i, want := range []int{300, 50, 300} {
			if v := vals[i]; v < want*95/100 || v > want*105/100 {
				t.Errorf("distance[%d] = %d; want about %d", i, v, want)
			}
		}
	})
	t.Run("magnetic flag", func(t *testing.T) {
		if vals := read(t, "-a", "4", "-t", "4", "-r", "2", "-c", "1"); vals[2] != 1 {
			t.Errorf("status register = %v; want bit 0 set", vals)
		}
	})
	t.Run("barrier", func(t *testing.T) {
		if vals := read(t, "-a", "1", "-t", "1", "-r", "0", "-c", "3"); vals[0] != 0 || vals[1] != 1 || vals[2] != 0 {
			t.Errorf("end stops = %v; want down", vals)
		}
		_, out, err := mbpoll(t, a, "-a", "1", "-t", "0", "-r", "0", "--", "1")
		if err != nil || !strings.Contains(out, "Written 1 references") {
			t.Fatalf("mbpoll write coil: %v\n%s", err, out)
		}
		if p := d.Barriers["gate"].Position(); p != edge.PositionMoving {
			t.Errorf("Position() after open = %v; want moving", p)
		}
		time.Sleep(800 * time.Millisecond)
		if vals := read(t, "-a", "1", "-t", "1", "-r", "0", "-c", "3"); vals[0] != 1 || vals[1] != 0 {
			t.Errorf("end stops after travel = %v; want up", vals)
		}
		if vals := read(t, "-a", "1", "-t", "0", "-r", "0", "-c", "1"); vals[0] != 1 {
			t.Errorf("command coil = %v; want 1", vals)
		}
	})
	t.Run("unknown unit", func(t *testing.T) {
		_, out, err := mbpoll(t, a, "-a", "9", "-t", "3", "-r", "0", "-c", "1")
		if err == nil {
			t.Errorf("mbpoll unit 9 succeeded:\n%s", out)
		}
	})
	t.Run("faults", func(t *testing.T) {
		f, _ := s.Faulty("arm")
		f.SetOffline(true)
		start := time.Now()
		if _, out, err := mbpoll(t, a, "-a", "2", "-t", "1", "-r", "0", "-c", "1"); err == nil || !strings.Contains(strings.ToLower(out), "timed out") {
			t.Errorf("mbpoll to an offline unit: %v\n%s", err, out)
		}
		if took := time.Since(start); took < 400*time.Millisecond {
			t.Errorf("offline unit failed after %v; want mbpoll's 0.5s timeout", took)
		}
		// The other units of the server still answer.
		read(t, "-a", "3", "-t", "3", "-r", "0", "-c", "1")
		f.SetOffline(false)
		f.SetGarbage(true)
		for range 4 {
			if _, out, err := mbpoll(t, a, "-a", "2", "-t", "1", "-r", "0", "-c", "8"); err == nil {
				t.Errorf("mbpoll read garbage without an error:\n%s", out)
			}
		}
		f.SetGarbage(false)
		read(t, "-a", "2", "-t", "1", "-r", "0", "-c", "8")
	})
}

// client is a goburrow Modbus TCP client for unit.
func client(t *testing.T, address string, unit byte) mbclient.Client {
	t.Helper()
	h := mbclient.NewTCPClientHandler(address)
	h.SlaveId = unit
	h.Timeout = 300 * time.Millisecond
	t.Cleanup(func() { h.Close() })
	return mbclient.NewClient(h)
}

func TestBarrierTravel(t *testing.T) {
	a := freeAddr(t)
	devs := []edge.Device{
		dev("g1", edge.KindBarrier, a, "barrier-generic", "unit", "1", "travel", "300ms"),
		dev("g2", edge.KindBarrier, a, "barrier-register", "unit", "1", "offset", "10", "travel", "0s"),
	}
	s, err := New(devs, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	c := client(t, a, 1)
	g1, g2 := s.Devices().Barriers["g1"], s.Devices().Barriers["g2"]
	inputs := func(addr uint16) string {
		t.Helper()
		b, err := c.ReadDiscreteInputs(addr, 3)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%03b", b[0]&7) // fault, down, up
	}

	t.Run("open, reverse, close", func(t *testing.T) {
		if got := inputs(0); got != "010" || g1.Position() != edge.PositionDown {
			t.Fatalf("start: inputs %s, Position() %v; want down", got, g1.Position())
		}
		if _, err := c.WriteSingleCoil(0, 0xFF00); err != nil {
			t.Fatal(err)
		}
		if got := inputs(0); got != "000" || g1.Position() != edge.PositionMoving {
			t.Errorf("just after open: inputs %s, Position() %v; want moving", got, g1.Position())
		}
		time.Sleep(100 * time.Millisecond)
		if _, err := c.WriteSingleCoil(0, 0xFF00); err != nil { // repeated: changes nothing
			t.Fatal(err)
		}
		waitPos := func(want edge.Position) {
			t.Helper()
			deadline := time.Now().Add(2 * time.Second)
			for g1.Position() != want {
				if time.Now().After(deadline) {
					t.Fatalf("arm not %v within 2s", want)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		waitPos(edge.PositionUp)
		if got := inputs(0); got != "001" {
			t.Errorf("up: inputs %s; want 001", got)
		}
		// Close, then open again half-way: the arm turns round and goes up.
		if _, err := c.WriteSingleCoil(0, 0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		if _, err := c.WriteSingleCoil(0, 0xFF00); err != nil {
			t.Fatal(err)
		}
		if p := g1.Position(); p != edge.PositionMoving {
			t.Errorf("after reversing: Position() %v; want moving", p)
		}
		waitPos(edge.PositionUp)
	})
	t.Run("register command, no travel", func(t *testing.T) {
		if _, err := c.WriteSingleRegister(10, 1); err != nil {
			t.Fatal(err)
		}
		if got := inputs(10); got != "001" || g2.Position() != edge.PositionUp {
			t.Errorf("after open: inputs %s Position() %v; want up at once", got, g2.Position())
		}
		if _, err := c.WriteSingleRegister(10, 7); err != nil { // not a command
			t.Fatal(err)
		}
		if g2.Position() != edge.PositionUp {
			t.Error("an unknown command value moved the arm")
		}
		g2.SetStuck(true)
		c.WriteSingleRegister(10, 2)
		if g2.Position() != edge.PositionUp {
			t.Error("a stuck arm moved")
		}
		g2.SetStuck(false)
		c.WriteSingleRegister(10, 2)
		if got := inputs(10); got != "010" {
			t.Errorf("after close: inputs %s; want down", got)
		}
	})
}

func TestFaulty(t *testing.T) {
	a := freeAddr(t)
	devs := []edge.Device{
		dev("loop", edge.KindLoop, a, "io-module-8di", "unit", "5"),
		dev("spot", edge.KindSpotSensor, a, "ultrasonic-spot", "unit", "5", "offset", "3"),
		dev("other", edge.KindSpotSensor, a, "ultrasonic-spot", "unit", "6"),
	}
	s, err := New(devs, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	f, ok := s.Faulty("loop")
	if !ok {
		t.Fatal(`Faulty("loop") not found`)
	}
	if _, ok := s.Faulty("nope"); ok {
		t.Error(`Faulty("nope") found`)
	}

	t.Run("offline", func(t *testing.T) {
		f.SetOffline(true)
		defer f.SetOffline(false)
		c := client(t, a, 5)
		if _, err := c.ReadInputRegisters(3, 1); err == nil || !isTimeout(err) {
			t.Errorf("read from an offline unit = %v; want a timeout", err)
		}
		if _, err := client(t, a, 6).ReadInputRegisters(0, 1); err != nil {
			t.Errorf("read from another unit of the server = %v", err)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		f.SetGarbage(true)
		defer f.SetGarbage(false)
		var exceptions, malformed, short int
		for i := range 8 {
			c := client(t, a, 5) // a fresh connection each time: garbage may desync a client
			var data []byte
			var err error
			want := 8
			if i%2 == 0 {
				data, err = c.ReadInputRegisters(0, 4)
			} else {
				data, err = c.ReadDiscreteInputs(0, 8)
				want = 1
			}
			var me *mbclient.ModbusError
			switch {
			case errors.As(err, &me):
				exceptions++
			case err != nil:
				malformed++
			case len(data) != want:
				// Short but consistent: it passes the client library; the driver
				// checks the count itself.
				short++
			default:
				t.Errorf("request %d: a good answer from a unit sending garbage", i)
			}
		}
		if exceptions == 0 || malformed == 0 || short == 0 {
			t.Errorf("%d exceptions, %d malformed, %d short answers; want every kind", exceptions, malformed, short)
		}
	})
	t.Run("recovered", func(t *testing.T) {
		if _, err := client(t, a, 5).ReadInputRegisters(3, 1); err != nil {
			t.Errorf("read after the faults = %v", err)
		}
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestGarble(t *testing.T) {
	req := []byte{0, 7, 0, 0, 0, 6, 1, 4, 0, 0, 0, 2}
	resp := []byte{0, 7, 0, 0, 0, 7, 1, 4, 4, 0, 1, 0, 2}
	tests := []struct {
		kind uint32
		want []byte
	}{
		{0, []byte{0, 7, 0, 0, 0, 3, 1, 0x84, 4}},
		{1, []byte{0, 7, 0, 0, 0, 7, 1, 4, 5, 0, 1, 0, 2}},
		{2, []byte{0, 7, 0, 0, 0, 5, 1, 4, 2, 0, 1}},
		{3, []byte{0x5a, 0xa2, 0, 0, 0, 7, 1, 4, 4, 0, 1, 0, 2}},
	}
	for _, tt := range tests {
		if got := garble(tt.kind, req, resp); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("garble(%d) = % x; want % x", tt.kind, got, tt.want)
		}
	}
}

func TestNew(t *testing.T) {
	t.Run("bad device", func(t *testing.T) {
		_, err := New([]edge.Device{dev("x", edge.KindLoop, "127.0.0.1:1", "nope"), dev("y", edge.KindBarrier, "127.0.0.1:1", "io-module-8di")}, nil, nil)
		if err == nil || !strings.Contains(err.Error(), `"x"`) || !strings.Contains(err.Error(), `"y"`) {
			t.Errorf("New() = %v; want both devices' problems", err)
		}
	})
	t.Run("servers by address", func(t *testing.T) {
		s, err := New([]edge.Device{
			dev("a", edge.KindLoop, "127.0.0.1:1502", "io-module-8di"),
			dev("b", edge.KindLoop, "127.0.0.1:1503", "io-module-8di"),
			dev("c", edge.KindLoop, "127.0.0.1:1502", "io-module-8di", "unit", "2"),
		}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(s.Addrs(), ","); got != "127.0.0.1:1502,127.0.0.1:1503" {
			t.Errorf("Addrs() = %s", got)
		}
	})
	t.Run("address in use", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		s, err := New([]edge.Device{dev("a", edge.KindLoop, l.Addr().String(), "io-module-8di")}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Run(context.Background()); err == nil {
			t.Error("Run() on a taken address = nil")
		}
	})
}
