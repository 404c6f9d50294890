package serial

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// Errors of barrier commands. A refused command is a *NAKError.
var (
	// ErrTimeout: no ACK or NAK within the command timeout, or the port was busy
	// with other commands for too long.
	ErrTimeout = errors.New("no answer from the controller")
	// ErrPortDown: the port is closed (lost, or not yet reopened).
	ErrPortDown = errors.New("serial port down")
	// ErrStopped: the driver stopped before the command was answered.
	ErrStopped = errors.New("driver stopped")
	// ErrNotRunning: Run has not been called.
	ErrNotRunning = errors.New("driver not running")
)

// NAKError is a command the controller refused, with the reason it gave (one of the
// Reason constants, or the controller's own word).
type NAKError struct {
	Reason string
}

// Error implements the error interface.
func (e *NAKError) Error() string { return "refused by the controller: " + e.Reason }

// Reopen backoff after a port is lost or cannot be opened.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// Config configures a Driver.
type Config struct {
	// Devices are the facility's devices; those whose Protocol is "serial" are served,
	// the others ignored. See ParseEndpoint for the address and options.
	Devices []edge.Device
	// Sink receives the devices' events. It is called from one goroutine of the
	// driver's own, never from a port's, so it may call back into a Barrier.
	Sink edge.Sink
	// Logger receives the driver's logs; nil discards them.
	Logger *slog.Logger
	// Open opens a port; nil opens a real serial port with github.com/tarm/serial.
	// Closing what it returns must make a Read in progress return.
	Open func(path string, baud int) (io.ReadWriteCloser, error)
	// Silence overrides SilenceTimeout when not zero.
	Silence time.Duration
	// CommandTimeout overrides CommandTimeout when not zero.
	CommandTimeout time.Duration
}

// Driver serves the serial devices of a facility: one goroutine per port. It
// implements edge.Driver.
type Driver struct {
	log        *slog.Logger
	sink       edge.Sink
	open       func(path string, baud int) (io.ReadWriteCloser, error)
	silence    time.Duration
	cmdTimeout time.Duration
	ports      []*port
	devices    []*device // in config order
	barriers   map[string]edge.Barrier
	events     eventQueue
	started    atomic.Bool
	running    atomic.Bool
	quit       chan struct{} // closed when Run's context ends
}

var _ edge.Driver = (*Driver)(nil)

