package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Reservations (migration 0007). How overbooking is ruled out is explained at the top
// of 0007_reservations.sql: a booking locks its zone row FOR SHARE and its 15-minute
// capacity slices FOR UPDATE in slice order, checks booked < held_back on each, and
// counts itself in, in one transaction. Every change that adds or removes a booking's
// count (book, modify, cancel, hold expiry, no-show, completion) goes through
// lockSlices, so the counts always equal the bookings holding each slice:
// CheckReservationCounts verifies it.

// BookRequest is a booking to make.
type BookRequest struct {
	Facility string
	Zone     string
	UserID   string
	// Plate must be normalised and valid (the caller validates).
	Plate string
	From  time.Time
	Until time.Time
	// IdempotencyKey, when not "", makes a retried request return the booking the
	// first one made.
	IdempotencyKey string
	// Actor is recorded in the history, as cloud.AuditEntry.Actor.
	Actor string
	// At is the time of the request.
	At time.Time
	// promotion uses the policy's PromotionHold: a booking made for a waitlisted
	// driver.
	promotion bool
}

// CheckWindow reports what is wrong with a booking window requested at at: it must
// be non-empty, at most MaxReservationLength long, not end in the past nor start more
// than one slice ago, and start within MaxBookingAhead.
func CheckWindow(from, until, at time.Time) error {
	switch {
	case from.IsZero() || until.IsZero():
		return cloud.Errorf(cloud.EINVALID, "the window needs a start and an end")
	case !until.After(from):
		return cloud.Errorf(cloud.EINVALID, "the window must end after it starts")
	case until.Sub(from) > cloud.MaxReservationLength:
		return cloud.Errorf(cloud.EINVALID, "a booking may last at most %v", cloud.MaxReservationLength)
	case from.Before(at.Add(-cloud.SliceLength)):
		return cloud.Errorf(cloud.EINVALID, "the window starts in the past")
	case from.After(at.Add(cloud.MaxBookingAhead)):
		return cloud.Errorf(cloud.EINVALID, "bookings open at most %v ahead", cloud.MaxBookingAhead)
	}
	return nil
}

const reservationColumns = `r.id::text, r.facility_id, r.zone_id, r.user_id, r.plate, lower(r.period), upper(r.period), r.status,
	r.hold_expires_at, r.code, r.price, r.currency, r.payment_id, r.paid, r.refund_due, r.refunded_at, r.refund_reference,
	extract(epoch FROM r.arrival_grace)::bigint, extract(epoch FROM r.full_refund_before)::bigint, r.late_refund_percent,
	r.cancelled_at, r.created_at, r.updated_at`

func scanReservation(row pgx.Row) (cloud.Reservation, error) {
	var r cloud.Reservation
	var status string
	var hold, refunded, cancelled pgtype.Timestamptz
	var price pgtype.Int8
	var grace, fullBefore int64
	err := row.Scan(&r.ID, &r.Facility, &r.Zone, &r.UserID, &r.Plate, &r.From, &r.Until, &status,
		&hold, &r.Code, &price, &r.Currency, &r.PaymentID, &r.Paid, &r.RefundDue, &refunded, &r.RefundReference,
		&grace, &fullBefore, &r.Policy.LateRefundPercent, &cancelled, &r.CreatedAt, &r.UpdatedAt)
	r.Status = cloud.ReservationStatus(status)
	r.HoldExpiresAt, r.RefundedAt, r.CancelledAt = hold.Time, refunded.Time, cancelled.Time
	if price.Valid {
		r.Price = &price.Int64
	}
	r.Policy.ArrivalGrace = time.Duration(grace) * time.Second
	r.Policy.FullRefundBefore = time.Duration(fullBefore) * time.Second
	return r, err
}

