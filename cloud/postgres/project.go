package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	"github.com/jackc/pgx/v5"
)

// projector folds a run of one facility's events, in seq order, into their net effect
// on the projections, and writes that effect with a few set-based statements: a chunk
// of thousands of events costs one round trip, not one statement per event. The fold
// follows edge.State.Apply, so the cloud's read models equal the garage's state.
type projector struct {
	facility string
	n        int

	zones    map[string]*zoneRow
	opened   map[string]*sessionRow // started in this run and still open
	closed   []*sessionRow          // started and ended in this run
	ended    map[string]*endRow     // open before this run, ended in it
	paid     map[string]int64       // payments for sessions open before this run and still open
	segments map[string]*segment    // right changes of sessions open before this run and still open
	alerts   map[string]*alertChange
	lanes    map[string]*laneRow
	spots    map[string]*spotRow
}

type zoneRow struct {
	occupied int32
	// counted: occupied is the garage's count; otherwise only capacity changed (a
	// layout applied) and the stored count stands.
	counted  bool
	capacity *int32
	at       time.Time
}

type sessionRow struct {
	id, zone, plate, ticket, card, permit, reservation, right, rate, entryLane string
	entered                                                                    time.Time
	paid                                                                       int64
	end                                                                        endRow
}

type endRow struct {
	zone, exitLane, currency, how string
	exited                        time.Time
	fee, paidDelta, duration      int64
	seq                           int64
	seg                           *segment
}

type segment struct{ right, rate string }

type alertChange struct {
	present bool // after the run
	// replace: the alert was cleared and raised again within the run, so the stored one
	// (if any) is replaced; otherwise a stored alert keeps its first raise.
	replace bool
	a       cloud.Alert
}

type laneRow struct {
	status, reason string
	at             time.Time
}

type spotRow struct {
	zone     string
	occupied bool
	at       time.Time
}

func newProjector(facility string) *projector {
	p := &projector{facility: facility}
	p.reset()
	return p
}

func (p *projector) reset() {
	p.n = 0
	p.zones = map[string]*zoneRow{}
	p.opened = map[string]*sessionRow{}
	p.closed = nil
	p.ended = map[string]*endRow{}
	p.paid = map[string]int64{}
	p.segments = map[string]*segment{}
	p.alerts = map[string]*alertChange{}
	p.lanes = map[string]*laneRow{}
	p.spots = map[string]*spotRow{}
}

// rightName is how the cloud writes a parking right: "permit" for RIGHT_PERMIT.
func rightName(r gh.Right) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "RIGHT_"))
}

