package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/edge/boltstore"
	"github.com/gatehouse-parking/gatehouse/edge/natsbus"
	"github.com/gatehouse-parking/gatehouse/edge/natsync"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// hubCredentials is the file `gatehouse-cloud facility add` issues for a garage
// (natshub.GarageCredentials in the cloud; the edge does not import the cloud's
// packages, so the wire format is repeated here).
type hubCredentials struct {
	Facility    string `json:"facility"`
	URL         string `json:"url"`
	User        string `json:"user"`
	Password    string `json:"password"`
	HubDomain   string `json:"hub_domain"`
	InboxPrefix string `json:"inbox_prefix"`
}

// loadHubCredentials reads an issued credentials file and checks that it belongs to
// facility.
func loadHubCredentials(path, facility string, log *slog.Logger) (*hubCredentials, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("hub credentials: %w", err)
	}
	var c hubCredentials
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("hub credentials %s: %w", path, err)
	}
	switch {
	case c.Facility != facility:
		return nil, fmt.Errorf("hub credentials %s are for facility %q, but the config is facility %q: issue this garage's with `gatehouse-cloud facility add %s`",
			path, c.Facility, facility, facility)
	case c.URL == "":
		return nil, fmt.Errorf("hub credentials %s have no hub URL: they were issued before the hub first started; issue them again", path)
	case c.User == "" || c.Password == "" || c.InboxPrefix == "":
		return nil, fmt.Errorf("hub credentials %s: user, password and inbox_prefix are required", path)
	}
	if c.HubDomain == "" {
		c.HubDomain = "hub"
	}
	if _, err := c.remoteURL(); err != nil {
		return nil, fmt.Errorf("hub credentials %s: %w", path, err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		log.Warn("hub credentials file is readable by other users; chmod 600 it", "path", path, "mode", st.Mode().Perm())
	}
	return &c, nil
}

// remoteURL is the leaf remote's URL: the hub's URL with the user and password as
// user info.
func (c *hubCredentials) remoteURL() (string, error) {
	u, err := url.Parse(c.URL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("hub URL %q: want nats-leaf://host:port or tls://host:port", c.URL)
	}
	u.User = url.UserPassword(c.User, c.Password)
	return u.String(), nil
}

// startBus starts the edge's own NATS server when the garage needs one: for the MQTT
// listener (MQTT devices and no external broker) and as the leaf node of the cloud hub
// (hub credentials given). One server serves both. It returns nil when neither is
// needed.
func startBus(f *edge.Facility, fl *runFlags, hub *hubCredentials, log *slog.Logger) (*natsbus.Bus, error) {
	if hub == nil && fl.hubCA != "" {
		return nil, errors.New("--hub-ca without --hub-credentials: the CA is for the hub's TLS certificate")
	}
	mqttListener := len(f.DevicesByProtocol()["mqtt"]) > 0 && fl.mqttBroker == ""
	if !mqttListener && hub == nil {
		return nil, nil
	}
	cfg := natsbus.Config{Name: "gatehouse-" + f.ID, StoreDir: filepath.Join(fl.data, "nats"),
		Host: "127.0.0.1", Port: -1, Logger: log.With("component", "nats")}
	if mqttListener {
		cfg.MQTTPort = fl.mqttPort
	}
	if hub != nil {
		u, err := hub.remoteURL()
		if err != nil {
			return nil, err
		}
		// The garage's own JetStream domain, never "hub": clients address the hub's
		// JetStream by its domain across the leaf.
		cfg.HubURL, cfg.JetStreamDomain, cfg.HubCA = u, "fac-"+f.ID, fl.hubCA
	}
	bus, err := natsbus.Start(cfg)
	if err != nil {
		if mqttListener {
			return nil, fmt.Errorf("embedded MQTT listener: %w", err)
		}
		return nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	return bus, nil
}

// hubLink is the garage's sync with the cloud over its bus's leaf connection: the
// uplink of the outbox, the downlink of documents and the live commands. None of it is
// on the lanes' path: with the hub away the garage runs as before and the uplink
// catches up later.
type hubLink struct {
	g    *edge.Garage
	bus  *natsbus.Bus
	nc   *nats.Conn
	up   *natsync.Uplink
	down *natsync.Downlink
	cmds *natsync.Commands
	log  *slog.Logger
}

// statusEvery is how often the link logs the uplink's status while nothing changes.
const statusEvery = time.Minute

func newHubLink(bus *natsbus.Bus, hub *hubCredentials, g *edge.Garage, store *boltstore.Store, log *slog.Logger) (*hubLink, error) {
	log = log.With("component", "sync")
	id := g.Facility().ID
	// The hub lets a garage receive replies (JetStream acknowledgements, consumer
	// deliveries) only on its own inbox prefix.
	nc, err := nats.Connect(bus.ClientURL(), nats.Name("gatehouse-edge-sync-"+id),
		nats.CustomInboxPrefix(hub.InboxPrefix), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("connect to the edge's NATS server: %w", err)
	}
	l := &hubLink{g: g, bus: bus, nc: nc, log: log}
	l.up = &natsync.Uplink{Facility: id, Conn: nc, Domain: hub.HubDomain, Outbox: store, Logger: log.With("part", "uplink")}
	l.down = &natsync.Downlink{Facility: id, Conn: nc, Domain: hub.HubDomain, Garage: g, Logger: log.With("part", "downlink"),
		Applied: func(kind string, version uint64) {
			log.Info("downlink document applied", "kind", kind, "version", version)
		}}
	l.cmds = &natsync.Commands{Facility: id, Conn: nc, Garage: g, Uplink: l.up, Logger: log.With("part", "commands")}
	return l, nil
}

// register adds the uplink's gauges to reg.
func (l *hubLink) register(reg prometheus.Registerer) {
	gauge := func(name, help string, fn func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn)
	}
	reg.MustRegister(
		gauge("gatehouse_hub_connected", "1 while the leaf connection to the cloud hub is up.", func() float64 {
			if l.bus.LeafConnected() {
				return 1
			}
			return 0
		}),
		gauge("gatehouse_uplink_cursor", "Highest seq the hub has acknowledged.", func() float64 { return float64(l.up.Status().Cursor) }),
		gauge("gatehouse_uplink_lag_events", "Events in the outbox not yet acknowledged by the hub (garage seq - cursor).",
			func() float64 { return float64(l.lag(l.up.Status())) }),
		gauge("gatehouse_uplink_last_ack_timestamp_seconds", "When the hub last acknowledged events (Unix time; 0: not since start).",
			func() float64 {
				if t := l.up.Status().LastAck; !t.IsZero() {
					return float64(t.UnixNano()) / 1e9
				}
				return 0
			}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gatehouse_uplink_acked_total", Help: "Events the hub acknowledged since start."},
			func() float64 { return float64(l.up.Status().Acked) }),
	)
}