// Reservation returns the booking; ENOTFOUND when there is none.
func (db *DB) Reservation(ctx context.Context, id string) (cloud.Reservation, error) {
	if !validUUID(id) {
		return cloud.Reservation{}, cloud.Errorf(cloud.ENOTFOUND, "no reservation %q", id)
	}
	r, err := scanReservation(db.pool.QueryRow(ctx, `SELECT `+reservationColumns+` FROM reservations r WHERE r.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, cloud.Errorf(cloud.ENOTFOUND, "no reservation %q", id)
	}
	return r, wrap(err, "reservation")
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // variant 10
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Book makes a held booking: the driver has until HoldExpiresAt to pay, and the space
// is theirs meanwhile. It fails with ECONFLICT when a slice of the window has no
// bookable space left (or, for a window under way, the garage is physically full),
// ENOTFOUND for an unknown facility or zone, EINVALID for a bad window. With an
// IdempotencyKey already used by the account it returns that booking and replayed
// true, or ECONFLICT when the key was used for another request.
func (db *DB) Book(ctx context.Context, req BookRequest) (r cloud.Reservation, replayed bool, err error) {
	if err := CheckWindow(req.From, req.Until, req.At); err != nil {
		return r, false, err
	}
	if req.IdempotencyKey != "" {
		if r, ok, err := db.replay(ctx, req); ok || err != nil {
			return r, ok, err
		}
	}
	first, end := cloud.Slices(req.From, req.Until)
	if err := db.ensureSlices(ctx, req.Facility, req.Zone, first, end); err != nil {
		return r, false, wrap(err, "book")
	}
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var err error
		r, err = bookTx(ctx, tx, req)
		return err
	})
	if pgCode(err) == uniqueViolation && req.IdempotencyKey != "" {
		// A concurrent request with the same key won.
		if r, ok, err := db.replay(ctx, req); ok || err != nil {
			return r, ok, err
		}
	}
	return r, false, wrap(err, "book")
}

// replay returns the booking the account made with req's idempotency key.
func (db *DB) replay(ctx context.Context, req BookRequest) (cloud.Reservation, bool, error) {
	r, err := scanReservation(db.pool.QueryRow(ctx, `SELECT `+reservationColumns+` FROM reservations r
		WHERE r.user_id = $1 AND r.idempotency_key = $2`, req.UserID, req.IdempotencyKey))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, wrap(err, "book")
	}
	if r.Facility != req.Facility || r.Zone != req.Zone || r.Plate != req.Plate || !r.From.Equal(req.From) || !r.Until.Equal(req.Until) {
		return r, false, cloud.Errorf(cloud.ECONFLICT, "this Idempotency-Key was used for another booking; use a new key for a new request")
	}
	return r, true, nil
}

// zoneLimits are a zone's bookable space and live counts, read under its share lock.
type zoneLimits struct {
	capacity, heldBack, occupied int
	policy                       cloud.ReservationPolicy
}

// lockZone takes the zone's row lock FOR SHARE, so that its held_back cannot change
// until the transaction ends, and returns its limits and the facility's policy.
func lockZone(ctx context.Context, tx pgx.Tx, facility, zone string) (zoneLimits, error) {
	var z zoneLimits
	var hold, promo, grace, full, pct pgtype.Int8
	err := tx.QueryRow(ctx, `SELECT z.capacity, z.held_back, coalesce(o.occupied, 0),
			extract(epoch FROM p.hold)::bigint, extract(epoch FROM p.promotion_hold)::bigint,
			extract(epoch FROM p.arrival_grace)::bigint, extract(epoch FROM p.full_refund_before)::bigint, p.late_refund_percent
		FROM zones z
		LEFT JOIN reservation_policies p ON p.facility_id = z.facility_id
		LEFT JOIN zone_occupancy o ON o.facility_id = z.facility_id AND o.zone_id = z.id
		WHERE z.facility_id = $1 AND z.id = $2 FOR SHARE OF z`, facility, zone).
		Scan(&z.capacity, &z.heldBack, &z.occupied, &hold, &promo, &grace, &full, &pct)
	if errors.Is(err, pgx.ErrNoRows) {
		return z, cloud.Errorf(cloud.ENOTFOUND, "facility %q has no zone %q", facility, zone)
	}
	z.policy = policyOf(hold, promo, grace, full, pct)
	return z, err
}

func policyOf(hold, promo, grace, full, pct pgtype.Int8) cloud.ReservationPolicy {
	p := cloud.DefaultReservationPolicy
	if hold.Valid { // the row exists: all columns are set
		p.Hold, p.PromotionHold = time.Duration(hold.Int64)*time.Second, time.Duration(promo.Int64)*time.Second
		p.ArrivalGrace, p.FullRefundBefore = time.Duration(grace.Int64)*time.Second, time.Duration(full.Int64)*time.Second
		p.LateRefundPercent = int(pct.Int64)
	}
	return p
}

// slice is one capacity slice's count, locked.
type slice struct {
	start  time.Time
	booked int
}

// ensureSlices creates the zone's missing slice rows in [first, end), in a statement
// of its own, committed before the transaction that locks them: a booking that
// inserted rows and then waited for another's locks could deadlock with one that
// locked rows and then waited for the uncommitted insert.
func (db *DB) ensureSlices(ctx context.Context, facility, zone string, first, end time.Time) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO capacity_slices (facility_id, zone_id, slice_start)
		SELECT $1, $2, s FROM generate_series($3::timestamptz, $4::timestamptz - interval '15 minutes', interval '15 minutes') s
		WHERE EXISTS (SELECT 1 FROM zones WHERE facility_id = $1 AND id = $2)
		ORDER BY s ON CONFLICT DO NOTHING`, facility, zone, first, end)
	return err
}

// lockSlices locks the zone's slices in [first, end) FOR UPDATE, in slice order (the
// one order every transaction uses, so overlapping ones cannot deadlock), and returns
// them in order. The rows must exist (ensureSlices).
func lockSlices(ctx context.Context, tx pgx.Tx, facility, zone string, first, end time.Time) ([]slice, error) {
	rows, _ := tx.Query(ctx, `SELECT slice_start, booked FROM capacity_slices
		WHERE facility_id = $1 AND zone_id = $2 AND slice_start >= $3 AND slice_start < $4
		ORDER BY slice_start FOR UPDATE`, facility, zone, first, end)
	ss, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (slice, error) {
		var s slice
		err := r.Scan(&s.start, &s.booked)
		return s, err
	})
	if want := int(end.Sub(first) / cloud.SliceLength); err == nil && len(ss) != want {
		err = fmt.Errorf("capacity slices of %s/%s from %v: %d rows of %d", facility, zone, first, len(ss), want)
	}
	return ss, err
}

// countSlices adds delta to the count of the zone's slices in [first, end), which
// the transaction has locked.
func countSlices(ctx context.Context, tx pgx.Tx, facility, zone string, first, end time.Time, delta int) error {
	if !first.Before(end) {
		return nil
	}
	_, err := tx.Exec(ctx, `UPDATE capacity_slices SET booked = booked + $5
		WHERE facility_id = $1 AND zone_id = $2 AND slice_start >= $3 AND slice_start < $4`, facility, zone, first, end, delta)
	return err
}

// pendingArrivals counts the held and confirmed bookings of the zone holding the
// slice under way at at: spaces the garage must keep for cars not yet in.
func pendingArrivals(ctx context.Context, tx pgx.Tx, facility, zone string, at time.Time) (int, error) {
	var n int
	err := tx.QueryRow(ctx, `SELECT count(*) FROM reservations WHERE facility_id = $1 AND zone_id = $2
		AND status IN ('held', 'confirmed') AND slices @> $3::timestamptz`, facility, zone, at.UTC().Truncate(cloud.SliceLength)).Scan(&n)
	return n, err
}

// full is the conflict of a booking that does not fit.
func full(zone string, s slice) error {
	return cloud.Errorf(cloud.ECONFLICT, "no space left to book in zone %q from %s: that time is fully booked",
		zone, s.start.UTC().Format(time.RFC3339))
}

