package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/pgtest"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// span is a batch of a stream: events[from:to], plus events[extra...] repeated.
type span struct {
	from, to int
	repeat   []int
	// want of the ingest
	applied, dups, projected int
	gaps                     []cloud.Gap
}

func (s span) batch(events []*gh.Envelope) []*gh.Envelope {
	b := slices.Clone(events[s.from:s.to])
	for _, i := range s.repeat {
		b = append(b, events[i])
	}
	return b
}

// TestIngestIdempotent ingests a stream as batches that repeat, overlap, reorder and
// leave gaps, through both write paths, and checks each ingest's counts and gaps, and
// at the end the stream position and the projections against the edge's fold.
func TestIngestIdempotent(t *testing.T) {
	const fac = "idem"
	f := streamFacility(fac)
	events := generate(fac, 1, 3000)
	gap := func(from, to uint64) []cloud.Gap { return []cloud.Gap{{Facility: fac, From: from, To: to}} }
	cases := []struct {
		name  string
		spans []span
	}{
		{"same batch twice", []span{
			{from: 0, to: 3000, applied: 3000, projected: 3000},
			{from: 0, to: 3000, dups: 3000},
		}},
		{"overlapping batches", []span{
			{from: 0, to: 1000, applied: 1000, projected: 1000},
			{from: 800, to: 2000, applied: 1000, dups: 200, projected: 1000},
			{from: 1500, to: 3000, applied: 1000, dups: 500, projected: 1000},
			{from: 10, to: 20, dups: 10},
		}},
		{"repeats within a batch", []span{
			{from: 0, to: 1000, repeat: []int{5, 999, 5}, applied: 1000, dups: 3, projected: 1000},
			{from: 1000, to: 3000, repeat: []int{2999, 1000}, applied: 2000, dups: 2, projected: 2000},
		}},
		{"gap filled later", []span{
			{from: 0, to: 1000, applied: 1000, projected: 1000},
			{from: 2000, to: 3000, applied: 1000, gaps: gap(1001, 2000)},
			{from: 1500, to: 2500, applied: 500, dups: 500, gaps: gap(1001, 1500)},
			{from: 999, to: 1500, applied: 500, dups: 1, projected: 2000},
		}},
		{"backwards", []span{
			{from: 2000, to: 3000, applied: 1000, gaps: gap(1, 2000)},
			{from: 1000, to: 2000, applied: 1000, gaps: gap(1, 1000)},
			{from: 0, to: 1000, applied: 1000, projected: 3000},
		}},
	}
	for _, stage := range []bool{false, true} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/stage=%v", tc.name, stage), func(t *testing.T) {
				ctx := context.Background()
				db := openDB(t)
				postgres.SetAlwaysStage(db, stage)
				for i, s := range tc.spans {
					res, err := db.Ingest(ctx, s.batch(events))
					if err != nil {
						t.Fatalf("batch %d: %v", i, err)
					}
					if res.Applied != s.applied || res.Duplicates != s.dups || res.Projected != s.projected ||
						fmt.Sprint(res.Gaps) != fmt.Sprint(s.gaps) || len(res.Rejected) != 0 || res.Conflicts != 0 {
						t.Errorf("batch %d [%d:%d]: applied %d, dups %d, projected %d, gaps %v, rejected %v, conflicts %d; want %d, %d, %d, %v",
							i, s.from, s.to, res.Applied, res.Duplicates, res.Projected, res.Gaps, res.Rejected, res.Conflicts,
							s.applied, s.dups, s.projected, s.gaps)
					}
				}
				checkStatus(t, db, fac, 3000, 3000, 3000, nil)
				checkProjections(t, db, f, events)
				if st := db.Stats(); st.Applied != 3000 || st.Projected != 3000 {
					t.Errorf("Stats() = %+v; want 3000 applied and projected", st)
				}
			})
		}
	}
}

