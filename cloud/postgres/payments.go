package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/payment"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// Payments, refunds, webhook events and receipts (migration 0008). The rules the
// database keeps: one payment per account and idempotency key; a status that only
// moves forward (payment.Advances); refunds that never add up to more than was paid
// (the payment row is locked while one is added, and a CHECK and a trigger back it);
// each webhook event applied at most once.

// Payment is a payment as stored.
type Payment struct {
	ID     string
	UserID string
	// Facility is the garage the payment is for: the session's or the
	// reservation's.
	Facility string
	// SessionID or ReservationID says what was paid for; one of them is set.
	SessionID     string
	ReservationID string
	Plate         string
	Amount        int64
	Currency      string
	// Refunded is the sum of the refunds not failed (pending ones included).
	Refunded          int64
	Provider          string
	ProviderReference string
	// PaymentMethod is the provider's token; Customer its customer when saved.
	PaymentMethod  string
	Customer       string
	IdempotencyKey string
	RequestHash    string
	Status         payment.Status
	Failure        string
	ReceiptNumber  string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	SucceededAt    time.Time
	ClaimedUntil   time.Time
}

const paymentColumns = `id::text, user_id, coalesce(facility_id, ''), coalesce(session_id, ''), coalesce(reservation_id::text, ''),
	plate, amount, currency, refunded, provider, provider_reference, payment_method, customer, idempotency_key, request_hash,
	status, failure, coalesce(receipt_number, ''), created_at, updated_at, succeeded_at, claimed_until`

func scanPayment(r pgx.Row) (Payment, error) {
	var p Payment
	var succ, claimed pgtype.Timestamptz
	err := r.Scan(&p.ID, &p.UserID, &p.Facility, &p.SessionID, &p.ReservationID, &p.Plate, &p.Amount, &p.Currency, &p.Refunded,
		&p.Provider, &p.ProviderReference, &p.PaymentMethod, &p.Customer, &p.IdempotencyKey, &p.RequestHash,
		&p.Status, &p.Failure, &p.ReceiptNumber, &p.CreatedAt, &p.UpdatedAt, &succ, &claimed)
	p.SucceededAt, p.ClaimedUntil = succ.Time, claimed.Time
	return p, err
}

// NewPayment is a payment to record before the provider is asked.
type NewPayment struct {
	UserID        string
	Facility      string
	SessionID     string
	ReservationID string
	Plate         string
	Amount        int64
	Currency      string
	Provider      string
	PaymentMethod string
	Customer      string
	// IdempotencyKey is the client's key, unique per account; RequestHash identifies
	// the request it was first used with.
	IdempotencyKey string
	RequestHash    string
	// ClaimedUntil, when set, has the creating request hold the payment while it asks
	// the provider, so that a retry racing it waits rather than asks too.
	ClaimedUntil time.Time
}