// fit checks that the locked slices of [first, end) have room for one more booking
// (less, for each slice, the count of the booking being moved, which covers
// [oldFirst, oldEnd)), and that a window under way fits the garage's real free space.
func fit(ctx context.Context, tx pgx.Tx, facility, zone string, z zoneLimits, ss []slice, first, end, oldFirst, oldEnd, at time.Time) error {
	if z.heldBack == 0 {
		return cloud.Errorf(cloud.ECONFLICT, "zone %q holds no space back for bookings", zone)
	}
	now := at.UTC().Truncate(cloud.SliceLength)
	for _, s := range ss {
		if s.start.Before(first) || !s.start.Before(end) {
			continue
		}
		booked := s.booked
		if !s.start.Before(oldFirst) && s.start.Before(oldEnd) {
			booked--
		}
		if booked >= z.heldBack {
			return full(zone, s)
		}
		if s.start.Equal(now) && !(!now.Before(oldFirst) && now.Before(oldEnd)) {
			// The slice under way: reconcile with the garage's real occupancy. Cars
			// inside (walk-ins over their share, permit holders, early arrivals) may
			// fill held-back space the counts think is free.
			pending, err := pendingArrivals(ctx, tx, facility, zone, at)
			if err != nil {
				return err
			}
			if z.capacity-z.occupied-pending <= 0 {
				return cloud.Errorf(cloud.ECONFLICT, "zone %q is full right now: book a later start", zone)
			}
		}
	}
	return nil
}

// reservationKey returns the key that signs reservation codes, making it once.
func reservationKey(ctx context.Context, tx pgx.Tx) ([]byte, error) {
	var key []byte
	err := tx.QueryRow(ctx, `SELECT key FROM reservation_keys WHERE id = 1`).Scan(&key)
	if errors.Is(err, pgx.ErrNoRows) {
		fresh := make([]byte, 32)
		rand.Read(fresh)
		if _, err := tx.Exec(ctx, `INSERT INTO reservation_keys (id, key) VALUES (1, $1) ON CONFLICT DO NOTHING`, fresh); err != nil {
			return nil, err
		}
		err = tx.QueryRow(ctx, `SELECT key FROM reservation_keys WHERE id = 1`).Scan(&key)
	}
	return key, err
}

// ReservationKey returns the key that signs reservation codes (see
// cloud.ReservationCode), making it on first use.
func (db *DB) ReservationKey(ctx context.Context) ([]byte, error) {
	var key []byte
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var err error
		key, err = reservationKey(ctx, tx)
		return err
	})
	return key, wrap(err, "reservation key")
}

// lockAccount serialises the account's bookings and waitlist entries within the
// transaction, so that its caps cannot be raced past.
func lockAccount(ctx context.Context, tx pgx.Tx, userID string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('gatehouse-account:' || $1, 0))`, userID)
	return err
}

// checkHeldCap refuses a new held booking to an account that has
// cloud.MaxHeldPerAccount held already.
func checkHeldCap(ctx context.Context, tx pgx.Tx, userID string, at time.Time) error {
	if err := lockAccount(ctx, tx, userID); err != nil {
		return err
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM reservations WHERE user_id = $1 AND status = 'held' AND hold_expires_at > $2`,
		userID, at).Scan(&n); err != nil {
		return err
	}
	if n >= cloud.MaxHeldPerAccount {
		return cloud.Errorf(cloud.ECONFLICT, "you have %d unpaid bookings on hold, the most an account may have: pay for or cancel one first", n)
	}
	return nil
}

func bookTx(ctx context.Context, tx pgx.Tx, req BookRequest) (cloud.Reservation, error) {
	if !req.promotion {
		if err := checkHeldCap(ctx, tx, req.UserID, req.At); err != nil {
			return cloud.Reservation{}, err
		}
	}
	z, err := lockZone(ctx, tx, req.Facility, req.Zone)
	if err != nil {
		return cloud.Reservation{}, err
	}
	first, end := cloud.Slices(req.From, req.Until)
	ss, err := lockSlices(ctx, tx, req.Facility, req.Zone, first, end)
	if err != nil {
		return cloud.Reservation{}, err
	}
	if err := fit(ctx, tx, req.Facility, req.Zone, z, ss, first, end, time.Time{}, time.Time{}, req.At); err != nil {
		return cloud.Reservation{}, err
	}
	if err := countSlices(ctx, tx, req.Facility, req.Zone, first, end, +1); err != nil {
		return cloud.Reservation{}, err
	}
	price, currency, err := reservationPrice(ctx, tx, req.Facility, req.Zone, req.From, req.Until)
	if err != nil {
		return cloud.Reservation{}, err
	}
	key, err := reservationKey(ctx, tx)
	if err != nil {
		return cloud.Reservation{}, err
	}
	hold := z.policy.Hold
	if req.promotion {
		hold = z.policy.PromotionHold
	}
	id := newUUID()
	var idem any
	if req.IdempotencyKey != "" {
		idem = req.IdempotencyKey
	}
	r, err := scanReservation(tx.QueryRow(ctx, `INSERT INTO reservations AS r (id, facility_id, zone_id, user_id, plate, period, status,
			hold_expires_at, code, price, currency, arrival_grace, full_refund_before, late_refund_percent, slices, idempotency_key,
			created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, tstzrange($6, $7), 'held', $8, $9, $10, $11, $12 * interval '1 second', $13 * interval '1 second', $14,
			tstzrange($15, $16), $17, $18, $18)
		RETURNING `+reservationColumns,
		id, req.Facility, req.Zone, req.UserID, req.Plate, req.From, req.Until, req.At.Add(hold), cloud.ReservationCode(key, id),
		price, currency, int64(z.policy.ArrivalGrace/time.Second), int64(z.policy.FullRefundBefore/time.Second), z.policy.LateRefundPercent,
		first, end, idem, req.At))
	if err != nil {
		return r, err
	}
	return r, history(ctx, tx, r.ID, "", r.Status, req.Actor, cloud.EventReservationCreated, req.At,
		map[string]any{"from": r.From, "until": r.Until, "zone": r.Zone, "plate": r.Plate, "price": r.Price, "promotion": req.promotion})
}

