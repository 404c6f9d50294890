package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// Config configures a Driver.
type Config struct {
	// Devices are the spot sensors to serve (protocol mqtt, kind spot_sensor).
	Devices []edge.Device
	// Spots maps each sensor's device id to the spot it watches
	// (edge.Facility.SpotOfSensor); every device needs one.
	Spots map[string]string
	// Sink receives the devices' events.
	Sink edge.Sink
	// Logger receives the driver's log; nil discards it.
	Logger *slog.Logger
	// BrokerURL is the broker, e.g. tcp://127.0.0.1:1883 (ssl://, ws:// work too).
	BrokerURL string
	// ClientID identifies the persistent session at the broker. It must be stable
	// across restarts (or messages queued for the edge are lost) and unique per
	// broker (two clients with one id take the session from each other), e.g.
	// "gatehouse-<facility>-sensors". Required.
	ClientID string
	// Username and Password authenticate at the broker, if it asks.
	Username, Password string
}

// Option names a device may carry (edge.Device.Options).
const (
	OptField     = "field"
	OptSilence   = "silence"
	OptByte      = "byte"
	OptBit       = "bit"
	OptDevEUI    = "dev_eui"
	OptHeartbeat = "heartbeat"
)

// Defaults of the device options.
const (
	DefaultField   = "occupied"
	DefaultSilence = 15 * time.Minute
)

// Counter names in edge.DeviceStatus.Counters and Driver.Counters.
const (
	// CounterMessages counts every message received on a device's topic.
	CounterMessages = "messages"
	// CounterMalformed counts messages that could not be read (broken JSON, wrong
	// types, bad base64, a ChirpStack uplink of another devEui).
	CounterMalformed = "malformed"
	// CounterNoOccupancy counts well-formed messages without an occupancy value
	// (heartbeats, status frames): many of them hint at a wrong "field" option.
	CounterNoOccupancy = "no_occupancy"
	// CounterUnknownTopic counts messages on topics that no device owns, e.g. from
	// subscriptions a persistent session kept from an older configuration. Such a
	// message belongs to no device, so it is a driver counter.
	CounterUnknownTopic = "unknown_topic"
	// CounterConnects counts successful connections (and reconnections) to the broker.
	CounterConnects = "connects"
	// CounterConnectFailures counts failed connection attempts and lost connections.
	CounterConnectFailures = "connect_failures"
)

// Health details.
const (
	detailBroker    = "broker unreachable"
	detailSubscribe = "broker refused the subscription"
)

// Timing of the connection.
const (
	keepAlive       = 30 * time.Second
	connectTimeout  = 10 * time.Second
	maxBackoff      = 30 * time.Second
	subscribeWait   = 10 * time.Second
	logEvery        = time.Minute
	disconnectQuiet = 250 // ms paho may spend finishing work on Disconnect
)

// Driver serves MQTT spot sensors. It implements edge.Driver.
type Driver struct {
	cfg     Config
	log     *slog.Logger
	devices []*device // in configuration order
	byTopic map[string]*device
	tick    time.Duration
	running atomic.Bool

	// deliverMu serialises every change of state with the delivery of its events, so
	// that each device's events reach the sink in the order they happened. It is
	// taken before mu; the sink is called without mu, so it may call Status.
	deliverMu sync.Mutex

	mu          sync.Mutex
	connected   bool      // subscribed on a live connection
	brokerDown  bool      // the last attempt failed or the connection was lost
	connectedAt time.Time // when the current connection was subscribed
	counters    map[string]uint64
	unknownLog  limiter
}

var _ edge.Driver = (*Driver)(nil)

// device is one sensor and what the driver knows of it; mutable fields are guarded
// by Driver.mu.
type device struct {
	cfg     edge.Device
	spot    string
	prof    profile
	silence time.Duration

	lastContact time.Time
	known       bool // a reading has been delivered
	occupied    bool
	healthy     bool // as last reported to the sink
	detail      string
	subRefused  bool
	counters    map[string]uint64
	malformLog  limiter
}

