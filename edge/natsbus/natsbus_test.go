package natsbus_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gatehouse-parking/gatehouse/edge/natsbus"
)

func testLogger(tb testing.TB) *slog.Logger {
	tb.Helper()
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.DiscardHandler)
}

func mustStart(tb testing.TB, cfg natsbus.Config) *natsbus.Bus {
	tb.Helper()
	b, err := natsbus.Start(cfg)
	if err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(b.Shutdown)
	return b
}

func mustNATS(tb testing.TB, b *natsbus.Bus) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(b.ClientURL())
	if err != nil {
		tb.Fatalf("nats.Connect(%s): %v", b.ClientURL(), err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

func mqttPublish(tb testing.TB, addr, topic string, payload []byte) {
	tb.Helper()
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("natsbus-test-pub").
		SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		tb.Fatalf("mqtt connect %s: %v", addr, tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		tb.Fatalf("mqtt publish %s: %v", topic, tok.Error())
	}
}

func TestMQTTPublishArrivesOnNATS(t *testing.T) {
	b := mustStart(t, natsbus.Config{
		Name: "gatehouse-test", StoreDir: t.TempDir(), Port: -1, MQTTPort: -1,
		JetStreamDomain: "fac1", Logger: testLogger(t),
	})
	if b.MQTTAddr() == "" || strings.HasSuffix(b.MQTTAddr(), ":-1") || strings.HasSuffix(b.MQTTAddr(), ":0") {
		t.Fatalf("MQTTAddr() = %q; want the listener's real host:port", b.MQTTAddr())
	}
	nc := mustNATS(t, b)
	sub, err := nc.SubscribeSync("sensors.L1.S042")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	mqttPublish(t, b.MQTTAddr(), "sensors/L1/S042", []byte(`{"occupied":true}`))
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("NextMsg on sensors.L1.S042: %v", err)
	}
	if got, want := string(msg.Data), `{"occupied":true}`; got != want {
		t.Errorf("payload = %s; want %s", got, want)
	}
}

func TestRestartKeepsStore(t *testing.T) {
	dir := t.TempDir()
	cfg := natsbus.Config{
		Name: "gatehouse-restart", StoreDir: dir, Port: -1, MQTTPort: -1,
		JetStreamDomain: "fac1", Logger: testLogger(t),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	b1, err := natsbus.Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	nc1, err := nats.Connect(b1.ClientURL())
	if err != nil {
		b1.Shutdown()
		t.Fatal(err)
	}
	js1, err := jetstream.NewWithDomain(nc1, "fac1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js1.CreateStream(ctx, jetstream.StreamConfig{Name: "KEEP", Subjects: []string{"keep.>"}}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	if _, err := js1.Publish(ctx, "keep.one", []byte("1")); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	nc1.Close()
	b1.Shutdown()

	b2 := mustStart(t, cfg)
	nc2 := mustNATS(t, b2)
	js2, err := jetstream.NewWithDomain(nc2, "fac1")
	if err != nil {
		t.Fatal(err)
	}
	s, err := js2.Stream(ctx, "KEEP")
	if err != nil {
		t.Fatalf("Stream(KEEP) after restart: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("KEEP holds %d messages after restart; want 1", info.State.Msgs)
	}

	// The MQTT listener works again on the restarted server.
	sub, err := nc2.SubscribeSync("sensors.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc2.Flush(); err != nil {
		t.Fatal(err)
	}
	mqttPublish(t, b2.MQTTAddr(), "sensors/L2/S001", []byte("x"))
	if _, err := sub.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("no MQTT message after restart: %v", err)
	}
}

func TestNoMQTTListener(t *testing.T) {
	b := mustStart(t, natsbus.Config{Name: "gatehouse-nomqtt", StoreDir: t.TempDir(), Port: -1, Logger: testLogger(t)})
	if got := b.MQTTAddr(); got != "" {
		t.Errorf("MQTTAddr() = %q; want \"\" with MQTTPort 0", got)
	}
	if !b.Ready(time.Second) {
		t.Errorf("Ready(1s) = false; want true")
	}
	nc := mustNATS(t, b)
	if _, err := jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
}

func TestStartRejects(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  natsbus.Config
	}{
		{"no name", natsbus.Config{StoreDir: dir, Port: -1}},
		{"space in name", natsbus.Config{Name: "gate house", StoreDir: dir, Port: -1}},
		{"no store", natsbus.Config{Name: "gatehouse-x", Port: -1}},
		{"bad mqtt port", natsbus.Config{Name: "gatehouse-x", StoreDir: dir, Port: -1, MQTTPort: -7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := natsbus.Start(tt.cfg)
			if err == nil {
				b.Shutdown()
				t.Fatalf("Start(%+v) = nil error; want one", tt.cfg)
			}
		})
	}
}
