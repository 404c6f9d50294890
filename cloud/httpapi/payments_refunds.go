package httpapi

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/payment"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
)

// refundBatch is how many bookings one round of RunRefunds refunds at most.
const refundBatch = 100

// RunRefunds refunds, every interval until ctx ends, the bookings with a refund due
// (postgres.DB.ReservationsToRefund: cancelled paid bookings, and payments that could
// not confirm their booking) through the provider, and marks them refunded.
// cmd/gatehouse-cloud runs it beside the API.
func RunRefunds(ctx context.Context, db *postgres.DB, prov payment.Provider, interval time.Duration,
	log interface{ Warn(msg string, args ...any) }) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		RefundDue(ctx, db, prov, time.Now, log)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RefundDue runs one round of RunRefunds, with now as the clock.
func RefundDue(ctx context.Context, db *postgres.DB, prov payment.Provider, now func() time.Time,
	log interface{ Warn(msg string, args ...any) }) {
	rs, err := db.ReservationsToRefund(ctx, refundBatch)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("listing bookings to refund", "err", err)
		}
		return
	}
	for _, r := range rs {
		if err := refundReservation(ctx, db, prov, r, now); err != nil && ctx.Err() == nil {
			log.Warn("booking not refunded; retrying", "reservation", r.ID, "payment", r.PaymentID, "due", r.RefundDue, "err", err)
		}
	}
}

// refundReservation refunds r.RefundDue of the payment that paid for r. The refund's
// idempotency key is the booking's, and the provider's the refund's, so a retry after
// a crash or an unknown outcome refunds once.
func refundReservation(ctx context.Context, db *postgres.DB, prov payment.Provider, r cloud.Reservation, now func() time.Time) error {
	if prov == nil {
		return cloud.Errorf(cloud.EUNAVAILABLE, "no payment provider is configured")
	}
	f, pay, _, err := db.BeginRefund(ctx, postgres.NewRefund{PaymentID: r.PaymentID, Amount: r.RefundDue,
		Reason: "reservation " + r.ID + " " + string(r.Status), Actor: "system:refunds",
		IdempotencyKey: "reservation-refund-" + r.ID, RequestHash: fmt.Sprint(r.RefundDue)}, now())
	if err != nil {
		return err
	}
	if f.Status == postgres.RefundPending {
		res, err := askRefund(ctx, prov, f, pay)
		if err != nil {
			return err // unknown outcome: the refund stays pending; the next round asks again
		}
		if f, _, err = db.FinishRefund(ctx, f.ID, res, now()); err != nil {
			return err
		}
	}
	if f.Status != postgres.RefundSucceeded {
		return fmt.Errorf("the provider declined the refund %s (%s): staff must refund it by hand", f.ID, f.Failure)
	}
	return db.MarkReservationRefunded(ctx, r.ID, f.ProviderReference, now())
}

// askRefund asks the provider to pay out the pending refund f of pay, with the
// refund's own idempotency key, and returns what to record: a refusal as a
// failed result. An unknown outcome (the provider unreachable, an answer lost)
// is returned as the provider's error; f stays pending, to be asked again with
// the same key.
func askRefund(ctx context.Context, prov payment.Provider, f postgres.Refund, pay postgres.Payment) (payment.RefundResult, error) {
	res, err := prov.Refund(ctx, payment.RefundRequest{Reference: pay.ProviderReference, Amount: f.Amount,
		IdempotencyKey: "gatehouse-refund-" + f.ID})
	switch cloud.ErrorCode(err) {
	case "":
		return res, nil
	case cloud.EINVALID:
		return payment.RefundResult{Failure: cloud.ErrorMessage(err)}, nil
	}
	return res, err
}
