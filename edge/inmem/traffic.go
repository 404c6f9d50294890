package inmem

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/edge/plate"
)

// Traffic drives cars through a garage's lanes by delivering the device events a real
// car causes: arming loop, plate read or ticket, safety loop, and paying at the exit
// when a fee is shown. It stands in for the hardware in the stand-alone demo and in
// crash tests; gatehouse-sim does the same over real protocols.
type Traffic struct {
	Garage *edge.Garage
	// PerMinute is the mean arrival rate at each entry lane.
	PerMinute float64
	// Dwell is the mean stay; stays are exponentially distributed around it.
	Dwell time.Duration
	// Pass is how long a car takes to cross a loop.
	Pass   time.Duration
	Logger *slog.Logger
	// Rand seeds the car generator; nil means a random seed.
	Rand *rand.Rand

	mu      sync.Mutex
	inside  []car
	entered int
	exited  int
	denied  int
}

type car struct {
	plate  string
	ticket string
	card   string
	leave  time.Time
}

// Counts returns how many cars went in, came out and were turned away.
func (tr *Traffic) Counts() (entered, exited, denied int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.entered, tr.exited, tr.denied
}

// Run drives traffic until ctx is done.
func (tr *Traffic) Run(ctx context.Context) {
	if tr.Rand == nil {
		tr.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if tr.Logger == nil {
		tr.Logger = slog.New(slog.DiscardHandler)
	}
	if tr.Pass == 0 {
		tr.Pass = 300 * time.Millisecond
	}
	// Cars already inside (from before a restart) leave in their own time too.
	tr.mu.Lock()
	for _, s := range tr.Garage.OpenSessions() {
		tr.inside = append(tr.inside, car{plate: s.Plate, ticket: s.Ticket, card: s.Card,
			leave: time.Now().Add(time.Duration(tr.Rand.ExpFloat64() * float64(tr.Dwell)))})
	}
	tr.mu.Unlock()
	var wg sync.WaitGroup
	for _, l := range tr.Garage.Facility().Lanes {
		wg.Add(1)
		seed := tr.Rand.Uint64()
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, 7))
			if l.Direction == edge.Entry {
				tr.entryLane(ctx, l, r)
			} else {
				tr.exitLane(ctx, l, r)
			}
		}()
	}
	wg.Wait()
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (tr *Traffic) entryLane(ctx context.Context, l edge.Lane, r *rand.Rand) {
	f := tr.Garage.Facility()
	for {
		gap := time.Duration(r.ExpFloat64() * float64(time.Minute) / tr.PerMinute)
		if !sleep(ctx, gap) {
			return
		}
		c := car{plate: randomPlate(r)}
		// A mix of drivers: permit holders, camera-recognised walk-ins, and walk-ins
		// whose plate the camera cannot read who take a ticket.
		var cred edge.DeviceEvent
		switch k := r.IntN(10); {
		case k == 0 && len(f.Permits) > 0:
			p := f.Permits[r.IntN(len(f.Permits))]
			if len(p.Cards) > 0 && l.TicketReader != "" {
				c.card, c.plate = p.Cards[0], ""
				cred = edge.DeviceEvent{Device: l.TicketReader, Kind: edge.CardPresented, Code: c.card}
			} else if len(p.Plates) > 0 && len(l.Cameras) > 0 {
				c.plate = p.Plates[0]
				cred = edge.DeviceEvent{Device: l.Cameras[0], Kind: edge.PlateRead, Read: plate.Read{Text: c.plate, Confidence: 0.95}}
			}
		case k < 7 && len(l.Cameras) > 0:
			cred = edge.DeviceEvent{Device: l.Cameras[0], Kind: edge.PlateRead, Read: plate.Read{Text: c.plate, Confidence: 0.8 + 0.2*r.Float64()}}
		}
		if cred.Device == "" && l.TicketReader != "" {
			c.plate = ""
			cred = edge.DeviceEvent{Device: l.TicketReader, Kind: edge.TicketRequested}
		}
		if cred.Device == "" {
			continue
		}
		d, ok := tr.drive(ctx, l, cred, 0)
		if !ok {
			tr.mu.Lock()
			tr.denied++
			tr.mu.Unlock()
			continue
		}
		c.ticket = d.Ticket
		c.leave = time.Now().Add(time.Duration(r.ExpFloat64() * float64(tr.Dwell)))
		tr.mu.Lock()
		tr.inside = append(tr.inside, c)
		tr.entered++
		tr.mu.Unlock()
	}
}

