package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Occupancy returns the facility's zones with their counts as last applied, by zone id.
func (db *DB) Occupancy(ctx context.Context, facility string) ([]cloud.ZoneOccupancy, error) {
	rows, err := db.pool.Query(ctx, `SELECT zone_id, occupied, coalesce(capacity, 0), updated_at
		FROM zone_occupancy WHERE facility_id = $1 ORDER BY zone_id`, facility)
	if err != nil {
		return nil, wrap(err, "occupancy")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cloud.ZoneOccupancy, error) {
		var z cloud.ZoneOccupancy
		err := r.Scan(&z.Zone, &z.Occupied, &z.Capacity, &z.UpdatedAt)
		return z, err
	})
	return out, wrap(err, "occupancy")
}

// FacilityStatus returns what the cloud knows of the facility's stream, with its first
// gap if it has one. The error has code ENOTFOUND for a facility never heard of.
func (db *DB) FacilityStatus(ctx context.Context, facility string) (cloud.FacilityStatus, error) {
	var s cloud.FacilityStatus
	var contact, lastAt pgtype.Timestamptz
	var received, applied int64
	var first pgtype.Int8
	err := db.pool.QueryRow(ctx, `SELECT id, name, created_at, last_contact, last_event_at, last_seq_received, applied_seq,
			(SELECT min(seq) FROM events e WHERE e.facility_id = f.id AND e.seq > f.applied_seq)
		FROM facilities f WHERE id = $1`, facility).
		Scan(&s.ID, &s.Name, &s.CreatedAt, &contact, &lastAt, &received, &applied, &first)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, cloud.Errorf(cloud.ENOTFOUND, "no facility %q", facility)
	}
	if err != nil {
		return s, wrap(err, "facility status")
	}
	s.LastContact, s.LastEventAt = contact.Time, lastAt.Time
	s.LastSeqReceived, s.AppliedSeq = uint64(received), uint64(applied)
	if first.Valid {
		s.Gap = &cloud.Gap{Facility: s.ID, From: s.AppliedSeq + 1, To: uint64(first.Int64) - 1}
	}
	return s, nil
}

// Gaps returns the first gap of every facility that has events waiting behind one, by
// facility id: what the garages must be asked to resend.
func (db *DB) Gaps(ctx context.Context) ([]cloud.Gap, error) {
	rows, err := db.pool.Query(ctx, `SELECT f.id, f.applied_seq + 1,
			(SELECT min(seq) FROM events e WHERE e.facility_id = f.id AND e.seq > f.applied_seq) - 1
		FROM facilities f WHERE f.last_seq_received > f.applied_seq ORDER BY f.id`)
	if err != nil {
		return nil, wrap(err, "gaps")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cloud.Gap, error) {
		var g cloud.Gap
		var from, to int64
		err := r.Scan(&g.Facility, &from, &to)
		g.From, g.To = uint64(from), uint64(to)
		return g, err
	})
	return out, wrap(err, "gaps")
}

// EventCount returns how many events of the facility are stored.
func (db *DB) EventCount(ctx context.Context, facility string) (int64, error) {
	var n int64
	err := db.pool.QueryRow(ctx, "SELECT count(*) FROM events WHERE facility_id = $1", facility).Scan(&n)
	return n, wrap(err, "event count")
}

// MaxContiguousSeq returns the highest seq n such that the facility's events 1..n are
// all stored, computed from the events themselves (not from applied_seq, which it
// should equal), so tests can check the one against the other.
func (db *DB) MaxContiguousSeq(ctx context.Context, facility string) (uint64, error) {
	var n int64
	err := db.pool.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM (
			SELECT seq, row_number() OVER (ORDER BY seq) AS rn FROM events WHERE facility_id = $1) s
		WHERE seq = rn`, facility).Scan(&n)
	return uint64(n), wrap(err, "max contiguous seq")
}

const sessionColumns = `session_id, zone_id, plate, ticket, card, permit_id, reservation_id, parking_right, rate_id,
	entry_lane, entered_at, paid`

// OpenSessions returns the facility's open sessions, oldest first.
func (db *DB) OpenSessions(ctx context.Context, facility string) ([]cloud.Session, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+sessionColumns+` FROM open_sessions WHERE facility_id = $1
		ORDER BY entered_at, session_id`, facility)
	if err != nil {
		return nil, wrap(err, "open sessions")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cloud.Session, error) {
		s := cloud.Session{Facility: facility}
		err := r.Scan(&s.ID, &s.Zone, &s.Plate, &s.Ticket, &s.Card, &s.PermitID, &s.ReservationID, &s.Right, &s.RateID,
			&s.EntryLane, &s.EnteredAt, &s.Paid)
		return s, err
	})
	return out, wrap(err, "open sessions")
}

// ClosedSessions returns up to limit of the facility's closed sessions, latest exit
// first.
func (db *DB) ClosedSessions(ctx context.Context, facility string, limit int) ([]cloud.Session, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+sessionColumns+`, exit_lane, exited_at, fee, currency, ended_how,
			duration_seconds, closed_seq
		FROM sessions WHERE facility_id = $1 ORDER BY exited_at DESC, session_id LIMIT $2`, facility, limit)
	if err != nil {
		return nil, wrap(err, "closed sessions")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cloud.Session, error) {
		s := cloud.Session{Facility: facility}
		var entered pgtype.Timestamptz
		var dur, seq int64
		err := r.Scan(&s.ID, &s.Zone, &s.Plate, &s.Ticket, &s.Card, &s.PermitID, &s.ReservationID, &s.Right, &s.RateID,
			&s.EntryLane, &entered, &s.Paid, &s.ExitLane, &s.ExitedAt, &s.Fee, &s.Currency, &s.EndedHow, &dur, &seq)
		s.EnteredAt, s.Duration, s.ClosedSeq = entered.Time, time.Duration(dur)*time.Second, uint64(seq)
		return s, err
	})
	return out, wrap(err, "closed sessions")
}

// ActiveAlerts returns the facility's active alerts by key.
func (db *DB) ActiveAlerts(ctx context.Context, facility string) ([]cloud.Alert, error) {
	rows, err := db.pool.Query(ctx, `SELECT key, code, severity, message, lane_id, device_id, zone_id, raised_at
		FROM active_alerts WHERE facility_id = $1 ORDER BY key`, facility)
	if err != nil {
		return nil, wrap(err, "active alerts")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cloud.Alert, error) {
		var a cloud.Alert
		err := r.Scan(&a.Key, &a.Code, &a.Severity, &a.Message, &a.Lane, &a.Device, &a.Zone, &a.RaisedAt)
		return a, err
	})
	return out, wrap(err, "active alerts")
}

// LaneStatuses returns the facility's lanes that have reported a status, by lane id.
func (db *DB) LaneStatuses(ctx context.Context, facility string) ([]cloud.LaneStatus, error) {
	rows, err := db.pool.Query(ctx, `SELECT lane_id, status, reason, updated_at FROM lane_status
		WHERE facility_id = $1 ORDER BY lane_id`, facility)
	if err != nil {
		return nil, wrap(err, "lane status")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cloud.LaneStatus, error) {
		var l cloud.LaneStatus
		err := r.Scan(&l.Lane, &l.Status, &l.Reason, &l.UpdatedAt)
		return l, err
	})
	return out, wrap(err, "lane status")
}