// history appends a reservation's event to its history.
func history(ctx context.Context, tx pgx.Tx, id string, from, to cloud.ReservationStatus, actor, event string, at time.Time, detail map[string]any) error {
	if actor == "" {
		actor = "system"
	}
	if detail == nil {
		detail = map[string]any{}
	}
	b, err := json.Marshal(detail)
	if err != nil {
		return err
	}
	var fromStatus any
	if from != "" {
		fromStatus = string(from)
	}
	_, err = tx.Exec(ctx, `INSERT INTO reservation_history (reservation_id, at, from_status, to_status, actor, event, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, at, fromStatus, string(to), actor, event, b)
	return err
}

// bumpDownlink bumps the version of the facility's "reservations" downlink document:
// its list of confirmed bookings changed in this transaction.
func bumpDownlink(ctx context.Context, tx pgx.Tx, facility string) error {
	_, err := tx.Exec(ctx, `INSERT INTO reservation_downlink AS d (facility_id, version) VALUES ($1, 1)
		ON CONFLICT (facility_id) DO UPDATE SET version = d.version + 1`, facility)
	return err
}

// lockReservation locks the booking's row for a change.
func lockReservation(ctx context.Context, tx pgx.Tx, id string) (cloud.Reservation, error) {
	if !validUUID(id) {
		return cloud.Reservation{}, cloud.Errorf(cloud.ENOTFOUND, "no reservation %q", id)
	}
	r, err := scanReservation(tx.QueryRow(ctx, `SELECT `+reservationColumns+` FROM reservations r WHERE r.id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, cloud.Errorf(cloud.ENOTFOUND, "no reservation %q", id)
	}
	return r, err
}

// noPaymentInFlight refuses a change (what) to a held booking, locked by the
// transaction, while a payment for it is in flight: the payment would confirm a
// booking changed or cancelled under it. A payment created concurrently waits for
// the booking's row lock (its foreign key), so it cannot slip in after this check.
func noPaymentInFlight(ctx context.Context, tx pgx.Tx, r cloud.Reservation, what string) error {
	if r.Status != cloud.ReservationHeld {
		return nil
	}
	var busy bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM payments WHERE reservation_id = $1
		AND status IN ('pending', 'requires_action', 'processing'))`, r.ID).Scan(&busy); err != nil {
		return err
	}
	if busy {
		return cloud.Errorf(cloud.ECONFLICT, "a payment for this booking is in progress: it cannot be %s until the payment has finished", what)
	}
	return nil
}

// heldSlices reads the range of slices the booking holds now; zeros when none.
func heldSlices(ctx context.Context, tx pgx.Tx, id string) (first, end time.Time, err error) {
	var lo, hi pgtype.Timestamptz
	err = tx.QueryRow(ctx, `SELECT lower(slices), upper(slices) FROM reservations WHERE id = $1`, id).Scan(&lo, &hi)
	return lo.Time, hi.Time, err
}

// release gives back the booking's slices from the slice under way at at (all of
// them when it has not started), and records what it still holds.
func release(ctx context.Context, tx pgx.Tx, r *cloud.Reservation, at time.Time) error {
	first, end, err := heldSlices(ctx, tx, r.ID)
	if err != nil || first.IsZero() {
		return err
	}
	from := latest(first, at.UTC().Truncate(cloud.SliceLength))
	if !from.Before(end) {
		return nil
	}
	if _, err := lockSlices(ctx, tx, r.Facility, r.Zone, from, end); err != nil {
		return err
	}
	if err := countSlices(ctx, tx, r.Facility, r.Zone, from, end, -1); err != nil {
		return err
	}
	var keep any = "empty"
	if first.Before(from) {
		keep = pgtype.Range[pgtype.Timestamptz]{Lower: pgtype.Timestamptz{Time: first, Valid: true}, Upper: pgtype.Timestamptz{Time: from, Valid: true},
			LowerType: pgtype.Inclusive, UpperType: pgtype.Exclusive, Valid: true}
	}
	_, err = tx.Exec(ctx, `UPDATE reservations SET slices = $2::tstzrange WHERE id = $1`, r.ID, keep)
	return err
}

// ConfirmReservation confirms a held booking whose payment succeeded: the payments
// code calls it with its payment's id, and the booking records the payment's amount
// as paid. It is idempotent for the same payment. A booking whose hold ran out is
// confirmed still when its window has room again. When the booking cannot be
// confirmed (ECONFLICT: the hold ran out and the space is gone, or it ended), the
// payment is queued for a full refund: the booking records it as paid and due back,
// for ReservationsToRefund. ENOTFOUND for an unknown booking, or a payment that is
// not a succeeded one of this booking.
func (db *DB) ConfirmReservation(ctx context.Context, id, paymentID string) (cloud.Reservation, error) {
	at := time.Now()
	r, err := db.Confirm(ctx, id, Confirmation{PaymentID: paymentID, Actor: "payment:" + paymentID, At: at})
	if cloud.ErrorCode(err) == cloud.ECONFLICT && paymentID != "" {
		if qerr := db.queueUnconfirmedRefund(ctx, id, paymentID, at); qerr != nil {
			return r, errors.Join(err, qerr)
		}
	}
	return r, err
}

// queueUnconfirmedRefund records a succeeded payment of a booking that ended
// unconfirmed (expired or cancelled, and not yet paid) as paid and due back in full.
func (db *DB) queueUnconfirmedRefund(ctx context.Context, id, paymentID string, at time.Time) error {
	if !validUUID(id) || !validUUID(paymentID) {
		return nil
	}
	return wrap(pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		r, err := lockReservation(ctx, tx, id)
		if err != nil {
			return err
		}
		if r.Status != cloud.ReservationExpired && r.Status != cloud.ReservationCancelled || r.PaymentID != "" || !r.RefundedAt.IsZero() {
			return nil
		}
		var amount int64
		err = tx.QueryRow(ctx, `SELECT amount - refunded FROM payments WHERE id = $1::uuid AND reservation_id = $2::uuid
			AND status IN ('succeeded', 'partially_refunded')`, paymentID, id).Scan(&amount)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && amount <= 0 {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE reservations SET payment_id = $2, paid = $3, refund_due = $3,
				updated_at = $4 WHERE id = $1`, id, paymentID, amount, at); err != nil {
			return err
		}
		return history(ctx, tx, id, r.Status, r.Status, "payment:"+paymentID, cloud.EventReservationRefundQueued, at,
			map[string]any{"payment_id": paymentID, "paid": amount, "refund_due": amount})
	}), "queue refund")
}

