package serial

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
)

const wait = 2 * time.Second

func loopDev(id, path, addr, ch string) edge.Device {
	return edge.Device{ID: id, Kind: edge.KindLoop, Protocol: "serial", Address: path,
		Options: map[string]string{"line_address": addr, "channel": ch}}
}

func barrierDev(id, path, addr string) edge.Device {
	return edge.Device{ID: id, Kind: edge.KindBarrier, Protocol: "serial", Address: path,
		Options: map[string]string{"line_address": addr}}
}

// memDriver builds a driver over a memLine and starts it.
func memDriver(t *testing.T, cfg Config) (*Driver, *memLine, *recorder) {
	t.Helper()
	line := newMemLine()
	rec := newRecorder()
	cfg.Sink, cfg.Open, cfg.Logger = rec, line.open, testLogger(t)
	d, err := New(cfg)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	start(t, d)
	return d, line, rec
}

func TestNew(t *testing.T) {
	sink := newRecorder()
	tests := []struct {
		name    string
		devices []edge.Device
		wantErr string
	}{
		{"detector and barriers on one line", []edge.Device{
			loopDev("a", "/p", "01", "1"), loopDev("b", "/p", "01", "2"),
			barrierDev("x", "/p", "11"), barrierDev("y", "/p", "12"),
		}, ""},
		{"combined controller", []edge.Device{loopDev("a", "/p", "01", "1"), barrierDev("x", "/p", "01")}, ""},
		{"other protocols ignored", []edge.Device{{ID: "m", Kind: edge.KindBarrier, Protocol: "modbus_tcp"}}, ""},
		{"same channel twice", []edge.Device{loopDev("a", "/p", "01", "1"), loopDev("b", "/p", "01", "1")}, "already loop a"},
		{"same channel on two ports", []edge.Device{loopDev("a", "/p", "01", "1"), loopDev("b", "/q", "01", "1")}, ""},
		{"two barriers at one address", []edge.Device{barrierDev("x", "/p", "11"), barrierDev("y", "/p", "11")}, "already barrier x"},
		{"duplicate id", []edge.Device{loopDev("a", "/p", "01", "1"), loopDev("a", "/p", "01", "2")}, "configured twice"},
		{"baud mismatch", []edge.Device{loopDev("a", "/p", "01", "1"),
			{ID: "b", Kind: edge.KindLoop, Protocol: "serial", Address: "/p", Options: map[string]string{"baud": "19200", "channel": "2"}}}, "baud"},
		{"bad option", []edge.Device{{ID: "a", Kind: edge.KindLoop, Protocol: "serial", Address: "/p", Options: map[string]string{"bud": "9600"}}}, "unknown option"},
		{"ticket reader", []edge.Device{{ID: "t", Kind: edge.KindTicketReader, Protocol: "serial", Address: "/p"}}, "loops and barriers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{Devices: tt.devices, Sink: sink})
			if tt.wantErr == "" && err != nil {
				t.Fatalf("New() = %v; want nil", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("New() = %v; want an error about %q", err, tt.wantErr)
			}
		})
	}
	if _, err := New(Config{}); err == nil {
		t.Errorf("New() without a sink succeeded; want an error")
	}
}

func TestLoopReports(t *testing.T) {
	d, line, rec := memDriver(t, Config{Devices: []edge.Device{
		loopDev("arm", "/p", "01", "1"), loopDev("safe", "/p", "01", "2"),
	}})
	p := line.accept(t, wait)

	// The first heartbeat brings the devices up and delivers their current state.
	p.frame(1, CodeLoopStatus, "2", "01", "00")
	rec.next(t, wait, "arm healthy", isHealth("arm", true))
	rec.next(t, wait, "safe healthy", isHealth("safe", true))
	rec.next(t, wait, "arm clear", isLoop("arm", false))
	rec.next(t, wait, "safe occupied", isLoop("safe", true))

	// Changes come as LP; repeats and unchanged heartbeats are not news.
	p.frame(1, CodeLoop, "1", "1")
	rec.next(t, wait, "arm occupied", isLoop("arm", true))
	p.frame(1, CodeLoop, "1", "1")
	p.frame(1, CodeLoopStatus, "2", "11", "00")
	p.frame(1, CodeLoop, "2", "0")
	rec.next(t, wait, "safe clear", isLoop("safe", false))
	rec.none(t, "before safe clear", anyOf("arm"))

	// A channel the config does not use is fine.
	p.frame(1, CodeLoop, "3", "1")

	// A loop fault makes that loop unhealthy; it recovers with its state.
	p.frame(1, CodeLoopStatus, "2", "10", "0O")
	ev := rec.next(t, wait, "safe unhealthy", isHealth("safe", false))
	if !strings.Contains(ev.Detail, "open circuit") {
		t.Errorf("Detail = %q; want it to say open circuit", ev.Detail)
	}
	p.frame(1, CodeLoopStatus, "2", "10", "00")
	rec.next(t, wait, "safe healthy again", isHealth("safe", true))
	rec.next(t, wait, "safe state again", isLoop("safe", false))
	rec.none(t, "for arm", anyOf("arm"))

	st := statusOf(t, d, "arm")
	if !st.Healthy || st.Protocol != "serial" || st.Address != "/p" || st.Kind != "loop" || st.LastContact.IsZero() {
		t.Errorf("Status(arm) = %+v; want healthy serial loop on /p with a last contact", st)
	}
	if st.Counters["lines"] != 8 {
		t.Errorf("lines = %d; want 8", st.Counters["lines"])
	}
}