func (tr *Traffic) exitLane(ctx context.Context, l edge.Lane, r *rand.Rand) {
	for {
		if !sleep(ctx, 50*time.Millisecond+time.Duration(r.IntN(100))*time.Millisecond) {
			return
		}
		tr.mu.Lock()
		idx := -1
		for i, c := range tr.inside {
			if time.Now().After(c.leave) {
				idx = i
				break
			}
		}
		var c car
		if idx >= 0 {
			c = tr.inside[idx]
			tr.inside = append(tr.inside[:idx], tr.inside[idx+1:]...)
		}
		tr.mu.Unlock()
		if idx < 0 {
			continue
		}
		var cred edge.DeviceEvent
		switch {
		case c.card != "" && l.TicketReader != "":
			cred = edge.DeviceEvent{Device: l.TicketReader, Kind: edge.CardPresented, Code: c.card}
		case c.plate != "" && len(l.Cameras) > 0:
			cred = edge.DeviceEvent{Device: l.Cameras[0], Kind: edge.PlateRead, Read: plate.Read{Text: c.plate, Confidence: 0.9}}
		case l.TicketReader != "":
			cred = edge.DeviceEvent{Device: l.TicketReader, Kind: edge.TicketPresented, Code: c.ticket}
		default:
			continue
		}
		if _, ok := tr.drive(ctx, l, cred, 1); ok {
			tr.mu.Lock()
			tr.exited++
			tr.mu.Unlock()
		} else if ctx.Err() == nil {
			tr.Logger.Warn("car could not leave", "lane", l.ID, "plate", c.plate, "ticket", c.ticket)
		}
	}
}

// drive takes one car through a lane. It returns the lane's decision and whether the
// car went through.
func (tr *Traffic) drive(ctx context.Context, l edge.Lane, cred edge.DeviceEvent, paid int) (*edge.Decision, bool) {
	g := tr.Garage
	// Wait for the lane to be free: the car in front must be through and the arm down.
	for {
		v := tr.lane(l.ID)
		if v.State == "idle" && !v.ArmingOn {
			break
		}
		if !sleep(ctx, 20*time.Millisecond) {
			return nil, false
		}
	}
	g.Deliver(edge.DeviceEvent{Device: l.ArmingLoop, Kind: edge.LoopChanged, Occupied: true})
	leave := func() { g.Deliver(edge.DeviceEvent{Device: l.ArmingLoop, Kind: edge.LoopChanged, Occupied: false}) }
	g.Deliver(cred)
	var d *edge.Decision
	for tries := 0; ; tries++ {
		v := tr.lane(l.ID)
		d = v.Decision
		if d != nil && !d.Allowed && d.FeeDue > 0 && paid < 2 {
			if err := g.PayAtLane(ctx, l.ID, d.FeeDue, "kiosk_card", fmt.Sprintf("sim-%d", tries)); err != nil {
				tr.Logger.Warn("payment failed", "lane", l.ID, "err", err)
			}
			paid = 2
			continue
		}
		if d != nil && !d.Allowed {
			leave()
			return d, false
		}
		if v.State == "open" || v.State == "passing" {
			break
		}
		if tries > 500 || !sleep(ctx, 10*time.Millisecond) {
			leave()
			return d, false
		}
	}
	g.Deliver(edge.DeviceEvent{Device: l.SafetyLoop, Kind: edge.LoopChanged, Occupied: true})
	leave()
	if !sleep(ctx, tr.Pass) {
		return d, false
	}
	g.Deliver(edge.DeviceEvent{Device: l.SafetyLoop, Kind: edge.LoopChanged, Occupied: false})
	return d, true
}

func (tr *Traffic) lane(id string) edge.LaneView {
	for _, v := range tr.Garage.Lanes() {
		if v.ID == id {
			return v
		}
	}
	return edge.LaneView{}
}

func randomPlate(r *rand.Rand) string {
	const letters = "ABCDEFGHJKLMNPRSTVWXYZ"
	b := []byte{letters[r.IntN(len(letters))], letters[r.IntN(len(letters))], '-',
		byte('0' + r.IntN(10)), byte('0' + r.IntN(10)), byte('0' + r.IntN(10)), '-',
		letters[r.IntN(len(letters))], letters[r.IntN(len(letters))]}
	return string(b)
}
