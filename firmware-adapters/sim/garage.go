package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// Model is the traffic model: who comes, when, for how long, and how badly the
// cameras read them.
type Model struct {
	// PerHour is the arrival rate at each entry lane, by hour of the day (local to the
	// simulator's clock); a single value applies to every hour.
	PerHour []float64
	// Speedup multiplies every rate and divides every dwell: 60 makes an hour a minute.
	Speedup float64
	// DwellMedian and DwellSpread shape the log-normal stay: half the cars stay less
	// than DwellMedian; DwellSpread is the sigma of the underlying normal.
	DwellMedian time.Duration
	DwellSpread float64
	// PermitShare and ReservationShare are the fractions of arrivals that are permit
	// holders or bookings (using the facility's permits and reservations).
	PermitShare, ReservationShare float64
	// MisreadRate is the fraction of camera reads with one character wrong (an OCR
	// confusion); LowConfidenceRate the fraction read with a confidence of 0.3.
	MisreadRate, LowConfidenceRate float64
	// Pass is how long a car takes to cross the safety loop.
	Pass time.Duration
	// MaxCars stops arrivals after this many cars have entered (0: no limit).
	MaxCars int
}

// DefaultModel is a weekday of a city-centre garage.
func DefaultModel() Model {
	return Model{
		PerHour: []float64{2, 1, 1, 1, 2, 6, 20, 45, 60, 50, 40, 40,
			45, 40, 35, 35, 40, 50, 45, 35, 25, 15, 8, 4},
		Speedup: 1, DwellMedian: 2 * time.Hour, DwellSpread: 0.8,
		PermitShare: 0.1, ReservationShare: 0.05, MisreadRate: 0.05, LowConfidenceRate: 0.03,
		Pass: 800 * time.Millisecond,
	}
}

// Config is what a simulated garage runs on.
type Config struct {
	Facility *edge.Facility
	// Devices are every protocol's simulated devices, merged.
	Devices Devices
	// EdgeURL is the edge's API: drivers read the lane displays there and the exit
	// kiosks' card terminals pay there.
	EdgeURL string
	// KioskToken is the operator token of the exit kiosks' card terminals.
	KioskToken string
	Model      Model
	Logger     *slog.Logger
	Seed       uint64
}

// Truth is what really happened in the simulated garage, to compare with what the
// edge counted.
type Truth struct {
	Entered int `json:"entered"`
	Exited  int `json:"exited"`
	// Balked counts cars that were refused or gave up and drove away.
	Balked int `json:"balked"`
	// Paid is the money paid at the exit kiosks, by card or in cash.
	Paid int64 `json:"paid"`
	// CardPaid counts payments through the kiosks' card terminals, CardOffline those
	// of them approved offline, CardDeclined the cards declined (the driver then pays
	// cash).
	CardPaid     int `json:"card_paid"`
	CardOffline  int `json:"card_offline"`
	CardDeclined int `json:"card_declined"`
	// Zones holds each zone's count as the edge defines it: for a zone counted by
	// lanes, the cars inside that came through its lanes; for a zone counted by
	// sensors, the occupied spots.
	Zones map[string]int `json:"zones"`
	// Inside is the number of cars inside, wherever parked.
	Inside int `json:"inside"`
	// InLane is the number of cars on a lane right now: while it is zero, the counts
	// above are settled.
	InLane int `json:"in_lane"`
	// Arrived is the number of cars that came (entered or balked).
	Arrived int `json:"arrived"`
}

// Garage is a simulated garage.
type Garage struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client

	mu     sync.Mutex
	truth  Truth
	lanes  map[string]*sync.Mutex // one car at a time per lane
	spots  map[string][]string    // zone -> free sensor spots (device ids)
	inside map[string]bool        // plates inside: a permit is not in two cars at once
	paused time.Time              // no car arrives or leaves before then
	seq    int
	closed bool
}