// Confirmation is how a booking is confirmed.
type Confirmation struct {
	// PaymentID is the payment that paid the price; "" confirms without payment
	// (a free booking, or staff).
	PaymentID string
	Actor     string
	At        time.Time
}

// Confirm confirms a held booking (see ConfirmReservation); when PaymentID is set,
// it must be a succeeded payment of the booking (ENOTFOUND otherwise), and its
// amount is recorded as paid.
func (db *DB) Confirm(ctx context.Context, id string, c Confirmation) (cloud.Reservation, error) {
	r, err := db.Reservation(ctx, id)
	if err != nil {
		return r, err
	}
	if r.Status == cloud.ReservationExpired {
		first, end := cloud.Slices(latest(r.From, c.At.UTC().Truncate(cloud.SliceLength)), r.Until)
		if err := db.ensureSlices(ctx, r.Facility, r.Zone, first, end); err != nil {
			return r, wrap(err, "confirm reservation")
		}
	}
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var err error
		r, err = lockReservation(ctx, tx, id)
		if err != nil {
			return err
		}
		switch {
		case r.Status == cloud.ReservationConfirmed && r.PaymentID == c.PaymentID:
			return nil // a retry
		case r.Status == cloud.ReservationExpired && c.At.Before(r.Until):
			// The hold ran out while paying: take the space again if it is there.
			if err := retake(ctx, tx, &r, c.At); err != nil {
				return err
			}
		case r.Status != cloud.ReservationHeld:
			return cloud.Errorf(cloud.ECONFLICT, "reservation %s is %s, not held: it cannot be confirmed", r.ID, r.Status)
		}
		paid := int64(0)
		if c.PaymentID != "" {
			if paid, err = paymentPaid(ctx, tx, r.ID, c.PaymentID); err != nil {
				return err
			}
		}
		from := r.Status
		r, err = scanReservation(tx.QueryRow(ctx, `UPDATE reservations r SET status = 'confirmed', hold_expires_at = NULL,
				payment_id = $2, paid = $3, updated_at = $4 WHERE id = $1 RETURNING `+reservationColumns, r.ID, c.PaymentID, paid, c.At))
		if err != nil {
			return err
		}
		if err := bumpDownlink(ctx, tx, r.Facility); err != nil {
			return err
		}
		return history(ctx, tx, r.ID, from, r.Status, c.Actor, cloud.EventReservationConfirmed, c.At,
			map[string]any{"payment_id": c.PaymentID, "paid": paid})
	})
	return r, wrap(err, "confirm reservation")
}

// paymentPaid returns what the booking's succeeded payment paid, net of refunds;
// ENOTFOUND when paymentID is no such payment.
func paymentPaid(ctx context.Context, tx pgx.Tx, reservationID, paymentID string) (int64, error) {
	if !validUUID(paymentID) {
		return 0, cloud.Errorf(cloud.ENOTFOUND, "no payment %q for this booking", paymentID)
	}
	var amount int64
	var status string
	err := tx.QueryRow(ctx, `SELECT amount - refunded, status FROM payments WHERE id = $1::uuid AND reservation_id = $2::uuid`,
		paymentID, reservationID).Scan(&amount, &status)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, cloud.Errorf(cloud.ENOTFOUND, "no payment %q for this booking", paymentID)
	case err != nil:
		return 0, err
	case status != "succeeded":
		return 0, cloud.Errorf(cloud.ECONFLICT, "payment %s is %s, not succeeded", paymentID, status)
	}
	return amount, nil
}

