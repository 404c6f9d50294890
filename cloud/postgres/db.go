// Package postgres is the cloud's PostgreSQL store (pgx v5): the schema and its
// migrations, the ingest of garages' events and the projections it keeps, and the
// queries over them.
//
// Ingest stores each event once under its (facility_id, seq) and folds it into the
// projections (zone occupancy, open and closed sessions, active alerts and device
// health, lane and spot status, last contact per garage) in the same transaction, in
// seq order and only over a contiguous run of seqs, so that redelivery, reordering and
// crashes on either side leave the state of a single in-order delivery. See
// docs/cloud-ingest.md.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DB is the cloud's database. It is safe for concurrent use.
type DB struct {
	pool  *pgxpool.Pool
	log   *slog.Logger
	stats stats
	// alwaysStage makes every batch go through the staging table, for tests and the
	// benchmark of that path.
	alwaysStage bool
}

// Stats are the ingest's counters since Open, for the metrics endpoint.
type Stats struct {
	Batches    uint64
	Applied    uint64
	Duplicates uint64
	Conflicts  uint64
	Projected  uint64
	// Rejected counts invalid envelopes, not stored.
	Rejected uint64
	// Unknown counts stored events of a type this build does not project.
	Unknown uint64
	// StagedBatches counts batches that went through the staging table because they
	// overlapped what was stored; the others were copied straight into events.
	StagedBatches uint64
}

type stats struct {
	batches, applied, duplicates, conflicts, projected, rejected, unknown, staged atomic.Uint64
}

// Open connects to the database at dsn (a URL or key=value string that pgx accepts) and
// checks that it answers. It does not migrate: call Migrate.
func Open(ctx context.Context, dsn string, logger *slog.Logger) (*DB, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, &cloud.Error{Code: cloud.EINVALID, Message: "invalid database URL", Err: err}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, wrap(err, "connect to PostgreSQL")
	}
	return &DB{pool: pool, log: logger}, nil
}

// Close closes every connection.
func (db *DB) Close() { db.pool.Close() }

// Pool returns the connection pool, for the packages that build on the schema.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Stats returns the ingest's counters.
func (db *DB) Stats() Stats {
	s := &db.stats
	return Stats{Batches: s.batches.Load(), Applied: s.applied.Load(), Duplicates: s.duplicates.Load(),
		Conflicts: s.conflicts.Load(), Projected: s.projected.Load(), Rejected: s.rejected.Load(),
		Unknown: s.unknown.Load(), StagedBatches: s.staged.Load()}
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered SQL file.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("postgres: migration %s: name must be NNNN_what.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("postgres: migrations %s and %s share a version", out[i-1].name, out[i].name)
		}
	}
	return out, nil
}

// migrationLock is the pg_advisory_lock key that serialises Migrate across processes.
const migrationLock = 0x6761746568 // "gateh"

// Migrate applies the embedded migrations that the database has not seen, in order,
// each in its own transaction recorded in schema_migrations. An advisory lock makes
// cloud processes that start together take turns; the later ones find nothing to do.
func (db *DB) Migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return wrap(err, "migrate")
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(migrationLock)); err != nil {
		return wrap(err, "migrate: lock")
	}
	defer func() {
		// On a broken connection the lock goes with the session.
		conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(migrationLock))
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer     PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return wrap(err, "migrate: schema_migrations")
	}
	var done []int
	rows, err := conn.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return wrap(err, "migrate")
	}
	if done, err = pgx.CollectRows(rows, pgx.RowTo[int]); err != nil {
		return wrap(err, "migrate")
	}
	for _, m := range ms {
		if slices.Contains(done, m.version) {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return wrap(err, "migrate: "+m.name)
		}
		db.log.Info("migrated", "migration", m.name)
	}
	if len(done) > 0 && slices.Max(done) > ms[len(ms)-1].version {
		db.log.Warn("database has migrations newer than this build", "newest", slices.Max(done))
	}
	return nil
}

// wrap turns a database error into a cloud.Error: EUNAVAILABLE when the server or the
// connection is away (a retry later may succeed), EINTERNAL otherwise.
func wrap(err error, what string) error {
	if err == nil {
		return nil
	}
	var ce *cloud.Error
	if errors.As(err, &ce) {
		return err
	}
	code := cloud.EINTERNAL
	if unavailable(err) {
		code = cloud.EUNAVAILABLE
	}
	return &cloud.Error{Code: code, Message: what + ": database error", Err: err}
}

// unavailable reports whether err says the database is unreachable or going away,
// rather than refusing the statement.
func unavailable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || // connection exception
			pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03" || // shutdown, crash, cannot connect now
			pe.Code == "53300" // too many connections
	}
	var ne net.Error
	if errors.As(err, &ne) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "conn closed") || strings.Contains(s, "unexpected EOF") ||
		strings.Contains(s, "broken pipe") || strings.Contains(s, "connection reset")
}