// NewGarage returns a simulated garage for cfg.
func NewGarage(cfg Config) *Garage {
	g := &Garage{cfg: cfg, log: cfg.Logger, client: &http.Client{Timeout: 5 * time.Second},
		lanes: map[string]*sync.Mutex{}, spots: map[string][]string{}, inside: map[string]bool{}}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.cfg.Model.Speedup <= 0 {
		g.cfg.Model.Speedup = 1
	}
	g.truth.Zones = map[string]int{}
	for _, z := range cfg.Facility.Zones {
		g.truth.Zones[z.ID] = 0
		if z.CountSource == edge.CountSensors {
			for _, s := range z.Spots {
				if _, ok := cfg.Devices.Spots[s.Sensor]; ok {
					g.spots[z.ID] = append(g.spots[z.ID], s.Sensor)
				}
			}
		}
	}
	for _, l := range cfg.Facility.Lanes {
		g.lanes[l.ID] = &sync.Mutex{}
	}
	return g
}

// Truth returns the ground truth so far.
func (g *Garage) Truth() Truth {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.truth
	t.Zones = map[string]int{}
	for k, v := range g.truth.Zones {
		t.Zones[k] = v
	}
	return t
}

// Pause stops cars from arriving or leaving for d; cars already on a lane finish.
// Tests use it to compare counts with the garage quiet.
func (g *Garage) Pause(d time.Duration) {
	g.mu.Lock()
	g.paused = time.Now().Add(d)
	g.mu.Unlock()
}

// waitPaused returns once the garage is not paused.
func (g *Garage) waitPaused(ctx context.Context) bool {
	for {
		g.mu.Lock()
		left := time.Until(g.paused)
		g.mu.Unlock()
		if left <= 0 {
			return true
		}
		if !sleep(ctx, left) {
			return false
		}
	}
}

// Run sends cars until ctx is done (or MaxCars have entered) and waits for the cars
// already inside to leave when stopped by MaxCars.
func (g *Garage) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	r := rand.New(rand.NewPCG(g.cfg.Seed, 0x5eed))
	for _, l := range g.cfg.Facility.Lanes {
		if l.Direction != edge.Entry {
			continue
		}
		seed := r.Uint64()
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.arrivals(ctx, l, rand.New(rand.NewPCG(seed, 1)), &wg)
		}()
	}
	wg.Wait()
	return nil
}

func (g *Garage) rate(now time.Time) float64 {
	ph := g.cfg.Model.PerHour
	if len(ph) == 0 {
		return 0
	}
	v := ph[0]
	if len(ph) == 24 {
		v = ph[now.Hour()]
	}
	return v * g.cfg.Model.Speedup
}

func (g *Garage) arrivals(ctx context.Context, l edge.Lane, r *rand.Rand, wg *sync.WaitGroup) {
	for {
		perHour := g.rate(time.Now())
		if perHour <= 0 {
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		if !sleep(ctx, time.Duration(r.ExpFloat64()*float64(time.Hour)/perHour)) || !g.waitPaused(ctx) {
			return
		}
		g.mu.Lock()
		if g.cfg.Model.MaxCars > 0 && g.seq >= g.cfg.Model.MaxCars {
			g.mu.Unlock()
			return
		}
		g.seq++
		n := g.seq
		g.mu.Unlock()
		c := g.newCar(l, n, r)
		g.mu.Lock()
		if g.inside[c.plate] { // that permit's car is in already: this is someone else
			c.kind, c.plate = "walk-in", randomPlate(r)
		}
		g.inside[c.plate] = true
		g.mu.Unlock()
		seed := r.Uint64() // r is this loop's: not from the goroutine
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.visit(ctx, c, seed)
		}()
	}
}

type car struct {
	n     int
	plate string
	entry edge.Lane
	kind  string // "walk-in", "permit", "reservation"
}

func (g *Garage) newCar(l edge.Lane, n int, r *rand.Rand) *car {
	c := &car{n: n, entry: l, kind: "walk-in", plate: randomPlate(r)}
	f, m := g.cfg.Facility, g.cfg.Model
	switch x := r.Float64(); {
	case x < m.PermitShare && len(f.Permits) > 0:
		p := f.Permits[r.IntN(len(f.Permits))]
		if len(p.Plates) > 0 {
			c.kind, c.plate = "permit", p.Plates[r.IntN(len(p.Plates))]
		}
	case x < m.PermitShare+m.ReservationShare && len(f.Reservations) > 0:
		res := f.Reservations[r.IntN(len(f.Reservations))]
		if res.Plate != "" {
			c.kind, c.plate = "reservation", res.Plate
		}
	}
	return c
}

