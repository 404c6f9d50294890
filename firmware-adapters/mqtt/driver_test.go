package mqtt_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/mqtt"
)

// The test garage: a JSON sensor, a ChirpStack sensor with a codec and one without.
const (
	topicJSON = "sensors/L1/EV01"
	topicCS   = "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/0004a30b001c0530/event/up"
	topicRaw  = "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/a84041000181c007/event/up"
)

func sensors(silence string) []edge.Device {
	opts := func(kv ...string) map[string]string {
		m := map[string]string{}
		if silence != "" {
			m[mqtt.OptSilence] = silence
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	return []edge.Device{
		{ID: "s-json", Kind: edge.KindSpotSensor, Protocol: "mqtt", Address: topicJSON, Profile: mqtt.ProfileJSON, Options: opts()},
		{ID: "s-cs", Kind: edge.KindSpotSensor, Protocol: "mqtt", Address: topicCS, Profile: mqtt.ProfileChirpstack, Options: opts()},
		{ID: "s-raw", Kind: edge.KindSpotSensor, Protocol: "mqtt", Address: topicRaw, Profile: mqtt.ProfileChirpstack, Options: opts(mqtt.OptByte, "1", mqtt.OptBit, "1")},
	}
}

var spots = map[string]string{"s-json": "L1-EV01", "s-cs": "L1-S001", "s-raw": "L2-S007"}

func config(tb testing.TB, b broker, sink edge.Sink, clientID string, devices []edge.Device) mqtt.Config {
	return mqtt.Config{
		Devices: devices, Spots: spots, Sink: sink, Logger: testLogger(tb),
		BrokerURL: b.URL(), ClientID: clientID,
	}
}

func testdata(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestDriver(t *testing.T) {
	for _, bk := range brokerKinds {
		t.Run(bk.name, func(t *testing.T) {
			b := bk.start(t)
			id := func(s string) string { return fmt.Sprintf("gatehouse-test-%s-%s", bk.name, s) }
			t.Run("readings", func(t *testing.T) { testReadings(t, b, id("readings")) })
			t.Run("malformed", func(t *testing.T) { testMalformed(t, b, id("malformed")) })
			t.Run("unknown topic", func(t *testing.T) { testUnknownTopic(t, b, id("stale")) })
			t.Run("silence", func(t *testing.T) { testSilence(t, b, id("silence")) })
			t.Run("persistent session", func(t *testing.T) { testPersistentSession(t, b, id("persist")) })
			t.Run("broker restart", func(t *testing.T) { testBrokerRestart(t, b, id("restart")) })
			if bk.durable {
				t.Run("session survives broker restart", func(t *testing.T) { testDurableSession(t, b, id("durable")) })
			}
		})
	}
}

// testReadings: JSON and ChirpStack payloads become SpotChanged events on change only.
func testReadings(t *testing.T, b broker, clientID string) {
	sink := &recorder{}
	d := startDriver(t, config(t, b, sink, clientID, sensors("")))
	d.connected(t, 1)
	pub := publisher(t, b.URL())

	publish(t, pub, topicJSON, testdata(t, "json/occupied.json"))
	ev := sink.next(t, "s-json occupied", spotIs("s-json", "L1-EV01", true))
	if ev.At.IsZero() {
		t.Errorf("SpotChanged.At is zero")
	}
	publish(t, pub, topicJSON, []byte(`{"occupied": 1, "battery": 3.6}`)) // same state
	publish(t, pub, topicJSON, []byte(`{"battery": 3.6}`))                // heartbeat
	publish(t, pub, topicJSON, []byte(`{"occupied": false}`))
	sink.next(t, "s-json free", spotIs("s-json", "L1-EV01", false))
	if n := sink.count(spotOf("s-json")); n != 2 {
		t.Errorf("s-json SpotChanged events = %d; want 2 (first reading and one change)", n)
	}
	st := d.status(t, "s-json")
	if st.Counters[mqtt.CounterMessages] != 4 || st.Counters[mqtt.CounterNoOccupancy] != 1 || st.Counters[mqtt.CounterMalformed] != 0 {
		t.Errorf("s-json counters = %v; want messages 4, no_occupancy 1, malformed 0", st.Counters)
	}
	if !st.Healthy || st.LastContact.IsZero() || st.Protocol != "mqtt" || st.Kind != "spot_sensor" || st.Address != topicJSON {
		t.Errorf("s-json status = %+v", st)
	}

	publish(t, pub, topicCS, testdata(t, "chirpstack/up-object.json"))
	sink.next(t, "s-cs occupied (codec object)", spotIs("s-cs", "L1-S001", true))
	publish(t, pub, topicRaw, testdata(t, "chirpstack/up-raw.json"))
	sink.next(t, "s-raw occupied (data byte 1 bit 1)", spotIs("s-raw", "L2-S007", true))
	if n := sink.count(func(ev edge.DeviceEvent) bool { return ev.Kind == edge.DeviceHealth }); n != 0 {
		t.Errorf("%d DeviceHealth events on a healthy run; want 0", n)
	}
}

// testMalformed: bad payloads are counted per device and change nothing.
func testMalformed(t *testing.T, b broker, clientID string) {
	sink := &recorder{}
	d := startDriver(t, config(t, b, sink, clientID, sensors("")))
	d.connected(t, 1)
	pub := publisher(t, b.URL())

	bad := []struct {
		topic   string
		payload string
	}{
		{topicJSON, `{"occupied": tru`},
		{topicJSON, `{"occupied": "yes"}`},
		{topicJSON, "\x00\xff\xfe garbage"},
		{topicCS, `{"deviceInfo":{"devEui":"0004a30b001c0530"},"data":"%%%"}`},
		{topicCS, strings.Replace(string(testdata(t, "chirpstack/up-object.json")), "0004a30b001c0530", "0004a30b001c0599", 1)},
		{topicRaw, `{"deviceInfo":{"devEui":"a84041000181c007"},"data":"AA=="}`}, // byte 1 missing
	}
	for _, m := range bad {
		publish(t, pub, m.topic, []byte(m.payload))
	}
	d.counterIs(t, "s-json", mqtt.CounterMalformed, 3)
	d.counterIs(t, "s-cs", mqtt.CounterMalformed, 2)
	d.counterIs(t, "s-raw", mqtt.CounterMalformed, 1)
	publish(t, pub, topicJSON, []byte(`{"occupied": true}`))
	sink.next(t, "s-json occupied after garbage", spotIs("s-json", "L1-EV01", true))
	if n := sink.count(func(ev edge.DeviceEvent) bool { return ev.Kind == edge.SpotChanged && ev.Device != "s-json" }); n != 0 {
		t.Errorf("%d SpotChanged events from malformed messages; want 0", n)
	}
	if st := d.status(t, "s-json"); st.Counters[mqtt.CounterMessages] != 4 {
		t.Errorf("s-json messages = %d; want 4", st.Counters[mqtt.CounterMessages])
	}
}

// testUnknownTopic: a persistent session keeps the subscriptions of an older
// configuration; their messages are counted, not delivered.
func testUnknownTopic(t *testing.T, b broker, clientID string) {
	old := startDriver(t, config(t, b, &recorder{}, clientID, sensors("")))
	old.connected(t, 1)
	old.stop(t)

	sink := &recorder{}
	d := startDriver(t, config(t, b, sink, clientID, sensors("")[:1])) // s-json only
	d.connected(t, 1)
	pub := publisher(t, b.URL())
	publish(t, pub, topicCS, testdata(t, "chirpstack/up-object.json"))
	publish(t, pub, topicJSON, []byte(`{"occupied": true}`))
	sink.next(t, "s-json occupied", spotIs("s-json", "L1-EV01", true))
	deadline := time.Now().Add(waitLong)
	for d.Counters()[mqtt.CounterUnknownTopic] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("Counters() = %v; want unknown_topic 1", d.Counters())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testSilence: a sensor silent for longer than its silence option is unhealthy until
// its next message.
func testSilence(t *testing.T, b broker, clientID string) {
	sink := &recorder{}
	d := startDriver(t, config(t, b, sink, clientID, sensors("400ms")[:1]))
	d.connected(t, 1)
	pub := publisher(t, b.URL())
	publish(t, pub, topicJSON, []byte(`{"occupied": true}`))
	sink.next(t, "first reading", spotIs("s-json", "L1-EV01", true))
	ev := sink.next(t, "s-json unhealthy after silence", healthIs("s-json", false))
	if !strings.Contains(ev.Detail, "silent") {
		t.Errorf("Detail = %q; want it to say the sensor is silent", ev.Detail)
	}
	if st := d.status(t, "s-json"); st.Healthy || st.Detail != ev.Detail {
		t.Errorf("status = %+v; want unhealthy with detail %q", st, ev.Detail)
	}
	publish(t, pub, topicJSON, []byte(`{"occupied": true}`))
	ev = sink.next(t, "s-json healthy again", healthIs("s-json", true))
	if ev.Detail != "" {
		t.Errorf("healthy event Detail = %q; want none", ev.Detail)
	}
}

// testPersistentSession: a QoS 1 reading published while the driver is away arrives
// when it comes back with the same client id.
func testPersistentSession(t *testing.T, b broker, clientID string) {
	first := startDriver(t, config(t, b, &recorder{}, clientID, sensors("")))
	first.connected(t, 1)
	first.stop(t)
	// Let the broker see the disconnect first: a message it still sends to the closing
	// connection is redelivered on resume by Mosquitto, but by NATS only after its
	// MQTT AckWait (30 s), too late for this test.
	time.Sleep(200 * time.Millisecond)

	pub := publisher(t, b.URL())
	publish(t, pub, topicJSON, []byte(`{"occupied": true}`))
	publish(t, pub, topicCS, testdata(t, "chirpstack/up-object.json"))

	sink := &recorder{}
	startDriver(t, config(t, b, sink, clientID, sensors("")))
	sink.seen(t, "s-json reading queued while away", spotIs("s-json", "L1-EV01", true))
	sink.seen(t, "s-cs reading queued while away", spotIs("s-cs", "L1-S001", true))
}

// testDurableSession: the session, and a reading queued in it, survive a restart
// of the broker while the driver is away.
func testDurableSession(t *testing.T, b broker, clientID string) {
	first := startDriver(t, config(t, b, &recorder{}, clientID, sensors("")))
	first.connected(t, 1)
	first.stop(t)
	b.Stop(t)
	b.Start(t)
	pub := publisher(t, b.URL())
	publish(t, pub, topicJSON, []byte(`{"occupied": true}`))

	sink := &recorder{}
	d := startDriver(t, config(t, b, sink, clientID, sensors("")))
	d.connected(t, 1)
	sink.next(t, "reading queued across the broker restart", spotIs("s-json", "L1-EV01", true))
}

// testBrokerRestart: every device is unhealthy while the broker is down and healthy
// again once the driver has reconnected and resubscribed.
func testBrokerRestart(t *testing.T, b broker, clientID string) {
	sink := &recorder{}
	d := startDriver(t, config(t, b, sink, clientID, sensors("")))
	d.connected(t, 1)

	b.Stop(t)
	for _, dev := range []string{"s-json", "s-cs", "s-raw"} {
		ev := sink.next(t, dev+" unhealthy", healthIs(dev, false))
		if ev.Detail != "broker unreachable" {
			t.Errorf("%s Detail = %q; want %q", dev, ev.Detail, "broker unreachable")
		}
	}
	if st := d.status(t, "s-cs"); st.Healthy || st.Detail != "broker unreachable" {
		t.Errorf("status while down = %+v", st)
	}
	b.Start(t)
	for _, dev := range []string{"s-json", "s-cs", "s-raw"} {
		sink.next(t, dev+" healthy again", healthIs(dev, true))
	}
	pub := publisher(t, b.URL())
	publish(t, pub, topicRaw, testdata(t, "chirpstack/up-raw.json"))
	sink.next(t, "reading after restart", spotIs("s-raw", "L2-S007", true))
}

func TestNewRejects(t *testing.T) {
	good := func() mqtt.Config {
		return mqtt.Config{Devices: sensors(""), Spots: spots, Sink: &recorder{}, BrokerURL: "tcp://127.0.0.1:1", ClientID: "x"}
	}
	with := func(f func(*mqtt.Config)) mqtt.Config { c := good(); f(&c); return c }
	dev := func(f func(*edge.Device)) mqtt.Config {
		return with(func(c *mqtt.Config) { f(&c.Devices[0]) })
	}
	tests := []struct {
		name string
		cfg  mqtt.Config
	}{
		{"no sink", with(func(c *mqtt.Config) { c.Sink = nil })},
		{"no client id", with(func(c *mqtt.Config) { c.ClientID = "" })},
		{"bad url", with(func(c *mqtt.Config) { c.BrokerURL = "127.0.0.1:1883" })},
		{"no devices", with(func(c *mqtt.Config) { c.Devices = nil })},
		{"no spot", with(func(c *mqtt.Config) { c.Spots = map[string]string{} })},
		{"shared topic", with(func(c *mqtt.Config) { c.Devices[1].Address = topicJSON })},
		{"wildcard", dev(func(d *edge.Device) { d.Address = "sensors/+/EV01" })},
		{"empty topic", dev(func(d *edge.Device) { d.Address = "" })},
		{"protocol", dev(func(d *edge.Device) { d.Protocol = "modbus_tcp" })},
		{"kind", dev(func(d *edge.Device) { d.Kind = edge.KindLoop })},
		{"profile", dev(func(d *edge.Device) { d.Profile = "xml" })},
		{"unknown option", dev(func(d *edge.Device) { d.Options["feild"] = "occupied" })},
		{"bad silence", dev(func(d *edge.Device) { d.Options[mqtt.OptSilence] = "soon" })},
		{"zero silence", dev(func(d *edge.Device) { d.Options[mqtt.OptSilence] = "0s" })},
		{"empty field part", dev(func(d *edge.Device) { d.Options[mqtt.OptField] = "state..occupied" })},
		{"byte on json", dev(func(d *edge.Device) { d.Options[mqtt.OptByte] = "0" })},
		{"bad bit", with(func(c *mqtt.Config) { c.Devices[2].Options[mqtt.OptBit] = "8" })},
		{"bad byte", with(func(c *mqtt.Config) { c.Devices[2].Options[mqtt.OptByte] = "-1" })},
		{"bit without byte", with(func(c *mqtt.Config) { c.Devices[1].Options[mqtt.OptBit] = "1" })},
	}
	if _, err := mqtt.New(good()); err != nil {
		t.Fatalf("New(good config) = %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := mqtt.New(tt.cfg); err == nil {
				t.Errorf("New(%s) = nil error; want one", tt.name)
			}
		})
	}
}

func TestBrokerDownAtStart(t *testing.T) {
	sink := &recorder{}
	cfg := mqtt.Config{Devices: sensors(""), Spots: spots, Sink: sink, Logger: testLogger(t),
		BrokerURL: fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t)), ClientID: "gatehouse-test-down"}
	d := startDriver(t, cfg)
	ev := sink.next(t, "unhealthy with no broker", healthIs("s-json", false))
	if ev.Detail != "broker unreachable" {
		t.Errorf("Detail = %q; want broker unreachable", ev.Detail)
	}
	d.stop(t)
}