func TestLoopChannelNotFitted(t *testing.T) {
	_, line, rec := memDriver(t, Config{Devices: []edge.Device{loopDev("l4", "/p", "01", "4")}})
	p := line.accept(t, wait)
	p.frame(1, CodeLoopStatus, "2", "00", "00")
	ev := rec.next(t, wait, "l4 unhealthy", isHealth("l4", false))
	if !strings.Contains(ev.Detail, "not fitted") {
		t.Errorf("Detail = %q; want it to say the channel is not fitted", ev.Detail)
	}
}

// answer reads one command and answers it: ACK, then the reports in arms.
func answer(t *testing.T, p *peer, want string, arms ...string) {
	t.Helper()
	f := p.command(wait)
	if f.Code != want || len(f.Fields) != 0 {
		t.Fatalf("command = %v; want %s", f, want)
	}
	p.frame(f.Addr, CodeAck, f.Code)
	for _, a := range arms {
		p.frame(f.Addr, CodeArm, a)
	}
}

func TestBarrierCommands(t *testing.T) {
	d, line, rec := memDriver(t, Config{Devices: []edge.Device{barrierDev("gate", "/p", "11")}, CommandTimeout: 200 * time.Millisecond})
	p := line.accept(t, wait)
	p.frame(0x11, CodeArmStatus, "DOWN")
	rec.next(t, wait, "gate healthy", isHealth("gate", true))
	rec.next(t, wait, "gate down", isArm("gate", edge.PositionDown))
	gate := d.Barriers()["gate"]
	ctx := context.Background()

	t.Run("raise", func(t *testing.T) {
		errc := make(chan error, 1)
		go func() { errc <- gate.Raise(ctx) }()
		answer(t, p, CodeOpen, "MOVING", "UP")
		if err := <-errc; err != nil {
			t.Fatalf("Raise() = %v; want nil", err)
		}
		rec.next(t, wait, "moving", isArm("gate", edge.PositionMoving))
		rec.next(t, wait, "up", isArm("gate", edge.PositionUp))
	})
	t.Run("raise when up reports up again", func(t *testing.T) {
		errc := make(chan error, 1)
		go func() { errc <- gate.Raise(ctx) }()
		answer(t, p, CodeOpen, "UP")
		if err := <-errc; err != nil {
			t.Fatalf("Raise() = %v; want nil", err)
		}
		rec.next(t, wait, "up again", isArm("gate", edge.PositionUp))
		p.frame(0x11, CodeArmStatus, "UP") // a heartbeat is no news
		p.frame(0x11, CodeArm, "MOVING")   // nor will this be, after it
		rec.next(t, wait, "moving", isArm("gate", edge.PositionMoving))
		rec.none(t, "up", isArm("gate", edge.PositionUp))
	})
	t.Run("nak", func(t *testing.T) {
		errc := make(chan error, 1)
		go func() { errc <- gate.Lower(ctx) }()
		f := p.command(wait)
		p.frame(0x11, CodeNak, f.Code, ReasonFault)
		err := <-errc
		var nak *NAKError
		if !errors.As(err, &nak) || nak.Reason != ReasonFault {
			t.Fatalf("Lower() = %v; want a NAKError with reason FAULT", err)
		}
	})
	t.Run("no answer", func(t *testing.T) {
		errc := make(chan error, 1)
		go func() { errc <- gate.Lower(ctx) }()
		p.command(wait)
		if err := <-errc; !errors.Is(err, ErrTimeout) {
			t.Fatalf("Lower() = %v; want ErrTimeout", err)
		}
		// A late ACK answers nothing.
		p.frame(0x11, CodeAck, CodeClose)
		waitCounter(t, d, "gate", "stale", 1)
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() { errc <- gate.Raise(ctx) }()
		p.command(wait)
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("Raise() = %v; want context.Canceled", err)
		}
	})
	st := statusOf(t, d, "gate")
	if st.Counters["commands"] != 5 || st.Counters["naks"] != 1 || st.Counters["timeouts"] < 1 {
		t.Errorf("counters = %v; want 5 commands, 1 nak, a timeout", st.Counters)
	}
}