// add folds one event and reports whether its type is one the projections know.
// Audit-only events (gate decisions, barrier movements, manual opens, credential use,
// credential documents applied, prepaid documents applied, offline card payments
// captured or not) fold to nothing; a layout applied sets the zones'
// capacity.
func (p *projector) add(env *gh.Envelope) bool {
	p.n++
	at := env.OccurredAt.AsTime()
	switch x := env.Payload.(type) {
	case *gh.Envelope_SessionStarted:
		s := x.SessionStarted
		row := &sessionRow{id: s.SessionId, zone: s.ZoneId, plate: s.Plate, ticket: s.Ticket,
			permit: s.GetCredential().GetPermitId(), reservation: s.GetCredential().GetReservationId(),
			right: rightName(s.Right), rate: s.RateId, entryLane: env.LaneId, entered: at}
		if s.GetCredential().GetKind() == gh.CredentialKind_CREDENTIAL_KIND_PERMIT_CARD {
			row.card = s.GetCredential().GetValue()
		}
		p.opened[s.SessionId] = row
	case *gh.Envelope_SessionSegmentStarted:
		s := x.SessionSegmentStarted
		if row, ok := p.opened[s.SessionId]; ok {
			row.right, row.rate = rightName(s.Right), s.RateId
		} else {
			p.segments[s.SessionId] = &segment{right: rightName(s.Right), rate: s.RateId}
		}
	case *gh.Envelope_PaymentProcessed:
		s := x.PaymentProcessed
		if s.SessionId == "" {
			break // a lost-ticket fee for a stay that could not be found
		}
		if row, ok := p.opened[s.SessionId]; ok {
			row.paid += s.Amount
		} else {
			p.paid[s.SessionId] += s.Amount
		}
	case *gh.Envelope_SessionEnded:
		s := x.SessionEnded
		end := endRow{zone: s.ZoneId, exitLane: env.LaneId, currency: s.Currency, how: s.Reason, exited: at,
			fee: s.FeeTotal, duration: s.DurationSeconds, seq: int64(env.Seq)}
		if row, ok := p.opened[s.SessionId]; ok {
			delete(p.opened, s.SessionId)
			row.end = end
			p.closed = append(p.closed, row)
			break
		}
		end.paidDelta = p.paid[s.SessionId]
		end.seg = p.segments[s.SessionId]
		delete(p.paid, s.SessionId)
		delete(p.segments, s.SessionId)
		p.ended[s.SessionId] = &end
	case *gh.Envelope_OccupancyChanged:
		s := x.OccupancyChanged
		c := s.Capacity
		p.zones[s.ZoneId] = &zoneRow{occupied: s.Occupied, counted: true, capacity: &c, at: at}
	case *gh.Envelope_OccupancyReset:
		s := x.OccupancyReset
		z := &zoneRow{occupied: s.Occupied, counted: true, at: at}
		if old, ok := p.zones[s.ZoneId]; ok {
			z.capacity = old.capacity
		}
		p.zones[s.ZoneId] = z
	case *gh.Envelope_LayoutApplied:
		// The capacity of every zone of the garage, as now in force there: the cloud's
		// layout where the garage has the zone, its config file elsewhere.
		for _, z := range append(x.LayoutApplied.Zones, x.LayoutApplied.Configured...) {
			c := z.Capacity
			if row, ok := p.zones[z.ZoneId]; ok {
				row.capacity = &c
			} else {
				p.zones[z.ZoneId] = &zoneRow{capacity: &c, at: at}
			}
		}
	case *gh.Envelope_SpotStatusChanged:
		s := x.SpotStatusChanged
		p.spots[s.SpotId] = &spotRow{zone: s.ZoneId, occupied: s.Occupied, at: at}
	case *gh.Envelope_LaneStatusChanged:
		s := x.LaneStatusChanged
		p.lanes[env.LaneId] = &laneRow{status: s.Status, reason: s.Reason, at: at}
	case *gh.Envelope_AlertTriggered:
		s := x.AlertTriggered
		if !cloud.LastingAlert(s.Code) {
			break // one-off alerts are events only
		}
		key := cloud.AlertKey(s.Code, env.LaneId, s.DeviceId, s.ZoneId)
		ch, seen := p.alerts[key]
		switch {
		case s.Cleared:
			p.alerts[key] = &alertChange{}
		case !seen:
			p.alerts[key] = &alertChange{present: true}
		case !ch.present:
			ch.present, ch.replace = true, true
		default:
			return true // raised again while active: the first raise stands
		}
		if ch := p.alerts[key]; ch.present {
			ch.a = cloud.Alert{Key: key, Code: s.Code, Severity: s.Severity, Message: s.Message,
				Lane: env.LaneId, Device: s.DeviceId, Zone: s.ZoneId, RaisedAt: at}
		}
	case *gh.Envelope_GateDecision, *gh.Envelope_GateOpened, *gh.Envelope_GateClosed,
		*gh.Envelope_GateManualOpen, *gh.Envelope_CredentialUsed, *gh.Envelope_CredentialsReplaced,
		// The money of these is in their payment.processed events.
		*gh.Envelope_PrepaidApplied, *gh.Envelope_PaymentCaptured, *gh.Envelope_PaymentCaptureFailed:
		// Audit only, in events. Credentials are the cloud's own documents, sent down.
	default:
		return false
	}
	return true
}

// query is one statement of a flush, kept apart from any pgx.Batch so that a prepared
// batch can be sent again when its transaction is retried.
type query struct {
	sql  string
	args []any
}

// queries is a flush's statements.
type queries []query

func (q *queries) Queue(sql string, args ...any) { *q = append(*q, query{sql, args}) }