// New checks the configuration and returns a driver; Run connects it.
func New(cfg Config) (*Driver, error) {
	if cfg.Sink == nil {
		return nil, errors.New("mqtt: no sink")
	}
	if cfg.ClientID == "" {
		return nil, errors.New("mqtt: no client id: a persistent session needs a stable one")
	}
	u, err := url.Parse(cfg.BrokerURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("mqtt: broker URL %q: want scheme://host:port", cfg.BrokerURL)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Driver{
		cfg:      cfg,
		log:      log.With("driver", "mqtt", "broker", u.Redacted()),
		byTopic:  map[string]*device{},
		tick:     5 * time.Second,
		counters: map[string]uint64{},
	}
	for _, dc := range cfg.Devices {
		dev, err := newDevice(dc, cfg.Spots)
		if err != nil {
			return nil, fmt.Errorf("mqtt: device %s: %w", dc.ID, err)
		}
		if other, dup := d.byTopic[dev.cfg.Address]; dup {
			return nil, fmt.Errorf("mqtt: devices %s and %s share topic %q", other.cfg.ID, dc.ID, dc.Address)
		}
		d.byTopic[dev.cfg.Address] = dev
		d.devices = append(d.devices, dev)
		d.tick = min(d.tick, max(dev.silence/10, 10*time.Millisecond))
	}
	if len(d.devices) == 0 {
		return nil, errors.New("mqtt: no devices")
	}
	return d, nil
}

func newDevice(dc edge.Device, spots map[string]string) (*device, error) {
	if dc.Protocol != "mqtt" {
		return nil, fmt.Errorf("protocol %q is not mqtt", dc.Protocol)
	}
	if dc.Kind != edge.KindSpotSensor {
		return nil, fmt.Errorf("kind %q: the mqtt driver serves spot sensors only", dc.Kind)
	}
	if dc.Address == "" || strings.ContainsAny(dc.Address, "+#") {
		return nil, fmt.Errorf("address %q: want the sensor's topic, without wildcards", dc.Address)
	}
	spot, ok := spots[dc.ID]
	if !ok || spot == "" {
		return nil, errors.New("watches no spot (no spot names it as its sensor)")
	}
	dev := &device{
		cfg:      dc,
		spot:     spot,
		silence:  DefaultSilence,
		healthy:  true, // presumed, like the garage does, until the sensor is silent
		counters: map[string]uint64{CounterMessages: 0, CounterMalformed: 0, CounterNoOccupancy: 0},
	}
	p := &dev.prof
	switch dc.Profile {
	case "", ProfileJSON:
		p.name = ProfileJSON
	case ProfileChirpstack:
		p.name = ProfileChirpstack
		p.devEUI = devEUIOfTopic(dc.Address)
	default:
		return nil, fmt.Errorf("profile %q: want %s or %s", dc.Profile, ProfileJSON, ProfileChirpstack)
	}
	p.field = []string{DefaultField}
	for k, v := range dc.Options {
		switch k {
		case OptField:
			p.field = strings.Split(v, ".")
			for _, part := range p.field {
				if part == "" {
					return nil, fmt.Errorf("option field %q: empty name", v)
				}
			}
		case OptSilence:
			s, err := time.ParseDuration(v)
			if err != nil || s <= 0 {
				return nil, fmt.Errorf("option silence %q: want a positive duration such as 15m", v)
			}
			dev.silence = s
		case OptByte:
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 255 {
				return nil, fmt.Errorf("option byte %q: want 0..255", v)
			}
			p.raw, p.byteIdx = true, n
		case OptBit:
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 7 {
				return nil, fmt.Errorf("option bit %q: want 0..7", v)
			}
			p.bit = uint(n)
		case OptDevEUI:
			p.devEUI = v
		case OptHeartbeat:
			// The simulator's; a real sensor's heartbeat is its own setting.
		default:
			return nil, fmt.Errorf("unknown option %q", k)
		}
	}
	if p.name != ProfileChirpstack {
		for _, k := range []string{OptByte, OptBit, OptDevEUI} {
			if _, ok := dc.Options[k]; ok {
				return nil, fmt.Errorf("option %s applies to profile %s only", k, ProfileChirpstack)
			}
		}
	}
	if _, ok := dc.Options[OptBit]; ok && !p.raw {
		return nil, errors.New("option bit needs option byte")
	}
	return dev, nil
}

// devEUIOfTopic returns the devEui of a ChirpStack topic
// application/<appId>/device/<devEui>/event/up, or "".
func devEUIOfTopic(topic string) string {
	parts := strings.Split(topic, "/")
	if len(parts) == 6 && parts[0] == "application" && parts[2] == "device" && parts[4] == "event" {
		return parts[3]
	}
	return ""
}

// Run connects to the broker and serves until ctx is done. It retries the first
// connection with backoff; after that paho reconnects by itself (with backoff up to
// 30 s) and the session's subscriptions are renewed on every connect. While the
// broker is unreachable every device is reported unhealthy.
func (d *Driver) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("mqtt: driver already running")
	}
	defer d.running.Store(false)

	sess := &session{d: d}
	opts := paho.NewClientOptions().
		AddBroker(d.cfg.BrokerURL).
		SetClientID(d.cfg.ClientID).
		SetUsername(d.cfg.Username).
		SetPassword(d.cfg.Password).
		SetCleanSession(false).
		SetOrderMatters(true).
		SetAutoAckDisabled(true). // PUBACK only once the reading reached the sink
		SetKeepAlive(keepAlive).
		SetPingTimeout(10 * time.Second).
		SetConnectTimeout(connectTimeout).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(maxBackoff).
		SetDefaultPublishHandler(sess.message). // queued messages may come before SUBACK
		SetOnConnectHandler(sess.onConnect).
		SetConnectionLostHandler(sess.onLost)
	client := paho.NewClient(opts)

	backoff := 500 * time.Millisecond
	for {
		tok := client.Connect()
		select {
		case <-tok.Done():
		case <-ctx.Done():
			sess.stop()
			go func() { <-tok.Done(); client.Disconnect(0) }()
			return nil
		}
		if tok.Error() == nil {
			break
		}
		d.log.Warn("cannot connect to broker", "err", tok.Error(), "retry_in", backoff)
		d.brokerLost(time.Now())
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			sess.stop()
			return nil
		}
		backoff = min(2*backoff, maxBackoff)
	}

	t := time.NewTicker(d.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			sess.stop()
			client.Disconnect(disconnectQuiet)
			d.mu.Lock()
			d.connected = false
			d.mu.Unlock()
			return nil
		case now := <-t.C:
			d.deliverMu.Lock()
			d.mu.Lock()
			evs := d.healthEventsLocked(now)
			d.mu.Unlock()
			d.deliver(evs)
			d.deliverMu.Unlock()
		}
	}
}