// visit takes one car in, parks it, and takes it out again.
func (g *Garage) visit(ctx context.Context, c *car, seed uint64) {
	r := rand.New(rand.NewPCG(seed, uint64(c.n)))
	defer func() {
		g.mu.Lock()
		delete(g.inside, c.plate)
		g.mu.Unlock()
	}()
	// InLane covers the car from the moment it touches a lane until the truth
	// records the result, so that InLane == 0 means the counts are settled.
	if !g.waitPaused(ctx) {
		return
	}
	g.count(func(t *Truth) { t.InLane++ })
	if !g.through(ctx, c, c.entry, r) {
		g.count(func(t *Truth) { t.Balked++; t.Arrived++; t.InLane-- })
		return
	}
	zone := c.entry.Zone
	g.count(func(t *Truth) { t.Entered++; t.Arrived++; t.Inside++; t.Zones[zone]++ })
	spot, spotZone := g.park(r)
	g.count(func(t *Truth) { t.InLane-- })
	m := g.cfg.Model
	dwell := time.Duration(float64(m.DwellMedian) * math.Exp(m.DwellSpread*r.NormFloat64()) / m.Speedup)
	if !sleep(ctx, dwell) || !g.waitPaused(ctx) {
		return // the simulator stops; the car stays in, on its bay
	}
	g.count(func(t *Truth) { t.InLane++ })
	g.unpark(spot, spotZone)
	exit := g.exitFor(zone, r)
	for try := 0; ; try++ {
		// A car already past the barrier finishes passing (through); one still
		// waiting stays in when the simulator stops, rather than holding it up
		// for minutes at a lane whose edge is gone.
		if g.through(ctx, c, exit, r) {
			break
		}
		if ctx.Err() != nil {
			g.count(func(t *Truth) { t.InLane-- })
			return
		}
		if try >= 5 {
			g.log.Warn("car cannot leave", "plate", c.plate, "lane", exit.ID)
			g.count(func(t *Truth) { t.InLane-- })
			return
		}
		sleep(ctx, time.Second)
	}
	g.count(func(t *Truth) { t.Exited++; t.Inside--; t.Zones[zone]--; t.InLane-- })
}

func (g *Garage) count(fn func(t *Truth)) {
	g.mu.Lock()
	fn(&g.truth)
	g.mu.Unlock()
}

// park puts the car on a free sensor spot, now and then: most cars park where no
// sensor watches.
func (g *Garage) park(r *rand.Rand) (string, string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for zone, free := range g.spots {
		if len(free) == 0 || r.IntN(4) != 0 {
			continue
		}
		i := r.IntN(len(free))
		id := free[i]
		g.spots[zone] = append(free[:i], free[i+1:]...)
		g.cfg.Devices.Spots[id].SetOccupied(true)
		g.truth.Zones[zone]++
		return id, zone
	}
	return "", ""
}

func (g *Garage) unpark(id, zone string) {
	if id == "" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cfg.Devices.Spots[id].SetOccupied(false)
	g.spots[zone] = append(g.spots[zone], id)
	g.truth.Zones[zone]--
}

func (g *Garage) exitFor(zone string, r *rand.Rand) edge.Lane {
	var out []edge.Lane
	for _, l := range g.cfg.Facility.Lanes {
		if l.Direction == edge.Exit && l.Zone == zone {
			out = append(out, l)
		}
	}
	return out[r.IntN(len(out))]
}

