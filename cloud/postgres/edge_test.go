package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
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

// edgeFacility is a small garage like the edge's own tests use: a counted zone of 10
// with 2 held back, a sensor zone of 3 spots, an entry and an exit lane with loops,
// barrier, camera and ticket reader, a tariff, permits and a reservation.
func edgeFacility() *edge.Facility {
	dev := func(id string, k edge.DeviceKind) edge.Device { return edge.Device{ID: id, Kind: k, Protocol: "inmem"} }
	return &edge.Facility{
		ID: "edge-garage", Name: "Edge", Timezone: "UTC", Currency: "EUR",
		Levels: []edge.Level{{ID: "L1"}},
		Zones: []edge.Zone{{ID: "Z", Level: "L1", Capacity: 8, HeldBack: 1, Rate: "std", CountSource: edge.CountLanes},
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
		},
		Reservations: []edge.Reservation{{ID: "R1", Plate: "RES777", Code: "QR-R1", Zone: "Z", From: t0, Until: t0.Add(3 * time.Hour), Grace: edge.Duration(30 * time.Minute), Prepaid: true}},
		Blocklist:    []edge.BlockEntry{{Plate: "BAD666", Reason: "stolen"}},
	}
}

// runGarage drives a real garage (BoltDB store, in-memory barriers, a hand-moved clock)
// with random device events, payments, recounts and device faults, as the edge's own
// random test does, and returns it with its outbox.
func runGarage(tb testing.TB, seed uint64, steps int) (*edge.Garage, []*gh.Envelope) {
	tb.Helper()
	f := edgeFacility()
	st, err := boltstore.Open(filepath.Join(tb.TempDir(), "garage.db"), f.ID, &boltstore.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	now := t0
	bars := inmem.Barriers(f, 0)
	for _, b := range bars {
		b.Manual = true
	}
	g, err := edge.Open(edge.Config{Facility: f, Store: st, Barriers: map[string]edge.Barrier{"in-bar": bars["in-bar"], "out-bar": bars["out-bar"]},
		Now: func() time.Time { return now }})
	if err != nil {
		tb.Fatal(err)
	}
	for _, b := range bars {
		b.Sink = g
	}
	send := func(ev edge.DeviceEvent) { ev.At = now; g.Deliver(ev) }
	lane := func(id string) edge.LaneView {
		for _, l := range g.Lanes() {
			if l.ID == id {
				return l
			}
		}
		return edge.LaneView{}
	}
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seed, 42))
	plates := []string{"AB123CD", "FAM001", "FAM002", "RES777", "BAD666", "XY99ZZ", "QQ11RR", "KL22MN", "ZZ9ZZ9", "MN44OP"}
	loops := []string{"in-arm", "in-safe", "out-arm", "out-safe"}
	for range steps {
		switch k := r.IntN(100); {
		case k < 30:
			send(edge.DeviceEvent{Device: loops[r.IntN(4)], Kind: edge.LoopChanged, Occupied: r.IntN(2) == 0})
		case k < 45:
			pos := []edge.Position{edge.PositionUp, edge.PositionDown, edge.PositionUp, edge.PositionDown, edge.PositionFault}[r.IntN(5)]
			send(edge.DeviceEvent{Device: []string{"in", "out"}[r.IntN(2)] + "-bar", Kind: edge.ArmPosition, Position: pos})
		case k < 60:
			send(edge.DeviceEvent{Device: []string{"in", "out"}[r.IntN(2)] + "-cam", Kind: edge.PlateRead,
				Read: plate.Read{Text: plates[r.IntN(len(plates))], Confidence: r.Float64()}})
		case k < 66:
			send(edge.DeviceEvent{Device: "in-tix", Kind: edge.TicketRequested})
		case k < 70:
			if ss := g.OpenSessions(); len(ss) > 0 {
				if s := ss[r.IntN(len(ss))]; s.Ticket != "" {
					send(edge.DeviceEvent{Device: "out-tix", Kind: edge.TicketPresented, Code: s.Ticket})
				}
			}
		case k < 73:
			send(edge.DeviceEvent{Device: []string{"in-tix", "out-tix"}[r.IntN(2)], Kind: edge.CardPresented, Code: "C-1"})
		case k < 74:
			send(edge.DeviceEvent{Device: "out-tix", Kind: edge.LostTicket})
		case k < 80:
			if v := lane("out"); v.Decision != nil && v.Decision.FeeDue > 0 {
				g.PayAtLane(ctx, "out", v.Decision.FeeDue, "kiosk_card", fmt.Sprint("r", r.IntN(1e6)))
			}
		case k < 82:
			g.OpenLane(ctx, []string{"in", "out"}[r.IntN(2)], "op", "random")
		case k < 83:
			g.ResetCount(ctx, "Z", r.IntN(7), "op", "recount")
		case k < 85:
			send(edge.DeviceEvent{Device: "s", Kind: edge.SpotChanged, Code: []string{"EV1", "EV2", "EV3"}[r.IntN(3)], Occupied: r.IntN(2) == 0})
		case k < 87:
			dev := []string{"in-cam", "out-cam", "in-tix", "out-arm"}[r.IntN(4)]
			send(edge.DeviceEvent{Device: dev, Kind: edge.DeviceHealth, Healthy: r.IntN(2) == 0, Detail: "link"})
		default:
			now = now.Add(time.Duration(r.ExpFloat64() * float64(20*time.Second)))
			g.Tick(now)
		}
	}
	if err := g.Sync(); err != nil {
		tb.Fatal(err)
	}
	events, err := st.Events(0, 0)
	if err != nil {
		tb.Fatal(err)
	}
	return g, events
}

