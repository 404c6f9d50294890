package edge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Config is what a Garage is built from. cmd/gatehouse-edge wires it.
type Config struct {
	Facility *Facility
	Store    Store
	// Barriers maps barrier device ids to their drivers.
	Barriers map[string]Barrier
	Logger   *slog.Logger
	// Now is the clock; nil means time.Now. Tests drive it by hand together with Tick.
	Now func() time.Time
	// TickEvery is how often Run checks the lanes' timers; zero means 100 ms.
	TickEvery time.Duration
	// Terminals maps exit lane ids to the card terminals of their kiosks.
	Terminals map[string]CardTerminal
}

// Garage runs one facility: it routes device events to lanes, decides, commands
// barriers and records everything through the Store. Its methods are safe for
// concurrent use; device adapters call Deliver from their own goroutines.
type Garage struct {
	f        *Facility
	store    Store
	barriers map[string]Barrier
	log      *slog.Logger
	now      func() time.Time
	every    time.Duration
	// terminals are the kiosks' card terminals by lane; terminalList the same, in
	// lane order.
	terminals    map[string]CardTerminal
	terminalList []CardTerminal

	mu       sync.Mutex
	st       *State
	lanes    map[string]*lane
	laneList []*lane
	routes   map[string]route // device id -> lane and role
	last     Pending          // the newest submitted batch
	lastSeg  time.Time        // when session segments were last checked

	pending chan Pending // batches for the watcher, in order
	failed  atomic.Pointer[error]
	stats   Stats
}

// Stats are the garage's counters, read by the metrics endpoint.
type Stats struct {
	DeviceEvents   atomic.Uint64
	UnknownDevices atomic.Uint64
	Decisions      atomic.Uint64
	Denials        atomic.Uint64
	Passages       atomic.Uint64
	Alerts         atomic.Uint64
	BarrierErrors  atomic.Uint64
	Batches        atomic.Uint64
	EventsWritten  atomic.Uint64
}

type role uint8

const (
	roleArming role = iota + 1
	roleSafety
	roleBarrier
	roleCamera
	roleTicket
)

type route struct {
	lane *lane
	role role
}