// PaymentByKey returns the account's payment made with the idempotency key;
// ENOTFOUND when there is none.
func (db *DB) PaymentByKey(ctx context.Context, userID, key string) (Payment, error) {
	p, err := scanPayment(db.pool.QueryRow(ctx, `SELECT `+paymentColumns+` FROM payments WHERE user_id = $1 AND idempotency_key = $2`, userID, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return p, cloud.Errorf(cloud.ENOTFOUND, "no payment with this idempotency key")
	}
	return p, wrap(err, "payment by key")
}

// Payment returns a payment; ENOTFOUND when there is none.
func (db *DB) Payment(ctx context.Context, id string) (Payment, error) {
	if !validUUID(id) {
		return Payment{}, cloud.Errorf(cloud.ENOTFOUND, "no payment %q", id)
	}
	p, err := scanPayment(db.pool.QueryRow(ctx, `SELECT `+paymentColumns+` FROM payments WHERE id = $1::uuid`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return p, cloud.Errorf(cloud.ENOTFOUND, "no payment %q", id)
	}
	return p, wrap(err, "payment")
}

// ErrIdempotencyMismatch is the cause of the refusal of an idempotency key reused
// with another request.
var ErrIdempotencyMismatch = cloud.Errorf(cloud.EINVALID, "this Idempotency-Key was used with another request; use a new key for a new request")

// CreatePayment records a pending payment, or finds the one recorded with the same
// account and idempotency key: created says which. A key used before with another
// request (RequestHash) fails with ErrIdempotencyMismatch (EINVALID). A second
// payment while one is in flight for the same stay, or for a booking paid or being
// paid, fails with ECONFLICT.
func (db *DB) CreatePayment(ctx context.Context, n NewPayment) (p Payment, created bool, err error) {
	p, err = scanPayment(db.pool.QueryRow(ctx, `INSERT INTO payments (user_id, facility_id, session_id, reservation_id, plate,
			amount, currency, provider, payment_method, customer, idempotency_key, request_hash, claimed_until)
		VALUES ($1, $2, nullif($3, ''), nullif($4, '')::uuid, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (user_id, idempotency_key) DO NOTHING
		RETURNING `+paymentColumns,
		n.UserID, n.Facility, n.SessionID, n.ReservationID, n.Plate, n.Amount, n.Currency, n.Provider, n.PaymentMethod,
		n.Customer, n.IdempotencyKey, n.RequestHash, nullTime(n.ClaimedUntil)))
	switch {
	case err == nil:
		return p, true, nil
	case errors.Is(err, pgx.ErrNoRows):
		p, err = db.PaymentByKey(ctx, n.UserID, n.IdempotencyKey)
		if err != nil {
			return p, false, err
		}
		if p.RequestHash != n.RequestHash {
			return p, false, ErrIdempotencyMismatch
		}
		return p, false, nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == uniqueViolation {
		switch pe.ConstraintName {
		case "payments_session_in_flight":
			return p, false, cloud.Errorf(cloud.ECONFLICT, "a payment for this stay is in progress; wait for it to finish")
		case "payments_reservation_once":
			return p, false, cloud.Errorf(cloud.ECONFLICT, "this reservation is paid or being paid")
		}
	}
	if pgCode(err) == foreignKeyViolation {
		return p, false, cloud.Errorf(cloud.ENOTFOUND, "no such facility or reservation")
	}
	return p, false, wrap(err, "create payment")
}

// ClaimPayment lets one request ask the provider for a pending payment that no
// provider has answered, until until: claimed is false when another request holds
// it, or when it needs no asking (the provider has answered). The payment is
// returned as it is now.
func (db *DB) ClaimPayment(ctx context.Context, id string, now, until time.Time) (p Payment, claimed bool, err error) {
	if !validUUID(id) {
		return p, false, cloud.Errorf(cloud.ENOTFOUND, "no payment %q", id)
	}
	p, err = scanPayment(db.pool.QueryRow(ctx, `UPDATE payments SET claimed_until = $3, updated_at = $2
		WHERE id = $1::uuid AND status = 'pending' AND provider_reference = '' AND (claimed_until IS NULL OR claimed_until < $2)
		RETURNING `+paymentColumns, id, now, until))
	if errors.Is(err, pgx.ErrNoRows) {
		p, err = db.Payment(ctx, id)
		return p, false, err
	}
	return p, err == nil, wrap(err, "claim payment")
}

// ReleasePayment gives up a claim, so that a retry asks the provider again (with
// the same idempotency key).
func (db *DB) ReleasePayment(ctx context.Context, id string) error {
	if !validUUID(id) {
		return cloud.Errorf(cloud.ENOTFOUND, "no payment %q", id)
	}
	_, err := db.pool.Exec(ctx, `UPDATE payments SET claimed_until = NULL WHERE id = $1::uuid`, id)
	return wrap(err, "release payment")
}

// PaymentChange is what recording a provider's answer or a webhook did.
type PaymentChange struct {
	Payment Payment
	// Advanced is true when the status moved forward.
	Advanced bool
	// Succeeded is true when this change made the payment succeed: the one time the
	// success hooks must run.
	Succeeded bool
}

// RecordPaymentResult records the provider's answer to CreatePayment: its reference
// and, when it is further on, its status.
func (db *DB) RecordPaymentResult(ctx context.Context, id string, r payment.Result, now time.Time) (PaymentChange, error) {
	var ch PaymentChange
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		p, err := lockPayment(ctx, tx, id)
		if err != nil {
			return err
		}
		if p.ProviderReference == "" && r.Reference != "" {
			if _, err := tx.Exec(ctx, `UPDATE payments SET provider_reference = $2 WHERE id = $1`, p.ID, r.Reference); err != nil {
				return err
			}
			p.ProviderReference = r.Reference
		}
		if _, err := tx.Exec(ctx, `UPDATE payments SET claimed_until = NULL, updated_at = $2 WHERE id = $1`, p.ID, now); err != nil {
			return err
		}
		ch, err = advance(ctx, tx, p, r.Status, r.Failure, now)
		return err
	})
	return ch, wrap(err, "record payment")
}

// lockPayment locks the payment's row for a change; ENOTFOUND when there is none.
func lockPayment(ctx context.Context, tx pgx.Tx, id string) (Payment, error) {
	if !validUUID(id) {
		return Payment{}, cloud.Errorf(cloud.ENOTFOUND, "no such payment")
	}
	p, err := scanPayment(tx.QueryRow(ctx, `SELECT `+paymentColumns+` FROM payments WHERE id = $1::uuid FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return p, cloud.Errorf(cloud.ENOTFOUND, "no such payment")
	}
	return p, err
}

// advance moves the locked payment p to status to when that is forward, and writes
// what goes with it: the receipt number and the payment.processed event on success,
// the prepaid document's next version for a stay.
func advance(ctx context.Context, tx pgx.Tx, p Payment, to payment.Status, failure string, now time.Time) (PaymentChange, error) {
	ch := PaymentChange{Payment: p}
	if !payment.Advances(p.Status, to) {
		return ch, nil
	}
	ch.Advanced = true
	if to != payment.StatusFailed {
		failure = ""
	}
	if to == payment.StatusSucceeded {
		var n int64
		year := now.UTC().Year()
		if err := tx.QueryRow(ctx, `INSERT INTO receipt_counters (year, last) VALUES ($1, 1)
			ON CONFLICT (year) DO UPDATE SET last = receipt_counters.last + 1 RETURNING last`, year).Scan(&n); err != nil {
			return ch, err
		}
		p.ReceiptNumber, p.SucceededAt = fmt.Sprintf("%d-%06d", year, n), now
		ch.Succeeded = true
		if _, err := tx.Exec(ctx, `UPDATE payments SET receipt_number = $2, succeeded_at = $3 WHERE id = $1`,
			p.ID, p.ReceiptNumber, now); err != nil {
			return ch, err
		}
		if err := paymentEvent(ctx, tx, "payment.processed:"+p.ID, p.ID, "payment.processed", now, map[string]any{
			"amount": p.Amount, "currency": p.Currency, "facility": p.Facility, "session_id": p.SessionID,
			"reservation_id": p.ReservationID, "provider": p.Provider, "reference": p.ProviderReference}); err != nil {
			return ch, err
		}
		if err := bumpPrepaid(ctx, tx, p); err != nil {
			return ch, err
		}
	}
	if to == payment.StatusFailed {
		if err := paymentEvent(ctx, tx, "payment.failed:"+p.ID, p.ID, "payment.failed", now, map[string]any{"failure": failure}); err != nil {
			return ch, err
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE payments SET status = $2, failure = $3, updated_at = $4 WHERE id = $1`,
		p.ID, to, failure, now); err != nil {
		return ch, err
	}
	p.Status, p.Failure, p.UpdatedAt = to, failure, now
	ch.Payment = p
	return ch, nil
}

// bumpPrepaid moves the facility's prepaid document to its next version when p is
// for a stay: the garage must hear of it.
func bumpPrepaid(ctx context.Context, tx pgx.Tx, p Payment) error {
	if p.SessionID == "" {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO prepaid_versions (facility_id, version) VALUES ($1, 1)
		ON CONFLICT (facility_id) DO UPDATE SET version = prepaid_versions.version + 1`, p.Facility)
	return err
}

// paymentEvent appends an event once under its key.
func paymentEvent(ctx context.Context, tx pgx.Tx, key, paymentID, typ string, at time.Time, detail map[string]any) error {
	b, err := json.Marshal(detail)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO payment_events (key, payment_id, type, at, detail) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (key) DO NOTHING`, key, paymentID, typ, at, b)
	return err
}

// PaymentEvent is one line of a payment's history.
type PaymentEvent struct {
	ID     int64
	Type   string
	At     time.Time
	Detail map[string]any
}

// PaymentEvents returns a payment's events, oldest first.
func (db *DB) PaymentEvents(ctx context.Context, paymentID string) ([]PaymentEvent, error) {
	if !validUUID(paymentID) {
		return nil, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT id, type, at, detail FROM payment_events WHERE payment_id = $1::uuid ORDER BY id`, paymentID)
	if err != nil {
		return nil, wrap(err, "payment events")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PaymentEvent, error) {
		var e PaymentEvent
		err := r.Scan(&e.ID, &e.Type, &e.At, &e.Detail)
		return e, err
	})
	return out, wrap(err, "payment events")
}

// Webhook outcomes, as webhook_events records them.
const (
	WebhookApplied = "applied"
	WebhookStale   = "stale"
	WebhookUnknown = "unknown"
	WebhookIgnored = "ignored"
	// WebhookDuplicate is returned, not stored: the event was seen before.
	WebhookDuplicate = "duplicate"
)

// WebhookResult is what applying a webhook event did.
type WebhookResult struct {
	Outcome string
	PaymentChange
}

// ErrWebhookUnmatched is returned for an event that names one of our payments
// (metadata.payment_id) that cannot be matched to it yet: nothing is recorded, so
// that the provider, answered with an error, sends it again.
var ErrWebhookUnmatched = cloud.Errorf(cloud.EUNAVAILABLE, "no payment matches this event yet; send it again later")

// ApplyPaymentEvent applies a verified webhook event of the provider once: an event
// id seen before changes nothing (WebhookDuplicate). An event about a payment moves
// its status only forward, so events that arrive out of order (processing after
// succeeded) are recorded as stale and change nothing. The payment is found by the
// provider's reference or, when the reference was never recorded (the answer to
// CreatePayment was lost), by the payment id the event's metadata carries, and the
// reference is recorded then. An event that carries one of our payment ids but
// matches no payment fails with ErrWebhookUnmatched and is not recorded; one that
// carries none is recorded as WebhookUnknown (not ours to act on).
func (db *DB) ApplyPaymentEvent(ctx context.Context, provider string, ev payment.Event, now time.Time) (WebhookResult, error) {
	var res WebhookResult
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		res = WebhookResult{}
		tag, err := tx.Exec(ctx, `INSERT INTO webhook_events (provider, event_id, type, created, received_at, outcome)
			VALUES ($1, $2, $3, $4, $5, 'ignored') ON CONFLICT (provider, event_id) DO NOTHING`,
			provider, ev.ID, ev.Type, ev.Created, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			res.Outcome = WebhookDuplicate
			return nil
		}
		res.Outcome = WebhookIgnored
		var paymentID any
		if ev.Reference != "" && ev.Status != "" {
			p, err := scanPayment(tx.QueryRow(ctx, `SELECT `+paymentColumns+` FROM payments
				WHERE provider = $1 AND provider_reference = $2 FOR UPDATE`, provider, ev.Reference))
			if errors.Is(err, pgx.ErrNoRows) && ev.PaymentID != "" {
				if p, err = paymentByMetadata(ctx, tx, provider, ev); errors.Is(err, pgx.ErrNoRows) {
					return ErrWebhookUnmatched
				}
			}
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				res.Outcome = WebhookUnknown
			case err != nil:
				return err
			default:
				paymentID = p.ID
				if res.PaymentChange, err = advance(ctx, tx, p, ev.Status, ev.Failure, now); err != nil {
					return err
				}
				res.Outcome = WebhookStale
				if res.Advanced {
					res.Outcome = WebhookApplied
				}
			}
		}
		_, err = tx.Exec(ctx, `UPDATE webhook_events SET outcome = $3, payment_id = $4 WHERE provider = $1 AND event_id = $2`,
			provider, ev.ID, res.Outcome, paymentID)
		return err
	})
	return res, wrap(err, "apply webhook event")
}

// paymentByMetadata locks the payment ev's metadata names when the provider's
// reference of it is not recorded, and records ev's; pgx.ErrNoRows when there is no
// such payment, or it has another reference.
func paymentByMetadata(ctx context.Context, tx pgx.Tx, provider string, ev payment.Event) (Payment, error) {
	if !validUUID(ev.PaymentID) {
		return Payment{}, pgx.ErrNoRows
	}
	p, err := scanPayment(tx.QueryRow(ctx, `SELECT `+paymentColumns+` FROM payments
		WHERE id = $1::uuid AND provider = $2 AND provider_reference = '' FOR UPDATE`, ev.PaymentID, provider))
	if err != nil {
		return p, err
	}
	p.ProviderReference = ev.Reference
	_, err = tx.Exec(ctx, `UPDATE payments SET provider_reference = $2, claimed_until = NULL WHERE id = $1`, p.ID, ev.Reference)
	return p, err
}

// PaymentKey is where a page of payments stopped.
type PaymentKey struct {
	CreatedAt time.Time
	ID        string
}

// UserPayments returns up to limit of the account's payments, newest first, after
// the key when it is not zero.
func (db *DB) UserPayments(ctx context.Context, userID string, after PaymentKey, limit int) ([]Payment, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+paymentColumns+` FROM payments
		WHERE user_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id::text) < ($2, $3))
		ORDER BY created_at DESC, id::text DESC LIMIT $4`, userID, nullTime(after.CreatedAt), after.ID, limit)
	if err != nil {
		return nil, wrap(err, "user payments")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Payment, error) { return scanPayment(r) })
	return out, wrap(err, "user payments")
}

// Refund is a refund as stored.
type Refund struct {
	ID                string
	PaymentID         string
	Amount            int64
	Reason            string
	Actor             string
	IdempotencyKey    string
	RequestHash       string
	ProviderReference string
	// Status is "pending", "succeeded" or "failed".
	Status    string
	Failure   string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Refund statuses.
const (
	RefundPending   = "pending"
	RefundSucceeded = "succeeded"
	RefundFailed    = "failed"
)

const refundColumns = `id::text, payment_id::text, amount, reason, actor, idempotency_key, request_hash, provider_reference,
	status, failure, created_at, updated_at`

func scanRefund(r pgx.Row) (Refund, error) {
	var f Refund
	err := r.Scan(&f.ID, &f.PaymentID, &f.Amount, &f.Reason, &f.Actor, &f.IdempotencyKey, &f.RequestHash, &f.ProviderReference,
		&f.Status, &f.Failure, &f.CreatedAt, &f.UpdatedAt)
	return f, err
}

// NewRefund is a refund to record before the provider is asked.
type NewRefund struct {
	PaymentID string
	// Amount is what to refund; 0 means all that remains.
	Amount         int64
	Reason         string
	Actor          string
	IdempotencyKey string
	RequestHash    string
}

// BeginRefund records a pending refund and counts it against the payment, under a
// lock on the payment's row, so that refunds racing each other never add up to more
// than was paid. The same idempotency key for the payment returns the refund made
// with it (created false), and fails with ErrIdempotencyMismatch for another
// request. A refund of more than remains fails with EINVALID; of a payment that did
// not succeed, or that is refunded in full, with ECONFLICT.
func (db *DB) BeginRefund(ctx context.Context, n NewRefund, now time.Time) (f Refund, p Payment, created bool, err error) {
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		created = false
		var err error
		if p, err = lockPayment(ctx, tx, n.PaymentID); err != nil {
			return err
		}
		f, err = scanRefund(tx.QueryRow(ctx, `SELECT `+refundColumns+` FROM refunds WHERE payment_id = $1 AND idempotency_key = $2`,
			p.ID, n.IdempotencyKey))
		if err == nil {
			if f.RequestHash != n.RequestHash {
				return ErrIdempotencyMismatch
			}
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if !p.Status.Paid() {
			return cloud.Errorf(cloud.ECONFLICT, "payment %s is %s: only a payment that succeeded can be refunded", p.ID, p.Status)
		}
		left := p.Amount - p.Refunded
		amount := n.Amount
		if amount == 0 {
			amount = left
		}
		switch {
		case left <= 0:
			return cloud.Errorf(cloud.ECONFLICT, "payment %s is refunded in full", p.ID)
		case amount > left:
			return cloud.Errorf(cloud.EINVALID, "at most %d can be refunded of payment %s (paid %d, refunded %d)", left, p.ID, p.Amount, p.Refunded)
		case amount <= 0:
			return cloud.Errorf(cloud.EINVALID, "the refund must be positive")
		}
		f, err = scanRefund(tx.QueryRow(ctx, `INSERT INTO refunds (payment_id, amount, reason, actor, idempotency_key, request_hash, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING `+refundColumns,
			p.ID, amount, n.Reason, n.Actor, n.IdempotencyKey, n.RequestHash, now))
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE payments SET refunded = refunded + $2, updated_at = $3 WHERE id = $1`, p.ID, amount, now); err != nil {
			return err
		}
		p.Refunded += amount
		created = true
		return nil
	})
	if pgCode(err) == checkViolation {
		err = &cloud.Error{Code: cloud.EINVALID, Message: "the refunds would exceed what was paid", Err: err}
	}
	return f, p, created, wrap(err, "begin refund")
}

