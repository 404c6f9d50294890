// Package mqttsim simulates wireless spot sensors that report over MQTT: sensors that
// publish their own JSON and LoRaWAN sensors seen through a ChirpStack v4 network
// server (uplink events with a base64 FRMPayload and the codec's decoded object).
// They publish to a real broker (the edge's embedded NATS MQTT listener or any other)
// with QoS 1, a reading on every change and a heartbeat every "heartbeat" (option,
// default 60s), and can be taken offline or made to send garbage.
//
// The payloads are written here, independently of the edge driver
// (firmware-adapters/mqtt), so that a test of one against the other checks the
// formats rather than a shared encoder.
package mqttsim

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/sim"
)

// DefaultHeartbeat is how often a sensor reports when nothing changes.
const DefaultHeartbeat = 60 * time.Second

// Device options the simulator reads; the edge driver reads the same keys.
const (
	optHeartbeat = "heartbeat"
	optField     = "field"
	optByte      = "byte"
	optBit       = "bit"
	optDevEUI    = "dev_eui"
)

const (
	publishWait = 5 * time.Second
	maxBackoff  = 30 * time.Second
	// battery is the voltage every simulated sensor reports (decivolts in raw data).
	battery = 3.6
)

// Sim is a set of simulated MQTT spot sensors sharing one broker connection.
type Sim struct {
	url     string
	log     *slog.Logger
	sensors map[string]*Sensor
	order   []*Sensor

	mu     sync.Mutex
	client paho.Client // nil unless Run is connected
}

// Sensor is one simulated spot sensor. It implements sim.Spot and sim.Faulty.
type Sensor struct {
	s         *Sim
	id, topic string
	chirp     bool
	field     []string
	raw       bool
	byteIdx   int
	bit       uint
	heartbeat time.Duration
	devEUI    string
	appID     string

	// pubMu keeps a sensor's messages in the order their states happened.
	pubMu    sync.Mutex
	mu       sync.Mutex
	occupied bool
	offline  bool
	garbage  bool
	fCnt     uint32
	junk     int // which garbage comes next
}

var (
	_ sim.Spot   = (*Sensor)(nil)
	_ sim.Faulty = (*Sensor)(nil)
)

// New builds the simulated sensors of devices (those of protocol mqtt and kind
// spot_sensor; others are ignored) for the broker at brokerURL
// (tcp://host:port). Run connects them.
func New(devices []edge.Device, brokerURL string, logger *slog.Logger) (*Sim, error) {
	if brokerURL == "" {
		return nil, errors.New("mqttsim: no broker URL")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Sim{url: brokerURL, log: logger.With("sim", "mqtt"), sensors: map[string]*Sensor{}}
	for _, d := range devices {
		if d.Protocol != "mqtt" || d.Kind != edge.KindSpotSensor {
			continue
		}
		x, err := newSensor(s, d)
		if err != nil {
			return nil, fmt.Errorf("mqttsim: device %s: %w", d.ID, err)
		}
		s.sensors[d.ID] = x
		s.order = append(s.order, x)
	}
	return s, nil
}

func newSensor(s *Sim, d edge.Device) (*Sensor, error) {
	if d.Address == "" || strings.ContainsAny(d.Address, "+#") {
		return nil, fmt.Errorf("address %q is not a topic", d.Address)
	}
	x := &Sensor{s: s, id: d.ID, topic: d.Address, field: []string{"occupied"}, heartbeat: DefaultHeartbeat}
	switch d.Profile {
	case "", "json":
	case "chirpstack":
		x.chirp = true
	default:
		return nil, fmt.Errorf("profile %q: want json or chirpstack", d.Profile)
	}
	if v, ok := d.Options[optHeartbeat]; ok {
		h, err := time.ParseDuration(v)
		if err != nil || h <= 0 {
			return nil, fmt.Errorf("option heartbeat %q: want a positive duration", v)
		}
		x.heartbeat = h
	}
	if v, ok := d.Options[optField]; ok && v != "" {
		x.field = strings.Split(v, ".")
	}
	if v, ok := d.Options[optByte]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 255 {
			return nil, fmt.Errorf("option byte %q: want 0..255", v)
		}
		x.raw, x.byteIdx = true, n
	}
	if v, ok := d.Options[optBit]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 7 {
			return nil, fmt.Errorf("option bit %q: want 0..7", v)
		}
		x.bit = uint(n)
	}
	// A ChirpStack topic names the application and the device.
	parts := strings.Split(d.Address, "/")
	if len(parts) == 6 && parts[0] == "application" && parts[2] == "device" {
		x.appID, x.devEUI = parts[1], parts[3]
	}
	if v := d.Options[optDevEUI]; v != "" {
		x.devEUI = v
	}
	if x.devEUI == "" {
		h := fnv.New64a()
		h.Write([]byte(d.ID))
		x.devEUI = fmt.Sprintf("%016x", h.Sum64())
	}
	if x.appID == "" {
		x.appID = "0b1c2d3e-4f50-4a61-8b72-9c8d7e6f5a4b"
	}
	return x, nil
}