// New checks the serial devices of cfg and returns a driver for them. It opens
// nothing: Run does.
func New(cfg Config) (*Driver, error) {
	if cfg.Sink == nil {
		return nil, errors.New("serial: no sink")
	}
	d := &Driver{
		log:        cfg.Logger,
		sink:       cfg.Sink,
		open:       cfg.Open,
		silence:    cmp.Or(cfg.Silence, SilenceTimeout),
		cmdTimeout: cmp.Or(cfg.CommandTimeout, CommandTimeout),
		barriers:   map[string]edge.Barrier{},
		events:     eventQueue{wake: make(chan struct{}, 1)},
		quit:       make(chan struct{}),
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.open == nil {
		d.open = openPort
	}
	byPath := map[string]*port{}
	ids := map[string]bool{}
	for _, dc := range cfg.Devices {
		if dc.Protocol != "serial" {
			continue
		}
		if ids[dc.ID] {
			return nil, fmt.Errorf("serial: device %s: configured twice", dc.ID)
		}
		ids[dc.ID] = true
		ep, err := ParseEndpoint(dc)
		if err != nil {
			return nil, fmt.Errorf("serial: %w", err)
		}
		p := byPath[ep.Path]
		if p == nil {
			p = newPort(d, ep.Path, ep.Baud)
			byPath[ep.Path] = p
			d.ports = append(d.ports, p)
		}
		if p.baud != ep.Baud {
			return nil, fmt.Errorf("serial: device %s: baud %d, but another device on %s has %d", dc.ID, ep.Baud, ep.Path, p.baud)
		}
		dev := &device{cfg: dc, ep: ep, port: p, counters: map[string]uint64{}}
		if err := p.add(dev); err != nil {
			return nil, fmt.Errorf("serial: device %s: %w", dc.ID, err)
		}
		d.devices = append(d.devices, dev)
		if dc.Kind == edge.KindBarrier {
			d.barriers[dc.ID] = &Barrier{d: d, dev: dev}
		}
	}
	return d, nil
}

// Barriers returns the barrier devices by id, for the garage to command.
func (d *Driver) Barriers() map[string]edge.Barrier {
	out := make(map[string]edge.Barrier, len(d.barriers))
	for id, b := range d.barriers {
		out[id] = b
	}
	return out
}

// Run opens every port and serves it until ctx is done, reopening lost ports with
// backoff. It returns nil when ctx ends; it may be called once.
func (d *Driver) Run(ctx context.Context) error {
	if !d.started.CompareAndSwap(false, true) {
		return errors.New("serial: Run called twice")
	}
	d.running.Store(true)
	defer d.running.Store(false)
	var wg sync.WaitGroup
	wg.Go(func() {
		<-ctx.Done()
		close(d.quit)
	})
	for _, p := range d.ports {
		wg.Go(func() { p.run(ctx) })
	}
	wg.Go(func() { d.events.run(ctx, d.sink) })
	wg.Wait()
	return nil
}

// Status reports each serial device's health and counters, in config order.
// Counters of the port (lines, bad_checksum, overlong, garbage_bytes, unknown,
// foreign, echo, stale, reopen, open_errors) are shown on every device of the port;
// commands, naks and timeouts are the device's own.
func (d *Driver) Status() []edge.DeviceStatus {
	now := time.Now()
	out := make([]edge.DeviceStatus, 0, len(d.devices))
	for _, dev := range d.devices {
		p := dev.port
		p.mu.Lock()
		h, detail := p.healthOf(dev, now)
		st := edge.DeviceStatus{
			ID:       dev.cfg.ID,
			Kind:     string(dev.cfg.Kind),
			Protocol: dev.cfg.Protocol,
			Address:  dev.cfg.Address,
			Healthy:  h == healthUp,
			Detail:   detail,
			Counters: make(map[string]uint64, len(p.counters)+len(dev.counters)),
		}
		st.LastContact = p.ctrls[dev.ep.Addr].last
		for k, v := range p.counters {
			st.Counters[k] = v
		}
		for k, v := range dev.counters {
			st.Counters[k] = v
		}
		p.mu.Unlock()
		out = append(out, st)
	}
	return out
}

// Barrier is a barrier controller on a serial line. It implements edge.Barrier: a
// command returns once the controller has acknowledged it; where the arm goes comes
// back as ArmPosition events.
type Barrier struct {
	d   *Driver
	dev *device
}

var _ edge.Barrier = (*Barrier)(nil)

// Raise sends OPEN and waits for its ACK.
func (b *Barrier) Raise(ctx context.Context) error { return b.command(ctx, CodeOpen) }

// Lower sends CLOSE and waits for its ACK.
func (b *Barrier) Lower(ctx context.Context) error { return b.command(ctx, CodeClose) }

// command queues code on the barrier's port and waits for the answer. The garage
// calls it with a context that never ends, so the wait is bounded here: the port
// writes one command at a time and a few may be ahead of this one.
func (b *Barrier) command(ctx context.Context, code string) error {
	wrap := func(err error) error { return fmt.Errorf("serial: barrier %s: %s: %w", b.dev.cfg.ID, code, err) }
	if !b.d.running.Load() {
		return wrap(ErrNotRunning)
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, 4*b.d.cmdTimeout)
	defer cancel()
	failed := func() error {
		if parent.Err() != nil {
			return wrap(parent.Err())
		}
		return wrap(ErrTimeout)
	}
	req := &request{ctx: ctx, dev: b.dev, code: code, done: make(chan error, 1)}
	select {
	case b.dev.port.cmds <- req:
	case <-ctx.Done():
		return failed()
	case <-b.d.quit:
		return wrap(ErrStopped)
	}
	select {
	case err := <-req.done:
		if err != nil {
			return wrap(err)
		}
		return nil
	case <-ctx.Done():
		return failed()
	case <-b.d.quit:
		return wrap(ErrStopped)
	}
}

// request is one command waiting for its port.
type request struct {
	ctx  context.Context
	dev  *device
	code string
	done chan error // buffered: the port never blocks on it
}

// eventQueue hands events from the ports to the sink on a goroutine of its own, in
// order, so that a port never waits for the garage: the garage's Deliver may call
// Raise, which needs the port.
type eventQueue struct {
	mu   sync.Mutex
	evs  []edge.DeviceEvent
	wake chan struct{}
}

func (q *eventQueue) push(evs ...edge.DeviceEvent) {
	if len(evs) == 0 {
		return
	}
	q.mu.Lock()
	q.evs = append(q.evs, evs...)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *eventQueue) run(ctx context.Context, sink edge.Sink) {
	for {
		q.mu.Lock()
		evs := q.evs
		q.evs = nil
		q.mu.Unlock()
		for _, ev := range evs {
			if ctx.Err() != nil {
				return
			}
			sink.Deliver(ev)
		}
		if len(evs) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		}
	}
}
