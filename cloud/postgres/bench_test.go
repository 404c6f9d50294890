package postgres_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/pgtest"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"google.golang.org/protobuf/proto"
)

// BenchmarkDrain measures the drain of a garage's backlog after an outage: N events of
// one facility (GATEHOUSE_BENCH_EVENTS, default 1,000,000; a realistic mix from the
// stream generator), marshalled in memory first as they sit in the hub's stream, then
// drained in batches of each size in GATEHOUSE_BENCH_BATCH (default 1000,5000,10000),
// one transaction per batch, into a fresh database of a cluster with fsync on. ingest
// drains as the consumer should: PrepareWire (decode, validate, sort, fold) of batch
// n+1 runs while IngestPrepared (lock, COPY, projections, commit) writes batch n;
// ingest-serial calls IngestWire batch after batch. raw-copy writes the same rows
// (decoded beforehand, so it pays no decoding) with COPY into a bare table with the same
// primary key, one transaction per batch of the same size. ingest-staged forces every
// batch through the staging table and INSERT ... ON CONFLICT, the path that batches
// overlapping stored events take. Each reports events/s; the last line reports the best
// ingest rate over the best raw-copy rate, over the batch sizes (target >= 0.5). Run it once with
// -benchtime=1x.
func BenchmarkDrain(b *testing.B) {
	n := envInt("GATEHOUSE_BENCH_EVENTS", 1_000_000)
	var sizes []int
	for _, s := range strings.Split(os.Getenv("GATEHOUSE_BENCH_BATCH"), ",") {
		if v, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && v > 0 {
			sizes = append(sizes, v)
		}
	}
	if len(sizes) == 0 {
		sizes = []int{1000, 5000, 10000}
	}
	ctx := context.Background()

	const fac = "bench-garage"
	events := generate(fac, 1, n)
	// Kept flat: millions of small heap objects would make every GC cycle of the run
	// slow, and the ingest, which allocates, would pay for it more than COPY does.
	msgs := make([][]byte, n)
	rows := make([]rawRow, n)
	bytes := 0
	for i, e := range events {
		raw, err := proto.Marshal(e)
		if err != nil {
			b.Fatal(err)
		}
		id, _ := cloud.ParseEventID(e.EventId)
		msgs[i] = raw
		rows[i] = rawRow{facility: e.FacilityId, seq: int64(e.Seq), id: id, typ: e.Type, at: e.OccurredAt.AsTime(), lane: e.LaneId, payload: raw}
		bytes += len(raw)
	}
	events = nil
	runtime.GC()
	// Printed rather than logged: a parent benchmark's log is shown only with -v.
	fmt.Printf("drain: backlog of %d events of %s, %d MB marshalled, %.0f bytes per event\n", n, fac, bytes>>20, float64(bytes)/float64(n))

	c, err := pgtest.Start(ctx, pgtest.Options{Settings: map[string]string{
		// A cloud database is tuned for bulk writes at least this far; both sides get it.
		"max_wal_size": "4GB",
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Stop()
	var fsync string
	if err := pgxQuery(ctx, c.URL(), "SELECT current_setting('fsync') || '/' || current_setting('synchronous_commit')", &fsync); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("drain: PostgreSQL %s, fsync/synchronous_commit %s\n", c.DataDir(), fsync)

	var mu sync.Mutex
	rate := map[string]float64{}
	dbNo := 0
	freshDB := func(b *testing.B) string {
		dbNo++
		dsn, err := c.CreateDatabase(ctx, fmt.Sprintf("drain_%d", dbNo))
		if err != nil {
			b.Fatal(err)
		}
		return dsn
	}
	record := func(b *testing.B, name string, elapsed time.Duration) {
		r := float64(n) * float64(b.N) / elapsed.Seconds()
		b.ReportMetric(r, "events/s")
		b.ReportMetric(0, "ns/op")
		mu.Lock()
		rate[name] = max(rate[name], r)
		mu.Unlock()
	}

	for _, size := range sizes {
		b.Run(fmt.Sprintf("raw-copy/batch=%d", size), func(b *testing.B) {
			var elapsed time.Duration
			for range b.N {
				dsn := freshDB(b)
				conn, err := pgx.Connect(ctx, dsn)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := conn.Exec(ctx, `CREATE TABLE raw_events (facility_id text NOT NULL, seq bigint NOT NULL,
					event_id uuid NOT NULL, type text NOT NULL, occurred_at timestamptz NOT NULL, lane_id text NOT NULL DEFAULT '',
					payload bytea NOT NULL, received_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (facility_id, seq))`); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				for i := 0; i < n; i += size {
					err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
						_, err := tx.CopyFrom(ctx, pgx.Identifier{"raw_events"},
							[]string{"facility_id", "seq", "event_id", "type", "occurred_at", "lane_id", "payload"},
							&rawSource{rows: rows[i:min(n, i+size)]})
						return err
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				elapsed += time.Since(start)
				conn.Close(ctx)
			}
			record(b, "raw-copy", elapsed)
		})
		for _, v := range []struct {
			name              string
			staged, pipelined bool
		}{{"ingest", false, true}, {"ingest-serial", false, false}, {"ingest-staged", true, true}} {
			b.Run(fmt.Sprintf("%s/batch=%d", v.name, size), func(b *testing.B) {
				var elapsed time.Duration
				for range b.N {
					db, err := postgres.Open(ctx, freshDB(b), nil)
					if err != nil {
						b.Fatal(err)
					}
					if err := db.Migrate(ctx); err != nil {
						b.Fatal(err)
					}
					postgres.SetAlwaysStage(db, v.staged)
					start := time.Now()
					drain(b, db, msgs, size, v.pipelined)
					elapsed += time.Since(start)
					st, err := db.FacilityStatus(ctx, fac)
					if err != nil || st.AppliedSeq != uint64(n) {
						b.Fatalf("after the drain: %+v, %v; want %d applied", st, err, n)
					}
					db.Close()
				}
				record(b, v.name, elapsed)
			})
		}
	}
	mu.Lock()
	ratio := rate["ingest"] / rate["raw-copy"]
	fmt.Printf("drain: best raw COPY %.0f events/s; best ingest %.0f events/s (serial %.0f, staged %.0f): ingest/raw = %.2f (target >= 0.5)\n",
		rate["raw-copy"], rate["ingest"], rate["ingest-serial"], rate["ingest-staged"], ratio)
	mu.Unlock()
	b.Run("ratio", func(b *testing.B) {
		b.ReportMetric(ratio, "ingest/raw")
		b.ReportMetric(0, "ns/op")
	})
}

// drain ingests msgs in batches of size, as the cloud's consumer drains a backlog:
// pipelined, one goroutine prepares (decodes, validates, folds) the next batch while
// the database writes this one; serial, each batch is prepared and then written.
func drain(b *testing.B, db *postgres.DB, msgs [][]byte, size int, pipelined bool) {
	ctx := context.Background()
	check := func(at int, res cloud.IngestResult, err error) {
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Rejected) > 0 || len(res.Gaps) > 0 {
			b.Fatalf("batch at %d: rejected %v, gaps %v", at, res.Err(), res.Gaps)
		}
	}
	n := len(msgs)
	if !pipelined {
		for i := 0; i < n; i += size {
			res, err := db.IngestWire(ctx, msgs[i:min(n, i+size)])
			check(i, res, err)
		}
		return
	}
	next := make(chan *postgres.Prepared, 2)
	done := make(chan struct{})
	defer close(done)
	go func() {
		defer close(next)
		for i := 0; i < n; i += size {
			select {
			case next <- postgres.PrepareWire(msgs[i:min(n, i+size)]):
			case <-done:
				return
			}
		}
	}()
	i := 0
	for p := range next {
		res, err := db.IngestPrepared(ctx, p)
		check(i, res, err)
		i += size
	}
}

// rawRow is an events row for the raw COPY.
type rawRow struct {
	facility, typ, lane string
	seq                 int64
	id                  [16]byte
	at                  time.Time
	payload             []byte
}

type rawSource struct {
	rows []rawRow
	i    int
}

func (s *rawSource) Next() bool { s.i++; return s.i <= len(s.rows) }

func (s *rawSource) Values() ([]any, error) {
	r := &s.rows[s.i-1]
	return []any{r.facility, r.seq, pgtype.UUID{Bytes: r.id, Valid: true}, r.typ, r.at, r.lane, r.payload}, nil
}

func (s *rawSource) Err() error { return nil }

func pgxQuery(ctx context.Context, dsn, sql string, dst any) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, sql).Scan(dst)
}