// Devices returns the sensors for the traffic model.
func (s *Sim) Devices() sim.Devices {
	spots := make(map[string]sim.Spot, len(s.sensors))
	for id, x := range s.sensors {
		spots[id] = x
	}
	return sim.Devices{Spots: spots, Run: s.Run}
}

// Sensor returns the sensor with the given device id, for fault injection.
func (s *Sim) Sensor(id string) (*Sensor, bool) {
	x, ok := s.sensors[id]
	return x, ok
}

// Run connects to the broker and keeps the connection (paho reconnects with backoff),
// reports every sensor's state on each connect and sends each sensor's heartbeat,
// until ctx is done.
func (s *Sim) Run(ctx context.Context) error {
	opts := paho.NewClientOptions().
		AddBroker(s.url).
		SetClientID(clientID()).
		SetCleanSession(true).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(maxBackoff).
		SetConnectTimeout(10 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetOnConnectHandler(func(paho.Client) {
			// Sensors report on (re)connection, as they do on boot or rejoin.
			for _, x := range s.order {
				go x.report()
			}
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			s.log.Warn("connection to broker lost", "err", err)
		})
	c := paho.NewClient(opts)
	s.mu.Lock()
	s.client = c // before Connect: the on-connect reports need it
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.client = nil
		s.mu.Unlock()
	}()
	for backoff := 500 * time.Millisecond; ; backoff = min(2*backoff, maxBackoff) {
		tok := c.Connect()
		select {
		case <-tok.Done():
		case <-ctx.Done():
			go func() { <-tok.Done(); c.Disconnect(0) }()
			return nil
		}
		if tok.Error() == nil {
			break
		}
		s.log.Warn("cannot connect to broker", "err", tok.Error(), "retry_in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
	}
	s.log.Info("sensors connected", "sensors", len(s.order))

	var wg sync.WaitGroup
	for _, x := range s.order {
		wg.Add(1)
		go func() { defer wg.Done(); x.beat(ctx) }()
	}
	<-ctx.Done()
	wg.Wait()
	c.Disconnect(250)
	return nil
}

// clientID is unique per run: the simulator needs no session of its own.
func clientID() string {
	var b [6]byte
	rand.Read(b[:])
	return "gatehouse-sim-" + hex.EncodeToString(b[:])
}

// beat sends the sensor's heartbeat until ctx is done, the first one after an
// offset taken from its id so that a garage's sensors do not report in step.
func (x *Sensor) beat(ctx context.Context) {
	h := fnv.New32a()
	h.Write([]byte(x.id))
	first := time.Duration(h.Sum32()) % x.heartbeat
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		x.mu.Lock()
		garbage := x.garbage
		x.mu.Unlock()
		if garbage {
			x.sendGarbage()
		} else {
			x.report()
		}
		t.Reset(x.heartbeat)
	}
}

// SetOccupied implements sim.Spot: the sensor publishes its new state at once.
func (x *Sensor) SetOccupied(on bool) {
	x.mu.Lock()
	x.occupied = on
	x.mu.Unlock()
	x.report()
}

// SetOffline implements sim.Faulty: an offline sensor publishes nothing; back
// online it reports its state at once.
func (x *Sensor) SetOffline(off bool) {
	x.mu.Lock()
	x.offline = off
	x.mu.Unlock()
	if !off {
		x.report()
	}
}

// SetGarbage implements sim.Faulty: the sensor publishes one malformed payload now
// and then one in place of each heartbeat, until turned off. State changes are still
// reported correctly.
func (x *Sensor) SetGarbage(on bool) {
	x.mu.Lock()
	x.garbage = on
	x.mu.Unlock()
	if on {
		x.sendGarbage()
	}
}

