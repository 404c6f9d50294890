package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"google.golang.org/protobuf/proto"
)

// createStage makes the session's staging table the first time a session stages a
// batch; later batches find it. Temporary, it costs no WAL; ON COMMIT DELETE ROWS
// empties it at the end of each transaction that used it, so a batch never sees
// another's rows.
const createStage = `CREATE TEMP TABLE IF NOT EXISTS ingest_stage (
	facility_id text        NOT NULL,
	seq         bigint      NOT NULL,
	event_id    uuid        NOT NULL,
	type        text        NOT NULL,
	occurred_at timestamptz NOT NULL,
	lane_id     text        NOT NULL,
	payload     bytea       NOT NULL
) ON COMMIT DELETE ROWS`

// eventColumns are the columns the ingest writes, in the staging table and in events;
// received_at takes its default, the transaction's time.
var eventColumns = []string{"facility_id", "seq", "event_id", "type", "occurred_at", "lane_id", "payload"}

// chunk bounds how many events are folded in memory before their net effect is written
// to the projections, and how many waiting events are read back at a time.
const chunk = 20000

// item is one valid envelope of a batch with its wire form.
type item struct {
	env   *gh.Envelope
	raw   []byte
	id    [16]byte
	index int // in the caller's batch
}

// facilityBatch is the part of a batch that belongs to one facility.
type facilityBatch struct {
	id    string
	items []item // sorted by seq, without repeats
	// pre is the projection of the batch's contiguous run from its first seq, folded
	// when the batch was prepared; used when that seq is the one the facility needs.
	pre *run

	applied  uint64 // facilities.applied_seq, read under the lock
	received uint64 // facilities.last_seq_received, read under the lock
}

// run is a folded run of contiguous events: its statements and what it covered.
type run struct {
	from, to uint64
	n        int
	unknown  int
	lastAt   time.Time
	flushes  []queries
}

// Prepared is a batch made ready to ingest: decoded, validated, sorted by facility and
// seq, repeats removed, and its likely projection folded and turned into statements.
// It holds no connection, so a drain can prepare the next batch while the database
// writes this one (see IngestPrepared), and it can be ingested again after a failure.
type Prepared struct {
	items     []item
	facs      []*facilityBatch
	rejected  []cloud.Rejection
	dups      int // repeats within the batch
	conflicts []string
}

// Len returns the number of envelopes in the batch, valid or not.
func (p *Prepared) Len() int { return len(p.items) + p.dups + len(p.rejected) }

// Prepare readies decoded envelopes for IngestPrepared: envelopes that fail
// cloud.ValidateEnvelope are set aside as rejections.
func Prepare(envs []*gh.Envelope) *Prepared {
	p := &Prepared{}
	items := make([]item, 0, len(envs))
	for i, env := range envs {
		if err := cloud.ValidateEnvelope(env); err != nil {
			p.rejected = append(p.rejected, rejection(i, env, err))
			continue
		}
		raw, err := proto.Marshal(env)
		if err != nil {
			p.rejected = append(p.rejected, rejection(i, env, &cloud.Error{Code: cloud.EINVALID, Message: "envelope does not marshal", Err: err}))
			continue
		}
		id, _ := cloud.ParseEventID(env.EventId)
		items = append(items, item{env: env, raw: raw, id: id, index: i})
	}
	p.finish(items)
	return p
}

// PrepareWire readies envelopes as they come off the wire (NATS message bodies): each is
// decoded and validated (cloud.DecodeEnvelope), and the bytes given are what is stored,
// so a field added by a newer garage is kept.
func PrepareWire(msgs [][]byte) *Prepared {
	p := &Prepared{}
	items := make([]item, 0, len(msgs))
	for i, b := range msgs {
		env, err := cloud.DecodeEnvelope(b)
		if err != nil {
			p.rejected = append(p.rejected, rejection(i, env, err))
			continue
		}
		id, _ := cloud.ParseEventID(env.EventId)
		items = append(items, item{env: env, raw: b, id: id, index: i})
	}
	p.finish(items)
	return p
}

func rejection(i int, env *gh.Envelope, err error) cloud.Rejection {
	return cloud.Rejection{Index: i, Facility: env.GetFacilityId(), Seq: env.GetSeq(), Err: err}
}