// session ties paho's callbacks to one Run, so that a connection completing after
// Run returned cannot report anything.
type session struct {
	d       *Driver
	stopped atomic.Bool
}

func (s *session) stop() { s.stopped.Store(true) }

// message handles one message and acknowledges it. One arriving after Run was told
// to stop is left unacknowledged, so the broker delivers it again to the next session.
func (s *session) message(_ paho.Client, m paho.Message) {
	if s.stopped.Load() {
		return
	}
	s.d.handle(m.Topic(), m.Payload(), time.Now())
	m.Ack()
}

// onConnect (re)subscribes every topic with QoS 1; paho calls it in its own goroutine
// after each successful connect. Subscribing again is harmless when the broker kept
// the session, and needed when it did not (a broker restarted without persistence).
func (s *session) onConnect(c paho.Client) {
	d := s.d
	filters := make(map[string]byte, len(d.devices))
	for _, dev := range d.devices {
		filters[dev.cfg.Address] = 1
	}
	for wait := 500 * time.Millisecond; !s.stopped.Load() && c.IsConnectionOpen(); wait = min(2*wait, maxBackoff) {
		tok := c.SubscribeMultiple(filters, s.message)
		if !tok.WaitTimeout(subscribeWait) {
			d.log.Warn("subscribe timed out; retrying", "retry_in", wait)
		} else if err := tok.Error(); err != nil {
			d.log.Warn("subscribe failed; retrying", "err", err, "retry_in", wait)
		} else {
			var granted map[string]byte
			if st, ok := tok.(*paho.SubscribeToken); ok {
				granted = st.Result()
			}
			d.subscribed(granted, time.Now())
			return
		}
		time.Sleep(wait)
	}
}