// send runs the statements in one round trip.
func (q queries) send(ctx context.Context, tx pgx.Tx) error {
	if len(q) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, x := range q {
		b.Queue(x.sql, x.args...)
	}
	return tx.SendBatch(ctx, b).Close()
}

// flush writes the net effect folded so far, in one round trip, and starts over.
func (p *projector) flush(ctx context.Context, tx pgx.Tx) error {
	return p.take().send(ctx, tx)
}

// take returns the statements that write the net effect folded so far, and starts
// over.
func (p *projector) take() queries {
	if p.n == 0 {
		return nil
	}
	var b queries
	f := p.facility

	if len(p.zones) > 0 {
		var ids, capOnly []string
		var occ []int32
		var capa, capOnlyCapa []*int32
		var at, capOnlyAt []time.Time
		for id, z := range p.zones {
			if !z.counted {
				capOnly, capOnlyCapa, capOnlyAt = append(capOnly, id), append(capOnlyCapa, z.capacity), append(capOnlyAt, z.at)
				continue
			}
			ids, occ, capa, at = append(ids, id), append(occ, z.occupied), append(capa, z.capacity), append(at, z.at)
		}
		if len(ids) > 0 {
			b.Queue(`INSERT INTO zone_occupancy (facility_id, zone_id, occupied, capacity, updated_at)
			SELECT $1, u.* FROM unnest($2::text[], $3::int[], $4::int[], $5::timestamptz[]) AS u
			ON CONFLICT (facility_id, zone_id) DO UPDATE SET occupied = excluded.occupied,
				capacity = coalesce(excluded.capacity, zone_occupancy.capacity), updated_at = excluded.updated_at`,
				f, ids, occ, capa, at)
		}
		if len(capOnly) > 0 {
			// A zone the garage never counted in holds 0 there: its count starts at 0
			// and every change of it is an event folded before this one.
			b.Queue(`INSERT INTO zone_occupancy (facility_id, zone_id, occupied, capacity, updated_at)
			SELECT $1, u.zone_id, 0, u.capacity, u.at
				FROM unnest($2::text[], $3::int[], $4::timestamptz[]) AS u(zone_id, capacity, at)
			ON CONFLICT (facility_id, zone_id) DO UPDATE SET capacity = excluded.capacity`,
				f, capOnly, capOnlyCapa, capOnlyAt)
		}
	}

	// Sessions started in this run: still open, or already closed.
	if len(p.opened) > 0 {
		var c sessionCols
		for _, s := range p.opened {
			c.add(s)
		}
		b.Queue(`INSERT INTO open_sessions (facility_id, session_id, zone_id, plate, ticket, card, permit_id,
				reservation_id, parking_right, rate_id, entry_lane, entered_at, paid)
			SELECT $1, u.* FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
				$8::text[], $9::text[], $10::text[], $11::text[], $12::timestamptz[], $13::bigint[]) AS u
			ON CONFLICT (facility_id, session_id) DO NOTHING`,
			f, c.id, c.zone, c.plate, c.ticket, c.card, c.permit, c.reservation, c.right, c.rate, c.entryLane, c.entered, c.paid)
	}
	if len(p.closed) > 0 {
		var c sessionCols
		var e endCols
		for _, s := range p.closed {
			c.add(s)
			e.add(s.id, &s.end)
		}
		b.Queue(`INSERT INTO sessions (facility_id, session_id, zone_id, plate, ticket, card, permit_id,
				reservation_id, parking_right, rate_id, entry_lane, entered_at, paid,
				exit_lane, exited_at, fee, currency, ended_how, duration_seconds, closed_seq)
			SELECT $1, u.* FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
				$8::text[], $9::text[], $10::text[], $11::text[], $12::timestamptz[], $13::bigint[],
				$14::text[], $15::timestamptz[], $16::bigint[], $17::text[], $18::text[], $19::bigint[], $20::bigint[]) AS u
			ON CONFLICT (facility_id, session_id) DO NOTHING`,
			f, c.id, c.zone, c.plate, c.ticket, c.card, c.permit, c.reservation, c.right, c.rate, c.entryLane, c.entered, c.paid,
			e.exitLane, e.exited, e.fee, e.currency, e.how, e.duration, e.seq)
	}

	// Sessions open before this run: payments and new segments, then exits.
	if len(p.paid) > 0 || len(p.segments) > 0 {
		var ids []string
		var paid []int64
		var right, rate []*string
		for id, amount := range p.paid {
			ids, paid = append(ids, id), append(paid, amount)
			if s := p.segments[id]; s != nil {
				right, rate = append(right, &s.right), append(rate, &s.rate)
			} else {
				right, rate = append(right, nil), append(rate, nil)
			}
		}
		for id, s := range p.segments {
			if _, done := p.paid[id]; !done {
				ids, paid, right, rate = append(ids, id), append(paid, 0), append(right, &s.right), append(rate, &s.rate)
			}
		}
		b.Queue(`UPDATE open_sessions o SET paid = o.paid + u.paid,
				parking_right = coalesce(u.parking_right, o.parking_right), rate_id = coalesce(u.rate_id, o.rate_id)
			FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[]) AS u(session_id, paid, parking_right, rate_id)
			WHERE o.facility_id = $1 AND o.session_id = u.session_id`,
			f, ids, paid, right, rate)
	}
	if len(p.ended) > 0 {
		var ids []string
		var e endCols
		var right, rate []*string
		for id, end := range p.ended {
			ids = append(ids, id)
			e.add(id, end)
			if end.seg != nil {
				right, rate = append(right, &end.seg.right), append(rate, &end.seg.rate)
			} else {
				right, rate = append(right, nil), append(rate, nil)
			}
		}
		// Move each from open_sessions to sessions. A session the cloud never saw open
		// (impossible for a garage's own stream) is still recorded as closed.
		b.Queue(`WITH u AS (
				SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::bigint[], $7::bigint[],
					$8::text[], $9::text[], $10::bigint[], $11::bigint[], $12::text[], $13::text[])
					AS u(session_id, zone_id, exit_lane, exited_at, fee, paid_delta, currency, ended_how, duration_seconds,
						closed_seq, parking_right, rate_id)),
			d AS (DELETE FROM open_sessions o USING u WHERE o.facility_id = $1 AND o.session_id = u.session_id RETURNING o.*)
			INSERT INTO sessions (facility_id, session_id, zone_id, plate, ticket, card, permit_id, reservation_id,
				parking_right, rate_id, entry_lane, entered_at, paid,
				exit_lane, exited_at, fee, currency, ended_how, duration_seconds, closed_seq)
			SELECT $1, u.session_id, coalesce(d.zone_id, u.zone_id), coalesce(d.plate, ''), coalesce(d.ticket, ''),
				coalesce(d.card, ''), coalesce(d.permit_id, ''), coalesce(d.reservation_id, ''),
				coalesce(u.parking_right, d.parking_right, ''), coalesce(u.rate_id, d.rate_id, ''),
				coalesce(d.entry_lane, ''), d.entered_at, coalesce(d.paid, 0) + u.paid_delta,
				u.exit_lane, u.exited_at, u.fee, u.currency, u.ended_how, u.duration_seconds, u.closed_seq
			FROM u LEFT JOIN d ON d.session_id = u.session_id
			ON CONFLICT (facility_id, session_id) DO NOTHING`,
			f, ids, e.zone, e.exitLane, e.exited, e.fee, e.paidDelta, e.currency, e.how, e.duration, e.seq, right, rate)
	}

	if len(p.alerts) > 0 {
		var gone []string
		var keep, replace alertCols
		for key, ch := range p.alerts {
			switch {
			case !ch.present:
				gone = append(gone, key)
			case ch.replace:
				replace.add(&ch.a)
			default:
				keep.add(&ch.a)
			}
		}
		if len(gone) > 0 {
			b.Queue(`DELETE FROM active_alerts WHERE facility_id = $1 AND key = ANY($2::text[])`, f, gone)
		}
		const insert = `INSERT INTO active_alerts (facility_id, key, code, severity, message, lane_id, device_id, zone_id, raised_at)
			SELECT $1, u.* FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
				$9::timestamptz[]) AS u
			ON CONFLICT (facility_id, key) DO `
		if len(keep.key) > 0 {
			b.Queue(insert+`NOTHING`, f, keep.key, keep.code, keep.severity, keep.message, keep.lane, keep.device, keep.zone, keep.raised)
		}
		if len(replace.key) > 0 {
			b.Queue(insert+`UPDATE SET code = excluded.code, severity = excluded.severity, message = excluded.message,
				lane_id = excluded.lane_id, device_id = excluded.device_id, zone_id = excluded.zone_id, raised_at = excluded.raised_at`,
				f, replace.key, replace.code, replace.severity, replace.message, replace.lane, replace.device, replace.zone, replace.raised)
		}
	}

	if len(p.lanes) > 0 {
		var ids, status, reason []string
		var at []time.Time
		for id, l := range p.lanes {
			ids, status, reason, at = append(ids, id), append(status, l.status), append(reason, l.reason), append(at, l.at)
		}
		b.Queue(`INSERT INTO lane_status (facility_id, lane_id, status, reason, updated_at)
			SELECT $1, u.* FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[]) AS u
			ON CONFLICT (facility_id, lane_id) DO UPDATE SET status = excluded.status, reason = excluded.reason,
				updated_at = excluded.updated_at`, f, ids, status, reason, at)
	}
	if len(p.spots) > 0 {
		var ids, zone []string
		var occ []bool
		var at []time.Time
		for id, s := range p.spots {
			ids, zone, occ, at = append(ids, id), append(zone, s.zone), append(occ, s.occupied), append(at, s.at)
		}
		b.Queue(`INSERT INTO spot_status (facility_id, spot_id, zone_id, occupied, since)
			SELECT $1, u.* FROM unnest($2::text[], $3::text[], $4::bool[], $5::timestamptz[]) AS u
			ON CONFLICT (facility_id, spot_id) DO UPDATE SET zone_id = excluded.zone_id, occupied = excluded.occupied,
				since = excluded.since`, f, ids, zone, occ, at)
	}

	p.reset()
	return b
}