// finish sorts, removes repeats, groups by facility and folds each facility's run.
func (p *Prepared) finish(items []item) {
	slices.SortStableFunc(items, func(a, b item) int {
		return cmp.Or(cmp.Compare(a.env.FacilityId, b.env.FacilityId), cmp.Compare(a.env.Seq, b.env.Seq))
	})
	// A seq repeated within the batch is a duplicate of its first occurrence.
	uniq := items[:0]
	for _, it := range items {
		if n := len(uniq); n > 0 && uniq[n-1].env.FacilityId == it.env.FacilityId && uniq[n-1].env.Seq == it.env.Seq {
			p.dups++
			if uniq[n-1].id != it.id {
				p.conflicts = append(p.conflicts, fmt.Sprintf("%s/%d: kept %s, ignored %s",
					it.env.FacilityId, it.env.Seq, uniq[n-1].env.EventId, it.env.EventId))
			}
			continue
		}
		uniq = append(uniq, it)
	}
	p.items = uniq
	for i := 0; i < len(uniq); {
		j := i + 1
		for j < len(uniq) && uniq[j].env.FacilityId == uniq[i].env.FacilityId {
			j++
		}
		f := &facilityBatch{id: uniq[i].env.FacilityId, items: uniq[i:j]}
		f.pre = fold(f.id, f.items, f.items[0].env.Seq)
		p.facs = append(p.facs, f)
		i = j
	}
}

// fold folds the items' contiguous run that starts at seq from, skipping the items
// before it, into statements, a chunk at a time.
func fold(facility string, items []item, from uint64) *run {
	r := &run{from: from, to: from - 1}
	p := newProjector(facility)
	for _, it := range items {
		if it.env.Seq <= r.to {
			continue // a duplicate of an applied event
		}
		if it.env.Seq > r.to+1 {
			break // a gap
		}
		if !p.add(it.env) {
			r.unknown++
		}
		if at := it.env.OccurredAt.AsTime(); at.After(r.lastAt) {
			r.lastAt = at
		}
		r.to++
		r.n++
		if p.n >= chunk {
			r.flushes = append(r.flushes, p.take())
		}
	}
	if q := p.take(); len(q) > 0 {
		r.flushes = append(r.flushes, q)
	}
	return r
}

// Ingest stores a batch of envelopes, of one garage or several, and applies them to the
// projections, in one transaction.
//
// Each event is stored once under its (facility_id, seq): envelopes already stored are
// counted as duplicates and change nothing, so ingesting a batch twice, or batches that
// overlap, is harmless. A facility's events are folded into the projections in seq
// order and only while their seqs are contiguous after its applied seq; events beyond a
// gap are stored and wait until a later batch fills the gap, and the result reports the
// gap so the garage can be asked to resend it. Concurrent ingests of one facility take
// turns on its row lock.
//
// Invalid envelopes (see cloud.ValidateEnvelope) are not stored: they are listed in the
// result's Rejected, counted and logged, and the rest of the batch is ingested. The
// error is for the database only: a cloud.Error with code EUNAVAILABLE when it is away,
// in which case nothing of the batch was committed and the batch may be retried.
func (db *DB) Ingest(ctx context.Context, envs []*gh.Envelope) (cloud.IngestResult, error) {
	return db.IngestPrepared(ctx, Prepare(envs))
}

// IngestWire is Ingest for envelopes as they come off the wire (see PrepareWire).
func (db *DB) IngestWire(ctx context.Context, msgs [][]byte) (cloud.IngestResult, error) {
	return db.IngestPrepared(ctx, PrepareWire(msgs))
}

// IngestPrepared is Ingest for a batch prepared with Prepare or PrepareWire. A drain
// prepares batch n+1 while this writes batch n, so decoding and folding cost no time
// on the database's critical path.
func (db *DB) IngestPrepared(ctx context.Context, p *Prepared) (cloud.IngestResult, error) {
	res := cloud.IngestResult{Rejected: p.rejected, Duplicates: p.dups, Conflicts: len(p.conflicts)}
	if n := len(res.Rejected); n > 0 {
		db.stats.rejected.Add(uint64(n))
		for _, r := range res.Rejected[:min(n, 10)] {
			db.log.Warn("envelope rejected", "index", r.Index, "facility", r.Facility, "seq", r.Seq, "err", r.Err)
		}
	}
	for _, c := range p.conflicts[:min(len(p.conflicts), 10)] {
		db.log.Error("two events with one seq in a batch; the first is kept", "event", c)
	}
	if len(p.items) == 0 {
		return res, nil
	}
	stage := db.alwaysStage
	for {
		r, err := db.ingestTx(ctx, p.facs, p.items, stage)
		var pe *pgconn.PgError
		if err != nil && !stage && errors.As(err, &pe) && pe.Code == "23505" {
			// A seq above last_seq_received was stored after all: the table was written
			// around the ingest. Take the path that checks every row.
			db.log.Warn("events beyond last_seq_received already stored; retrying through the staging table", "err", err)
			stage = true
			continue
		}
		if err != nil {
			return res, wrap(err, "ingest")
		}
		res.Applied = r.Applied
		res.Duplicates += r.Duplicates
		res.Conflicts += r.Conflicts
		res.Projected = r.Projected
		res.Gaps = r.Gaps
		break
	}
	s := &db.stats
	s.batches.Add(1)
	s.applied.Add(uint64(res.Applied))
	s.duplicates.Add(uint64(res.Duplicates))
	s.conflicts.Add(uint64(res.Conflicts))
	s.projected.Add(uint64(res.Projected))
	if len(res.Gaps) > 0 {
		db.log.Info("ingest: waiting for a gap", "gaps", res.Gaps)
	}
	return res, nil
}