// Occupied reports the sensor's simulated state.
func (x *Sensor) Occupied() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.occupied
}

// report publishes the sensor's current state in its profile's format.
func (x *Sensor) report() {
	x.pubMu.Lock()
	defer x.pubMu.Unlock()
	x.mu.Lock()
	if x.offline {
		x.mu.Unlock()
		return
	}
	x.fCnt++
	payload := x.payload(x.occupied, x.fCnt, time.Now())
	x.mu.Unlock()
	x.publish(payload)
}

// sendGarbage publishes the next of a few malformed payloads.
func (x *Sensor) sendGarbage() {
	x.pubMu.Lock()
	defer x.pubMu.Unlock()
	x.mu.Lock()
	if x.offline {
		x.mu.Unlock()
		return
	}
	payload := x.garbagePayload(x.junk)
	x.junk++
	x.mu.Unlock()
	x.publish(payload)
}

func (x *Sensor) publish(payload []byte) {
	x.s.mu.Lock()
	c := x.s.client
	x.s.mu.Unlock()
	if c == nil || !c.IsConnectionOpen() {
		return // reported again on connect
	}
	tok := c.Publish(x.topic, 1, false, payload)
	if !tok.WaitTimeout(publishWait) {
		x.s.log.Warn("publish not acknowledged", "sensor", x.id, "topic", x.topic)
	} else if err := tok.Error(); err != nil {
		x.s.log.Warn("publish failed", "sensor", x.id, "topic", x.topic, "err", err)
	}
}

// payload is one reading in the sensor's format.
func (x *Sensor) payload(occupied bool, fCnt uint32, now time.Time) []byte {
	if !x.chirp {
		m := map[string]any{"battery": battery, "ts": now.UTC().Format(time.RFC3339Nano)}
		setPath(m, x.field, x.value(occupied))
		b, _ := json.Marshal(m)
		return b
	}
	up := x.uplink(occupied, fCnt, now)
	b, _ := json.Marshal(up)
	return b
}

// value is the occupancy as a codec reports it: a boolean for the usual "occupied",
// 0/1 for any other field (as the carStatus of many vendors' codecs).
func (x *Sensor) value(occupied bool) any {
	if len(x.field) == 1 && x.field[0] == "occupied" {
		return occupied
	}
	if occupied {
		return 1
	}
	return 0
}

func setPath(m map[string]any, path []string, v any) {
	for _, name := range path[:len(path)-1] {
		inner, ok := m[name].(map[string]any)
		if !ok {
			inner = map[string]any{}
			m[name] = inner
		}
		m = inner
	}
	m[path[len(path)-1]] = v
}

// frame is the FRMPayload: byte 0 bit 0 occupancy, byte 1 battery in decivolts; a
// sensor configured with byte/bit (no codec) carries occupancy there instead.
func (x *Sensor) frame(occupied bool) []byte {
	n := 2
	if x.raw && x.byteIdx+1 > n {
		n = x.byteIdx + 1
	}
	data := make([]byte, n)
	data[1] = byte(battery * 10)
	idx, bit := 0, uint(0)
	if x.raw {
		idx, bit = x.byteIdx, x.bit
		if idx == 1 {
			data[1] = 0
		}
	}
	if occupied {
		data[idx] |= 1 << bit
	}
	return data
}

// chirpstackUplink is a ChirpStack v4 "up" event in its JSON encoding, field for
// field as the network server publishes it.
type chirpstackUplink struct {
	DeduplicationID string         `json:"deduplicationId"`
	Time            string         `json:"time"`
	DeviceInfo      deviceInfo     `json:"deviceInfo"`
	DevAddr         string         `json:"devAddr"`
	ADR             bool           `json:"adr"`
	DR              int            `json:"dr"`
	FCnt            uint32         `json:"fCnt"`
	FPort           int            `json:"fPort"`
	Confirmed       bool           `json:"confirmed"`
	Data            string         `json:"data"`
	Object          map[string]any `json:"object,omitempty"`
	RxInfo          []rxInfo       `json:"rxInfo"`
	TxInfo          txInfo         `json:"txInfo"`
}

type deviceInfo struct {
	TenantID           string            `json:"tenantId"`
	TenantName         string            `json:"tenantName"`
	ApplicationID      string            `json:"applicationId"`
	ApplicationName    string            `json:"applicationName"`
	DeviceProfileID    string            `json:"deviceProfileId"`
	DeviceProfileName  string            `json:"deviceProfileName"`
	DeviceName         string            `json:"deviceName"`
	DevEUI             string            `json:"devEui"`
	DeviceClassEnabled string            `json:"deviceClassEnabled"`
	Tags               map[string]string `json:"tags"`
}