func (s *session) onLost(_ paho.Client, err error) {
	if s.stopped.Load() {
		return
	}
	s.d.log.Warn("connection to broker lost; reconnecting", "err", err)
	s.d.brokerLost(time.Now())
}

// subscribed records a live, subscribed connection. granted holds the broker's
// answer per topic (0x80: refused).
func (d *Driver) subscribed(granted map[string]byte, now time.Time) {
	d.deliverMu.Lock()
	defer d.deliverMu.Unlock()
	d.mu.Lock()
	for _, dev := range d.devices {
		code, ok := granted[dev.cfg.Address]
		dev.subRefused = ok && code == 0x80
		if dev.subRefused {
			d.log.Error("broker refused subscription", "device", dev.cfg.ID, "topic", dev.cfg.Address)
		}
	}
	d.connected, d.brokerDown, d.connectedAt = true, false, now
	d.counters[CounterConnects]++
	evs := d.healthEventsLocked(now)
	d.mu.Unlock()
	d.log.Info("subscribed", "topics", len(d.devices))
	d.deliver(evs)
}

// brokerLost records a failed attempt or a lost connection.
func (d *Driver) brokerLost(now time.Time) {
	d.deliverMu.Lock()
	defer d.deliverMu.Unlock()
	d.mu.Lock()
	d.connected, d.brokerDown = false, true
	d.counters[CounterConnectFailures]++
	evs := d.healthEventsLocked(now)
	d.mu.Unlock()
	d.deliver(evs)
}

// handle reads one message.
func (d *Driver) handle(topic string, payload []byte, now time.Time) {
	d.deliverMu.Lock()
	defer d.deliverMu.Unlock()
	d.mu.Lock()
	dev, ok := d.byTopic[topic]
	if !ok {
		d.counters[CounterUnknownTopic]++
		if ok, n := d.unknownLog.allow(now); ok {
			d.log.Warn("message on a topic no device owns", "topic", topic, "suppressed", n)
		}
		d.mu.Unlock()
		return
	}
	dev.counters[CounterMessages]++
	r, err := dev.prof.decode(payload)
	if err != nil {
		dev.counters[CounterMalformed]++
		if ok, n := dev.malformLog.allow(now); ok {
			d.log.Warn("malformed sensor message", "device", dev.cfg.ID, "topic", topic,
				"err", err, "payload", clipString(string(payload)), "suppressed", n)
		}
		d.mu.Unlock()
		return
	}
	dev.lastContact = now
	var evs []edge.DeviceEvent
	if ev, changed := d.healthOf(dev, now); changed {
		evs = append(evs, ev)
	}
	if !r.hasOccupied {
		dev.counters[CounterNoOccupancy]++
	} else if !dev.known || dev.occupied != r.occupied {
		dev.known, dev.occupied = true, r.occupied
		evs = append(evs, edge.DeviceEvent{Device: dev.cfg.ID, Kind: edge.SpotChanged, At: now, Occupied: r.occupied, Code: dev.spot})
	}
	d.mu.Unlock()
	d.deliver(evs)
}

