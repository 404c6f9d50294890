package mqtt_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/edge/natsbus"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/mqtt"
)

// waitLong bounds every wait for the network in these tests.
const waitLong = 10 * time.Second

func testLogger(tb testing.TB) *slog.Logger {
	tb.Helper()
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// broker is a real MQTT broker started by the test, restartable on its port.
type broker interface {
	URL() string
	Stop(tb testing.TB)
	Start(tb testing.TB)
}

// brokerKinds are the brokers every driver test runs against.
// durable says the broker keeps sessions across its own restarts (NATS keeps them in
// JetStream; the test's Mosquitto runs with persistence off).
var brokerKinds = []struct {
	name    string
	start   func(tb testing.TB) broker
	durable bool
}{
	{"nats", func(tb testing.TB) broker { return startNATS(tb) }, true},
	{"mosquitto", func(tb testing.TB) broker { return startMosquitto(tb) }, false},
}

// natsBroker is the edge's embedded NATS server with its MQTT listener.
type natsBroker struct {
	cfg natsbus.Config
	bus *natsbus.Bus
}

func startNATS(tb testing.TB) *natsBroker {
	tb.Helper()
	b := &natsBroker{cfg: natsbus.Config{
		Name: "gatehouse-mqtt-test", StoreDir: tb.TempDir(), Port: -1, MQTTPort: -1, Logger: testLogger(tb),
	}}
	b.Start(tb)
	_, port, err := net.SplitHostPort(b.bus.MQTTAddr())
	if err != nil {
		tb.Fatal(err)
	}
	b.cfg.MQTTPort, _ = strconv.Atoi(port) // restarts keep the port
	tb.Cleanup(func() { b.Stop(tb) })
	return b
}

func (b *natsBroker) URL() string { return "tcp://" + b.bus.MQTTAddr() }

func (b *natsBroker) Start(tb testing.TB) {
	tb.Helper()
	bus, err := natsbus.Start(b.cfg)
	if err != nil {
		tb.Fatalf("natsbus.Start: %v", err)
	}
	b.bus = bus
}

func (b *natsBroker) Stop(tb testing.TB) {
	if b.bus != nil {
		b.bus.Shutdown()
	}
}

// mosquittoBroker is a mosquitto process on a free loopback port.
type mosquittoBroker struct {
	bin, conf string
	port      int
	cmd       *exec.Cmd
	done      chan struct{} // closed when cmd has exited
	out       bytes.Buffer
}

// mosquittoBinary finds mosquitto; its absence fails the test, since `make test`
// installs it (.ci/install-deps).
func mosquittoBinary(tb testing.TB) string {
	tb.Helper()
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		return "/usr/sbin/mosquitto"
	}
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	tb.Fatal("mosquitto not found at /usr/sbin/mosquitto or on PATH: `make test` installs it (apt-get install mosquitto)")
	return ""
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startMosquitto(tb testing.TB) *mosquittoBroker {
	tb.Helper()
	b := &mosquittoBroker{bin: mosquittoBinary(tb), port: freePort(tb)}
	b.conf = filepath.Join(tb.TempDir(), "mosquitto.conf")
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n", b.port)
	if err := os.WriteFile(b.conf, []byte(conf), 0o600); err != nil {
		tb.Fatal(err)
	}
	b.Start(tb)
	tb.Cleanup(func() { b.Stop(tb) })
	return b
}

func (b *mosquittoBroker) URL() string { return "tcp://127.0.0.1:" + strconv.Itoa(b.port) }

func (b *mosquittoBroker) Start(tb testing.TB) {
	tb.Helper()
	b.out.Reset()
	b.cmd = exec.Command(b.bin, "-c", b.conf)
	b.cmd.Stdout, b.cmd.Stderr = &b.out, &b.out
	if err := b.cmd.Start(); err != nil {
		tb.Fatalf("start mosquitto: %v", err)
	}
	exited := make(chan struct{})
	b.done = exited
	go func(cmd *exec.Cmd) { cmd.Wait(); close(exited) }(b.cmd)
	deadline := time.Now().Add(waitLong)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(b.port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			tb.Fatalf("mosquitto exited at start: %s", b.out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("mosquitto not listening on %d: %s", b.port, b.out.String())
		}
	}
}

func (b *mosquittoBroker) Stop(tb testing.TB) {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	b.cmd.Process.Kill()
	<-b.done
	b.cmd = nil
}

// recorder is an edge.Sink that keeps every event.
type recorder struct {
	mu     sync.Mutex
	evs    []edge.DeviceEvent
	cursor int
}

func (r *recorder) Deliver(ev edge.DeviceEvent) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

// next waits for the first event after the cursor that matches and moves the cursor
// past it.
func (r *recorder) next(tb testing.TB, what string, match func(edge.DeviceEvent) bool) edge.DeviceEvent {
	tb.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		r.mu.Lock()
		for i := r.cursor; i < len(r.evs); i++ {
			if match(r.evs[i]) {
				r.cursor = i + 1
				ev := r.evs[i]
				r.mu.Unlock()
				return ev
			}
		}
		seen := append([]edge.DeviceEvent(nil), r.evs[r.cursor:]...)
		r.mu.Unlock()
		if time.Now().After(deadline) {
			tb.Fatalf("no %s within %v; events after cursor: %+v", what, waitLong, seen)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// seen waits for any event, before or after the cursor, that matches; the cursor
// stays. It is for events whose order against others is not defined (readings of
// different topics).
func (r *recorder) seen(tb testing.TB, what string, match func(edge.DeviceEvent) bool) {
	tb.Helper()
	deadline := time.Now().Add(waitLong)
	for r.count(match) == 0 {
		if time.Now().After(deadline) {
			r.mu.Lock()
			evs := append([]edge.DeviceEvent(nil), r.evs...)
			r.mu.Unlock()
			tb.Fatalf("no %s within %v; events: %+v", what, waitLong, evs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// count returns how many events so far match.
func (r *recorder) count(match func(edge.DeviceEvent) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.evs {
		if match(ev) {
			n++
		}
	}
	return n
}

func spotIs(dev, spot string, occupied bool) func(edge.DeviceEvent) bool {
	return func(ev edge.DeviceEvent) bool {
		return ev.Kind == edge.SpotChanged && ev.Device == dev && ev.Code == spot && ev.Occupied == occupied
	}
}

func spotOf(dev string) func(edge.DeviceEvent) bool {
	return func(ev edge.DeviceEvent) bool { return ev.Kind == edge.SpotChanged && ev.Device == dev }
}

func healthIs(dev string, healthy bool) func(edge.DeviceEvent) bool {
	return func(ev edge.DeviceEvent) bool {
		return ev.Kind == edge.DeviceHealth && ev.Device == dev && ev.Healthy == healthy
	}
}

var clientSeq atomic.Int64

// publisher connects a plain MQTT client (clean session) for the test to publish with.
func publisher(tb testing.TB, url string) paho.Client {
	tb.Helper()
	opts := paho.NewClientOptions().AddBroker(url).
		SetClientID(fmt.Sprintf("test-pub-%d-%d", os.Getpid(), clientSeq.Add(1))).
		SetConnectTimeout(5 * time.Second).SetAutoReconnect(false)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(waitLong) || tok.Error() != nil {
		tb.Fatalf("publisher connect %s: %v", url, tok.Error())
	}
	tb.Cleanup(func() { c.Disconnect(50) })
	return c
}

func publish(tb testing.TB, c paho.Client, topic string, payload []byte) {
	tb.Helper()
	if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(waitLong) || tok.Error() != nil {
		tb.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// running is a driver with its Run goroutine.
type running struct {
	*mqtt.Driver
	cancel context.CancelFunc
	done   chan error
}

// startDriver builds a driver and runs it until stop or the end of the test.
func startDriver(tb testing.TB, cfg mqtt.Config) *running {
	tb.Helper()
	d, err := mqtt.New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Driver: d, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- d.Run(ctx) }()
	tb.Cleanup(func() { r.stop(tb) })
	return r
}

// stop cancels Run and waits for it.
func (r *running) stop(tb testing.TB) {
	tb.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			tb.Errorf("Run = %v; want nil", err)
		}
	case <-time.After(waitLong):
		tb.Fatalf("Run did not return after cancel")
	}
}

// connected waits until the driver has subscribed n times in all.
func (r *running) connected(tb testing.TB, n uint64) {
	tb.Helper()
	deadline := time.Now().Add(waitLong)
	for r.Counters()[mqtt.CounterConnects] < n {
		if time.Now().After(deadline) {
			tb.Fatalf("driver not subscribed %d times within %v (counters %v)", n, waitLong, r.Counters())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// status returns one device's status.
func (r *running) status(tb testing.TB, id string) edge.DeviceStatus {
	tb.Helper()
	for _, st := range r.Status() {
		if st.ID == id {
			return st
		}
	}
	tb.Fatalf("Status() has no device %s", id)
	return edge.DeviceStatus{}
}

// counterIs waits until a device counter reaches want.
func (r *running) counterIs(tb testing.TB, id, name string, want uint64) {
	tb.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		got := r.status(tb, id).Counters[name]
		if got == want {
			return
		}
		if got > want || time.Now().After(deadline) {
			tb.Fatalf("%s counter %s = %d; want %d", id, name, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
