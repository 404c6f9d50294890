package edge_test

import (
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/edge/boltstore"
	"github.com/gatehouse-parking/gatehouse/edge/inmem"
	"github.com/gatehouse-parking/gatehouse/edge/plate"
	"github.com/gatehouse-parking/gatehouse/edge/tariff"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// testFacility is a small garage: one zone of 10 spaces with 2 held back, an entry
// lane "in" and an exit lane "out", a rate of 2.00 per hour after 15 free minutes.
func testFacility() *edge.Facility {
	dev := func(id string, k edge.DeviceKind) edge.Device { return edge.Device{ID: id, Kind: k, Protocol: "inmem"} }
	f := &edge.Facility{
		ID: "test-garage", Name: "Test", Timezone: "UTC", Currency: "EUR",
		Levels: []edge.Level{{ID: "L1"}},
		Zones: []edge.Zone{{ID: "Z", Level: "L1", Capacity: 10, HeldBack: 2, Rate: "std", CountSource: edge.CountLanes},
			{ID: "EV", Level: "L1", Capacity: 3, Rate: "std", CountSource: edge.CountSensors,
				Spots: []edge.Spot{{ID: "EV1", Sensor: "s1"}, {ID: "EV2", Sensor: "s2"}, {ID: "EV3", Sensor: "s3"}}}},
		Lanes: []edge.Lane{
			{ID: "in", Direction: edge.Entry, Zone: "Z", ArmingLoop: "in-arm", SafetyLoop: "in-safe", Barrier: "in-bar", Cameras: []string{"in-cam"}, TicketReader: "in-tix", FailMode: edge.FailSecure},
			{ID: "out", Direction: edge.Exit, Zone: "Z", ArmingLoop: "out-arm", SafetyLoop: "out-safe", Barrier: "out-bar", Cameras: []string{"out-cam"}, TicketReader: "out-tix", FailMode: edge.FailSecure},
		},
		Devices: []edge.Device{dev("in-arm", edge.KindLoop), dev("in-safe", edge.KindLoop), dev("in-bar", edge.KindBarrier), dev("in-cam", edge.KindCamera), dev("in-tix", edge.KindTicketReader),
			dev("out-arm", edge.KindLoop), dev("out-safe", edge.KindLoop), dev("out-bar", edge.KindBarrier), dev("out-cam", edge.KindCamera), dev("out-tix", edge.KindTicketReader)},
		Tariffs: []tariff.Rate{{ID: "std", Currency: "EUR", FreeTime: tariff.Duration(15 * time.Minute), Increment: tariff.Duration(time.Hour),
			Tiers: []tariff.Tier{{PerIncrement: 200}}, DailyMax: 2000, LostTicket: 2500, Grace: tariff.Duration(15 * time.Minute)}},
		Policies: edge.Policies{AntiPassback: edge.PassbackSoft, PlateConfidence: 0.6, FuzzyPlates: true,
			CredentialWindow: edge.Duration(time.Minute), BarrierTimeout: edge.Duration(3 * time.Second), BarrierRetries: 2,
			PassTimeout: edge.Duration(30 * time.Second), StuckLoopAfter: edge.Duration(5 * time.Minute)},
		Permits: []edge.Permit{
			{ID: "P1", Plates: []string{"AB123CD"}, Cards: []string{"C-1"}, From: t0.Add(-24 * time.Hour), Until: t0.Add(30 * 24 * time.Hour)},
			{ID: "SHARED", Plates: []string{"FAM001", "FAM002"}, From: t0.Add(-24 * time.Hour), Until: t0.Add(30 * 24 * time.Hour), MaxInside: 1},
			{ID: "OLD", Plates: []string{"OLD999"}, From: t0.Add(-48 * time.Hour), Until: t0.Add(-24 * time.Hour)},
		},
		Reservations: []edge.Reservation{{ID: "R1", Plate: "RES777", Code: "QR-R1", Zone: "Z", From: t0, Until: t0.Add(3 * time.Hour), Grace: edge.Duration(30 * time.Minute), Prepaid: true}},
		Blocklist:    []edge.BlockEntry{{Plate: "BAD666", Reason: "stolen"}},
	}
	return f
}

type harness struct {
	t     testing.TB
	f     *edge.Facility
	g     *edge.Garage
	store *boltstore.Store
	bars  map[string]*inmem.Barrier
	now   time.Time
	path  string
	log   *slog.Logger // nil: discard
	terms map[string]edge.CardTerminal
}

// newHarness opens a garage on a fresh BoltDB file. Barriers are manual: the test
// reports arm positions, so that it can also withhold them.
func newHarness(tb testing.TB, edit func(f *edge.Facility)) *harness {
	tb.Helper()
	f := testFacility()
	if edit != nil {
		edit(f)
	}
	h := &harness{t: tb, f: f, now: t0, path: filepath.Join(tb.TempDir(), "garage.db")}
	h.open()
	return h
}

func (h *harness) open() {
	h.t.Helper()
	st, err := boltstore.Open(h.path, h.f.ID, &boltstore.Options{NoSync: true})
	if err != nil {
		h.t.Fatal(err)
	}
	h.store = st
	h.bars = inmem.Barriers(h.f, 0)
	for _, b := range h.bars {
		b.Manual = true
	}
	bars := map[string]edge.Barrier{}
	for id, b := range h.bars {
		bars[id] = b
	}
	g, err := edge.Open(edge.Config{Facility: h.f, Store: st, Barriers: bars, Logger: h.log, Now: func() time.Time { return h.now }, Terminals: h.terms})
	if err != nil {
		h.t.Fatal(err)
	}
	for _, b := range h.bars {
		b.Sink = g
	}
	h.g = g
	h.t.Cleanup(func() { st.Close() })
}

// reopen simulates a restart: close the store, open it again with a new Garage.
func (h *harness) reopen() {
	h.t.Helper()
	if err := h.g.Sync(); err != nil {
		h.t.Fatal(err)
	}
	h.store.Close()
	h.open()
}

func (h *harness) advance(d time.Duration) {
	h.now = h.now.Add(d)
	h.g.Tick(h.now)
}

func (h *harness) send(ev edge.DeviceEvent) {
	ev.At = h.now
	h.g.Deliver(ev)
}

func (h *harness) loop(dev string, on bool) {
	h.send(edge.DeviceEvent{Device: dev, Kind: edge.LoopChanged, Occupied: on})
}

func (h *harness) arm(bar string, p edge.Position) {
	h.send(edge.DeviceEvent{Device: bar, Kind: edge.ArmPosition, Position: p})
}

func (h *harness) plate(cam, text string, conf float64) {
	h.send(edge.DeviceEvent{Device: cam, Kind: edge.PlateRead, Read: plate.Read{Text: text, Confidence: conf}})
}

func (h *harness) lane(id string) edge.LaneView {
	for _, l := range h.g.Lanes() {
		if l.ID == id {
			return l
		}
	}
	h.t.Fatalf("no lane %s", id)
	return edge.LaneView{}
}

func (h *harness) occupied(zone string) int {
	for _, z := range h.g.Occupancy() {
		if z.ID == zone {
			return z.Occupied
		}
	}
	h.t.Fatalf("no zone %s", zone)
	return 0
}

// lastCommand returns the last barrier command: "raise", "lower" or "".
func (h *harness) lastCommand(bar string) string {
	c := h.bars[bar].Commands()
	if len(c) == 0 {
		return ""
	}
	if c[len(c)-1] {
		return "raise"
	}
	return "lower"
}

// present puts a vehicle on the lane's arming loop and presents a credential.
func (h *harness) present(laneID string, cred func()) edge.LaneView {
	h.loop(laneID+"-arm", true)
	cred()
	return h.lane(laneID)
}

// passThrough drives a vehicle through an opened lane and lowers the arm after it.
func (h *harness) passThrough(laneID string) {
	h.t.Helper()
	bar := laneID + "-bar"
	if got := h.lastCommand(bar); got != "raise" {
		h.t.Fatalf("lane %s: last barrier command %q; want raise", laneID, got)
	}
	h.arm(bar, edge.PositionUp)
	h.advance(time.Second)
	h.loop(laneID+"-safe", true)
	h.loop(laneID+"-arm", false)
	h.advance(time.Second)
	h.loop(laneID+"-safe", false)
	if got := h.lastCommand(bar); got != "lower" {
		h.t.Fatalf("lane %s: after passage last command %q; want lower", laneID, got)
	}
	h.arm(bar, edge.PositionDown)
	if st := h.lane(laneID).State; st != "idle" {
		h.t.Fatalf("lane %s state after passage = %s; want idle", laneID, st)
	}
}

// enterByPlate drives a whole entry by plate and fails the test if it is refused.
func (h *harness) enterByPlate(p string) {
	h.t.Helper()
	v := h.present("in", func() { h.plate("in-cam", p, 0.9) })
	if v.Decision == nil || !v.Decision.Allowed {
		h.t.Fatalf("entry of %s refused: %+v", p, v.Decision)
	}
	h.passThrough("in")
}

func (h *harness) events() []*gh.Envelope {
	h.t.Helper()
	if err := h.g.Sync(); err != nil {
		h.t.Fatal(err)
	}
	evs, err := h.store.Events(0, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	return evs
}

// types returns the event types written after seq.
func (h *harness) typesAfter(seq uint64) []string {
	var out []string
	for _, ev := range h.events() {
		if ev.Seq > seq {
			out = append(out, ev.Type)
		}
	}
	return out
}

func (h *harness) alertsAfter(seq uint64) []string {
	var out []string
	for _, ev := range h.events() {
		if a := ev.GetAlertTriggered(); ev.Seq > seq && a != nil && !a.Cleared {
			out = append(out, a.Code)
		}
	}
	return out
}

// checkConsistent verifies that the outbox replays to the garage's state and that the
// stored state reloads to it too.
func (h *harness) checkConsistent() {
	h.t.Helper()
	evs := h.events()
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) {
			h.t.Fatalf("event %d has seq %d: outbox has a gap", i, ev.Seq)
		}
	}
	replayed, err := edge.Replay(h.f, evs)
	if err != nil {
		h.t.Fatal(err)
	}
	if d := edge.Diff(h.g.State(), replayed); len(d) > 0 {
		h.t.Fatalf("state and outbox disagree:\n%s", d)
	}
	snap, err := h.store.Load()
	if err != nil {
		h.t.Fatal(err)
	}
	loaded, err := edge.Restore(h.f, snap)
	if err != nil {
		h.t.Fatal(err)
	}
	if d := edge.Diff(loaded, replayed); len(d) > 0 {
		h.t.Fatalf("stored state and outbox disagree:\n%s", d)
	}
}

func has(list []string, s string) bool { return slices.Contains(list, s) }
