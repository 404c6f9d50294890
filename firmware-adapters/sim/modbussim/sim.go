package modbussim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/modbus"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/sim"
)

// Sim is the simulated Modbus TCP side of a facility.
type Sim struct {
	log      *slog.Logger
	servers  []*server // in order of first appearance
	loops    map[string]*loop
	barriers map[string]*barrier
	spots    map[string]*spot
	bySpot   map[string]*spot
	units    map[string]*unit // by device id

	mu      sync.Mutex
	running bool
}

// New builds the simulated devices of the modbus_tcp devices among devices (others
// are ignored), resolved against profiles (nil: the built-in profiles). spots maps
// spot sensor ids to spot ids, as edge.Facility.SpotOfSensor does. Each distinct
// device address becomes one server listening there.
func New(devices []edge.Device, spots map[string]string, profiles modbus.Profiles) (*Sim, error) {
	if profiles == nil {
		profiles = modbus.BuiltinProfiles()
	}
	s := &Sim{
		log:      slog.New(slog.DiscardHandler),
		loops:    map[string]*loop{},
		barriers: map[string]*barrier{},
		spots:    map[string]*spot{},
		bySpot:   map[string]*spot{},
		units:    map[string]*unit{},
	}
	byAddr := map[string]*server{}
	var errs []error
	for _, d := range devices {
		if d.Protocol != modbus.ProtocolTCP {
			continue
		}
		b, err := modbus.Bind(d, profiles)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		srv := byAddr[d.Address]
		if srv == nil {
			srv = newServer(d.Address)
			byAddr[d.Address] = srv
			s.servers = append(s.servers, srv)
		}
		u := srv.unit(b.Unit)
		s.units[d.ID] = u
		if b.Fault != nil {
			u.set(b.Fault, 0)
		}
		switch d.Kind {
		case edge.KindBarrier:
			br := &barrier{b: b, u: u, pos: edge.PositionDown}
			br.show()
			srv.watch(b.Unit, b.Command, br.command)
			s.barriers[d.ID] = br
		case edge.KindLoop:
			l := &loop{b: b, u: u}
			l.SetOccupied(false)
			s.loops[d.ID] = l
		case edge.KindSpotSensor:
			sp := &spot{b: b, u: u}
			sp.SetOccupied(false)
			s.spots[d.ID] = sp
			if id := spots[d.ID]; id != "" {
				s.bySpot[id] = sp
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// SetLogger sets where the simulator logs (by default nowhere).
func (s *Sim) SetLogger(l *slog.Logger) {
	if l != nil {
		s.log = l
	}
}

// Devices returns the simulated devices for the traffic model, with Run serving them.
func (s *Sim) Devices() sim.Devices {
	out := sim.Devices{
		Loops:    map[string]sim.Loop{},
		Barriers: map[string]sim.Barrier{},
		Spots:    map[string]sim.Spot{},
		Run:      s.Run,
	}
	for id, l := range s.loops {
		out.Loops[id] = l
	}
	for id, b := range s.barriers {
		out.Barriers[id] = b
	}
	for id, sp := range s.spots {
		out.Spots[id] = sp
	}
	return out
}

// Faulty returns the fault switches of a device. They act on the device's unit, so
// on every device that shares it (a bank of sensors behind one unit fails together).
func (s *Sim) Faulty(deviceID string) (sim.Faulty, bool) {
	u, ok := s.units[deviceID]
	return u, ok
}

// Spot returns the simulated sensor of a spot, by spot id.
func (s *Sim) Spot(spotID string) (sim.Spot, bool) {
	sp, ok := s.bySpot[spotID]
	return sp, ok
}

// Addrs returns the listen addresses, one per server.
func (s *Sim) Addrs() []string {
	out := make([]string, len(s.servers))
	for i, srv := range s.servers {
		out[i] = srv.addr
	}
	return out
}

// Requests is the number of Modbus requests the simulator received, on all addresses.
func (s *Sim) Requests() uint64 {
	var n uint64
	for _, srv := range s.servers {
		n += srv.requests.Load()
	}
	return n
}

// Run serves every address until ctx is done. It fails at once if an address cannot
// be listened on. Run may be called again after it returned (a restarted device keeps
// its memory).
func (s *Sim) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("modbussim: already running")
	}
	s.running = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var startErr error
	for _, srv := range s.servers {
		ready := make(chan error, 1)
		f := &front{srv: srv, log: s.log}
		wg.Go(func() { _ = f.serve(ctx, ready) })
		if err := <-ready; err != nil {
			startErr = fmt.Errorf("modbussim: %s: %w", srv.addr, err)
			cancel()
			break
		}
	}
	if startErr == nil {
		wg.Go(func() { s.jitter(ctx) })
	}
	wg.Wait()
	return startErr
}

// jitter adds the noise of a real distance sensor to the spots' readings.
func (s *Sim) jitter(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, sp := range s.spots {
				sp.refresh()
			}
		}
	}
}

