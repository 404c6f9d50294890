package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// What the garages and the books read of payments: the "prepaid" downlink document
// of app payments for stays, and the daily reconciliation of a facility.

// PrepaidEntry is an app payment for a stay, as the garage needs it to let the
// vehicle out without stopping.
type PrepaidEntry struct {
	PaymentID string
	SessionID string
	Plate     string
	Amount    int64
	Refunded  int64
	Currency  string
	Reference string
	PaidAt    time.Time
}

// Prepaid returns the facility's prepaid document: its version (0 when no app
// payment for a stay was ever made there) and the app payments for stays that
// succeeded since since, oldest first.
func (db *DB) Prepaid(ctx context.Context, facility string, since time.Time) (uint64, []PrepaidEntry, error) {
	var version int64
	err := db.pool.QueryRow(ctx, `SELECT coalesce((SELECT version FROM prepaid_versions WHERE facility_id = $1), 0)`, facility).Scan(&version)
	if err != nil {
		return 0, nil, wrap(err, "prepaid")
	}
	rows, err := db.pool.Query(ctx, `SELECT id::text, session_id, plate, amount, refunded, currency, provider_reference, succeeded_at
		FROM payments WHERE facility_id = $1 AND session_id IS NOT NULL AND succeeded_at >= $2
			AND status IN ('succeeded', 'partially_refunded', 'refunded')
		ORDER BY succeeded_at, id`, facility, since)
	if err != nil {
		return 0, nil, wrap(err, "prepaid")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PrepaidEntry, error) {
		var e PrepaidEntry
		err := r.Scan(&e.PaymentID, &e.SessionID, &e.Plate, &e.Amount, &e.Refunded, &e.Currency, &e.Reference, &e.PaidAt)
		return e, err
	})
	return uint64(version), out, wrap(err, "prepaid")
}

// MarkPrepaidPublished records that the hub holds the facility's prepaid document at
// version (or a later one).
func (db *DB) MarkPrepaidPublished(ctx context.Context, facility string, version uint64) error {
	_, err := db.pool.Exec(ctx, `UPDATE prepaid_versions SET published = greatest(published, $2) WHERE facility_id = $1`, facility, int64(version))
	return wrap(err, "mark prepaid published")
}

// UnpublishedPrepaid returns the facilities whose prepaid document the hub does not
// hold at its current version.
func (db *DB) UnpublishedPrepaid(ctx context.Context) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT facility_id FROM prepaid_versions WHERE published < version ORDER BY facility_id`)
	if err != nil {
		return nil, wrap(err, "unpublished prepaid")
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return out, wrap(err, "unpublished prepaid")
}

// ReconciledSession is one stay closed in the reconciled period: what the garage
// charged and recorded as paid, and what the app took for it.
type ReconciledSession struct {
	SessionID string
	Plate     string
	EnteredAt time.Time
	ExitedAt  time.Time
	EndedHow  string
	Currency  string
	// Fee is what the garage charged; PaidAtGarage what it recorded as paid (at its
	// kiosks and pay stations, and the app payments it applied).
	Fee          int64
	PaidAtGarage int64
	// AppPaid is what app payments took for the stay; AppRefunded what went back.
	AppPaid     int64
	AppRefunded int64
}

// ReconciliationDay is a facility's money over a period.
type ReconciliationDay struct {
	Sessions []ReconciledSession
	// AppPayments and AppPaymentCount are the app payments (stays and reservations)
	// that succeeded in the period; Refunds and RefundCount the refunds that did.
	AppPayments     int64
	AppPaymentCount int
	Refunds         int64
	RefundCount     int
}

// Reconciliation returns the facility's stays closed in [from, to) and the app
// payments and refunds that succeeded in it.
func (db *DB) Reconciliation(ctx context.Context, facility string, from, to time.Time) (ReconciliationDay, error) {
	var d ReconciliationDay
	rows, err := db.pool.Query(ctx, `SELECT s.session_id, s.plate, s.entered_at, s.exited_at, s.ended_how, s.currency, s.fee, s.paid,
			coalesce(ap.paid, 0), coalesce(ap.refunded, 0)
		FROM sessions s
		LEFT JOIN LATERAL (
			SELECT sum(p.amount) AS paid,
				sum((SELECT coalesce(sum(r.amount), 0) FROM refunds r WHERE r.payment_id = p.id AND r.status = 'succeeded')) AS refunded
			FROM payments p
			WHERE p.facility_id = s.facility_id AND p.session_id = s.session_id
				AND p.status IN ('succeeded', 'partially_refunded', 'refunded')) ap ON true
		WHERE s.facility_id = $1 AND s.exited_at >= $2 AND s.exited_at < $3
		ORDER BY s.exited_at, s.session_id`, facility, from, to)
	if err != nil {
		return d, wrap(err, "reconciliation")
	}
	d.Sessions, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ReconciledSession, error) {
		var s ReconciledSession
		var entered pgtype.Timestamptz
		err := r.Scan(&s.SessionID, &s.Plate, &entered, &s.ExitedAt, &s.EndedHow, &s.Currency, &s.Fee, &s.PaidAtGarage,
			&s.AppPaid, &s.AppRefunded)
		s.EnteredAt = entered.Time
		return s, err
	})
	if err != nil {
		return d, wrap(err, "reconciliation")
	}
	err = db.pool.QueryRow(ctx, `SELECT coalesce(sum(amount), 0), count(*) FROM payments
		WHERE facility_id = $1 AND succeeded_at >= $2 AND succeeded_at < $3
			AND status IN ('succeeded', 'partially_refunded', 'refunded')`, facility, from, to).Scan(&d.AppPayments, &d.AppPaymentCount)
	if err != nil {
		return d, wrap(err, "reconciliation")
	}
	err = db.pool.QueryRow(ctx, `SELECT coalesce(sum(r.amount), 0), count(*) FROM refunds r JOIN payments p ON p.id = r.payment_id
		WHERE p.facility_id = $1 AND r.status = 'succeeded' AND r.updated_at >= $2 AND r.updated_at < $3`, facility, from, to).
		Scan(&d.Refunds, &d.RefundCount)
	return d, wrap(err, "reconciliation")
}