func (l *hubLink) lag(s natsync.UplinkStatus) uint64 {
	if seq := l.g.Seq(); seq > s.Cursor {
		return seq - s.Cursor
	}
	return 0
}

// run runs the uplink, the downlink and the commands until ctx is done, restarting a
// part that fails after a pause, and logs the link's status.
func (l *hubLink) run(ctx context.Context) {
	var wg sync.WaitGroup
	for name, fn := range map[string]func(context.Context) error{"uplink": l.up.Run, "downlink": l.down.Run, "commands": l.cmds.Run} {
		wg.Go(func() {
			for ctx.Err() == nil {
				err := fn(ctx)
				if ctx.Err() != nil {
					return
				}
				l.log.Error("sync stopped; restarting", "part", name, "err", err, "in", 5*time.Second)
				select {
				case <-ctx.Done():
				case <-time.After(5 * time.Second):
				}
			}
		})
	}
	wg.Go(func() { l.report(ctx) })
	wg.Wait()
}

// report logs the leaf connection going up and down, and the uplink's status when it
// changes and at least every statusEvery.
func (l *hubLink) report(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	connected, lastLog := false, time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		up := l.bus.LeafConnected()
		if up != connected {
			connected = up
			if up {
				l.log.Info("connected to the cloud hub")
			} else {
				l.log.Warn("disconnected from the cloud hub; the garage runs on, the uplink catches up on reconnect")
			}
			lastLog = time.Time{}
		}
		if time.Since(lastLog) >= statusEvery {
			l.logStatus()
			lastLog = time.Now()
		}
	}
}

func (l *hubLink) logStatus() {
	s := l.up.Status()
	args := []any{"hub_connected", l.bus.LeafConnected(), "seq", l.g.Seq(), "cursor", s.Cursor, "lag", l.lag(s), "acked", s.Acked}
	if !s.LastAck.IsZero() {
		args = append(args, "last_ack", s.LastAck.UTC().Format(time.RFC3339Nano))
	}
	if s.LastError != "" {
		args = append(args, "last_error", s.LastError)
	}
	l.log.Info("uplink", args...)
}

// drainQuiet is how long the garage's seq must stay put, everything shipped, for the
// drain to end: barriers still moving and lane timers may write a last event or two
// after the lanes were told to stop.
const drainQuiet = 300 * time.Millisecond

// drain waits up to timeout for the uplink to ship what the garage wrote, so that a
// garage stopped while the hub is reachable leaves nothing behind for its next start.
func (l *hubLink) drain(timeout time.Duration) {
	if timeout <= 0 || !l.bus.LeafConnected() {
		return
	}
	deadline := time.Now().Add(timeout)
	seq, quietSince := l.g.Seq(), time.Now()
	for time.Now().Before(deadline) && l.bus.LeafConnected() {
		if s := l.g.Seq(); s != seq {
			seq, quietSince = s, time.Now()
		}
		if l.lag(l.up.Status()) == 0 && time.Since(quietSince) >= drainQuiet {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.logStatus()
}

func (l *hubLink) close() { l.nc.Close() }
