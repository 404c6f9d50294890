package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// What operators read of a garage: its stays, its events, its devices.

// viewColumns are parking_sessions' columns after facility_id, as scanSession reads
// them.
const viewColumns = `session_id, zone_id, plate, ticket, card, permit_id, reservation_id, parking_right, rate_id,
	entry_lane, entered_at, paid, exit_lane, exited_at, fee, currency, ended_how, duration_seconds, closed_seq`

// scanSession reads facility_id and viewColumns into s.
func scanSession(r pgx.Row, s *cloud.Session, facility *string) error {
	var entered, exited pgtype.Timestamptz
	var dur int64
	var seq pgtype.Int8
	err := r.Scan(facility, &s.ID, &s.Zone, &s.Plate, &s.Ticket, &s.Card, &s.PermitID, &s.ReservationID, &s.Right, &s.RateID,
		&s.EntryLane, &entered, &s.Paid, &s.ExitLane, &exited, &s.Fee, &s.Currency, &s.EndedHow, &dur, &seq)
	s.EnteredAt, s.ExitedAt = entered.Time, exited.Time
	s.Duration, s.ClosedSeq = time.Duration(dur)*time.Second, uint64(seq.Int64)
	return err
}

// SessionFilter selects a page of a facility's sessions. Zero fields select
// everything.
type SessionFilter struct {
	// Plate keeps the sessions whose plate starts with it (normalised by the caller).
	Plate string
	// From and To bound the exit time of closed sessions: From <= exited_at < To.
	From, To time.Time
	// After is where the previous page stopped; Facility is unused.
	After SessionKey
	Limit int
}

func (f *SessionFilter) limit() int {
	if f.Limit <= 0 {
		return 100
	}
	return f.Limit
}

func (db *DB) sessionPage(ctx context.Context, what, sql string, args ...any) ([]cloud.Session, error) {
	rows, err := db.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, wrap(err, what)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cloud.Session, error) {
		var s cloud.Session
		err := scanSession(r, &s, &s.Facility)
		return s, err
	})
	return out, wrap(err, what)
}

// OpenSessionPage returns a page of the facility's open sessions, the longest inside
// first (entered_at, then session id), after f.After.
func (db *DB) OpenSessionPage(ctx context.Context, facility string, f SessionFilter) ([]cloud.Session, error) {
	return db.sessionPage(ctx, "open sessions", `SELECT facility_id, `+viewColumns+` FROM parking_sessions
		WHERE facility_id = $1 AND exited_at IS NULL AND starts_with(plate, $2)
			AND ($3::timestamptz IS NULL OR (entered_at, session_id) > ($3, $4))
		ORDER BY entered_at, session_id LIMIT $5`,
		facility, f.Plate, nullTime(f.After.At), f.After.Session, f.limit())
}

// ClosedSessionPage returns a page of the facility's closed sessions, the latest exit
// first (exited_at, then session id, descending), after f.After.
func (db *DB) ClosedSessionPage(ctx context.Context, facility string, f SessionFilter) ([]cloud.Session, error) {
	return db.sessionPage(ctx, "closed sessions", `SELECT facility_id, `+viewColumns+` FROM parking_sessions
		WHERE facility_id = $1 AND exited_at IS NOT NULL AND starts_with(plate, $2)
			AND ($3::timestamptz IS NULL OR exited_at >= $3) AND ($4::timestamptz IS NULL OR exited_at < $4)
			AND ($5::timestamptz IS NULL OR (exited_at, session_id) < ($5, $6))
		ORDER BY exited_at DESC, session_id DESC LIMIT $7`,
		facility, f.Plate, nullTime(f.From), nullTime(f.To), nullTime(f.After.At), f.After.Session, f.limit())
}

// Event is a stored event of a garage, its payload decoded to JSON.
type Event struct {
	Seq        uint64
	EventID    string
	Type       string
	OccurredAt time.Time
	Lane       string
	ReceivedAt time.Time
	// Payload is the envelope's payload message in protojson with the proto field
	// names; nil when the stored envelope cannot be decoded (never for a valid one).
	Payload json.RawMessage
}

// EventFilter selects a page of a facility's events.
type EventFilter struct {
	// Ascending pages forward from After (seq > After); otherwise the newest first,
	// before Before (seq < Before) when it is not 0.
	Ascending     bool
	After, Before uint64
	// Type keeps one event type when it is not "".
	Type  string
	Limit int
}

// Events returns a page of the facility's stored events, the payloads decoded.
func (db *DB) Events(ctx context.Context, facility string, f EventFilter) ([]Event, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	order, cond, key := "DESC", "($3 = 0 OR seq < $3)", int64(f.Before)
	if f.Ascending {
		order, cond, key = "ASC", "seq > $3", int64(f.After)
	}
	rows, err := db.pool.Query(ctx, `SELECT seq, event_id::text, type, occurred_at, lane_id, received_at, payload FROM events
		WHERE facility_id = $1 AND ($2 = '' OR type = $2) AND `+cond+`
		ORDER BY seq `+order+` LIMIT $4`, facility, f.Type, key, f.Limit)
	if err != nil {
		return nil, wrap(err, "events")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) {
		var e Event
		var seq int64
		var raw []byte
		if err := r.Scan(&seq, &e.EventID, &e.Type, &e.OccurredAt, &e.Lane, &e.ReceivedAt, &raw); err != nil {
			return e, err
		}
		e.Seq, e.Payload = uint64(seq), payloadJSON(raw)
		return e, nil
	})
	return out, wrap(err, "events")
}

var payloadJSONOptions = protojson.MarshalOptions{UseProtoNames: true}

// payloadJSON decodes a stored gatehouse.v1.Envelope and returns its payload message
// as JSON, nil when it cannot.
func payloadJSON(raw []byte) json.RawMessage {
	var env gh.Envelope
	if proto.Unmarshal(raw, &env) != nil {
		return nil
	}
	m := env.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("payload"))
	if fd == nil {
		return json.RawMessage("{}")
	}
	b, err := payloadJSONOptions.Marshal(m.Get(fd).Message().Interface())
	if err != nil {
		return nil
	}
	return b
}

// DeviceHealth is what the active alerts say of one device of a garage.
type DeviceHealth struct {
	Device string
	// Lane is the lane of the device's alerts, "" when they name none.
	Lane     string
	Severity string
	Codes    []string
	Since    time.Time
}

// DeviceHealths returns the facility's devices that have an active alert, by device
// id; a device not listed has none.
func (db *DB) DeviceHealths(ctx context.Context, facility string) ([]DeviceHealth, error) {
	rows, err := db.pool.Query(ctx, `SELECT h.device_id, coalesce((SELECT min(lane_id) FROM active_alerts a
				WHERE a.facility_id = h.facility_id AND a.device_id = h.device_id AND a.lane_id <> ''), ''),
			h.severity, h.codes, h.since
		FROM device_health h WHERE h.facility_id = $1 ORDER BY h.device_id`, facility)
	if err != nil {
		return nil, wrap(err, "device health")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeviceHealth, error) {
		var d DeviceHealth
		err := r.Scan(&d.Device, &d.Lane, &d.Severity, &d.Codes, &d.Since)
		return d, err
	})
	return out, wrap(err, "device health")
}