// Open loads the garage's state from the store and returns a Garage ready to Run.
func Open(cfg Config) (*Garage, error) {
	if cfg.Facility == nil || cfg.Store == nil {
		return nil, errors.New("edge: Open needs a facility and a store")
	}
	snap, err := cfg.Store.Load()
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	st, err := Restore(cfg.Facility, snap)
	if err != nil {
		return nil, err
	}
	g := &Garage{
		f:         cfg.Facility,
		store:     cfg.Store,
		barriers:  cfg.Barriers,
		log:       cfg.Logger,
		now:       cfg.Now,
		every:     cfg.TickEvery,
		st:        st,
		lanes:     map[string]*lane{},
		routes:    map[string]route{},
		last:      donePending{},
		pending:   make(chan Pending, 4096),
		terminals: map[string]CardTerminal{},
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.every <= 0 {
		g.every = 100 * time.Millisecond
	}
	for i := range g.f.Lanes {
		if t := cfg.Terminals[g.f.Lanes[i].ID]; t != nil {
			g.terminals[g.f.Lanes[i].ID] = t
			g.terminalList = append(g.terminalList, t)
		}
	}
	for i := range g.f.Lanes {
		lc := &g.f.Lanes[i]
		l := &lane{cfg: lc, state: laneIdle, position: PositionUnknown}
		if ls := st.Lanes[lc.ID]; ls != nil && ls.Status != "ok" {
			l.degraded = ls.Reason
		}
		g.lanes[lc.ID] = l
		g.laneList = append(g.laneList, l)
		for id, r := range map[string]role{lc.ArmingLoop: roleArming, lc.SafetyLoop: roleSafety, lc.Barrier: roleBarrier, lc.TicketReader: roleTicket} {
			if id != "" {
				g.routes[id] = route{lane: l, role: r}
			}
		}
		for _, id := range lc.Cameras {
			g.routes[id] = route{lane: l, role: roleCamera}
		}
	}
	return g, nil
}

// Facility returns the facility the garage runs.
func (g *Garage) Facility() *Facility { return g.f }

// Stats returns the garage's counters.
func (g *Garage) Stats() *Stats { return &g.stats }

// Run drives the lanes' timers and watches the store until ctx is done or a write
// fails. A failed write ends Run with its error: memory and disk may then disagree,
// and the process must restart from what the disk holds.
func (g *Garage) Run(ctx context.Context) error {
	t := time.NewTicker(g.every)
	defer t.Stop()
	if len(g.terminalList) > 0 {
		go g.runCaptures(ctx, max(time.Duration(g.f.Payments.CaptureEvery), 100*time.Millisecond))
	}
	watchErr := make(chan error, 1)
	go func() {
		for {
			select {
			case p := <-g.pending:
				if err := p.Wait(); err != nil {
					g.failed.Store(&err)
					watchErr <- err
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return g.Sync()
		case err := <-watchErr:
			return fmt.Errorf("store write failed: %w", err)
		case <-t.C:
			g.Tick(g.now())
		}
	}
}

// Err returns the store failure that stopped the garage, if any.
func (g *Garage) Err() error {
	if p := g.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// Sync waits until everything submitted so far is durable.
func (g *Garage) Sync() error {
	g.mu.Lock()
	p := g.last
	g.mu.Unlock()
	return p.Wait()
}

// txn collects what one step of the garage emits and the barrier commands it issues.
// Events are applied to the state as they are emitted, so a step sees its own changes.
type txn struct {
	g      *Garage
	now    time.Time
	events []*gh.Envelope
	cmds   []command
	err    error
}

type command struct {
	lane    string
	barrier string
	raise   bool
}

func (g *Garage) begin(now time.Time) *txn { return &txn{g: g, now: now} }

func (t *txn) emit(laneID string, payload proto.Message) {
	if t.err != nil {
		return
	}
	ev := &gh.Envelope{
		FacilityId: t.g.f.ID,
		Seq:        t.g.st.Seq + 1,
		EventId:    newID(),
		OccurredAt: timestamppb.New(t.now),
		LaneId:     laneID,
	}
	ev.SetPayload(payload)
	if err := t.g.st.Apply(ev); err != nil {
		t.err = err
		return
	}
	t.events = append(t.events, ev)
	if _, ok := payload.(*gh.AlertTriggered); ok {
		t.g.stats.Alerts.Add(1)
	}
}

func (t *txn) command(l *lane, raise bool) {
	l.commanded = raise
	t.cmds = append(t.cmds, command{lane: l.cfg.ID, barrier: l.cfg.Barrier, raise: raise})
}

// finish submits the step's events with the records they touched (the caller holds
// g.mu, so submissions are in seq order) and returns the barrier commands to run.
func (t *txn) finish() ([]command, Pending) {
	g := t.g
	if t.err != nil {
		// An event that does not apply is a bug in this package; refuse to go on with
		// a state the outbox cannot reproduce.
		err := fmt.Errorf("edge: internal: %w", t.err)
		g.failed.Store(&err)
		g.log.Error("garage stopped", "err", err)
		return nil, donePending{err}
	}
	if len(t.events) == 0 {
		return t.cmds, g.last
	}
	p := g.store.Submit(&Batch{Events: t.events, Records: g.st.Records()})
	g.last = p
	g.stats.Batches.Add(1)
	g.stats.EventsWritten.Add(uint64(len(t.events)))
	select {
	case g.pending <- p:
	default:
		// The watcher is behind or not running (tests without Run); Sync still
		// reports failures through g.last.
	}
	return t.cmds, p
}

// run executes barrier commands outside the lock: a driver may block on its wire.
func (g *Garage) run(cmds []command) {
	for _, c := range cmds {
		b := g.barriers[c.barrier]
		if b == nil {
			g.stats.BarrierErrors.Add(1)
			g.log.Error("no driver for barrier", "lane", c.lane, "barrier", c.barrier)
			continue
		}
		// A command that cannot be delivered within the barrier timeout is a failed
		// command; the lane's timer retries it.
		ctx, cancel := context.WithTimeout(context.Background(), max(time.Duration(g.f.Policies.BarrierTimeout), time.Second))
		var err error
		if c.raise {
			err = b.Raise(ctx)
		} else {
			err = b.Lower(ctx)
		}
		cancel()
		if err != nil {
			// The lane's barrier timeout will retry and, failing that, degrade the lane.
			g.stats.BarrierErrors.Add(1)
			g.log.Warn("barrier command failed", "lane", c.lane, "barrier", c.barrier, "raise", c.raise, "err", err)
		}
	}
}

// step runs fn under the lock as one transaction and executes its commands.
func (g *Garage) step(now time.Time, fn func(t *txn) error) (Pending, error) {
	g.mu.Lock()
	if err := g.Err(); err != nil {
		g.mu.Unlock()
		return donePending{err}, Errorf(EUNAVAILABLE, "garage stopped after a storage failure")
	}
	t := g.begin(now)
	ferr := fn(t)
	cmds, p := t.finish()
	g.mu.Unlock()
	g.run(cmds)
	return p, ferr
}

// Deliver hands the garage one device event. It never blocks on the network or the
// disk; it returns once the event is decided and any barrier command is sent.
func (g *Garage) Deliver(ev DeviceEvent) {
	g.stats.DeviceEvents.Add(1)
	if ev.At.IsZero() {
		ev.At = g.now()
	}
	switch ev.Kind {
	case SpotChanged:
		g.step(ev.At, func(t *txn) error { return t.spotChanged(ev) })
		return
	case DeviceHealth:
		g.step(ev.At, func(t *txn) error { t.deviceHealth(ev); return nil })
		return
	}
	r, ok := g.routes[ev.Device]
	if !ok {
		g.stats.UnknownDevices.Add(1)
		g.log.Warn("event from unknown device", "device", ev.Device, "kind", ev.Kind.String())
		return
	}
	g.step(ev.At, func(t *txn) error { t.laneEvent(r.lane, r.role, ev); return nil })
}

// Tick runs every lane's timers at now.
func (g *Garage) Tick(now time.Time) {
	g.step(now, func(t *txn) error {
		for _, l := range g.laneList {
			t.laneTick(l)
		}
		if now.Sub(g.lastSeg) >= time.Second {
			g.lastSeg = now
			t.checkSegments()
		}
		return nil
	})
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
