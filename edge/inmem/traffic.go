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
// car went through. A car at an exit pays the fee shown: by card at a kiosk with a
// card terminal (in cash if the card is declined), otherwise at the kiosk.
func (tr *Traffic) drive(ctx context.Context, l edge.Lane, cred edge.DeviceEvent, paid int) (*edge.Decision, bool) {
	pay := func(ctx context.Context, d *edge.Decision) {
		if l.CardTerminal != "" {
			cp, err := tr.Garage.PayByCard(ctx, l.ID)
			if err == nil && cp.Approved {
				return
			}
			tr.Logger.Info("card payment not approved; paying cash", "lane", l.ID, "message", cp.Message, "err", err)
		}
		if err := tr.Garage.PayAtLane(ctx, l.ID, d.FeeDue, "kiosk_card", fmt.Sprintf("sim-%d", time.Now().UnixNano())); err != nil {
			tr.Logger.Warn("payment failed", "lane", l.ID, "err", err)
		}
	}
	if paid >= 2 {
		pay = nil
	}
	return drive(ctx, tr.Garage, l, cred, tr.Pass, pay)
}

// Vehicle is one car that Drive takes through a lane.
type Vehicle struct {
	// Plate is read by the lane's camera; else Ticket is presented, or Card; with
	// none of them the driver takes a ticket (at an entry).
	Plate  string `json:"plate,omitempty"`
	Ticket string `json:"ticket,omitempty"`
	Card   string `json:"card,omitempty"`
	// Pay is how the driver pays a fee shown at an exit: "card" through the kiosk's
	// card terminal, "kiosk_card" or "cash" recorded at the kiosk; empty: the driver
	// does not pay, and backs out if a fee is due.
	Pay string `json:"pay,omitempty"`
}

// Driven is what became of a vehicle Drive took through a lane.
type Driven struct {
	Decision *edge.Decision `json:"decision"`
	Passed   bool           `json:"passed"`
	// Card is the outcome of a card payment, when the driver paid by card.
	Card *edge.CardPayment `json:"card,omitempty"`
}

// Drive takes one vehicle through a lane of g whose loops and camera are in-memory
// devices, as a driver would: onto the arming loop, presenting its credential, paying
// the fee shown, over the safety loop. It returns once the vehicle has passed or has
// been turned away.
func Drive(ctx context.Context, g *edge.Garage, laneID string, v Vehicle, pass time.Duration) (Driven, error) {
	l, ok := g.Facility().Lane(laneID)
	if !ok {
		return Driven{}, edge.Errorf(edge.ENOTFOUND, "no lane %q", laneID)
	}
	var cred edge.DeviceEvent
	switch {
	case v.Plate != "" && len(l.Cameras) > 0:
		cred = edge.DeviceEvent{Device: l.Cameras[0], Kind: edge.PlateRead, Read: plate.Read{Text: v.Plate, Confidence: 0.95}}
	case v.Ticket != "" && l.TicketReader != "":
		cred = edge.DeviceEvent{Device: l.TicketReader, Kind: edge.TicketPresented, Code: v.Ticket}
	case v.Card != "" && l.TicketReader != "":
		cred = edge.DeviceEvent{Device: l.TicketReader, Kind: edge.CardPresented, Code: v.Card}
	case l.TicketReader != "" && l.Direction == edge.Entry:
		cred = edge.DeviceEvent{Device: l.TicketReader, Kind: edge.TicketRequested}
	default:
		return Driven{}, edge.Errorf(edge.EINVALID, "lane %s cannot read this vehicle's credential", laneID)
	}
	var out Driven
	var payErr error
	var pay func(ctx context.Context, d *edge.Decision)
	switch v.Pay {
	case "":
	case "card":
		pay = func(ctx context.Context, d *edge.Decision) {
			cp, err := g.PayByCard(ctx, laneID)
			out.Card, payErr = &cp, err
		}
	case "kiosk_card", "cash":
		pay = func(ctx context.Context, d *edge.Decision) {
			payErr = g.PayAtLane(ctx, laneID, d.FeeDue, v.Pay, fmt.Sprintf("sim-%d", time.Now().UnixNano()))
		}
	default:
		return Driven{}, edge.Errorf(edge.EINVALID, "pay must be card, kiosk_card, cash or empty, not %q", v.Pay)
	}
	out.Decision, out.Passed = drive(ctx, g, *l, cred, pass, pay)
	return out, payErr
}

// drive takes one car through a lane, paying a fee shown with pay (nil: the car does
// not pay).
func drive(ctx context.Context, g *edge.Garage, l edge.Lane, cred edge.DeviceEvent, pass time.Duration, pay func(context.Context, *edge.Decision)) (*edge.Decision, bool) {
	laneView := func(id string) edge.LaneView {
		for _, v := range g.Lanes() {
			if v.ID == id {
				return v
			}
		}
		return edge.LaneView{}
	}
	// Wait for the lane to be free: the car in front must be through and the arm down.
	for {
		v := laneView(l.ID)
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
		v := laneView(l.ID)
		d = v.Decision
		if d != nil && !d.Allowed && d.FeeDue > 0 && pay != nil {
			pay(ctx, d)
			pay = nil
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
	if !sleep(ctx, pass) {
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