// through drives a car through a lane: arming loop, camera, wait for the arm (reading
// the lane's display and paying when it asks), safety loop. It reports whether the car
// went through.
func (g *Garage) through(ctx context.Context, c *car, l edge.Lane, r *rand.Rand) bool {
	mu := g.lanes[l.ID]
	mu.Lock()
	defer mu.Unlock()
	d := g.cfg.Devices
	arm, safety, bar := d.Loops[l.ArmingLoop], d.Loops[l.SafetyLoop], d.Barriers[l.Barrier]
	if arm == nil || safety == nil || bar == nil {
		g.log.Error("lane has no simulated loops or barrier", "lane", l.ID)
		return false
	}
	// Wait for the arm to be down from the car before: a driver does not drive through
	// an arm raised for someone else. A lane that stays open (a stuck arm, fail-open)
	// is given up on.
	for i := 0; bar.Position() != edge.PositionDown; i++ {
		if i > 800 || !sleep(ctx, 50*time.Millisecond) {
			return false
		}
	}
	direction := string(l.Direction)
	// A camera the edge reads itself sees the car before it reaches the arming
	// loop, until it has left the lane.
	view := g.viewer(l)
	if view != nil {
		view.Show(c.plate, direction)
		defer view.Show("", direction)
	}
	arm.SetOccupied(true)
	leave := func() { arm.SetOccupied(false) }
	if !sleep(ctx, 100*time.Millisecond) {
		leave()
		return false
	}
	g.read(ctx, c, l, direction, r, true)
	paid, rereads := false, 0
	deadline := time.Now().Add(20 * time.Second)
	for bar.Position() != edge.PositionUp {
		if time.Now().After(deadline) || !sleep(ctx, 100*time.Millisecond) {
			leave()
			return false
		}
		disp, err := g.display(ctx, l.ID)
		if err != nil || disp.Decision == nil || disp.Decision.Allowed {
			continue
		}
		switch dec := disp.Decision; {
		case dec.FeeDue > 0 && !paid:
			if err := g.pay(ctx, l.ID, dec.FeeDue); err != nil {
				g.log.Warn("payment failed", "lane", l.ID, "err", err)
			} else {
				g.count(func(t *Truth) { t.Paid += dec.FeeDue })
			}
			paid = true
		case dec.Reason == "plate_unsure" || dec.Reason == "unknown" || dec.Reason == "no_session":
			if rereads >= 3 {
				leave()
				return false
			}
			rereads++
			if view != nil {
				// The edge reads such a camera when the arming loop triggers it:
				// the driver backs off the loop and pulls forward again.
				arm.SetOccupied(false)
				sleep(ctx, 500*time.Millisecond)
				arm.SetOccupied(true)
			} else {
				g.read(ctx, c, l, direction, r, false) // the camera tries again
			}
			sleep(ctx, 300*time.Millisecond)
		case dec.FeeDue == 0:
			leave() // refused: full, blocked, ...
			return false
		}
	}
	safety.SetOccupied(true)
	sleep(context.WithoutCancel(ctx), g.cfg.Model.Pass/2)
	leave()
	sleep(context.WithoutCancel(ctx), g.cfg.Model.Pass/2)
	safety.SetOccupied(false)
	return true
}

// viewer returns the lane's camera if the edge reads its pictures itself, nil
// otherwise.
func (g *Garage) viewer(l edge.Lane) Viewer {
	if len(l.Cameras) == 0 {
		return nil
	}
	v, _ := g.cfg.Devices.Cameras[l.Cameras[0]].(Viewer)
	return v
}

// read makes the lane's camera push a read of the car's plate, misread now and then
// when first is set. A camera the edge reads itself (a Viewer) pushes nothing.
func (g *Garage) read(ctx context.Context, c *car, l edge.Lane, direction string, r *rand.Rand, first bool) {
	if len(l.Cameras) == 0 {
		return
	}
	cam := g.cfg.Devices.Cameras[l.Cameras[0]]
	if _, ok := cam.(Viewer); cam == nil || ok {
		return
	}
	p, conf := c.plate, 0.85+0.14*r.Float64()
	m := g.cfg.Model
	if first {
		switch x := r.Float64(); {
		case x < m.MisreadRate:
			p = misread(p, r)
		case x < m.MisreadRate+m.LowConfidenceRate:
			conf = 0.3
		}
	}
	if err := cam.Push(ctx, p, conf, direction); err != nil {
		g.log.Warn("camera push failed", "camera", l.Cameras[0], "err", err)
	}
}

