package serial

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// socatLine is a pair of linked pseudo-terminals made by socat: the driver opens
// a, the test plays the controllers on b.
type socatLine struct {
	tb     testing.TB
	a, b   string
	cmd    *exec.Cmd
	stderr bytes.Buffer
}

// startSocat starts socat in a temporary directory and stops it when the test ends.
// A missing socat fails the test: `make test` installs it.
func startSocat(tb testing.TB) *socatLine {
	tb.Helper()
	if _, err := exec.LookPath("socat"); err != nil {
		tb.Fatalf("socat is not installed (%v); `make test` installs it (.ci/install-deps), or run: apt-get install socat", err)
	}
	dir := tb.TempDir()
	s := &socatLine{tb: tb, a: filepath.Join(dir, "a"), b: filepath.Join(dir, "b")}
	s.start()
	tb.Cleanup(s.stop)
	return s
}

func (s *socatLine) start() {
	s.tb.Helper()
	s.stderr.Reset()
	s.cmd = exec.Command("socat", "-d", "-d",
		"pty,raw,echo=0,link="+s.a, "pty,raw,echo=0,link="+s.b)
	s.cmd.Stderr = &s.stderr
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatalf("start socat: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, errA := os.Stat(s.a)
		_, errB := os.Stat(s.b)
		if errA == nil && errB == nil {
			return
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("socat made no links within 5s: %v %v\n%s", errA, errB, s.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill makes the line vanish as an unplugged adapter does: socat dies at once and
// leaves its links dangling, which are removed so that start can make them again.
func (s *socatLine) kill() {
	s.tb.Helper()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
	os.Remove(s.a)
	os.Remove(s.b)
}

func (s *socatLine) stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

// peer opens the test's end of the line.
func (s *socatLine) peer() *peer {
	s.tb.Helper()
	f, err := os.OpenFile(s.b, os.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		s.tb.Fatalf("open %s: %v", s.b, err)
	}
	return newPeer(s.tb, f)
}

// ttyDriver starts a driver that opens its ports with tarm/serial, as in production.
func ttyDriver(t *testing.T, devices ...edge.Device) (*Driver, *recorder) {
	t.Helper()
	rec := newRecorder()
	d, err := New(Config{Devices: devices, Sink: rec, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	start(t, d)
	return d, rec
}

func TestSocatLoopDetector(t *testing.T) {
	line := startSocat(t)
	d, rec := ttyDriver(t, loopDev("arm", line.a, "01", "1"), loopDev("safe", line.a, "01", "2"))
	p := line.peer()
	var mu sync.Mutex
	occ := "00"
	p.heartbeat(200*time.Millisecond, func() {
		mu.Lock()
		defer mu.Unlock()
		p.frame(1, CodeLoopStatus, "4", occ+"00", "0000")
	})
	rec.next(t, 5*time.Second, "arm healthy", isHealth("arm", true))
	rec.next(t, wait, "arm clear", isLoop("arm", false))

	mu.Lock()
	occ = "10"
	p.frame(1, CodeLoop, "1", "1")
	mu.Unlock()
	rec.next(t, wait, "arm occupied", isLoop("arm", true))
	mu.Lock()
	occ = "11"
	p.frame(1, CodeLoop, "2", "1")
	mu.Unlock()
	rec.next(t, wait, "safe occupied", isLoop("safe", true))
	for _, st := range d.Status() {
		if !st.Healthy || st.Counters["lines"] == 0 {
			t.Errorf("Status(%s) = %+v; want healthy with lines counted", st.ID, st)
		}
	}
}

func TestSocatBarrier(t *testing.T) {
	line := startSocat(t)
	d, rec := ttyDriver(t, barrierDev("gate", line.a, "11"))
	p := line.peer()
	var mu sync.Mutex
	pos := "DOWN"
	p.heartbeat(200*time.Millisecond, func() {
		mu.Lock()
		defer mu.Unlock()
		p.frame(0x11, CodeArmStatus, pos)
	})
	// The barrier controller: ACK, MOVING, and after its travel UP.
	go func() {
		for f := range p.cmds {
			if f.Addr != 0x11 || f.Code != CodeOpen {
				continue
			}
			mu.Lock()
			p.frame(0x11, CodeAck, CodeOpen)
			pos = "MOVING"
			p.frame(0x11, CodeArm, pos)
			mu.Unlock()
			time.Sleep(100 * time.Millisecond)
			mu.Lock()
			pos = "UP"
			p.frame(0x11, CodeArm, pos)
			mu.Unlock()
		}
	}()
	rec.next(t, 5*time.Second, "gate healthy", isHealth("gate", true))
	rec.next(t, wait, "gate down", isArm("gate", edge.PositionDown))
	if err := d.Barriers()["gate"].Raise(context.Background()); err != nil {
		t.Fatalf("Raise() = %v; want nil", err)
	}
	rec.next(t, wait, "gate moving", isArm("gate", edge.PositionMoving))
	rec.next(t, wait, "gate up", isArm("gate", edge.PositionUp))
	if c := statusOf(t, d, "gate").Counters; c["commands"] != 1 || c["timeouts"] != 0 {
		t.Errorf("counters = %v; want one command, no timeout", c)
	}
}

func TestSocatGarbage(t *testing.T) {
	line := startSocat(t)
	d, rec := ttyDriver(t, loopDev("arm", line.a, "01", "1"))
	p := line.peer()
	stop := p.heartbeat(200*time.Millisecond, func() { p.frame(1, CodeLoopStatus, "1", "0", "0") })
	rec.next(t, 5*time.Second, "arm clear", isLoop("arm", false))
	stop()
	noise := []string{
		"\x00\xff\x13\x11garbage",
		"$01,LP,1,1*30\r\n", // bad checksum: must not count as occupied
		"$01,LP,1",          // torn frame
		"$" + strings.Repeat("#", 200) + "\r\n",
		withSum("01,WHAT,1") + "\r\n",
	}
	for _, n := range noise {
		p.send(n)
		p.frame(1, CodeLoopStatus, "1", "0", "0")
	}
	p.send("\x7f\x7f")
	p.frame(1, CodeLoop, "1", "1")
	rec.next(t, wait, "arm occupied", isLoop("arm", true))
	rec.none(t, "other than the one change", anyOf("arm"))
	c := statusOf(t, d, "arm").Counters
	for _, k := range []string{"garbage_bytes", "bad_checksum", "overlong", "unknown"} {
		if c[k] == 0 {
			t.Errorf("counter %s = 0; want it counted (all: %v)", k, c)
		}
	}
	if !statusOf(t, d, "arm").Healthy {
		t.Errorf("arm unhealthy after noise; want healthy")
	}
}

func TestSocatPortVanishes(t *testing.T) {
	line := startSocat(t)
	d, rec := ttyDriver(t, loopDev("arm", line.a, "01", "1"))
	heartbeats := func(p *peer) func() {
		return p.heartbeat(200*time.Millisecond, func() { p.frame(1, CodeLoopStatus, "1", "1", "0") })
	}
	p := line.peer()
	stop := heartbeats(p)
	rec.next(t, 5*time.Second, "arm healthy", isHealth("arm", true))
	rec.next(t, wait, "arm occupied", isLoop("arm", true))

	line.kill()
	stop()
	p.rw.Close()
	ev := rec.next(t, wait, "arm unhealthy", isHealth("arm", false))
	if !strings.Contains(ev.Detail, "lost") {
		t.Errorf("Detail = %q; want it to say the port was lost", ev.Detail)
	}
	time.Sleep(500 * time.Millisecond)
	if st := statusOf(t, d, "arm"); st.Healthy {
		t.Errorf("Status with the port gone = %+v; want unhealthy", st)
	}

	line.start()
	heartbeats(line.peer())
	rec.next(t, 8*time.Second, "arm healthy again", isHealth("arm", true))
	rec.next(t, wait, "arm state again", isLoop("arm", true))
	if c := statusOf(t, d, "arm").Counters; c["reopen"] != 1 || c["open_errors"] == 0 {
		t.Errorf("counters = %v; want reopen 1 and failed opens while the port was gone", c)
	}
}
