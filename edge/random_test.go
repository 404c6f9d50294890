package edge_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// TestRandomDeviceEvents feeds long random sequences of device events, operator actions
// and clock jumps to a garage and checks its invariants after every step: counts never
// negative, never above capacity without an active alert; and at the end: the outbox is
// gapless, every exit ends exactly one entered session, and the outbox replays to the
// state that the store holds.
func TestRandomDeviceEvents(t *testing.T) {
	seeds, steps := 12, 20000
	if testing.Short() {
		seeds, steps = 3, 1000
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(seed), 42))
			h := newHarness(t, func(f *edge.Facility) {
				f.Policies.AntiPassback = []edge.AntiPassback{edge.PassbackNone, edge.PassbackSoft, edge.PassbackHard}[seed%3]
				f.Zones[0].Capacity, f.Zones[0].HeldBack = 6, 1
			})
			plates := []string{"AB123CD", "A8123CD", "FAM001", "FAM002", "RES777", "BAD666", "XY99ZZ", "QQ11RR", "KL22MN", "ZZ9ZZ9"}
			devs := []string{"in-arm", "in-safe", "out-arm", "out-safe"}
			ctx := context.Background()
			for i := range steps {
				switch k := r.IntN(100); {
				case k < 30:
					h.loop(devs[r.IntN(len(devs))], r.IntN(2) == 0)
				case k < 45:
					lane := []string{"in", "out"}[r.IntN(2)]
					pos := []edge.Position{edge.PositionUp, edge.PositionDown, edge.PositionUp, edge.PositionDown, edge.PositionFault}[r.IntN(5)]
					h.arm(lane+"-bar", pos)
				case k < 60:
					lane := []string{"in", "out"}[r.IntN(2)]
					h.plate(lane+"-cam", plates[r.IntN(len(plates))], r.Float64())
				case k < 66:
					h.send(edge.DeviceEvent{Device: "in-tix", Kind: edge.TicketRequested})
				case k < 70:
					if ss := h.g.OpenSessions(); len(ss) > 0 && ss[0].Ticket != "" {
						h.send(edge.DeviceEvent{Device: "out-tix", Kind: edge.TicketPresented, Code: ss[r.IntN(len(ss))].Ticket})
					}
				case k < 73:
					h.send(edge.DeviceEvent{Device: []string{"in-tix", "out-tix"}[r.IntN(2)], Kind: edge.CardPresented, Code: "C-1"})
				case k < 75:
					h.send(edge.DeviceEvent{Device: "out-tix", Kind: edge.LostTicket})
				case k < 80:
					if v := h.lane("out"); v.Decision != nil && v.Decision.FeeDue > 0 {
						if err := h.g.PayAtLane(ctx, "out", v.Decision.FeeDue, "kiosk_card", "r"); err != nil && edge.ErrorCode(err) != edge.ECONFLICT {
							t.Fatalf("step %d: pay: %v", i, err)
						}
					}
				case k < 82:
					h.g.OpenLane(ctx, []string{"in", "out"}[r.IntN(2)], "op", "random")
				case k < 83:
					h.g.ResetCount(ctx, "Z", r.IntN(7), "op", "random recount")
				case k < 84 && r.IntN(20) == 0:
					h.reopen() // a restart: lanes start over, state comes back from disk
				case k < 85:
					h.send(edge.DeviceEvent{Device: "s", Kind: edge.SpotChanged, Code: []string{"EV1", "EV2", "EV3"}[r.IntN(3)], Occupied: r.IntN(2) == 0})
				default:
					h.advance(time.Duration(r.ExpFloat64() * float64(20*time.Second)))
				}
				checkCounts(t, h, i)
			}
			h.checkConsistent()
			checkSessions(t, h)
		})
	}
}

func checkCounts(t *testing.T, h *harness, step int) {
	t.Helper()
	alerts := map[string]bool{}
	for _, a := range h.g.Alerts() {
		if a.Code == edge.AlertOverCapacity {
			alerts[a.Zone] = true
		}
	}
	for _, z := range h.g.Occupancy() {
		if z.Occupied < 0 {
			t.Fatalf("step %d: zone %s count %d < 0", step, z.ID, z.Occupied)
		}
		if z.Occupied > z.Capacity && !alerts[z.ID] {
			t.Fatalf("step %d: zone %s count %d above capacity %d without an alert", step, z.ID, z.Occupied, z.Capacity)
		}
	}
}

// checkSessions verifies that every session is started once and ended at most once,
// after it started, and that the open sessions are exactly those not ended.
func checkSessions(t *testing.T, h *harness) {
	t.Helper()
	started, ended := map[string]bool{}, map[string]bool{}
	for _, ev := range h.events() {
		if s := ev.GetSessionStarted(); s != nil {
			if started[s.SessionId] {
				t.Fatalf("session %s started twice", s.SessionId)
			}
			started[s.SessionId] = true
		}
		if e := ev.GetSessionEnded(); e != nil {
			if !started[e.SessionId] || ended[e.SessionId] {
				t.Fatalf("session %s ended without one entry (started %v, ended before %v)", e.SessionId, started[e.SessionId], ended[e.SessionId])
			}
			ended[e.SessionId] = true
		}
	}
	open := map[string]bool{}
	for _, s := range h.g.OpenSessions() {
		open[s.ID] = true
	}
	for id := range started {
		if open[id] == ended[id] {
			t.Fatalf("session %s: open %v, ended %v", id, open[id], ended[id])
		}
	}
	if len(open) != len(started)-len(ended) {
		t.Fatalf("open sessions %d; want %d started - %d ended", len(open), len(started), len(ended))
	}
	t.Logf("%d events, %d sessions started, %d ended", len(h.events()), len(started), len(ended))
}
