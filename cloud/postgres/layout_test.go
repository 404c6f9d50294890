package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	"github.com/gatehouse-parking/gatehouse/edge"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// layoutStream is a garage's outbox around layouts applied: zone Z (configured 10 with
// 2 held back) counted to 3, a layout setting Z to 5/1 while EV keeps its configured
// 3, counts after it, a layout that no longer sets Z, and a manual recount.
func layoutStream(facility string) []*gh.Envelope {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	zc := func(id string, c, hb int32) *gh.ZoneCapacity {
		return &gh.ZoneCapacity{ZoneId: id, Capacity: c, HeldBack: hb}
	}
	payloads := []proto.Message{
		&gh.OccupancyChanged{ZoneId: "Z", Delta: 3, Occupied: 3, Capacity: 10, Cause: "entry"},
		&gh.LayoutApplied{Version: 2, Zones: []*gh.ZoneCapacity{zc("Z", 5, 1)}, Configured: []*gh.ZoneCapacity{zc("EV", 3, 0)}},
		&gh.OccupancyChanged{ZoneId: "Z", Delta: 1, Occupied: 4, Capacity: 5, Cause: "entry"},
		&gh.LayoutApplied{Version: 3, Configured: []*gh.ZoneCapacity{zc("Z", 10, 2), zc("EV", 3, 0)}},
		&gh.OccupancyReset{ZoneId: "Z", Previous: 4, Occupied: 7, Operator: "op", Reason: "count"},
	}
	out := make([]*gh.Envelope, len(payloads))
	for i, p := range payloads {
		out[i] = &gh.Envelope{FacilityId: facility, Seq: uint64(i + 1), EventId: fmt.Sprintf("%032x", i+1),
			OccurredAt: timestamppb.New(t0.Add(time.Duration(i) * time.Minute))}
		out[i].SetPayload(p)
	}
	return out
}

func layoutFacility(id string) *edge.Facility {
	return &edge.Facility{ID: id, Zones: []edge.Zone{{ID: "Z", Capacity: 10, HeldBack: 2}, {ID: "EV", Capacity: 3}}}
}

// TestProjectLayoutApplied ingests the stream cut after each event, in one batch and
// event by event, through both write paths, and checks that zone_occupancy holds the
// capacity in force at the garage (as edge.Replay of the same prefix has it) and the
// garage's count.
func TestProjectLayoutApplied(t *testing.T) {
	for _, stage := range []bool{false, true} {
		for _, oneByOne := range []bool{false, true} {
			t.Run(fmt.Sprintf("stage=%v/one_by_one=%v", stage, oneByOne), func(t *testing.T) {
				ctx := context.Background()
				db := openDB(t)
				postgres.SetAlwaysStage(db, stage)
				const fac = "layout"
				f := layoutFacility(fac)
				events := layoutStream(fac)
				for n := 1; n <= len(events); n++ {
					batch := events[:n]
					if oneByOne {
						batch = events[n-1 : n]
					} else if n < len(events) {
						continue
					}
					res, err := db.Ingest(ctx, batch)
					if err != nil || len(res.Rejected) != 0 {
						t.Fatalf("Ingest(..%d) = %+v, %v", n, res, err)
					}
					checkZoneCapacities(t, db, f, events[:n])
				}
				checkProjections(t, db, f, events)
			})
		}
	}
}

// checkZoneCapacities compares zone_occupancy with the edge's fold of events: each zone
// the garage counted or set the capacity of, with its count and capacity in force.
func checkZoneCapacities(tb testing.TB, db *postgres.DB, f *edge.Facility, events []*gh.Envelope) {
	tb.Helper()
	st, err := edge.Replay(f, events)
	if err != nil {
		tb.Fatal(err)
	}
	zones, err := db.Occupancy(context.Background(), f.ID)
	if err != nil {
		tb.Fatal(err)
	}
	got := map[string]string{}
	for _, z := range zones {
		got[z.Zone] = fmt.Sprintf("%d/%d", z.Occupied, z.Capacity)
	}
	for i := range f.Zones {
		zc := &f.Zones[i]
		want := fmt.Sprintf("%d/%d", st.Zones[zc.ID].Occupied, st.ZoneLimits(zc).Capacity)
		g, ok := got[zc.ID]
		if !ok && st.Versions[edge.LayoutKind] == 0 && st.Zones[zc.ID].Occupied == 0 {
			continue // nothing reported of it yet
		}
		if g != want {
			tb.Errorf("after %d events zone %s occupied/capacity = %q; want %q", len(events), zc.ID, g, want)
		}
	}
}

// TestIngestRejectsBadLayout refuses a layout.applied whose zone has no id or a
// negative capacity: the projection keys on the zone id.
func TestIngestRejectsBadLayout(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	for i, la := range []*gh.LayoutApplied{
		{Version: 1, Zones: []*gh.ZoneCapacity{{ZoneId: "", Capacity: 4}}},
		{Version: 1, Configured: []*gh.ZoneCapacity{{ZoneId: "Z", Capacity: -1}}},
	} {
		ev := &gh.Envelope{FacilityId: "badlayout", Seq: 1, EventId: fmt.Sprintf("%032x", i+1), OccurredAt: timestamppb.Now()}
		ev.SetPayload(la)
		res, err := db.Ingest(ctx, []*gh.Envelope{ev})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Rejected) != 1 || res.Applied != 0 {
			t.Errorf("Ingest(%v) = %+v; want it rejected", la, res)
		}
	}
}