// TestIngestEdgeGarage ingests a real garage's outbox, delivered in random overlapping
// and reordered batches, and checks that the cloud's zone counts, open sessions and
// active alerts are the garage's own.
func TestIngestEdgeGarage(t *testing.T) {
	ctx := context.Background()
	for _, seed := range []uint64{1, 2} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			g, events := runGarage(t, seed, 6000)
			db := openDB(t)
			r := rand.New(rand.NewPCG(seed, 5))
			for start := 0; start < len(events); {
				end := min(len(events), start+1+r.IntN(300))
				batch := slices.Clone(events[max(0, start-r.IntN(50)):end])
				r.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
				if r.IntN(4) == 0 { // lost on the way: a gap until the garage resends it
					i := r.IntN(len(batch))
					batch = slices.Delete(batch, i, i+1)
				}
				res, err := db.Ingest(ctx, batch)
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Rejected) > 0 {
					t.Fatalf("the garage's own events rejected: %v", res.Err())
				}
				// The garage is asked to resend a gap, and sometimes does so at once.
				if len(res.Gaps) > 0 && r.IntN(3) == 0 {
					gap := res.Gaps[0]
					if res, err = db.Ingest(ctx, events[gap.From-1:gap.To]); err != nil {
						t.Fatal(err)
					}
					if res.Projected == 0 || res.Applied == 0 {
						t.Fatalf("resent gap %v: %+v; want it applied and the waiting events projected", gap, res)
					}
				}
				start = end
			}
			// Whatever the delivery left out is resent, as a garage does when asked.
			if _, err := db.Ingest(ctx, events); err != nil {
				t.Fatal(err)
			}
			n := uint64(len(events))
			checkStatus(t, db, g.Facility().ID, int64(n), n, n, nil)
			checkProjections(t, db, g.Facility(), events)

			// And against the running garage itself.
			zones, err := db.Occupancy(ctx, g.Facility().ID)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, z := range zones {
				got[z.Zone] = z.Occupied
			}
			for _, z := range g.Occupancy() {
				if got[z.ID] != z.Occupied {
					t.Errorf("zone %s: cloud %d; garage %d", z.ID, got[z.ID], z.Occupied)
				}
			}
			open, err := db.OpenSessions(ctx, g.Facility().ID)
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs, wantIDs []string
			for _, s := range open {
				gotIDs = append(gotIDs, s.ID)
			}
			for _, s := range g.OpenSessions() {
				wantIDs = append(wantIDs, s.ID)
			}
			slices.Sort(gotIDs)
			slices.Sort(wantIDs)
			if !slices.Equal(gotIDs, wantIDs) {
				t.Errorf("open sessions: cloud %v; garage %v", gotIDs, wantIDs)
			}
			alerts, err := db.ActiveAlerts(ctx, g.Facility().ID)
			if err != nil {
				t.Fatal(err)
			}
			var gotKeys, wantKeys []string
			for _, a := range alerts {
				gotKeys = append(gotKeys, a.Key)
			}
			for _, a := range g.Alerts() {
				wantKeys = append(wantKeys, a.Key)
			}
			if !slices.Equal(gotKeys, wantKeys) {
				t.Errorf("active alerts: cloud %v; garage %v", gotKeys, wantKeys)
			}
			closed, _ := db.ClosedSessions(ctx, g.Facility().ID, 1<<20)
			t.Logf("%d events: %d zones, %d open sessions, %d closed, %d active alerts", n, len(zones), len(open), len(closed), len(alerts))
		})
	}
}