// FinishRefund records the provider's answer to a refund: a success moves the
// payment to partially_refunded or refunded and writes a payment.refunded event; a
// decline marks the refund failed and gives its amount back to what may be refunded.
func (db *DB) FinishRefund(ctx context.Context, refundID string, r payment.RefundResult, now time.Time) (Refund, Payment, error) {
	var f Refund
	var p Payment
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var err error
		var paymentID string
		if !validUUID(refundID) {
			return cloud.Errorf(cloud.ENOTFOUND, "no refund %q", refundID)
		}
		if err := tx.QueryRow(ctx, `SELECT payment_id::text FROM refunds WHERE id = $1::uuid`, refundID).Scan(&paymentID); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return cloud.Errorf(cloud.ENOTFOUND, "no refund %q", refundID)
			}
			return err
		}
		// The payment first, as BeginRefund locks it: no deadlock between them.
		if p, err = lockPayment(ctx, tx, paymentID); err != nil {
			return err
		}
		if f, err = scanRefund(tx.QueryRow(ctx, `SELECT `+refundColumns+` FROM refunds WHERE id = $1::uuid FOR UPDATE`, refundID)); err != nil {
			return err
		}
		if f.Status != RefundPending {
			return nil
		}
		if !r.Succeeded {
			f.Status, f.Failure = RefundFailed, r.Failure
			if _, err := tx.Exec(ctx, `UPDATE refunds SET status = 'failed', failure = $2, provider_reference = $3, updated_at = $4 WHERE id = $1`,
				f.ID, r.Failure, r.Reference, now); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE payments SET refunded = refunded - $2, updated_at = $3 WHERE id = $1`, p.ID, f.Amount, now)
			p.Refunded -= f.Amount
			return err
		}
		f.Status, f.ProviderReference, f.UpdatedAt = RefundSucceeded, r.Reference, now
		if _, err := tx.Exec(ctx, `UPDATE refunds SET status = 'succeeded', provider_reference = $2, updated_at = $3 WHERE id = $1`,
			f.ID, r.Reference, now); err != nil {
			return err
		}
		var done int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(sum(amount), 0) FROM refunds WHERE payment_id = $1 AND status = 'succeeded'`, p.ID).Scan(&done); err != nil {
			return err
		}
		to := payment.StatusPartiallyRefunded
		if done >= p.Amount {
			to = payment.StatusRefunded
		}
		ch, err := advance(ctx, tx, p, to, "", now)
		if err != nil {
			return err
		}
		p = ch.Payment
		if err := bumpPrepaid(ctx, tx, p); err != nil {
			return err
		}
		return paymentEvent(ctx, tx, "payment.refunded:"+f.ID, p.ID, "payment.refunded", now, map[string]any{
			"refund_id": f.ID, "amount": f.Amount, "currency": p.Currency, "reference": r.Reference, "actor": f.Actor})
	})
	return f, p, wrap(err, "finish refund")
}