type display struct {
	State    string `json:"state"`
	Decision *struct {
		Allowed bool   `json:"allowed"`
		Reason  string `json:"reason"`
		FeeDue  int64  `json:"fee_due"`
	} `json:"decision"`
}

func (g *Garage) display(ctx context.Context, lane string) (*display, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", g.cfg.EdgeURL+"/v1/lanes/"+lane+"/display", nil)
	if err != nil {
		return nil, err
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var d display
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("display %s: %s", lane, resp.Status)
	}
	return &d, json.NewDecoder(resp.Body).Decode(&d)
}

// pay is the driver paying the fee shown at the exit kiosk: by card through the
// kiosk's card terminal when the lane has one (the acquirer is the simulator's, see
// acquirersim), in cash when the card is declined or the lane has no terminal.
func (g *Garage) pay(ctx context.Context, lane string, amount int64) error {
	if l, ok := g.cfg.Facility.Lane(lane); ok && l.CardTerminal != "" {
		approved, msg, err := g.payByCard(ctx, lane)
		if err != nil || approved {
			return err
		}
		g.log.Info("card declined at the kiosk; paying cash", "lane", lane, "message", msg)
		g.count(func(t *Truth) { t.CardDeclined++ })
	}
	body, _ := json.Marshal(map[string]any{"amount": amount, "method": "cash", "reference": fmt.Sprintf("sim-%d", time.Now().UnixNano())})
	if l, ok := g.cfg.Facility.Lane(lane); ok && l.CardTerminal == "" {
		body, _ = json.Marshal(map[string]any{"amount": amount, "method": "kiosk_card", "reference": fmt.Sprintf("sim-%d", time.Now().UnixNano())})
	}
	req, err := http.NewRequestWithContext(ctx, "POST", g.cfg.EdgeURL+"/v1/lanes/"+lane+"/pay", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+g.cfg.KioskToken)
	resp, err := g.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("pay at %s: %s", lane, resp.Status)
	}
	return nil
}

