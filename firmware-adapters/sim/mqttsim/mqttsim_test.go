package mqttsim

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/edge/natsbus"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/mqtt"
)

const (
	topicJSON = "sensors/L1/EV01"
	topicCS   = "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/0004a30b001c0530/event/up"
	topicRaw  = "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/a84041000181c007/event/up"
)

func testLogger(tb testing.TB) *slog.Logger {
	tb.Helper()
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// garage is the test's sensor configuration: a JSON sensor, a LoRaWAN sensor whose
// codec reports carStatus 0/1 and one without a codec (occupancy in data byte 2,
// bit 3).
func garage(heartbeat, silence string) []edge.Device {
	opts := func(kv ...string) map[string]string {
		m := map[string]string{"heartbeat": heartbeat, "silence": silence}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	return []edge.Device{
		{ID: "s-json", Kind: edge.KindSpotSensor, Protocol: "mqtt", Address: topicJSON, Profile: "json", Options: opts()},
		{ID: "s-cs", Kind: edge.KindSpotSensor, Protocol: "mqtt", Address: topicCS, Profile: "chirpstack", Options: opts("field", "carStatus")},
		{ID: "s-raw", Kind: edge.KindSpotSensor, Protocol: "mqtt", Address: topicRaw, Profile: "chirpstack", Options: opts("byte", "2", "bit", "3")},
		{ID: "loop-1", Kind: edge.KindLoop, Protocol: "modbus_tcp", Address: "127.0.0.1:502"},
	}
}

var spots = map[string]string{"s-json": "L1-EV01", "s-cs": "L1-S001", "s-raw": "L2-S007"}

func TestNew(t *testing.T) {
	s, err := New(garage("60s", "15m"), "tcp://127.0.0.1:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	devs := s.Devices()
	if len(devs.Spots) != 3 || devs.Run == nil {
		t.Errorf("Devices() = %d spots, Run %v; want the 3 MQTT sensors and a Run", len(devs.Spots), devs.Run != nil)
	}
	if _, ok := s.Sensor("loop-1"); ok {
		t.Errorf("Sensor(loop-1) found; want only MQTT spot sensors")
	}
	bad := []struct {
		name string
		opt  map[string]string
		prof string
		addr string
	}{
		{"heartbeat", map[string]string{"heartbeat": "often"}, "json", topicJSON},
		{"profile", nil, "xml", topicJSON},
		{"wildcard", nil, "json", "sensors/#"},
		{"bit", map[string]string{"byte": "0", "bit": "9"}, "chirpstack", topicCS},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			d := edge.Device{ID: "x", Kind: edge.KindSpotSensor, Protocol: "mqtt", Address: tt.addr, Profile: tt.prof, Options: tt.opt}
			if _, err := New([]edge.Device{d}, "tcp://127.0.0.1:1", nil); err == nil {
				t.Errorf("New(%s) = nil error; want one", tt.name)
			}
		})
	}
}

// TestPayloads checks each profile's payload, and that a ChirpStack uplink's data
// says what its object says.
func TestPayloads(t *testing.T) {
	s, err := New(garage("60s", "15m"), "tcp://127.0.0.1:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 14, 8, 15, 0, 0, time.UTC)
	for _, id := range []string{"s-json", "s-cs", "s-raw"} {
		for _, occ := range []bool{true, false} {
			x, _ := s.Sensor(id)
			name := id + map[bool]string{true: " occupied", false: " free"}[occ]
			t.Run(name, func(t *testing.T) {
				b := x.payload(occ, 7, now)
				var m map[string]any
				if err := json.Unmarshal(b, &m); err != nil {
					t.Fatalf("payload %s: %v", b, err)
				}
				if !x.chirp {
					if m["occupied"] != occ || m["battery"] != battery || m["ts"] != "2026-03-14T08:15:00Z" {
						t.Errorf("payload = %s; want occupied %v, battery, ts", b, occ)
					}
					return
				}
				var up struct {
					Time       string `json:"time"`
					DeviceInfo struct {
						DevEUI     string `json:"devEui"`
						DeviceName string `json:"deviceName"`
					} `json:"deviceInfo"`
					FCnt   uint32         `json:"fCnt"`
					FPort  int            `json:"fPort"`
					Data   string         `json:"data"`
					Object map[string]any `json:"object"`
					RxInfo []struct {
						RSSI int     `json:"rssi"`
						SNR  float64 `json:"snr"`
					} `json:"rxInfo"`
				}
				if err := json.Unmarshal(b, &up); err != nil {
					t.Fatal(err)
				}
				if want := strings.Split(x.topic, "/")[3]; up.DeviceInfo.DevEUI != want || up.DeviceInfo.DeviceName != id {
					t.Errorf("deviceInfo = %+v; want devEui %s, name %s", up.DeviceInfo, want, id)
				}
				if up.FCnt != 7 || up.FPort != 1 || up.Time != "2026-03-14T08:15:00Z" {
					t.Errorf("fCnt %d fPort %d time %s; want 7, 1, 2026-03-14T08:15:00Z", up.FCnt, up.FPort, up.Time)
				}
				if len(up.RxInfo) != 1 || up.RxInfo[0].RSSI > -60 || up.RxInfo[0].RSSI < -110 {
					t.Errorf("rxInfo = %+v; want one gateway with a plausible rssi", up.RxInfo)
				}
				data, err := base64.StdEncoding.DecodeString(up.Data)
				if err != nil {
					t.Fatalf("data %q: %v", up.Data, err)
				}
				switch id {
				case "s-cs":
					want := map[bool]float64{true: 1, false: 0}[occ]
					if up.Object["carStatus"] != want || up.Object["battery"] != battery {
						t.Errorf("object = %v; want carStatus %v, battery %v", up.Object, want, battery)
					}
					if got := data[0]&1 != 0; got != occ || data[1] != 36 {
						t.Errorf("data = % x; want bit 0 = %v and 36 decivolts, as the object says", data, occ)
					}
				case "s-raw":
					if up.Object != nil {
						t.Errorf("object = %v; want none (no codec)", up.Object)
					}
					if got := data[2]&(1<<3) != 0; got != occ {
						t.Errorf("data = % x; want byte 2 bit 3 = %v", data, occ)
					}
				}
			})
		}
	}
}

// recorder is an edge.Sink for the test.
type recorder struct {
	mu  sync.Mutex
	evs []edge.DeviceEvent
}

func (r *recorder) Deliver(ev edge.DeviceEvent) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

// last waits until the device's latest event of kind says want.
func (r *recorder) last(tb testing.TB, dev string, kind edge.EventKind, want bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		var got *edge.DeviceEvent
		for i := range r.evs {
			if r.evs[i].Device == dev && r.evs[i].Kind == kind {
				got = &r.evs[i]
			}
		}
		ok := got != nil && (kind == edge.SpotChanged && got.Occupied == want || kind == edge.DeviceHealth && got.Healthy == want)
		all := append([]edge.DeviceEvent(nil), r.evs...)
		r.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: no %s event saying %v; events %+v", dev, kind, want, all)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func counter(tb testing.TB, d *mqtt.Driver, dev, name string) uint64 {
	tb.Helper()
	for _, st := range d.Status() {
		if st.ID == dev {
			return st.Counters[name]
		}
	}
	tb.Fatalf("no device %s", dev)
	return 0
}

func waitCounter(tb testing.TB, d *mqtt.Driver, dev, name string, atLeast uint64) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for counter(tb, d, dev, name) < atLeast {
		if time.Now().After(deadline) {
			tb.Fatalf("%s counter %s = %d; want at least %d", dev, name, counter(tb, d, dev, name), atLeast)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAgainstDriver runs the simulated sensors against the edge's MQTT driver
// through the embedded NATS server's MQTT listener.
func TestAgainstDriver(t *testing.T) {
	bus, err := natsbus.Start(natsbus.Config{Name: "gatehouse-mqttsim-test", StoreDir: t.TempDir(), Port: -1, MQTTPort: -1, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Shutdown)
	url := "tcp://" + bus.MQTTAddr()
	devices := garage("150ms", "1s")

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })

	sink := &recorder{}
	var mqttDevices []edge.Device
	for _, d := range devices {
		if d.Protocol == "mqtt" {
			mqttDevices = append(mqttDevices, d)
		}
	}
	drv, err := mqtt.New(mqtt.Config{Devices: mqttDevices, Spots: spots, Sink: sink, Logger: testLogger(t), BrokerURL: url, ClientID: "gatehouse-mqttsim-test"})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); drv.Run(ctx) }()

	s, err := New(devices, url, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	simDevs := s.Devices()
	wg.Add(1)
	go func() { defer wg.Done(); simDevs.Run(ctx) }()

	// On connect every sensor reports: free.
	for _, id := range []string{"s-json", "s-cs", "s-raw"} {
		sink.last(t, id, edge.SpotChanged, false)
	}
	for _, id := range []string{"s-json", "s-cs", "s-raw"} {
		simDevs.Spots[id].SetOccupied(true)
		sink.last(t, id, edge.SpotChanged, true)
		simDevs.Spots[id].SetOccupied(false)
		sink.last(t, id, edge.SpotChanged, false)
	}
	// Heartbeats keep coming without a change.
	before := counter(t, drv, "s-cs", mqtt.CounterMessages)
	waitCounter(t, drv, "s-cs", mqtt.CounterMessages, before+3)

	raw, _ := s.Sensor("s-raw")
	raw.SetOffline(true)
	sink.last(t, "s-raw", edge.DeviceHealth, false)
	raw.SetOccupied(true) // unseen while offline
	raw.SetOffline(false)
	sink.last(t, "s-raw", edge.DeviceHealth, true)
	sink.last(t, "s-raw", edge.SpotChanged, true)

	for _, id := range []string{"s-json", "s-cs"} {
		x, _ := s.Sensor(id)
		x.SetGarbage(true)
		waitCounter(t, drv, id, mqtt.CounterMalformed, 3) // one of each kind
		x.SetGarbage(false)
	}
	for _, st := range drv.Status() {
		if st.Counters[mqtt.CounterMalformed] > 0 && st.ID == "s-raw" {
			t.Errorf("s-raw malformed = %d; want 0", st.Counters[mqtt.CounterMalformed])
		}
	}
	if n := drv.Counters()[mqtt.CounterUnknownTopic]; n != 0 {
		t.Errorf("unknown_topic = %d; want 0", n)
	}
}