// PaymentRefunds returns a payment's refunds, oldest first.
func (db *DB) PaymentRefunds(ctx context.Context, paymentID string) ([]Refund, error) {
	if !validUUID(paymentID) {
		return nil, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT `+refundColumns+` FROM refunds WHERE payment_id = $1::uuid ORDER BY created_at, id`, paymentID)
	if err != nil {
		return nil, wrap(err, "refunds")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Refund, error) { return scanRefund(r) })
	return out, wrap(err, "refunds")
}

// OpenSession returns a stay of the facility that is still open; ENOTFOUND when
// there is none (it never began, or the vehicle has left).
func (db *DB) OpenSession(ctx context.Context, facility, sessionID string) (cloud.Session, error) {
	var s cloud.Session
	err := scanSession(db.pool.QueryRow(ctx, `SELECT facility_id, `+viewColumns+` FROM parking_sessions
		WHERE facility_id = $1 AND session_id = $2 AND exited_at IS NULL`, facility, sessionID), &s, &s.Facility)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, cloud.Errorf(cloud.ENOTFOUND, "no open stay %q at facility %q", sessionID, facility)
	}
	return s, wrap(err, "open session")
}

// SessionAppPaid returns what app payments paid for a stay, net of refunds, and when
// the latest of them succeeded (zero when none did).
func (db *DB) SessionAppPaid(ctx context.Context, facility, sessionID string) (int64, time.Time, error) {
	var net int64
	var last pgtype.Timestamptz
	err := db.pool.QueryRow(ctx, `SELECT coalesce(sum(amount - refunded), 0), max(succeeded_at) FROM payments
		WHERE facility_id = $1 AND session_id = $2 AND status IN ('succeeded', 'partially_refunded', 'refunded')`,
		facility, sessionID).Scan(&net, &last)
	return net, last.Time, wrap(err, "session app payments")
}

// UnconfirmedReservationPayments returns the succeeded payments whose reservation is
// still held, or ended unconfirmed without the payment queued for a refund: their
// confirmation did not happen (the process stopped, or the confirmation failed) and
// must be retried; ConfirmReservation queues the refund of one that cannot confirm.
func (db *DB) UnconfirmedReservationPayments(ctx context.Context) ([]Payment, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+paymentColumns+` FROM payments p
		WHERE p.reservation_id IS NOT NULL AND p.status = 'succeeded'
			AND EXISTS (SELECT 1 FROM reservations r WHERE r.id = p.reservation_id
				AND (r.status = 'held' OR r.status IN ('expired', 'cancelled') AND r.payment_id = ''))
		ORDER BY p.succeeded_at LIMIT 100`)
	if err != nil {
		return nil, wrap(err, "unconfirmed reservation payments")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Payment, error) { return scanPayment(r) })
	return out, wrap(err, "unconfirmed reservation payments")
}

// PaymentCustomer returns the account's customer at the provider; "" when it has
// none yet.
func (db *DB) PaymentCustomer(ctx context.Context, userID, provider string) (string, error) {
	var c string
	err := db.pool.QueryRow(ctx, `SELECT customer FROM payment_customers WHERE user_id = $1 AND provider = $2`, userID, provider).Scan(&c)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return c, wrap(err, "payment customer")
}

// SetPaymentCustomer records the account's customer at the provider, unless it has
// one: the one kept is returned.
func (db *DB) SetPaymentCustomer(ctx context.Context, userID, provider, customer string) (string, error) {
	var c string
	err := db.pool.QueryRow(ctx, `WITH ins AS (INSERT INTO payment_customers (user_id, provider, customer) VALUES ($1, $2, $3)
			ON CONFLICT (user_id, provider) DO NOTHING RETURNING customer)
		SELECT customer FROM ins UNION ALL SELECT customer FROM payment_customers WHERE user_id = $1 AND provider = $2`,
		userID, provider, customer).Scan(&c)
	return c, wrap(err, "set payment customer")
}

// SavedMethod is a driver's saved means of payment.
type SavedMethod struct {
	ID       int64
	Provider string
	payment.Method
	Customer  string
	IsDefault bool
	CreatedAt time.Time
}

// SavePaymentMethod stores the account's means of payment: the token and what may be
// shown of it. A token that looks like a card number is refused by the database.
func (db *DB) SavePaymentMethod(ctx context.Context, userID, provider string, m payment.Method) (SavedMethod, error) {
	s := SavedMethod{Provider: provider, Method: m}
	var em, ey any
	if m.ExpMonth >= 1 && m.ExpMonth <= 12 {
		em = m.ExpMonth
	}
	if m.ExpYear >= 2000 && m.ExpYear <= 2200 {
		ey = m.ExpYear
	}
	err := db.pool.QueryRow(ctx, `INSERT INTO user_payment_methods (user_id, provider, provider_token, brand, last4, exp_month, exp_year, is_default)
		VALUES ($1, $2, $3, $4, $5, $6, $7, NOT EXISTS (SELECT 1 FROM user_payment_methods WHERE user_id = $1 AND is_default AND removed_at IS NULL))
		RETURNING id, is_default, created_at`, userID, provider, m.Token, m.Brand, m.Last4, em, ey).Scan(&s.ID, &s.IsDefault, &s.CreatedAt)
	switch pgCode(err) {
	case uniqueViolation:
		return s, cloud.Errorf(cloud.ECONFLICT, "this payment method is saved already")
	case checkViolation:
		return s, cloud.Errorf(cloud.EINVALID, "not a payment method token")
	}
	return s, wrap(err, "save payment method")
}

// PaymentMethods returns the account's saved means of payment, oldest first.
func (db *DB) PaymentMethods(ctx context.Context, userID string) ([]SavedMethod, error) {
	rows, err := db.pool.Query(ctx, `SELECT m.id, m.provider, m.provider_token, m.brand, m.last4, coalesce(m.exp_month, 0), coalesce(m.exp_year, 0),
			coalesce(c.customer, ''), m.is_default, m.created_at
		FROM user_payment_methods m LEFT JOIN payment_customers c ON c.user_id = m.user_id AND c.provider = m.provider
		WHERE m.user_id = $1 AND m.removed_at IS NULL ORDER BY m.created_at, m.id`, userID)
	if err != nil {
		return nil, wrap(err, "payment methods")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SavedMethod, error) {
		var s SavedMethod
		var em, ey int16
		err := r.Scan(&s.ID, &s.Provider, &s.Token, &s.Brand, &s.Last4, &em, &ey, &s.Customer, &s.IsDefault, &s.CreatedAt)
		s.ExpMonth, s.ExpYear = int(em), int(ey)
		return s, err
	})
	return out, wrap(err, "payment methods")
}