// retake counts an expired booking in again, when its window has room.
func retake(ctx context.Context, tx pgx.Tx, r *cloud.Reservation, at time.Time) error {
	z, err := lockZone(ctx, tx, r.Facility, r.Zone)
	if err != nil {
		return err
	}
	first, end := cloud.Slices(latest(r.From, at.UTC().Truncate(cloud.SliceLength)), r.Until)
	ss, err := lockSlices(ctx, tx, r.Facility, r.Zone, first, end)
	if err != nil {
		return err
	}
	if err := fit(ctx, tx, r.Facility, r.Zone, z, ss, first, end, time.Time{}, time.Time{}, at); err != nil {
		return &cloud.Error{Code: cloud.ECONFLICT, Message: "the hold ran out and the space has been taken since: the payment must be refunded", Err: err}
	}
	if err := countSlices(ctx, tx, r.Facility, r.Zone, first, end, +1); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE reservations SET slices = tstzrange($2, $3) WHERE id = $1`, r.ID, first, end)
	return err
}

// Change is the effect of a change on other bookings and on the garage: whether the
// facility's downlink document changed, and which zone has space free again.
type Change struct {
	Facility string
	Zone     string
	// Downlink is set when the facility's list of confirmed bookings changed.
	Downlink bool
	// Freed is set when space was given back in the zone (waitlist candidates).
	Freed bool
}

// Modify moves a held, confirmed or checked-in booking to a new window (and plate,
// when not ""), re-checking capacity for the new window in the same transaction: on
// ECONFLICT the booking keeps its old window. The start of a booking that has begun
// cannot move. The price is re-quoted; Paid is unchanged. A paid booking may not
// become dearer than what was paid (ECONFLICT: cancel and book the new window
// instead), or the garage would let the extra time go unpaid; a held booking may not
// change while a payment for it is in flight (ECONFLICT).
func (db *DB) Modify(ctx context.Context, id string, from, until time.Time, plate, actor string, at time.Time) (cloud.Reservation, Change, error) {
	var r cloud.Reservation
	var ch Change
	cur, err := db.Reservation(ctx, id)
	if err != nil {
		return r, ch, err
	}
	// The slices between the old window and the new one are locked too.
	lo, hi := cloud.Slices(earliest(from, cur.From), latest(until, cur.Until))
	if !hi.After(lo) || hi.Sub(lo) > 2*cloud.MaxReservationLength+cloud.MaxBookingAhead {
		return r, ch, cloud.Errorf(cloud.EINVALID, "the new window is too far from the old one")
	}
	if err := db.ensureSlices(ctx, cur.Facility, cur.Zone, lo, hi); err != nil {
		return r, ch, wrap(err, "modify reservation")
	}
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		old, err := lockReservation(ctx, tx, id)
		if err != nil {
			return err
		}
		ch = Change{Facility: old.Facility, Zone: old.Zone}
		if !old.Status.Active() {
			return cloud.Errorf(cloud.ECONFLICT, "reservation %s is %s: it cannot be changed", old.ID, old.Status)
		}
		if !from.Equal(old.From) && !at.Before(old.From) {
			return cloud.Errorf(cloud.EINVALID, "the booking has begun: only its end can change")
		}
		if from.Equal(old.From) {
			if err := CheckWindow(from, until, earliest(at, from)); err != nil {
				return err
			}
			if !until.After(at) {
				return cloud.Errorf(cloud.EINVALID, "the window must end in the future")
			}
		} else if err := CheckWindow(from, until, at); err != nil {
			return err
		}
		if plate == "" {
			plate = old.Plate
		}
		if err := noPaymentInFlight(ctx, tx, old, "changed"); err != nil {
			return err
		}
		z, err := lockZone(ctx, tx, old.Facility, old.Zone)
		if err != nil {
			return err
		}
		oldFirst, oldEnd, err := heldSlices(ctx, tx, old.ID)
		if err != nil {
			return err
		}
		first, end := cloud.Slices(from, until)
		lo, hi := first, end
		if !oldFirst.IsZero() {
			lo, hi = earliest(lo, oldFirst), latest(hi, oldEnd)
		}
		ss, err := lockSlices(ctx, tx, old.Facility, old.Zone, lo, hi)
		if err != nil {
			return err
		}
		if err := fit(ctx, tx, old.Facility, old.Zone, z, ss, first, end, oldFirst, oldEnd, at); err != nil {
			return err
		}
		if !oldFirst.IsZero() {
			if err := countSlices(ctx, tx, old.Facility, old.Zone, oldFirst, oldEnd, -1); err != nil {
				return err
			}
		}
		if err := countSlices(ctx, tx, old.Facility, old.Zone, first, end, +1); err != nil {
			return err
		}
		price, currency, err := reservationPrice(ctx, tx, old.Facility, old.Zone, from, until)
		if err != nil {
			return err
		}
		if old.PaymentID != "" && price != nil && *price > old.Paid {
			return cloud.Errorf(cloud.ECONFLICT, "this booking is paid (%d %s) and the new window costs %d %s: "+
				"cancel it and book the new window instead, or keep a window that costs no more than was paid",
				old.Paid, old.Currency, *price, currency)
		}
		r, err = scanReservation(tx.QueryRow(ctx, `UPDATE reservations r SET period = tstzrange($2, $3), slices = tstzrange($4, $5),
				plate = $6, price = $7, currency = CASE WHEN $8 = '' THEN currency ELSE $8 END, updated_at = $9
			WHERE id = $1 RETURNING `+reservationColumns, old.ID, from, until, first, end, plate, price, currency, at))
		if err != nil {
			return err
		}
		ch.Freed = first.After(oldFirst) || end.Before(oldEnd)
		if old.Status != cloud.ReservationHeld {
			ch.Downlink = true
			if err := bumpDownlink(ctx, tx, old.Facility); err != nil {
				return err
			}
		}
		return history(ctx, tx, r.ID, old.Status, r.Status, actor, cloud.EventReservationModified, at,
			map[string]any{"from": r.From, "until": r.Until, "plate": r.Plate, "old_from": old.From, "old_until": old.Until,
				"old_plate": old.Plate, "price": r.Price})
	})
	return r, ch, wrap(err, "modify reservation")
}

// Cancel cancels a held, confirmed or checked-in booking at at: its slices from the
// one under way are released, and RefundDue is set to what the booking's policy gives
// back of what was paid (see cloud.ReservationPolicy.Refund). Cancelling a cancelled
// booking returns it unchanged; any other ended booking, or a held one whose payment
// is in flight, fails with ECONFLICT.
func (db *DB) Cancel(ctx context.Context, id, actor string, at time.Time) (cloud.Reservation, Change, error) {
	var r cloud.Reservation
	var ch Change
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		old, err := lockReservation(ctx, tx, id)
		if err != nil {
			return err
		}
		r, ch = old, Change{Facility: old.Facility, Zone: old.Zone}
		switch {
		case old.Status == cloud.ReservationCancelled:
			return nil
		case !old.Status.Active():
			return cloud.Errorf(cloud.ECONFLICT, "reservation %s is %s: it cannot be cancelled", old.ID, old.Status)
		}
		if err := noPaymentInFlight(ctx, tx, old, "cancelled"); err != nil {
			return err
		}
		if err := release(ctx, tx, &old, at); err != nil {
			return err
		}
		refund := old.Policy.Refund(old.Paid, old.From, at)
		r, err = scanReservation(tx.QueryRow(ctx, `UPDATE reservations r SET status = 'cancelled', hold_expires_at = NULL,
				refund_due = $2, cancelled_at = $3, updated_at = $3 WHERE id = $1 RETURNING `+reservationColumns, old.ID, refund, at))
		if err != nil {
			return err
		}
		ch.Freed = true
		if old.Status != cloud.ReservationHeld {
			ch.Downlink = true
			if err := bumpDownlink(ctx, tx, old.Facility); err != nil {
				return err
			}
		}
		return history(ctx, tx, r.ID, old.Status, r.Status, actor, cloud.EventReservationCancelled, at,
			map[string]any{"paid": old.Paid, "refund_due": refund})
	})
	return r, ch, wrap(err, "cancel reservation")
}

// ReservationsToRefund returns up to limit cancelled bookings with a refund due that
// the payments code has not made, oldest cancellation first: its work queue.
func (db *DB) ReservationsToRefund(ctx context.Context, limit int) ([]cloud.Reservation, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+reservationColumns+` FROM reservations r
		WHERE r.refund_due > 0 AND r.refunded_at IS NULL ORDER BY r.cancelled_at, r.id LIMIT $1`, limit)
	if err != nil {
		return nil, wrap(err, "reservations to refund")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cloud.Reservation, error) { return scanReservation(r) })
	return out, wrap(err, "reservations to refund")
}

// MarkReservationRefunded records that the payments code refunded the booking's
// RefundDue, under the provider's reference. It is idempotent; ECONFLICT when nothing
// is due, ENOTFOUND for an unknown booking.
func (db *DB) MarkReservationRefunded(ctx context.Context, id, reference string, at time.Time) error {
	if !validUUID(id) {
		return cloud.Errorf(cloud.ENOTFOUND, "no reservation %q", id)
	}
	var due int64
	var done pgtype.Timestamptz
	err := db.pool.QueryRow(ctx, `UPDATE reservations SET refunded_at = coalesce(refunded_at, $3),
			refund_reference = CASE WHEN refunded_at IS NULL THEN $2 ELSE refund_reference END
		WHERE id = $1 RETURNING refund_due, refunded_at`, id, reference, at).Scan(&due, &done)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return cloud.Errorf(cloud.ENOTFOUND, "no reservation %q", id)
	case err != nil:
		return wrap(err, "mark refunded")
	case due == 0:
		return cloud.Errorf(cloud.ECONFLICT, "reservation %s has no refund due", id)
	}
	return nil
}

// ReservationFilter selects bookings, latest start first. Empty fields select all.
type ReservationFilter struct {
	UserID   string
	Facility string
	Zone     string
	Statuses []cloud.ReservationStatus
	// Overlapping selects the bookings whose window overlaps [From, Until).
	From, Until time.Time
	// After is the last booking of the previous page: its start and id.
	AfterFrom time.Time
	AfterID   string
	Limit     int
}

// Reservations returns the bookings f selects.
func (db *DB) Reservations(ctx context.Context, f ReservationFilter) ([]cloud.Reservation, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	statuses := make([]string, len(f.Statuses))
	for i, s := range f.Statuses {
		statuses[i] = string(s)
	}
	rows, err := db.pool.Query(ctx, `SELECT `+reservationColumns+` FROM reservations r
		WHERE ($1 = '' OR r.user_id = $1) AND ($2 = '' OR r.facility_id = $2) AND ($3 = '' OR r.zone_id = $3)
			AND (cardinality($4::text[]) = 0 OR r.status = ANY($4))
			AND ($5::timestamptz IS NULL OR upper(r.period) > $5) AND ($6::timestamptz IS NULL OR lower(r.period) < $6)
			AND ($7::timestamptz IS NULL OR (lower(r.period), r.id::text) < ($7, $8))
		ORDER BY lower(r.period) DESC, r.id::text DESC LIMIT $9`,
		f.UserID, f.Facility, f.Zone, statuses, nullTime(f.From), nullTime(f.Until), nullTime(f.AfterFrom), f.AfterID, f.Limit)
	if err != nil {
		return nil, wrap(err, "reservations")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cloud.Reservation, error) { return scanReservation(r) })
	return out, wrap(err, "reservations")
}

// ReservationEvent is one entry of a booking's history.
type ReservationEvent struct {
	ID         int64
	At         time.Time
	Event      string
	FromStatus string
	ToStatus   string
	Actor      string
	Detail     map[string]any
}

// ReservationHistory returns the booking's history, oldest first.
func (db *DB) ReservationHistory(ctx context.Context, id string) ([]ReservationEvent, error) {
	if !validUUID(id) {
		return nil, cloud.Errorf(cloud.ENOTFOUND, "no reservation %q", id)
	}
	rows, err := db.pool.Query(ctx, `SELECT id, at, event, coalesce(from_status, ''), to_status, actor, detail
		FROM reservation_history WHERE reservation_id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, wrap(err, "reservation history")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ReservationEvent, error) {
		var e ReservationEvent
		err := r.Scan(&e.ID, &e.At, &e.Event, &e.FromStatus, &e.ToStatus, &e.Actor, &e.Detail)
		return e, err
	})
	return out, wrap(err, "reservation history")
}