// TestIngestOutOfOrder delivers a stream in random order, in random batches with
// repeats, and checks after every batch that the projections stand at the contiguous
// prefix, equal to the edge's fold of it, and that the reported gap is the first hole.
func TestIngestOutOfOrder(t *testing.T) {
	const fac = "shuffle"
	ctx := context.Background()
	f := streamFacility(fac)
	events := generate(fac, 2, 4000)
	db := openDB(t)
	r := rand.New(rand.NewPCG(3, 4))
	order := r.Perm(len(events))
	// Mostly in order with stragglers, as a resend after a partition looks.
	for i := range order {
		order[i] = i
	}
	for range 300 {
		i, j := r.IntN(len(order)), r.IntN(len(order))
		order[i], order[j] = order[j], order[i]
	}
	have := make([]bool, len(events))
	projected := 0
	for start, batchNo := 0, 0; start < len(order); batchNo++ {
		end := min(len(order), start+1+r.IntN(400))
		var batch []*gh.Envelope
		for _, i := range order[start:end] {
			batch = append(batch, events[i])
			have[i] = true
			if r.IntN(10) == 0 { // a redelivery of something sent before
				j := order[r.IntN(end)]
				batch = append(batch, events[j])
			}
		}
		start = end
		res, err := db.Ingest(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		projected += res.Projected
		prefix := slices.Index(have, false)
		if prefix < 0 {
			prefix = len(events)
		}
		if projected != prefix {
			t.Fatalf("batch %d: projected %d events in all; want the contiguous prefix %d", batchNo, projected, prefix)
		}
		var wantGaps []cloud.Gap
		if prefix < len(events) && slices.Contains(have[prefix:], true) {
			to := prefix + slices.Index(have[prefix:], true)
			wantGaps = []cloud.Gap{{Facility: fac, From: uint64(prefix) + 1, To: uint64(to)}}
		}
		if fmt.Sprint(res.Gaps) != fmt.Sprint(wantGaps) {
			t.Fatalf("batch %d: gaps %v; want %v", batchNo, res.Gaps, wantGaps)
		}
		if batchNo%10 == 0 {
			checkProjections(t, db, f, events[:prefix])
		}
	}
	checkStatus(t, db, fac, int64(len(events)), uint64(len(events)), uint64(len(events)), nil)
	checkProjections(t, db, f, events)
	gaps, err := db.Gaps(ctx)
	if err != nil || len(gaps) != 0 {
		t.Errorf("Gaps() = %v, %v; want none", gaps, err)
	}
}

// TestIngestGapReported checks FacilityStatus and Gaps while events wait behind a gap.
func TestIngestGapReported(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	a, b := generate("gap-a", 5, 500), generate("gap-b", 6, 500)
	// One batch of two facilities, each with a hole.
	batch := slices.Concat(a[:100], a[150:500], b[:300], b[301:500])
	res, err := db.Ingest(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	want := []cloud.Gap{{Facility: "gap-a", From: 101, To: 150}, {Facility: "gap-b", From: 301, To: 301}}
	if fmt.Sprint(res.Gaps) != fmt.Sprint(want) || res.Projected != 400 || res.Applied != 949 {
		t.Fatalf("Ingest: gaps %v, projected %d, applied %d; want %v, 400, 949", res.Gaps, res.Projected, res.Applied, want)
	}
	gaps, err := db.Gaps(ctx)
	if err != nil || fmt.Sprint(gaps) != fmt.Sprint(want) {
		t.Errorf("Gaps() = %v, %v; want %v", gaps, err, want)
	}
	checkStatus(t, db, "gap-a", 450, 100, 500, &want[0])
	checkStatus(t, db, "gap-b", 499, 300, 500, &want[1])
	checkProjections(t, db, streamFacility("gap-a"), a[:100])
	checkProjections(t, db, streamFacility("gap-b"), b[:300])

	if _, err := db.Ingest(ctx, []*gh.Envelope{b[300]}); err != nil {
		t.Fatal(err)
	}
	checkStatus(t, db, "gap-b", 500, 500, 500, nil)
	checkProjections(t, db, streamFacility("gap-b"), b)
	if _, err := db.FacilityStatus(ctx, "nowhere"); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("FacilityStatus(nowhere) error %v; want not_found", err)
	}
}

// TestIngestConcurrent ingests one facility's stream from several goroutines at once,
// each in its own random batches, and checks that every event was stored and folded
// into the projections exactly once.
func TestIngestConcurrent(t *testing.T) {
	const fac = "busy"
	ctx := context.Background()
	f := streamFacility(fac)
	events := generate(fac, 7, 6000)
	db := openDB(t)
	var (
		mu                 sync.Mutex
		applied, projected int
		wg                 sync.WaitGroup
		errs               = make(chan error, 4)
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 8))
			for start := 0; start < len(events); {
				end := min(len(events), start+50+r.IntN(600))
				batch := slices.Clone(events[max(0, start-r.IntN(100)):end])
				r.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
				res, err := db.Ingest(ctx, batch)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				applied += res.Applied
				projected += res.Projected
				mu.Unlock()
				start = end
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if applied != len(events) || projected != len(events) {
		t.Errorf("applied %d and projected %d in all; want each event once: %d", applied, projected, len(events))
	}
	checkStatus(t, db, fac, int64(len(events)), uint64(len(events)), uint64(len(events)), nil)
	checkProjections(t, db, f, events)
}

// TestIngestRestart restarts PostgreSQL while a stream is being ingested: the ingests
// that fail say the database is unavailable, and once it is back the stream resumes
// and ends complete, each event once.
func TestIngestRestart(t *testing.T) {
	const fac = "restart"
	ctx := context.Background()
	c, err := pgtest.Start(ctx, pgtest.Options{NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	db := openDSN(t, c.URL())
	f := streamFacility(fac)
	events := generate(fac, 9, 8000)

	restarted := make(chan error, 1)
	var restarting bool
	failures := 0
	for start := 0; start < len(events); {
		if start >= len(events)/3 && !restarting {
			restarting = true
			go func() { restarted <- c.Restart(ctx) }()
		}
		end := min(len(events), start+200)
		_, err := db.Ingest(ctx, events[start:end])
		if err != nil {
			if code := cloud.ErrorCode(err); code != cloud.EUNAVAILABLE {
				t.Fatalf("ingest during restart: %v (code %s); want unavailable", err, code)
			}
			failures++
			if failures > 500 {
				t.Fatalf("ingest did not resume: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
			continue // the same batch again
		}
		start = end
	}
	if err := <-restarted; err != nil {
		t.Fatalf("Restart: %v", err)
	}
	t.Logf("%d ingests failed while PostgreSQL restarted", failures)
	checkStatus(t, db, fac, int64(len(events)), uint64(len(events)), uint64(len(events)), nil)
	checkProjections(t, db, f, events)
}

// TestIngestRejects checks that invalid envelopes are refused with a clear error and
// counted, are not stored, and do not stop the valid ones of their batch.
func TestIngestRejects(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	good := generate("honest", 10, 3)
	edit := func(fn func(e *gh.Envelope)) *gh.Envelope {
		e := proto.Clone(good[1]).(*gh.Envelope)
		fn(e)
		return e
	}
	cases := []struct {
		name string
		env  *gh.Envelope
		want string
	}{
		{"no facility", edit(func(e *gh.Envelope) { e.FacilityId = "" }), "no facility id"},
		{"subject-breaking facility", edit(func(e *gh.Envelope) { e.FacilityId = "a.b>" }), "facility id"},
		{"seq 0", edit(func(e *gh.Envelope) { e.Seq = 0 }), "seq 0"},
		{"payload not matching type", edit(func(e *gh.Envelope) { e.Type = "session.ended" }), "does not match"},
		{"known type without payload", edit(func(e *gh.Envelope) { e.Payload = nil }), "without its payload"},
		{"no event id", edit(func(e *gh.Envelope) { e.EventId = "" }), "event id"},
		{"no time", edit(func(e *gh.Envelope) { e.OccurredAt = nil }), "occurred_at"},
		{"negative count", edit(func(e *gh.Envelope) {
			e.Type, e.Payload = "occupancy.changed", &gh.Envelope_OccupancyChanged{OccupancyChanged: &gh.OccupancyChanged{ZoneId: "L1", Occupied: -1}}
		}), "negative"},
		{"nil", nil, "nil envelope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := db.Stats().Rejected
			res, err := db.Ingest(ctx, []*gh.Envelope{tc.env})
			if err != nil {
				t.Fatalf("Ingest: %v; want the rejection in the result", err)
			}
			if len(res.Rejected) != 1 || res.Applied != 0 || cloud.ErrorCode(res.Rejected[0].Err) != cloud.EINVALID ||
				!strings.Contains(res.Rejected[0].Err.Error(), tc.want) {
				t.Fatalf("Ingest(%s) = %+v; want one invalid rejection saying %q", tc.name, res, tc.want)
			}
			if res.Err() == nil {
				t.Errorf("IngestResult.Err() = nil with a rejection")
			}
			if got := db.Stats().Rejected; got != before+1 {
				t.Errorf("Stats().Rejected = %d; want %d", got, before+1)
			}
		})
	}
	// A batch mixing good and bad: the good are stored, the bad are not.
	bad := edit(func(e *gh.Envelope) { e.Type = "gate.opened" })
	res, err := db.Ingest(ctx, []*gh.Envelope{good[0], bad, good[2], good[1]})
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != 3 || len(res.Rejected) != 1 || res.Rejected[0].Index != 1 || res.Rejected[0].Seq != 2 {
		t.Errorf("mixed batch: %+v; want 3 applied and #1 (seq 2) rejected", res)
	}
	checkStatus(t, db, "honest", 3, 3, 3, nil)
	// Bytes that are no envelope, through the wire entry point.
	raw, _ := proto.Marshal(generate("wire", 11, 1)[0])
	res, err = db.IngestWire(ctx, [][]byte{{0xff, 0xff, 0x01}, raw, []byte("garbage")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != 1 || len(res.Rejected) != 2 {
		t.Errorf("IngestWire: %+v; want 1 applied, 2 rejected", res)
	}
	if n, _ := db.EventCount(ctx, ""); n != 0 {
		t.Errorf("events stored without a facility: %d", n)
	}
}

// TestIngestConflict checks that an event reusing a stored seq with another event id
// is counted as a conflict and leaves the stored event alone.
func TestIngestConflict(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	events := generate("reuse", 12, 10)
	if _, err := db.Ingest(ctx, events); err != nil {
		t.Fatal(err)
	}
	forged := proto.Clone(events[4]).(*gh.Envelope)
	forged.EventId = "00000000000000000000000000000001"
	res, err := db.Ingest(ctx, []*gh.Envelope{forged, events[5]})
	if err != nil {
		t.Fatal(err)
	}
	if res.Conflicts != 1 || res.Duplicates != 2 || res.Applied != 0 {
		t.Errorf("Ingest = %+v; want 2 duplicates, 1 conflict", res)
	}
	var id string
	if err := db.Pool().QueryRow(ctx, "SELECT replace(event_id::text, '-', '') FROM events WHERE facility_id = 'reuse' AND seq = 5").Scan(&id); err != nil {
		t.Fatal(err)
	}
	if id != events[4].EventId {
		t.Errorf("stored event id = %s; want the original %s", id, events[4].EventId)
	}
}

// TestIngestUnknownType checks that an event of a type from a newer garage is stored
// and passed over, so the stream does not stall behind it.
func TestIngestUnknownType(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	events := generate("newer", 13, 20)
	future := &gh.Envelope{FacilityId: "newer", Seq: 21, EventId: "0123456789abcdef0123456789abcdef",
		OccurredAt: timestamppb.Now(), Type: "charger.session.started"}
	after := proto.Clone(events[19]).(*gh.Envelope)
	after.Seq, after.EventId = 22, "fedcba9876543210fedcba9876543210"
	after.Type, after.Payload = "gate.opened", &gh.Envelope_GateOpened{GateOpened: &gh.GateOpened{BarrierId: "b"}}
	res, err := db.Ingest(ctx, append(events, future, after))
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != 22 || res.Projected != 22 || len(res.Rejected) != 0 {
		t.Errorf("Ingest = %+v; want 22 applied and projected", res)
	}
	if st := db.Stats(); st.Unknown != 1 {
		t.Errorf("Stats().Unknown = %d; want 1", st.Unknown)
	}
}

// TestMigrateConcurrent starts several cloud processes' worth of migrations at once:
// each migration runs once and a second Migrate does nothing.
func TestMigrateConcurrent(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.ForTest(t)
	var dbs []*postgres.DB
	for range 4 {
		db, err := postgres.Open(ctx, dsn, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		dbs = append(dbs, db)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(dbs))
	for i, db := range dbs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = db.Migrate(ctx) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if err := dbs[0].Migrate(ctx); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	var n, versions int
	if err := dbs[0].Pool().QueryRow(ctx, "SELECT count(*), count(DISTINCT version) FROM schema_migrations").Scan(&n, &versions); err != nil {
		t.Fatal(err)
	}
	if want := postgres.MigrationCount(); n != want || versions != want || want < 6 {
		t.Errorf("schema_migrations has %d rows, %d versions; want %d of each (and at least 6)", n, versions, want)
	}
	for _, table := range []string{"facilities", "events", "zone_occupancy", "open_sessions", "sessions", "active_alerts", "device_health", "lane_status", "spot_status"} {
		var ok bool
		if err := dbs[0].Pool().QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&ok); err != nil || !ok {
			t.Errorf("table %s missing (%v)", table, err)
		}
	}
}

// TestIngestAroundTheTable checks the fallback when events were written to the table
// without the ingest (a restore, a manual fix): a batch that looks new but is not is
// retried through the staging table instead of failing.
func TestIngestAroundTheTable(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	events := generate("manual", 14, 100)
	if _, err := db.Ingest(ctx, events[:50]); err != nil {
		t.Fatal(err)
	}
	raw, _ := proto.Marshal(events[60])
	if _, err := db.Pool().Exec(ctx, `INSERT INTO events (facility_id, seq, event_id, type, occurred_at, lane_id, payload)
		VALUES ($1, $2, $3::uuid, $4, $5, $6, $7)`, "manual", 61, events[60].EventId, events[60].Type,
		events[60].OccurredAt.AsTime(), events[60].LaneId, raw); err != nil {
		t.Fatal(err)
	}
	staged := db.Stats().StagedBatches
	res, err := db.Ingest(ctx, events[50:])
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != 49 || res.Duplicates != 1 || res.Projected != 50 {
		t.Errorf("Ingest = %+v; want 49 applied, 1 duplicate, 50 projected", res)
	}
	if db.Stats().StagedBatches != staged+1 {
		t.Errorf("the batch did not go through the staging table")
	}
	checkStatus(t, db, "manual", 100, 100, 100, nil)
	checkProjections(t, db, streamFacility("manual"), events)
}