// ingestTx is one attempt at the batch's transaction.
func (db *DB) ingestTx(ctx context.Context, facs []*facilityBatch, items []item, stage bool) (res cloud.IngestResult, err error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			tx.Rollback(context.WithoutCancel(ctx))
		}
	}()

	// Lock the batch's facilities, creating the rows of new ones, in id order so that
	// ingests of several facilities cannot deadlock. From here to the commit, nobody
	// else writes these facilities' events or projections.
	ids := make([]string, len(facs))
	for i, f := range facs {
		ids[i] = f.id
	}
	if _, err := tx.Exec(ctx, `INSERT INTO facilities (id, name) SELECT f, f FROM unnest($1::text[]) AS f ORDER BY f
		ON CONFLICT (id) DO NOTHING`, ids); err != nil {
		return res, err
	}
	rows, err := tx.Query(ctx, `SELECT id, applied_seq, last_seq_received FROM facilities
		WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`, ids)
	if err != nil {
		return res, err
	}
	i := 0
	for rows.Next() {
		var id string
		var applied, received int64
		if err := rows.Scan(&id, &applied, &received); err != nil {
			rows.Close()
			return res, err
		}
		if i >= len(facs) || facs[i].id != id {
			rows.Close()
			return res, fmt.Errorf("facility rows out of step at %q", id)
		}
		facs[i].applied, facs[i].received = uint64(applied), uint64(received)
		i++
	}
	if err := rows.Err(); err != nil {
		return res, err
	}
	if i != len(facs) {
		return res, fmt.Errorf("locked %d facility rows of %d", i, len(facs))
	}

	// Every seq above last_seq_received is new: last_seq_received is the highest seq
	// stored, kept in this transaction under the lock. A batch entirely above it (the
	// normal case: a garage's stream in order) is copied straight into events; one that
	// overlaps what is stored goes through the staging table and ON CONFLICT.
	for _, f := range facs {
		if f.items[0].env.Seq <= f.received {
			stage = true
		}
	}
	total := int64(len(items))
	var inserted int64
	if !stage {
		if inserted, err = tx.CopyFrom(ctx, pgx.Identifier{"events"}, eventColumns, &copySource{items: items}); err != nil {
			return res, err
		}
	} else {
		db.stats.staged.Add(1)
		if _, err := tx.Exec(ctx, createStage); err != nil {
			return res, err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ingest_stage"}, eventColumns, &copySource{items: items}); err != nil {
			return res, err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO events (facility_id, seq, event_id, type, occurred_at, lane_id, payload)
			SELECT facility_id, seq, event_id, type, occurred_at, lane_id, payload FROM ingest_stage
			ORDER BY facility_id, seq
			ON CONFLICT (facility_id, seq) DO NOTHING`)
		if err != nil {
			return res, err
		}
		inserted = tag.RowsAffected()
		if inserted < total {
			if res.Conflicts, err = db.conflicts(ctx, tx); err != nil {
				return res, err
			}
		}
	}
	res.Applied = int(inserted)
	res.Duplicates = int(total - inserted)

	// Fold what became contiguous into the projections.
	upd := struct {
		ids               []string
		applied, received []int64
		lastAt            []pgtype.Timestamptz
	}{}
	for _, f := range facs {
		n, applied, lastAt, err := db.project(ctx, tx, f)
		if err != nil {
			return res, err
		}
		res.Projected += n
		received := max(f.received, f.items[len(f.items)-1].env.Seq)
		if received > applied {
			var first int64
			if err := tx.QueryRow(ctx, "SELECT min(seq) FROM events WHERE facility_id = $1 AND seq > $2",
				f.id, int64(applied)).Scan(&first); err != nil {
				return res, err
			}
			res.Gaps = append(res.Gaps, cloud.Gap{Facility: f.id, From: applied + 1, To: uint64(first) - 1})
		}
		upd.ids = append(upd.ids, f.id)
		upd.applied = append(upd.applied, int64(applied))
		upd.received = append(upd.received, int64(received))
		upd.lastAt = append(upd.lastAt, pgtype.Timestamptz{Time: lastAt, Valid: !lastAt.IsZero()})
	}
	if _, err := tx.Exec(ctx, `UPDATE facilities f SET
			applied_seq = u.applied,
			last_seq_received = greatest(f.last_seq_received, u.received),
			last_contact = now(),
			last_event_at = greatest(f.last_event_at, u.last_at)
		FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::timestamptz[]) AS u(id, applied, received, last_at)
		WHERE f.id = u.id`, upd.ids, upd.applied, upd.received, upd.lastAt); err != nil {
		return res, err
	}
	return res, tx.Commit(ctx)
}

// conflicts counts, and logs, the staged events whose stored namesake has another
// event id.
func (db *DB) conflicts(ctx context.Context, tx pgx.Tx) (int, error) {
	rows, err := tx.Query(ctx, `SELECT s.facility_id, s.seq, s.event_id::text, e.event_id::text
		FROM ingest_stage s JOIN events e USING (facility_id, seq)
		WHERE e.event_id <> s.event_id ORDER BY 1, 2`)
	if err != nil {
		return 0, err
	}
	n := 0
	for rows.Next() {
		var fac, sent, stored string
		var seq int64
		if err := rows.Scan(&fac, &seq, &sent, &stored); err != nil {
			rows.Close()
			return 0, err
		}
		if n < 10 {
			db.log.Error("event conflicts with the stored one: the garage reuses seqs; the stored event is kept",
				"facility", fac, "seq", seq, "sent", sent, "stored", stored)
		}
		n++
	}
	return n, rows.Err()
}

// project folds the facility's events that follow its applied seq without a gap into
// the projections, and returns how many it folded, the new applied seq and the newest
// occurred_at among them.
func (db *DB) project(ctx context.Context, tx pgx.Tx, f *facilityBatch) (int, uint64, time.Time, error) {
	if f.received <= f.applied {
		// Nothing was waiting: the contiguous run is in this batch, and usually it is
		// the one folded when the batch was prepared.
		r := f.pre
		if r.from != f.applied+1 {
			r = fold(f.id, f.items, f.applied+1)
		}
		for _, q := range r.flushes {
			if err := q.send(ctx, tx); err != nil {
				return 0, 0, time.Time{}, err
			}
		}
		db.stats.unknown.Add(uint64(r.unknown))
		return r.n, r.to, r.lastAt, nil
	}
	// Events were waiting behind a gap: read the run back from the table, which now
	// holds this batch too, a chunk at a time.
	p := newProjector(f.id)
	next := f.applied + 1
	n := 0
	var lastAt time.Time
	for {
		rows, err := tx.Query(ctx, `SELECT seq, payload FROM events WHERE facility_id = $1 AND seq >= $2
			ORDER BY seq LIMIT $3`, f.id, int64(next), chunk)
		if err != nil {
			return 0, 0, lastAt, err
		}
		var got int
		for rows.Next() {
			var seq int64
			var raw []byte
			if err := rows.Scan(&seq, &raw); err != nil {
				rows.Close()
				return 0, 0, lastAt, err
			}
			if uint64(seq) != next {
				break
			}
			env := &gh.Envelope{}
			if err := proto.Unmarshal(raw, env); err != nil {
				rows.Close()
				return 0, 0, lastAt, fmt.Errorf("stored event %s/%d does not decode: %w", f.id, seq, err)
			}
			if !p.add(env) {
				db.stats.unknown.Add(1)
			}
			if at := env.OccurredAt.AsTime(); at.After(lastAt) {
				lastAt = at
			}
			next++
			n++
			got++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, 0, lastAt, err
		}
		if err := p.flush(ctx, tx); err != nil {
			return 0, 0, lastAt, err
		}
		if got < chunk {
			return n, next - 1, lastAt, nil
		}
	}
}

// copySource feeds a batch's items to COPY.
type copySource struct {
	items []item
	i     int
	row   [7]any
}

func (s *copySource) Next() bool {
	s.i++
	return s.i <= len(s.items)
}

func (s *copySource) Values() ([]any, error) {
	it := &s.items[s.i-1]
	s.row = [7]any{it.env.FacilityId, int64(it.env.Seq), pgtype.UUID{Bytes: it.id, Valid: true}, it.env.Type,
		it.env.OccurredAt.AsTime(), it.env.LaneId, it.raw}
	return s.row[:], nil
}

func (s *copySource) Err() error { return nil }