// healthEventsLocked re-evaluates every device.
func (d *Driver) healthEventsLocked(now time.Time) []edge.DeviceEvent {
	var evs []edge.DeviceEvent
	for _, dev := range d.devices {
		if ev, changed := d.healthOf(dev, now); changed {
			evs = append(evs, ev)
		}
	}
	return evs
}

// healthOf re-evaluates one device under d.mu and returns the DeviceHealth event when
// its health changed. Silence is counted from the last message or from the current
// connection, whichever is later: the sensor cannot be blamed for our outage.
func (d *Driver) healthOf(dev *device, now time.Time) (edge.DeviceEvent, bool) {
	healthy, detail := true, ""
	switch {
	case d.brokerDown:
		healthy, detail = false, detailBroker
	case d.connected && dev.subRefused:
		healthy, detail = false, detailSubscribe
	case d.connected:
		since := dev.lastContact
		if d.connectedAt.After(since) {
			since = d.connectedAt
		}
		if now.Sub(since) > dev.silence {
			healthy, detail = false, "silent for more than "+dev.silence.String()
		}
	}
	dev.detail = detail
	if healthy == dev.healthy {
		return edge.DeviceEvent{}, false
	}
	dev.healthy = healthy
	return edge.DeviceEvent{Device: dev.cfg.ID, Kind: edge.DeviceHealth, At: now, Healthy: healthy, Detail: detail}, true
}

// deliver logs the health changes among evs and hands the events to the sink; the
// caller holds deliverMu, not mu.
func (d *Driver) deliver(evs []edge.DeviceEvent) {
	var up, down int
	for _, ev := range evs {
		if ev.Kind == edge.DeviceHealth && ev.Healthy {
			up++
		} else if ev.Kind == edge.DeviceHealth {
			down++
		}
	}
	// A broker outage changes every sensor at once: one line then, not hundreds.
	const many = 5
	switch {
	case up+down > many && down > 0:
		d.log.Warn("sensors unhealthy", "count", down, "detail", evs[0].Detail)
	case up+down > many:
		d.log.Info("sensors healthy again", "count", up)
	case up+down > 0:
		for _, ev := range evs {
			if ev.Kind == edge.DeviceHealth && ev.Healthy {
				d.log.Info("sensor healthy again", "device", ev.Device)
			} else if ev.Kind == edge.DeviceHealth {
				d.log.Warn("sensor unhealthy", "device", ev.Device, "detail", ev.Detail)
			}
		}
	}
	for _, ev := range evs {
		d.cfg.Sink.Deliver(ev)
	}
}

// Status reports each device's health, last valid message and counters.
func (d *Driver) Status() []edge.DeviceStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]edge.DeviceStatus, 0, len(d.devices))
	for _, dev := range d.devices {
		c := make(map[string]uint64, len(dev.counters))
		for k, v := range dev.counters {
			c[k] = v
		}
		out = append(out, edge.DeviceStatus{
			ID:          dev.cfg.ID,
			Kind:        string(dev.cfg.Kind),
			Protocol:    dev.cfg.Protocol,
			Address:     dev.cfg.Address,
			Healthy:     dev.healthy,
			LastContact: dev.lastContact,
			Detail:      dev.detail,
			Counters:    c,
		})
	}
	return out
}

// Counters returns the driver's own counters, which belong to no device:
// unknown_topic, connects, connect_failures.
func (d *Driver) Counters() map[string]uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]uint64{CounterUnknownTopic: 0, CounterConnects: 0, CounterConnectFailures: 0}
	for k, v := range d.counters {
		out[k] = v
	}
	return out
}

// limiter lets one log line through per logEvery and counts the ones it held back.
type limiter struct {
	next       time.Time
	suppressed int
}

func (l *limiter) allow(now time.Time) (ok bool, suppressed int) {
	if now.Before(l.next) {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.next, l.suppressed = now.Add(logEvery), 0
	return true, n
}