// payByCard asks the edge to take the fee through the lane's card terminal.
func (g *Garage) payByCard(ctx context.Context, lane string) (approved bool, message string, err error) {
	req, err := http.NewRequestWithContext(ctx, "POST", g.cfg.EdgeURL+"/v1/lanes/"+lane+"/card", nil)
	if err != nil {
		return false, "", err
	}
	req.Header.Set("Authorization", "Bearer "+g.cfg.KioskToken)
	resp, err := g.client.Do(req)
	if err != nil {
		return false, "", err
	}
	defer resp.Body.Close()
	var out struct {
		Payment struct {
			Approved bool   `json:"approved"`
			Offline  bool   `json:"offline"`
			Message  string `json:"message"`
		} `json:"payment"`
	}
	if resp.StatusCode != 200 {
		return false, "", fmt.Errorf("card payment at %s: %s", lane, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return false, "", fmt.Errorf("card payment at %s: %w", lane, err)
	}
	if out.Payment.Approved {
		g.count(func(t *Truth) {
			t.CardPaid++
			if out.Payment.Offline {
				t.CardOffline++
			}
		})
	}
	return out.Payment.Approved, out.Payment.Message, nil
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

func randomPlate(r *rand.Rand) string {
	const letters = "ACDEFHJKLMNPRTUVWXY" // no letters that read like digits
	const digits = "34679"
	var b strings.Builder
	for range 2 {
		b.WriteByte(letters[r.IntN(len(letters))])
	}
	for range 3 {
		b.WriteByte(digits[r.IntN(len(digits))])
	}
	for range 2 {
		b.WriteByte(letters[r.IntN(len(letters))])
	}
	return b.String()
}

// misread replaces one character with one OCR engines confuse it with, or any other.
func misread(p string, r *rand.Rand) string {
	swap := map[byte]byte{'O': '0', '0': 'O', 'I': '1', '1': 'I', 'B': '8', '8': 'B', 'S': '5', '5': 'S', 'Z': '2', '2': 'Z'}
	b := []byte(p)
	i := r.IntN(len(b))
	if s, ok := swap[b[i]]; ok {
		b[i] = s
	} else {
		b[i] = "ACDEFHJKLMNPRTUVWXY"[r.IntN(19)]
	}
	return string(b)
}

// Fault is one fault to inject into a simulated device.
type Fault string

// Faults the simulator can inject.
const (
	FaultOffline  Fault = "offline"  // the device stops answering
	FaultGarbage  Fault = "garbage"  // the device sends malformed frames now and then
	FaultStuck    Fault = "stuck"    // a barrier ignores its commands
	FaultFlapping Fault = "flapping" // a spot sensor toggles quickly
)

// Inject puts fault on device for d, then lifts it. It returns an error when the
// device cannot have that fault.
func (g *Garage) Inject(ctx context.Context, device string, fault Fault, d time.Duration) error {
	devs := g.cfg.Devices
	var on, off func()
	switch fault {
	case FaultOffline, FaultGarbage:
		fd := devs.faulty(device)
		if fd == nil {
			return fmt.Errorf("sim: device %s cannot be made faulty", device)
		}
		set := fd.SetOffline
		if fault == FaultGarbage {
			set = fd.SetGarbage
		}
		on, off = func() { set(true) }, func() { set(false) }
	case FaultStuck:
		b := devs.Barriers[device]
		if b == nil {
			return fmt.Errorf("sim: %s is not a barrier", device)
		}
		on, off = func() { b.SetStuck(true) }, func() { b.SetStuck(false) }
	case FaultFlapping:
		sp := devs.Spots[device]
		if sp == nil {
			return fmt.Errorf("sim: %s is not a spot sensor", device)
		}
		// Flapping ends where it started: the sensor settles on its true state.
		on = func() {
			go func() {
				end := time.Now().Add(d)
				for state := true; time.Now().Before(end); state = !state {
					sp.SetOccupied(state)
					if !sleep(ctx, 200*time.Millisecond) {
						break
					}
				}
				g.mu.Lock()
				occupied := !slicesContains(g.spots, device)
				g.mu.Unlock()
				sp.SetOccupied(occupied)
			}()
		}
		off = func() {}
	default:
		return fmt.Errorf("sim: unknown fault %q", fault)
	}
	g.log.Info("fault injected", "device", device, "fault", fault, "for", d)
	on()
	go func() {
		sleep(context.WithoutCancel(ctx), d)
		off()
		g.log.Info("fault lifted", "device", device, "fault", fault)
	}()
	return nil
}

func slicesContains(free map[string][]string, id string) bool {
	for _, ids := range free {
		for _, x := range ids {
			if x == id {
				return true
			}
		}
	}
	return false
}

// faulty finds a device that can be taken offline or made to send garbage.
func (d Devices) faulty(id string) Faulty {
	if f, ok := d.Faulty[id]; ok {
		return f
	}
	for _, v := range []any{d.Loops[id], d.Barriers[id], d.Spots[id], d.Cameras[id]} {
		if f, ok := v.(Faulty); ok && v != nil {
			return f
		}
	}
	return nil
}

// Merge combines the devices of several protocols.
func Merge(all ...Devices) Devices {
	out := Devices{Loops: map[string]Loop{}, Barriers: map[string]Barrier{}, Spots: map[string]Spot{}, Cameras: map[string]Camera{}, Faulty: map[string]Faulty{}}
	var runs []func(context.Context) error
	for _, d := range all {
		for k, v := range d.Loops {
			out.Loops[k] = v
		}
		for k, v := range d.Barriers {
			out.Barriers[k] = v
		}
		for k, v := range d.Spots {
			out.Spots[k] = v
		}
		for k, v := range d.Cameras {
			out.Cameras[k] = v
		}
		for k, v := range d.Faulty {
			out.Faulty[k] = v
		}
		if d.Run != nil {
			runs = append(runs, d.Run)
		}
	}
	out.Run = func(ctx context.Context) error {
		errc := make(chan error, len(runs))
		for _, run := range runs {
			go func() { errc <- run(ctx) }()
		}
		var first error
		for range runs {
			if err := <-errc; err != nil && first == nil && ctx.Err() == nil {
				first = err
			}
		}
		return first
	}
	return out
}