// Reservable returns the zone's bookable space per slice over [from, until) as seen
// at at (see cloud.SliceAvailability). ENOTFOUND for an unknown zone.
func (db *DB) Reservable(ctx context.Context, facility, zone string, from, until, at time.Time) ([]cloud.SliceAvailability, error) {
	var out []cloud.SliceAvailability
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var capacity, held, occupied int
		err := tx.QueryRow(ctx, `SELECT z.capacity, z.held_back, coalesce(o.occupied, 0) FROM zones z
			LEFT JOIN zone_occupancy o ON o.facility_id = z.facility_id AND o.zone_id = z.id
			WHERE z.facility_id = $1 AND z.id = $2`, facility, zone).Scan(&capacity, &held, &occupied)
		if errors.Is(err, pgx.ErrNoRows) {
			return cloud.Errorf(cloud.ENOTFOUND, "facility %q has no zone %q", facility, zone)
		}
		if err != nil {
			return err
		}
		first, end := cloud.Slices(from, until)
		rows, _ := tx.Query(ctx, `SELECT s, coalesce(c.booked, 0)
			FROM generate_series($3::timestamptz, $4::timestamptz - interval '15 minutes', interval '15 minutes') s
			LEFT JOIN capacity_slices c ON c.facility_id = $1 AND c.zone_id = $2 AND c.slice_start = s
			ORDER BY s`, facility, zone, first, end)
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (cloud.SliceAvailability, error) {
			s := cloud.SliceAvailability{Bookable: held}
			err := r.Scan(&s.Start, &s.Booked)
			s.Available = max(0, held-s.Booked)
			return s, err
		})
		if err != nil {
			return err
		}
		now := at.UTC().Truncate(cloud.SliceLength)
		for i := range out {
			if out[i].Start.Equal(now) {
				pending, err := pendingArrivals(ctx, tx, facility, zone, at)
				if err != nil {
					return err
				}
				out[i].Available = max(0, min(out[i].Available, capacity-occupied-pending))
			}
			if !out[i].Start.Add(cloud.SliceLength).After(at) {
				out[i].Available = 0 // past
			}
		}
		return nil
	})
	return out, wrap(err, "reservable")
}