// occupiedValue is the value a resource reads when the rule should say on.
func occupiedValue(r modbus.Rule, on bool) (v float64, noisy bool) {
	switch {
	case r.Below != nil:
		return thresholdValue(*r.Below, on), true
	case r.Above != nil:
		return thresholdValue(*r.Above, !on), true
	case r.Flag != nil:
		return b2f(on == *r.Flag), false
	}
	return b2f(on), false
}

// thresholdValue is well below t when below is true, else well above: for the
// ultrasonic sensor's 150 cm, 50 cm (a car roof) and 300 cm (the floor).
func thresholdValue(t float64, below bool) float64 {
	if t <= 0 {
		if below {
			return t - 100
		}
		return t + 100
	}
	if below {
		return t / 3
	}
	return 2 * t
}

// loop is a loop detector input.
type loop struct {
	b *modbus.Binding
	u *unit
}

var _ sim.Loop = (*loop)(nil)

// SetOccupied puts a car on the loop or takes it away.
func (l *loop) SetOccupied(on bool) {
	v, _ := occupiedValue(l.b.Rule, on)
	l.u.set(l.b.Occupied, v)
}

// spot is a bay sensor.
type spot struct {
	b *modbus.Binding
	u *unit

	mu sync.Mutex
	on bool
}

var _ sim.Spot = (*spot)(nil)

// SetOccupied parks a car on the spot or takes it away. A distance sensor then reads
// about a third of its threshold (or twice it), with a few percent of noise.
func (sp *spot) SetOccupied(on bool) {
	sp.mu.Lock()
	sp.on = on
	sp.mu.Unlock()
	sp.refresh()
}

func (sp *spot) refresh() {
	sp.mu.Lock()
	on := sp.on
	sp.mu.Unlock()
	v, noisy := occupiedValue(sp.b.Rule, on)
	if noisy {
		v += v * 0.03 * (2*rand.Float64() - 1)
		if r := sp.b.Occupied; r.Type != modbus.Float32 {
			v = math.Round(v/r.ScaleFactor()) * r.ScaleFactor()
		}
	}
	sp.u.set(sp.b.Occupied, v)
}

// barrier is a barrier controller: it watches its command resource and moves its arm,
// reporting the end stops on its inputs.
type barrier struct {
	b *modbus.Binding
	u *unit

	mu     sync.Mutex
	pos    edge.Position
	target edge.Position
	stuck  bool
	timer  *time.Timer
	gen    int
}

var _ sim.Barrier = (*barrier)(nil)

// Position is where the arm is now.
func (br *barrier) Position() edge.Position {
	br.mu.Lock()
	defer br.mu.Unlock()
	return br.pos
}

// SetStuck makes the arm ignore commands.
func (br *barrier) SetStuck(stuck bool) {
	br.mu.Lock()
	br.stuck = stuck
	br.mu.Unlock()
}

// command is called with every value written to the command resource.
func (br *barrier) command(v uint16) {
	var to edge.Position
	switch v {
	case br.b.Open:
		to = edge.PositionUp
	case br.b.Close:
		to = edge.PositionDown
	default:
		return // not a command this controller knows
	}
	br.mu.Lock()
	defer br.mu.Unlock()
	if br.stuck || br.pos == to || (br.pos == edge.PositionMoving && br.target == to) {
		return
	}
	br.gen++
	gen := br.gen
	br.target = to
	if br.timer != nil {
		br.timer.Stop()
	}
	if br.b.Travel <= 0 {
		br.pos = to
		br.showLocked()
		return
	}
	br.pos = edge.PositionMoving
	br.showLocked()
	br.timer = time.AfterFunc(br.b.Travel, func() {
		br.mu.Lock()
		defer br.mu.Unlock()
		if br.gen != gen {
			return // a newer command reversed the arm
		}
		br.pos = to
		br.showLocked()
	})
}

func (br *barrier) show() {
	br.mu.Lock()
	defer br.mu.Unlock()
	br.showLocked()
}

// showLocked sets the end-stop inputs from the position.
func (br *barrier) showLocked() {
	br.u.set(br.b.Up, b2f(br.pos == edge.PositionUp))
	br.u.set(br.b.Down, b2f(br.pos == edge.PositionDown))
}