type rxInfo struct {
	GatewayID string         `json:"gatewayId"`
	UplinkID  uint32         `json:"uplinkId"`
	RSSI      int            `json:"rssi"`
	SNR       float64        `json:"snr"`
	Channel   int            `json:"channel"`
	Location  map[string]any `json:"location"`
	Context   string         `json:"context"`
	CRCStatus string         `json:"crcStatus"`
}

type txInfo struct {
	Frequency  int `json:"frequency"`
	Modulation struct {
		LoRa struct {
			Bandwidth       int    `json:"bandwidth"`
			SpreadingFactor int    `json:"spreadingFactor"`
			CodeRate        string `json:"codeRate"`
		} `json:"lora"`
	} `json:"modulation"`
}

func (x *Sensor) uplink(occupied bool, fCnt uint32, now time.Time) chirpstackUplink {
	var rnd [24]byte
	rand.Read(rnd[:])
	uuid := rnd[:16]
	uuid[6] = uuid[6]&0x0f | 0x40
	uuid[8] = uuid[8]&0x3f | 0x80
	u := hex.EncodeToString(uuid)
	channel := int(rnd[16] % 8)
	devAddr := fnv.New32a()
	devAddr.Write([]byte(x.devEUI))

	up := chirpstackUplink{
		DeduplicationID: u[0:8] + "-" + u[8:12] + "-" + u[12:16] + "-" + u[16:20] + "-" + u[20:],
		Time:            now.UTC().Format(time.RFC3339Nano),
		DeviceInfo: deviceInfo{
			TenantID:           "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
			TenantName:         "ChirpStack",
			ApplicationID:      x.appID,
			ApplicationName:    "gatehouse-sim",
			DeviceProfileID:    "14855bf7-d10d-4aee-b618-ebfcb64dc7ad",
			DeviceProfileName:  "spot sensor",
			DeviceName:         x.id,
			DevEUI:             x.devEUI,
			DeviceClassEnabled: "CLASS_A",
			Tags:               map[string]string{},
		},
		DevAddr: fmt.Sprintf("%08x", devAddr.Sum32()&0x01ffffff),
		ADR:     true,
		DR:      5,
		FCnt:    fCnt,
		FPort:   1,
		Data:    base64.StdEncoding.EncodeToString(x.frame(occupied)),
		RxInfo: []rxInfo{{
			GatewayID: "0016c001f153a14c",
			UplinkID:  binary.BigEndian.Uint32(rnd[17:21]),
			RSSI:      -60 - int(rnd[21]%50),
			SNR:       float64(int(rnd[22]%40)-20) / 2,
			Channel:   channel,
			Location:  map[string]any{},
			Context:   base64.StdEncoding.EncodeToString(rnd[20:24]),
			CRCStatus: "CRC_OK",
		}},
	}
	up.TxInfo.Frequency = 868100000 + 200000*channel
	up.TxInfo.Modulation.LoRa.Bandwidth = 125000
	up.TxInfo.Modulation.LoRa.SpreadingFactor = 7
	up.TxInfo.Modulation.LoRa.CodeRate = "CR_4_5"
	if !x.raw {
		// The codec decodes the frame: occupancy and battery.
		up.Object = map[string]any{"battery": battery}
		setPath(up.Object, x.field, x.value(occupied))
	}
	return up
}

// garbagePayload is the n-th malformed message: broken JSON, a wrong type, bad
// base64 or binary noise, in turn.
func (x *Sensor) garbagePayload(n int) []byte {
	field := strings.Join(x.field, ".")
	switch n % 3 {
	case 0:
		return []byte(`{"` + field + `": tru`)
	case 1:
		m := map[string]any{}
		setPath(m, x.field, "maybe")
		if x.chirp {
			m = map[string]any{"deviceInfo": map[string]any{"devEui": x.devEUI}, "object": m}
		}
		b, _ := json.Marshal(m)
		return b
	default:
		if x.chirp {
			return []byte(`{"deviceInfo":{"devEui":"` + x.devEUI + `"},"fPort":1,"data":"@@not base64@@"}`)
		}
		return []byte{0x00, 0xff, 0x13, 0x37, '{'}
	}
}
