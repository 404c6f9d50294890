package httpapi

import (
	"context"
	"encoding/json"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
)

// PrepaidKind is the downlink document kind of a facility's recent app payments for
// stays: the garage counts them as paid, so the exit opens without stopping.
const PrepaidKind = "prepaid"

// DefaultPrepaidWindow is how far back the prepaid document lists app payments: a
// driver pays shortly before leaving, and the garage records each payment once by
// its payment_id, so a payment it has seen changes nothing when listed again.
const DefaultPrepaidWindow = 48 * time.Hour

// PrepaidDocument is the "prepaid" downlink document, as JSON: the facility's app
// payments for stays that succeeded since Since. Its version goes up with every such
// payment and refund; the garage replaces its copy with a newer version and ignores
// older ones. Garages that do not know the kind skip it (edge/natsync).
type PrepaidDocument struct {
	Facility string           `json:"facility"`
	Version  uint64           `json:"version"`
	Since    time.Time        `json:"since"`
	Payments []PrepaidPayment `json:"payments"`
}

// PrepaidPayment is one app payment for a stay. The garage records it against the
// session (edge.Garage.PaySession) with PaymentID as the reference, which makes it
// idempotent; the plate helps when the session id is not found.
type PrepaidPayment struct {
	PaymentID string `json:"payment_id"`
	SessionID string `json:"session_id"`
	Plate     string `json:"plate,omitempty"`
	// Amount is what was paid and Refunded what went back, in minor units.
	Amount   int64  `json:"amount"`
	Refunded int64  `json:"refunded,omitempty"`
	Currency string `json:"currency"`
	// Method is "app"; Reference the provider's id of the payment.
	Method    string    `json:"method"`
	Reference string    `json:"reference,omitempty"`
	PaidAt    time.Time `json:"paid_at"`
}

// publishPrepaid publishes the facility's current prepaid document, read afresh, and
// records the version the hub accepted: as publishLayout, idempotent and
// self-healing.
func publishPrepaid(ctx context.Context, db *postgres.DB, hub Hub, facility string, window time.Duration, now time.Time) error {
	if hub == nil {
		return cloud.Errorf(cloud.EUNAVAILABLE, "no hub configured")
	}
	since := now.Add(-window)
	version, entries, err := db.Prepaid(ctx, facility, since)
	if err != nil || version == 0 {
		return err
	}
	doc := PrepaidDocument{Facility: facility, Version: version, Since: since.UTC(), Payments: make([]PrepaidPayment, 0, len(entries))}
	for _, e := range entries {
		doc.Payments = append(doc.Payments, PrepaidPayment{PaymentID: e.PaymentID, SessionID: e.SessionID, Plate: e.Plate,
			Amount: e.Amount, Refunded: e.Refunded, Currency: e.Currency, Method: "app", Reference: e.Reference, PaidAt: e.PaidAt.UTC()})
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	if err := hub.PublishDown(ctx, facility, PrepaidKind, version, body); err != nil && cloud.ErrorCode(err) != cloud.ECONFLICT {
		return err
	}
	return db.MarkPrepaidPublished(ctx, facility, version)
}

// RepublishPrepaid publishes, every interval until ctx ends, the prepaid document of
// each facility whose current version the hub has not accepted. cmd/gatehouse-cloud
// runs it beside the API, as RepublishLayouts; window 0 means DefaultPrepaidWindow.
func RepublishPrepaid(ctx context.Context, db *postgres.DB, hub Hub, window, interval time.Duration, log interface {
	Warn(msg string, args ...any)
}) {
	if window <= 0 {
		window = DefaultPrepaidWindow
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		facs, err := db.UnpublishedPrepaid(ctx)
		if err != nil && ctx.Err() == nil {
			log.Warn("listing unpublished prepaid documents", "err", err)
		}
		for _, f := range facs {
			pctx, cancel := context.WithTimeout(ctx, layoutPublishTimeout)
			if err := publishPrepaid(pctx, db, hub, f, window, time.Now()); err != nil && ctx.Err() == nil {
				log.Warn("prepaid document not published; retrying", "facility", f, "err", err, "in", interval)
			}
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