func waitCounter(t *testing.T, d *Driver, id, key string, want uint64) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		got := statusOf(t, d, id).Counters[key]
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("counter %s of %s = %d; want %d", key, id, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Commands on one port go one at a time: the next is written only once the one
// before is answered.
func TestCommandsOneAtATime(t *testing.T) {
	d, line, _ := memDriver(t, Config{Devices: []edge.Device{barrierDev("x", "/p", "11"), barrierDev("y", "/p", "12")}})
	p := line.accept(t, wait)
	bs := d.Barriers()
	var wg sync.WaitGroup
	for _, id := range []string{"x", "y"} {
		wg.Go(func() {
			if err := bs[id].Raise(context.Background()); err != nil {
				t.Errorf("Raise(%s) = %v", id, err)
			}
		})
	}
	first := p.command(wait)
	select {
	case f := <-p.cmds:
		t.Fatalf("second command %v written before the first was answered", f)
	case <-time.After(150 * time.Millisecond):
	}
	p.frame(first.Addr, CodeAck, first.Code)
	second := p.command(wait)
	if second.Addr == first.Addr {
		t.Fatalf("commands went to %02X twice", first.Addr)
	}
	p.frame(second.Addr, CodeAck, second.Code)
	wg.Wait()
}

// The garage's Deliver runs lane logic that may command a barrier on the same port
// as the loop that triggered it.
func TestDeliverMayCommand(t *testing.T) {
	line := newMemLine()
	rec := newRecorder()
	d, err := New(Config{Devices: []edge.Device{loopDev("arm", "/p", "01", "1"), barrierDev("gate", "/p", "11")},
		Sink: rec, Open: line.open, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	raised := make(chan error, 1)
	rec.onDeliver = func(ev edge.DeviceEvent) {
		if ev.Kind == edge.LoopChanged && ev.Occupied {
			raised <- d.Barriers()["gate"].Raise(context.Background())
		}
	}
	start(t, d)
	p := line.accept(t, wait)
	p.frame(1, CodeLoop, "1", "1")
	answer(t, p, CodeOpen, "UP")
	select {
	case err := <-raised:
		if err != nil {
			t.Fatalf("Raise from Deliver = %v; want nil", err)
		}
	case <-time.After(wait):
		t.Fatal("Raise from Deliver deadlocked")
	}
	rec.next(t, wait, "gate up", isArm("gate", edge.PositionUp))
}

func TestDefectsAreCounted(t *testing.T) {
	d, line, rec := memDriver(t, Config{Devices: []edge.Device{loopDev("arm", "/p", "01", "1")}})
	p := line.accept(t, wait)
	p.frame(1, CodeLoopStatus, "1", "0", "0")
	rec.next(t, wait, "arm clear", isLoop("arm", false))

	p.send("\x00\x01\xfe\xff")                      // 4 garbage bytes
	p.send("$01,LP,1,1*30\r\n")                     // bad checksum: must not count as occupied
	p.send("$" + strings.Repeat("Z", 300) + "\r\n") // overlong
	p.send(withSum("01,LP,1,1,EXTRA") + "\r\n")     // known code, wrong fields
	p.send(withSum("01,HELLO") + "\r\n")            // unknown code
	p.send(withSum("01,lp,1,1") + "\r\n")           // malformed
	p.send(withSum("05,LP,1,1") + "\r\n")           // no device at 05
	p.send(withSum("01,OPEN") + "\r\n")             // our own command echoed... from a known address
	p.send("$01,LP,1,1*31")                         // torn: 13 bytes abandoned by the next '$'
	p.frame(1, CodeLoop, "1", "1")
	rec.next(t, wait, "arm occupied", isLoop("arm", true))
	rec.none(t, "after the only good LP", anyOf("arm"))

	want := map[string]uint64{"lines": 9, "garbage_bytes": 17, "bad_checksum": 1, "overlong": 1, "unknown": 3, "foreign": 1, "echo": 1}
	got := statusOf(t, d, "arm").Counters
	for k, v := range want {
		if got[k] != v {
			t.Errorf("counter %s = %d; want %d (all: %v)", k, got[k], v, got)
		}
	}
	if !statusOf(t, d, "arm").Healthy {
		t.Errorf("arm unhealthy after bad data; want healthy")
	}
}

func TestSilence(t *testing.T) {
	d, line, rec := memDriver(t, Config{Devices: []edge.Device{loopDev("arm", "/p", "01", "1")}, Silence: 300 * time.Millisecond})
	p := line.accept(t, wait)
	ev := rec.next(t, wait, "arm unhealthy", isHealth("arm", false))
	if !strings.Contains(ev.Detail, "no report") {
		t.Errorf("Detail = %q; want it to say no report yet", ev.Detail)
	}
	stop := p.heartbeat(50*time.Millisecond, func() { p.frame(1, CodeLoopStatus, "1", "1", "0") })
	rec.next(t, wait, "arm healthy", isHealth("arm", true))
	rec.next(t, wait, "arm occupied", isLoop("arm", true))
	stop()
	ev = rec.next(t, wait, "arm silent", isHealth("arm", false))
	if !strings.Contains(ev.Detail, "silent") {
		t.Errorf("Detail = %q; want it to say silent", ev.Detail)
	}
	if st := statusOf(t, d, "arm"); st.Healthy || !strings.Contains(st.Detail, "silent") {
		t.Errorf("Status = %+v; want unhealthy, silent", st)
	}
	p.frame(1, CodeLoopStatus, "1", "1", "0")
	rec.next(t, wait, "arm back", isHealth("arm", true))
	rec.next(t, wait, "arm state again", isLoop("arm", true))
}

func TestPortLostAndReopened(t *testing.T) {
	d, line, rec := memDriver(t, Config{Devices: []edge.Device{barrierDev("gate", "/p", "11")}})
	p := line.accept(t, wait)
	p.frame(0x11, CodeArmStatus, "UP")
	rec.next(t, wait, "gate healthy", isHealth("gate", true))
	rec.next(t, wait, "gate up", isArm("gate", edge.PositionUp))

	line.setFail(errNoPort)
	p.rw.Close()
	ev := rec.next(t, wait, "gate unhealthy", isHealth("gate", false))
	if !strings.Contains(ev.Detail, "lost") {
		t.Errorf("Detail = %q; want it to say the port was lost", ev.Detail)
	}
	if err := d.Barriers()["gate"].Raise(context.Background()); !errors.Is(err, ErrPortDown) {
		t.Errorf("Raise() with the port down = %v; want ErrPortDown", err)
	}
	time.Sleep(400 * time.Millisecond) // a few failed attempts
	line.setFail(nil)
	p = line.accept(t, 3*time.Second)
	p.frame(0x11, CodeArmStatus, "UP")
	rec.next(t, wait, "gate healthy again", isHealth("gate", true))
	rec.next(t, wait, "gate up again", isArm("gate", edge.PositionUp))
	c := statusOf(t, d, "gate").Counters
	if c["reopen"] != 1 || c["open_errors"] < 2 {
		t.Errorf("counters = %v; want reopen 1, open_errors >= 2", c)
	}
}

func TestRaiseNotRunning(t *testing.T) {
	d, err := New(Config{Devices: []edge.Device{barrierDev("gate", "/p", "11")}, Sink: newRecorder()})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Barriers()["gate"].Raise(context.Background()); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Raise() before Run = %v; want ErrNotRunning", err)
	}
	if st := d.Status(); len(st) != 1 || st[0].Healthy {
		t.Errorf("Status() before Run = %+v; want one unhealthy device", st)
	}
}

func TestOpenFailsAtStart(t *testing.T) {
	line := newMemLine()
	line.setFail(errNoPort)
	rec := newRecorder()
	d, err := New(Config{Devices: []edge.Device{loopDev("arm", "/p", "01", "1")}, Sink: rec, Open: line.open, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	start(t, d)
	ev := rec.next(t, wait, "arm unhealthy", isHealth("arm", false))
	if !strings.Contains(ev.Detail, errNoPort.Error()) {
		t.Errorf("Detail = %q; want the open error", ev.Detail)
	}
}