// sessionCols are sessions as unnest's column arrays.
type sessionCols struct {
	id, zone, plate, ticket, card, permit, reservation, right, rate, entryLane []string
	entered                                                                    []time.Time
	paid                                                                       []int64
}

func (c *sessionCols) add(s *sessionRow) {
	c.id, c.zone, c.plate, c.ticket = append(c.id, s.id), append(c.zone, s.zone), append(c.plate, s.plate), append(c.ticket, s.ticket)
	c.card, c.permit, c.reservation = append(c.card, s.card), append(c.permit, s.permit), append(c.reservation, s.reservation)
	c.right, c.rate, c.entryLane = append(c.right, s.right), append(c.rate, s.rate), append(c.entryLane, s.entryLane)
	c.entered, c.paid = append(c.entered, s.entered), append(c.paid, s.paid)
}

// endCols are exits as unnest's column arrays.
type endCols struct {
	zone, exitLane, currency, how []string
	exited                        []time.Time
	fee, paidDelta, duration, seq []int64
}

func (c *endCols) add(_ string, e *endRow) {
	c.zone, c.exitLane, c.currency, c.how = append(c.zone, e.zone), append(c.exitLane, e.exitLane), append(c.currency, e.currency), append(c.how, e.how)
	c.exited, c.fee, c.paidDelta = append(c.exited, e.exited), append(c.fee, e.fee), append(c.paidDelta, e.paidDelta)
	c.duration, c.seq = append(c.duration, e.duration), append(c.seq, e.seq)
}

// alertCols are alerts as unnest's column arrays.
type alertCols struct {
	key, code, severity, message, lane, device, zone []string
	raised                                           []time.Time
}

func (c *alertCols) add(a *cloud.Alert) {
	c.key, c.code, c.severity, c.message = append(c.key, a.Key), append(c.code, a.Code), append(c.severity, a.Severity), append(c.message, a.Message)
	c.lane, c.device, c.zone, c.raised = append(c.lane, a.Lane), append(c.device, a.Device), append(c.zone, a.Zone), append(c.raised, a.RaisedAt)
}