// ReservationPolicy returns the facility's policy (the default when it has set none);
// ENOTFOUND for an unknown facility.
func (db *DB) ReservationPolicy(ctx context.Context, facility string) (cloud.ReservationPolicy, error) {
	var hold, promo, grace, full, pct pgtype.Int8
	err := db.pool.QueryRow(ctx, `SELECT extract(epoch FROM p.hold)::bigint, extract(epoch FROM p.promotion_hold)::bigint,
			extract(epoch FROM p.arrival_grace)::bigint, extract(epoch FROM p.full_refund_before)::bigint, p.late_refund_percent
		FROM facilities f LEFT JOIN reservation_policies p ON p.facility_id = f.id WHERE f.id = $1`, facility).
		Scan(&hold, &promo, &grace, &full, &pct)
	if errors.Is(err, pgx.ErrNoRows) {
		return cloud.ReservationPolicy{}, cloud.Errorf(cloud.ENOTFOUND, "no facility %q", facility)
	}
	return policyOf(hold, promo, grace, full, pct), wrap(err, "reservation policy")
}

// SetReservationPolicy replaces the facility's policy; bookings made before keep the
// policy they were made under. ENOTFOUND for an unknown facility; EINVALID for values
// out of range.
func (db *DB) SetReservationPolicy(ctx context.Context, facility string, p cloud.ReservationPolicy) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO reservation_policies AS p (facility_id, hold, promotion_hold, arrival_grace, full_refund_before, late_refund_percent)
		VALUES ($1, $2 * interval '1 second', $3 * interval '1 second', $4 * interval '1 second', $5 * interval '1 second', $6)
		ON CONFLICT (facility_id) DO UPDATE SET hold = EXCLUDED.hold, promotion_hold = EXCLUDED.promotion_hold,
			arrival_grace = EXCLUDED.arrival_grace, full_refund_before = EXCLUDED.full_refund_before,
			late_refund_percent = EXCLUDED.late_refund_percent, updated_at = now()`,
		facility, int64(p.Hold/time.Second), int64(p.PromotionHold/time.Second), int64(p.ArrivalGrace/time.Second),
		int64(p.FullRefundBefore/time.Second), p.LateRefundPercent)
	switch pgCode(err) {
	case foreignKeyViolation:
		return cloud.Errorf(cloud.ENOTFOUND, "no facility %q", facility)
	case checkViolation:
		return cloud.Errorf(cloud.EINVALID, "policy values out of range: holds 1m to 24h, grace up to 24h, full refund up to 365 days, percent 0 to 100")
	}
	return wrap(err, "set reservation policy")
}

// CheckReservationCounts verifies the invariants that rule out overbooking: every
// slice's count equals the number of bookings holding it (reservations.slices: all of
// an active booking's, and the slices an ended one used before it ended), and no
// count exceeds its zone's held-back space. It returns an error describing the first violations;
// tests and the benchmark call it.
func (db *DB) CheckReservationCounts(ctx context.Context) error {
	rows, err := db.pool.Query(ctx, `WITH held AS (
			SELECT r.facility_id, r.zone_id, s AS slice_start, count(*) AS n
			FROM reservations r, generate_series(lower(r.slices), upper(r.slices) - interval '15 minutes', interval '15 minutes') s
			WHERE NOT isempty(r.slices)
			GROUP BY 1, 2, 3)
		SELECT coalesce(c.facility_id, h.facility_id), coalesce(c.zone_id, h.zone_id), coalesce(c.slice_start, h.slice_start),
			coalesce(c.booked, 0), coalesce(h.n, 0), coalesce(z.held_back, 0)
		FROM capacity_slices c FULL JOIN held h USING (facility_id, zone_id, slice_start)
		LEFT JOIN zones z ON z.facility_id = coalesce(c.facility_id, h.facility_id) AND z.id = coalesce(c.zone_id, h.zone_id)
		WHERE coalesce(c.booked, 0) <> coalesce(h.n, 0) OR coalesce(c.booked, 0) > coalesce(z.held_back, 0)
		ORDER BY 1, 2, 3 LIMIT 10`)
	if err != nil {
		return wrap(err, "check reservation counts")
	}
	defer rows.Close()
	var bad []string
	for rows.Next() {
		var fac, zone string
		var at time.Time
		var booked, n, held int
		if err := rows.Scan(&fac, &zone, &at, &booked, &n, &held); err != nil {
			return wrap(err, "check reservation counts")
		}
		bad = append(bad, fmt.Sprintf("%s/%s %s: counted %d, %d bookings hold it, %d bookable", fac, zone, at.UTC().Format(time.RFC3339), booked, n, held))
	}
	if err := rows.Err(); err != nil {
		return wrap(err, "check reservation counts")
	}
	if bad != nil {
		return fmt.Errorf("reservation counts violated: %s", strings.Join(bad, "; "))
	}
	return nil
}

// CheckReservationPayment verifies that paymentID is a succeeded payment of the
// booking's price, in its currency: the HTTP confirm of a booking paid through the
// payments API. ENOTFOUND for no such payment of this booking; ECONFLICT for one that
// has not succeeded or paid less.
func (db *DB) CheckReservationPayment(ctx context.Context, reservationID, paymentID string) error {
	if !validUUID(paymentID) {
		return cloud.Errorf(cloud.ENOTFOUND, "no payment %q for this booking", paymentID)
	}
	var status, currency, resCurrency string
	var amount int64
	var price pgtype.Int8
	err := db.pool.QueryRow(ctx, `SELECT p.status, p.amount, p.currency, r.price, r.currency FROM payments p
		JOIN reservations r ON r.id = p.reservation_id WHERE p.id = $1 AND p.reservation_id = $2`, paymentID, reservationID).
		Scan(&status, &amount, &currency, &price, &resCurrency)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return cloud.Errorf(cloud.ENOTFOUND, "no payment %q for this booking", paymentID)
	case err != nil:
		return wrap(err, "check payment")
	case status != "succeeded":
		return cloud.Errorf(cloud.ECONFLICT, "payment %s is %s, not succeeded", paymentID, status)
	case price.Valid && (amount < price.Int64 || currency != resCurrency):
		return cloud.Errorf(cloud.ECONFLICT, "payment %s paid %d %s; the booking costs %d %s", paymentID, amount, currency, price.Int64, resCurrency)
	}
	return nil
}
