package httpapi

import (
	"time"

	"github.com/gofiber/fiber/v2"
)

// Reconciliation is a facility's day, in its time zone: the stays that closed, what
// each owed and what was paid for it at the garage and in the app, and the app
// payments and refunds of the day.
type Reconciliation struct {
	Facility string `json:"facility"`
	// Date is the day, YYYY-MM-DD, in Timezone; From and To bound it.
	Date     string               `json:"date"`
	Timezone string               `json:"timezone"`
	Currency string               `json:"currency"`
	From     time.Time            `json:"from"`
	To       time.Time            `json:"to"`
	Sessions []ReconciliationLine `json:"sessions"`
	Totals   ReconciliationTotals `json:"totals"`
}

// ReconciliationLine is one stay closed in the day. Amounts in minor units.
type ReconciliationLine struct {
	SessionID string    `json:"session_id"`
	Plate     string    `json:"plate,omitempty"`
	EnteredAt time.Time `json:"entered_at,omitzero"`
	ExitedAt  time.Time `json:"exited_at"`
	EndedHow  string    `json:"ended_how,omitempty"`
	// FeeDue is what the garage charged for the stay.
	FeeDue int64 `json:"fee_due"`
	// PaidAtGarage is what the garage recorded as paid: at its kiosks and pay
	// stations, and the app payments it applied from the prepaid document.
	PaidAtGarage int64 `json:"paid_at_garage"`
	// AppPaid is what app payments took for the stay, AppRefunded what went back.
	AppPaid     int64 `json:"app_paid"`
	AppRefunded int64 `json:"app_refunded"`
	// Difference is PaidAtGarage - FeeDue: below zero the vehicle left owing (grace,
	// an operator's opening), above zero it paid too much.
	Difference int64 `json:"difference"`
	// AppUnmatched is app money (net of refunds) the garage did not count:
	// max(0, AppPaid - AppRefunded - PaidAtGarage). Not zero means a payment that
	// never reached the garage: refund it, or find why.
	AppUnmatched int64 `json:"app_unmatched"`
}

// ReconciliationTotals sum the day.
type ReconciliationTotals struct {
	Sessions     int   `json:"sessions"`
	FeesDue      int64 `json:"fees_due"`
	PaidAtGarage int64 `json:"paid_at_garage"`
	AppPaid      int64 `json:"app_paid"`
	AppRefunded  int64 `json:"app_refunded"`
	Difference   int64 `json:"difference"`
	AppUnmatched int64 `json:"app_unmatched"`
	// AppPayments is the sum of the app payments (stays and reservations) that
	// succeeded in the day, AppPaymentCount their number; Refunds and RefundCount the
	// same of refunds; NetApp = AppPayments - Refunds.
	AppPayments     int64 `json:"app_payments"`
	AppPaymentCount int   `json:"app_payment_count"`
	Refunds         int64 `json:"refunds"`
	RefundCount     int   `json:"refund_count"`
	NetApp          int64 `json:"net_app"`
}

func (a *api) reconciliation(c *fiber.Ctx) error {
	id := c.Params("facility")
	date := c.Query("date")
	ctx, cancel := opContext(c)
	defer cancel()
	f, err := a.db.Facility(ctx, id)
	if err != nil {
		return err
	}
	loc, err := time.LoadLocation(f.Timezone)
	if err != nil {
		loc = time.UTC
	}
	day, err := time.ParseInLocation(time.DateOnly, date, loc)
	if err != nil {
		return malformed("invalid query parameter", FieldError{"date", "is required: a day as YYYY-MM-DD"})
	}
	from, to := day, day.AddDate(0, 0, 1) // AddDate keeps days of 23 and 25 hours whole
	d, err := a.db.Reconciliation(ctx, id, from, to)
	if err != nil {
		return err
	}
	out := Reconciliation{Facility: id, Date: date, Timezone: loc.String(), Currency: f.Currency, From: from, To: to,
		Sessions: make([]ReconciliationLine, 0, len(d.Sessions))}
	t := &out.Totals
	for _, s := range d.Sessions {
		l := ReconciliationLine{SessionID: s.SessionID, Plate: s.Plate, EnteredAt: s.EnteredAt, ExitedAt: s.ExitedAt, EndedHow: s.EndedHow,
			FeeDue: s.Fee, PaidAtGarage: s.PaidAtGarage, AppPaid: s.AppPaid, AppRefunded: s.AppRefunded,
			Difference: s.PaidAtGarage - s.Fee, AppUnmatched: max(0, s.AppPaid-s.AppRefunded-s.PaidAtGarage)}
		out.Sessions = append(out.Sessions, l)
		t.Sessions++
		t.FeesDue += l.FeeDue
		t.PaidAtGarage += l.PaidAtGarage
		t.AppPaid += l.AppPaid
		t.AppRefunded += l.AppRefunded
		t.Difference += l.Difference
		t.AppUnmatched += l.AppUnmatched
	}
	t.AppPayments, t.AppPaymentCount, t.Refunds, t.RefundCount = d.AppPayments, d.AppPaymentCount, d.Refunds, d.RefundCount
	t.NetApp = t.AppPayments - t.Refunds
	return c.JSON(out)
}
