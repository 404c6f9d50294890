package modbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// ErrNotRunning is returned by a barrier command while the driver's Run is not active.
var ErrNotRunning = errors.New("modbus: driver not running")

// Config is what New needs.
type Config struct {
	// Devices are the facility's modbus_tcp and modbus_rtu devices.
	Devices []edge.Device
	// Spots maps spot sensor device ids to their spots (edge.Facility.SpotOfSensor).
	Spots map[string]string
	// Sink receives the device events.
	Sink   edge.Sink
	Logger *slog.Logger
	// ProfileDir, if set, holds extra profiles (*.yaml) beside the built-in ones; a
	// profile there replaces a built-in one of the same name.
	ProfileDir string
}

// Driver is the edge's Modbus TCP and RTU driver: it polls loops, barrier end stops
// and spot sensors, reports their changes to the sink and commands barriers. It
// implements edge.Driver.
type Driver struct {
	log      *slog.Logger
	sink     edge.Sink
	devices  []*device
	ports    []*port
	barriers map[string]edge.Barrier
	queue    eventQueue

	mu      sync.Mutex
	runDone chan struct{} // non-nil while Run runs; closed when it stops
	busy    bool          // PollOnce or Close has the ports
}

var _ edge.Driver = (*Driver)(nil)

// New checks the devices against their profiles and plans the polls. Its error lists
// every problem of every device.
func New(cfg Config) (*Driver, error) {
	if cfg.Sink == nil {
		return nil, errors.New("modbus: Config.Sink is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("driver", "modbus")
	profiles := BuiltinProfiles()
	if cfg.ProfileDir != "" {
		extra, err := LoadProfiles(cfg.ProfileDir)
		if err != nil {
			return nil, err
		}
		for name, p := range extra {
			if _, ok := profiles[name]; ok {
				log.Info("modbus: profile replaces the built-in one", "profile", name, "file", p.Source)
			}
		}
		maps.Copy(profiles, extra)
	}
	drv := &Driver{log: log, sink: cfg.Sink, barriers: map[string]edge.Barrier{}}
	drv.queue.init()

	var errs []error
	byPort := map[string][]*device{}
	var portOrder []string
	seen := map[string]bool{}
	for _, dc := range cfg.Devices {
		if seen[dc.ID] {
			errs = append(errs, fmt.Errorf("modbus: device %q: listed twice", dc.ID))
			continue
		}
		seen[dc.ID] = true
		b, err := Bind(dc, profiles)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		spot := ""
		if dc.Kind == edge.KindSpotSensor {
			spot = cfg.Spots[dc.ID]
			if spot == "" {
				log.Warn("modbus: spot sensor watches no spot; its reports will be ignored", "device", dc.ID)
			}
		}
		d := newDevice(b, spot)
		key := b.PortKey()
		if _, ok := byPort[key]; !ok {
			portOrder = append(portOrder, key)
		} else if first := byPort[key][0].bind; b.Device.Protocol == ProtocolRTU && first.Serial != b.Serial {
			errs = append(errs, fmt.Errorf("modbus: device %q: serial settings %+v differ from those of %q (%+v) on the same line",
				dc.ID, b.Serial, first.Device.ID, first.Serial))
			continue
		}
		byPort[key] = append(byPort[key], d)
		drv.devices = append(drv.devices, d)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, key := range portOrder {
		devs := byPort[key]
		first := devs[0].bind
		dial := tcpDialer(first.Device.Address)
		if first.Device.Protocol == ProtocolRTU {
			dial = rtuDialer(first.Device.Address, first.Serial)
		}
		p := newPort(key, dial, devs, log, drv.queue.push)
		drv.ports = append(drv.ports, p)
		for _, d := range devs {
			if d.bind.Device.Kind == edge.KindBarrier {
				drv.barriers[d.id()] = &Barrier{drv: drv, port: p, dev: d}
			}
		}
		log.Debug("modbus: port planned", "port", key, "devices", len(devs), "requests_per_cycle", len(p.blocks))
	}
	return drv, nil
}

// Run polls every port until ctx is done. A port that cannot connect is retried with
// backoff; its devices are reported unhealthy meanwhile. Run returns nil when ctx ends.
func (drv *Driver) Run(ctx context.Context) error {
	drv.mu.Lock()
	if drv.runDone != nil || drv.busy {
		drv.mu.Unlock()
		return errors.New("modbus: driver already running")
	}
	done := make(chan struct{})
	drv.runDone = done
	drv.mu.Unlock()
	defer func() {
		drv.mu.Lock()
		close(done)
		drv.runDone = nil
		drv.mu.Unlock()
	}()

	var wg sync.WaitGroup
	for _, p := range drv.ports {
		wg.Go(func() { p.run(ctx) })
	}
	stop, delivered := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(delivered)
		drv.queue.deliver(stop, drv.sink)
	}()
	wg.Wait()
	close(stop) // after the ports: their last events are still delivered
	<-delivered
	return nil
}

// PollOnce reads every device once, each port in parallel, and delivers what it saw
// before it returns. It is for one-shot checks and benchmarks, and fails while Run is
// running. Connections stay open for the next PollOnce or Run; Close closes them.
func (drv *Driver) PollOnce(ctx context.Context) error {
	if err := drv.acquire(); err != nil {
		return err
	}
	defer drv.release()
	errs := make([]error, len(drv.ports))
	var wg sync.WaitGroup
	for i, p := range drv.ports {
		wg.Go(func() { errs[i] = p.pollOnce(ctx) })
	}
	wg.Wait()
	drv.queue.drain(drv.sink)
	return errors.Join(errs...)
}

// Close closes the connections PollOnce left open. Run closes its own when it ends.
func (drv *Driver) Close() error {
	if err := drv.acquire(); err != nil {
		return err
	}
	defer drv.release()
	for _, p := range drv.ports {
		p.closeLink()
	}
	return nil
}

// acquire takes the ports for PollOnce or Close.
func (drv *Driver) acquire() error {
	drv.mu.Lock()
	defer drv.mu.Unlock()
	if drv.runDone != nil || drv.busy {
		return errors.New("modbus: driver is running")
	}
	drv.busy = true
	return nil
}

func (drv *Driver) release() {
	drv.mu.Lock()
	drv.busy = false
	drv.mu.Unlock()
}

// Status reports the health and counters of each device, in configuration order.
func (drv *Driver) Status() []edge.DeviceStatus {
	out := make([]edge.DeviceStatus, len(drv.devices))
	for i, d := range drv.devices {
		out[i] = d.status()
	}
	return out
}

// Barriers returns a commandable barrier for each barrier device, by device id.
func (drv *Driver) Barriers() map[string]edge.Barrier {
	return maps.Clone(drv.barriers)
}

// Barrier commands one barrier through its port's queue.
type Barrier struct {
	drv  *Driver
	port *port
	dev  *device
}

var _ edge.Barrier = (*Barrier)(nil)

// Raise writes the profile's open value to the barrier's command resource. It
// returns once the controller acknowledged the write, not when the arm is up: that
// comes as an ArmPosition event.
func (b *Barrier) Raise(ctx context.Context) error { return b.command(ctx, b.dev.bind.Open) }

// Lower writes the profile's close value to the barrier's command resource.
func (b *Barrier) Lower(ctx context.Context) error { return b.command(ctx, b.dev.bind.Close) }

func (b *Barrier) command(ctx context.Context, v uint16) error {
	b.drv.mu.Lock()
	running := b.drv.runDone
	b.drv.mu.Unlock()
	if running == nil {
		return ErrNotRunning
	}
	// The lane may pass a context without deadline; a command must not wait longer
	// than a poll in progress, its own request and a reconnect.
	ctx, cancel := context.WithTimeout(ctx, 3*b.dev.bind.Timeout+100*time.Millisecond)
	defer cancel()
	w := &writeReq{dev: b.dev, res: b.dev.bind.Command, value: v, done: make(chan error, 1)}
	select {
	case b.port.writes <- w:
	case <-ctx.Done():
		return fmt.Errorf("modbus: %s: command not sent: %w", b.dev.id(), ctx.Err())
	case <-running:
		return ErrNotRunning
	}
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		w.abandoned.Store(true)
		return fmt.Errorf("modbus: %s: command: %w", b.dev.id(), ctx.Err())
	}
}

// eventQueue hands events from the port goroutines to the sink in order. It never
// blocks a port: the sink may command a barrier from within Deliver, and that
// command needs the port.
type eventQueue struct {
	mu     sync.Mutex
	items  []edge.DeviceEvent
	signal chan struct{}
}

func (q *eventQueue) init() { q.signal = make(chan struct{}, 1) }

func (q *eventQueue) push(evs []edge.DeviceEvent) {
	if len(evs) == 0 {
		return
	}
	q.mu.Lock()
	q.items = append(q.items, evs...)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// drain delivers what is queued.
func (q *eventQueue) drain(sink edge.Sink) {
	q.mu.Lock()
	items := q.items
	q.items = nil
	q.mu.Unlock()
	for _, ev := range items {
		sink.Deliver(ev)
	}
}

// deliver runs until stop is closed, then delivers what is left.
func (q *eventQueue) deliver(stop <-chan struct{}, sink edge.Sink) {
	for {
		last := false
		select {
		case <-stop:
			last = true
		case <-q.signal:
		}
		q.drain(sink)
		if last {
			return
		}
	}
}
