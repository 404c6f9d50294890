package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/payment"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	"github.com/gatehouse-parking/gatehouse/edge/tariff"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// Payments: a driver pays for a stay at a garage before leaving ("pay-by-app": the
// payment reaches the garage in the "prepaid" downlink document, so the exit opens
// without stopping) or for a held reservation. Every payment-creating request carries
// an Idempotency-Key; the same key with the same body returns the same payment and
// charges once, with another body it is refused. See docs/payments.md.

// Payments is what the payment routes need beyond the database.
type Payments struct {
	// Provider takes the money; nil answers 503 to the payment routes.
	Provider payment.Provider
	// AmountDue prices what a payment is for, replacing the default: a booking's
	// price as quoted when it was made; for an open stay, the fee due now by the
	// facility's tariffs in the cloud (postgres.DB.Quote) less what was paid at the
	// garage and in the app, or, for a facility without tariffs in the cloud, the
	// request's amount (the garage asks at the exit for whatever is still due).
	AmountDue func(ctx context.Context, t PaymentTarget) (amount int64, err error)
	// OnSucceeded runs once after a reservation's payment succeeds; nil means
	// postgres.DB.ConfirmReservation, which confirms the held booking. It must be
	// idempotent: RetryConfirmations calls it again for succeeded payments whose
	// booking is still held.
	OnSucceeded func(ctx context.Context, p postgres.Payment) error
	// PrepaidWindow is how far back the "prepaid" document lists app payments; zero
	// means DefaultPrepaidWindow.
	PrepaidWindow time.Duration
}

// PaymentTarget is what a payment is for, for AmountDue.
type PaymentTarget struct {
	Facility string
	// SessionID is set for a stay, with the session as the cloud last saw it.
	SessionID string
	Session   cloud.Session
	// ReservationID is set for a reservation.
	ReservationID string
}

// Bounds of payments.
const (
	// MaxPaymentAmount bounds one payment, in minor units.
	MaxPaymentAmount = 1_000_000
	// HeaderIdempotencyKey carries the client's idempotency key: the same key makes
	// a retried request the same request.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderStripeSignature carries a Stripe webhook's signature.
	HeaderStripeSignature = "Stripe-Signature"
	maxIdempotencyKey     = 255
	// claimFor is how long one request holds a payment while it asks the provider.
	claimFor        = time.Minute
	providerTimeout = 30 * time.Second
)

// payments holds the payment routes' dependencies.
type payments struct {
	Payments
	webhooks *prometheus.CounterVec
}

func newPayments(cfg Payments, db *postgres.DB, reg prometheus.Registerer) *payments {
	p := &payments{Payments: cfg,
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_cloud_payment_webhooks_total",
			Help: "Payment webhooks received, by outcome (applied, stale, duplicate, unknown, unmatched, ignored, bad_signature)."}, []string{"outcome"})}
	if p.PrepaidWindow <= 0 {
		p.PrepaidWindow = DefaultPrepaidWindow
	}
	if p.OnSucceeded == nil {
		p.OnSucceeded = func(ctx context.Context, pay postgres.Payment) error {
			_, err := db.ConfirmReservation(ctx, pay.ReservationID, pay.ID)
			return err
		}
	}
	reg.MustRegister(p.webhooks)
	return p
}

// PaymentRequest is the body of POST /v1/payments: for a reservation, or for an open
// stay at a facility.
type PaymentRequest struct {
	ReservationID string `json:"reservation_id,omitempty"`
	Facility      string `json:"facility,omitempty"`
	SessionID     string `json:"session_id,omitempty"`
	// Amount in minor units: required unless the server prices the stay or the
	// reservation itself, and then, when given, it must equal the amount due.
	Amount *int64 `json:"amount,omitempty"`
	// PaymentMethod is the provider's token (a Stripe PaymentMethod id, or a test
	// token such as pm_card_visa); never a card number.
	PaymentMethod string `json:"payment_method"`
}

var (
	uuidRE      = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	paymentIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`)
)

func (r *PaymentRequest) validate() []FieldError {
	var f []FieldError
	r.ReservationID, r.Facility, r.SessionID = strings.TrimSpace(r.ReservationID), strings.TrimSpace(r.Facility), strings.TrimSpace(r.SessionID)
	r.PaymentMethod = strings.TrimSpace(r.PaymentMethod)
	switch {
	case r.ReservationID != "" && (r.Facility != "" || r.SessionID != ""):
		f = append(f, FieldError{"reservation_id", "give either reservation_id, or facility and session_id, not both"})
	case r.ReservationID != "":
		if !uuidRE.MatchString(r.ReservationID) {
			f = append(f, FieldError{"reservation_id", "must be a reservation id this API returned"})
		}
		r.ReservationID = strings.ToLower(r.ReservationID)
	default:
		if !paymentIDRE.MatchString(r.Facility) {
			f = append(f, FieldError{"facility", "is required (with session_id) unless reservation_id is given"})
		}
		if !paymentIDRE.MatchString(r.SessionID) {
			f = append(f, FieldError{"session_id", "is required (with facility) unless reservation_id is given: the stay's id from the ticket or the app"})
		}
	}
	if r.Amount != nil && (*r.Amount <= 0 || *r.Amount > MaxPaymentAmount) {
		f = append(f, FieldError{"amount", fmt.Sprintf("must be between 1 and %d minor units", MaxPaymentAmount)})
	}
	if msg := payment.TokenProblem(r.PaymentMethod); msg != "" {
		f = append(f, FieldError{"payment_method", msg})
	}
	return f
}

// Payment is a payment as the API shows it: never the means of payment beyond what
// the provider lets be shown.
type Payment struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	// Amount and Refunded in minor units of Currency.
	Amount            int64     `json:"amount"`
	Refunded          int64     `json:"refunded"`
	Currency          string    `json:"currency"`
	Facility          string    `json:"facility,omitempty"`
	SessionID         string    `json:"session_id,omitempty"`
	ReservationID     string    `json:"reservation_id,omitempty"`
	Plate             string    `json:"plate,omitempty"`
	Provider          string    `json:"provider"`
	ProviderReference string    `json:"provider_reference,omitempty"`
	Failure           string    `json:"failure,omitempty"`
	ReceiptNumber     string    `json:"receipt_number,omitempty"`
	CreatedAt         time.Time `json:"created_at"`
	UpdatedAt         time.Time `json:"updated_at"`
	SucceededAt       time.Time `json:"succeeded_at,omitzero"`
	// Refunds are listed by GET /v1/payments/{id}.
	Refunds []Refund `json:"refunds,omitempty"`
}

func paymentOut(p postgres.Payment) Payment {
	return Payment{ID: p.ID, Status: string(p.Status), Amount: p.Amount, Refunded: p.Refunded, Currency: p.Currency,
		Facility: p.Facility, SessionID: p.SessionID, ReservationID: p.ReservationID, Plate: p.Plate, Provider: p.Provider,
		ProviderReference: p.ProviderReference, Failure: p.Failure, ReceiptNumber: p.ReceiptNumber,
		CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt, SucceededAt: p.SucceededAt}
}

// Refund is a refund as the API shows it.
type Refund struct {
	ID                string    `json:"id"`
	PaymentID         string    `json:"payment_id"`
	Amount            int64     `json:"amount"`
	Status            string    `json:"status"`
	Reason            string    `json:"reason,omitempty"`
	ProviderReference string    `json:"provider_reference,omitempty"`
	Failure           string    `json:"failure,omitempty"`
	CreatedAt         time.Time `json:"created_at"`
}

func refundOut(f postgres.Refund) Refund {
	return Refund{ID: f.ID, PaymentID: f.PaymentID, Amount: f.Amount, Status: f.Status, Reason: f.Reason,
		ProviderReference: f.ProviderReference, Failure: f.Failure, CreatedAt: f.CreatedAt}
}

// RefundRequest is the body of POST /v1/payments/{id}/refunds.
type RefundRequest struct {
	// Amount in minor units; omitted means all that remains.
	Amount *int64 `json:"amount,omitempty"`
	Reason string `json:"reason"`
}

func (r *RefundRequest) validate() []FieldError {
	var f []FieldError
	if r.Amount != nil && (*r.Amount <= 0 || *r.Amount > MaxPaymentAmount) {
		f = append(f, FieldError{"amount", fmt.Sprintf("must be between 1 and %d minor units", MaxPaymentAmount)})
	}
	r.Reason = strings.TrimSpace(r.Reason)
	switch {
	case r.Reason == "":
		f = append(f, FieldError{"reason", "is required: why the money goes back"})
	case utf8.RuneCountInString(r.Reason) > 500:
		f = append(f, FieldError{"reason", "must be at most 500 characters"})
	case strings.IndexFunc(r.Reason, unicode.IsControl) >= 0:
		f = append(f, FieldError{"reason", "must not hold control characters"})
	}
	return f
}

// WebhookResult is the answer to a provider's webhook.
type WebhookResult struct {
	Received bool `json:"received"`
	// Outcome is applied, stale (an older status than the payment's), duplicate (seen
	// before), unknown (no such payment) or ignored (an event type not acted on).
	Outcome string `json:"outcome"`
}

// PaymentMethodRequest is the body of POST /v1/me/payment-methods.
type PaymentMethodRequest struct {
	// Token is the provider's token of the means of payment (from Stripe.js or the
	// mobile SDK); never a card number.
	Token string `json:"token"`
}

func (r *PaymentMethodRequest) validate() []FieldError {
	r.Token = strings.TrimSpace(r.Token)
	if msg := payment.TokenProblem(r.Token); msg != "" {
		return []FieldError{{"token", msg}}
	}
	return nil
}

// PaymentMethod is a saved means of payment as the API shows it.
type PaymentMethod struct {
	ID        int64     `json:"id"`
	Provider  string    `json:"provider"`
	Token     string    `json:"token"`
	Brand     string    `json:"brand,omitempty"`
	Last4     string    `json:"last4,omitempty"`
	ExpMonth  int       `json:"exp_month,omitempty"`
	ExpYear   int       `json:"exp_year,omitempty"`
	IsDefault bool      `json:"is_default"`
	CreatedAt time.Time `json:"created_at"`
}

func (a *api) paymentRoutes() []*route {
	driver := access{roles: []cloud.Role{cloud.RoleDriver}}
	idem := "; needs an Idempotency-Key header"
	return []*route{
		{method: fiber.MethodPost, path: "/payments", tag: "payments",
			summary: "Pay for an open stay (facility, session_id) or a held reservation" + idem, access: driver,
			request: PaymentRequest{}, response: Payment{}, status: http.StatusCreated, handler: a.createPayment},
		{method: fiber.MethodGet, path: "/payments/:id", tag: "payments",
			summary: "A payment with its refunds: the driver's own, or one of a facility the staff member is assigned to",
			access:  access{roles: anyRole}, response: Payment{}, handler: a.getPayment},
		{method: fiber.MethodGet, path: "/payments/:id/receipt", tag: "payments",
			summary: "The receipt of a payment that succeeded, as HTML (text/html)",
			access:  access{roles: anyRole}, handler: a.receiptHTML},
		{method: fiber.MethodGet, path: "/payments/:id/receipt.pdf", tag: "payments",
			summary: "The receipt of a payment that succeeded, as PDF (application/pdf)",
			access:  access{roles: anyRole}, handler: a.receiptPDF},
		{method: fiber.MethodPost, path: "/payments/:id/refunds", tag: "payments",
			summary: "Refund part or all of a payment, never more than remains; managers of its facility" + idem,
			access:  access{roles: managers, audit: "payment.refund"}, request: RefundRequest{}, response: Refund{}, status: http.StatusCreated,
			handler: a.createRefund},
		{method: fiber.MethodGet, path: "/me/payments", tag: "drivers",
			summary: "The driver's payments, the newest first", access: driver,
			query: []param{
				{name: "limit", typ: "integer", description: "items per page"},
				{name: "cursor", typ: "string", description: "next_cursor of the previous page"}},
			response: Page[Payment]{}, handler: a.myPayments},
		{method: fiber.MethodGet, path: "/me/payment-methods", tag: "drivers",
			summary: "The driver's saved means of payment (provider tokens, brand, last four digits)", access: driver,
			response: Page[PaymentMethod]{}, handler: a.listPaymentMethods},
		{method: fiber.MethodPost, path: "/me/payment-methods", tag: "drivers",
			summary: "Save a means of payment by its provider token, never a card number", access: driver,
			request: PaymentMethodRequest{}, response: PaymentMethod{}, status: http.StatusCreated, handler: a.savePaymentMethod},
		{method: fiber.MethodPost, path: "/webhooks/stripe", tag: "payments",
			summary: "Stripe's webhook: Stripe-Signature verified, replays and duplicates change nothing",
			access:  access{public: true}, response: WebhookResult{}, handler: a.stripeWebhook},
		{method: fiber.MethodGet, path: "/facilities/:facility/reconciliation", tag: "payments",
			summary: "A facility's day: stays closed, fees due, payments at the garage and in the app, refunds, differences",
			access:  access{roles: staff, scoped: true, scope: "payments:read"},
			query: []param{{name: "date", typ: "string", required: true,
				description: "the day, YYYY-MM-DD, in the facility's time zone"}},
			response: Reconciliation{}, handler: a.reconciliation},
	}
}

// provider returns the configured provider, or a 503.
func (a *api) provider() (payment.Provider, error) {
	if a.pay.Provider == nil {
		return nil, cloud.Errorf(cloud.EUNAVAILABLE, "payments are not configured")
	}
	return a.pay.Provider, nil
}

// idempotencyKey reads the Idempotency-Key header: required, 1 to 255 visible
// ASCII characters.
func idempotencyKey(c *fiber.Ctx) (string, error) {
	k := c.Get(HeaderIdempotencyKey)
	if k == "" {
		return "", malformed("this request needs an "+HeaderIdempotencyKey+" header (a fresh random value per new request; the same on a retry)",
			FieldError{HeaderIdempotencyKey, "is required"})
	}
	if len(k) > maxIdempotencyKey || strings.IndexFunc(k, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
		return "", malformed("invalid "+HeaderIdempotencyKey, FieldError{HeaderIdempotencyKey, "must be 1 to 255 visible ASCII characters"})
	}
	return k, nil
}

// requestHash identifies a request body as normalised, for idempotency.
func requestHash(v any) string {
	b, _ := json.Marshal(v)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// providerContext bounds a call to the provider and what is recorded of it: it goes
// on when the client goes away, so a charge made is always recorded.
func providerContext(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(c.UserContext()), providerTimeout)
}

func (a *api) createPayment(c *fiber.Ctx) error {
	p, err := driverOnly(c)
	if err != nil {
		return err
	}
	prov, err := a.provider()
	if err != nil {
		return err
	}
	key, err := idempotencyKey(c)
	if err != nil {
		return err
	}
	var req PaymentRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	hash := requestHash(req)
	ctx, cancel := providerContext(c)
	defer cancel()
	// A retry finds its payment before anything else is looked at: the stay may have
	// closed since, and the answer must still be the first one.
	prev, err := a.db.PaymentByKey(ctx, p.UserID, key)
	switch {
	case err == nil:
		if prev.RequestHash != hash {
			return postgres.ErrIdempotencyMismatch
		}
		return a.settlePayment(c, ctx, prov, prev, false)
	case cloud.ErrorCode(err) != cloud.ENOTFOUND:
		return err
	}
	n, err := a.paymentTarget(ctx, p, &req)
	if err != nil {
		return err
	}
	n.UserID, n.Provider, n.PaymentMethod, n.IdempotencyKey, n.RequestHash = p.UserID, prov.Name(), req.PaymentMethod, key, hash
	// A saved means of payment is charged through its customer.
	if ms, err := a.db.PaymentMethods(ctx, p.UserID); err == nil {
		for _, m := range ms {
			if m.Provider == prov.Name() && m.Token == req.PaymentMethod {
				n.Customer = m.Customer
			}
		}
	}
	n.ClaimedUntil = a.now().Add(claimFor)
	pay, created, err := a.db.CreatePayment(ctx, n)
	if err != nil {
		return err
	}
	return a.settlePayment(c, ctx, prov, pay, created)
}

// paymentTarget resolves what the request pays for and how much.
func (a *api) paymentTarget(ctx context.Context, p *cloud.Principal, req *PaymentRequest) (postgres.NewPayment, error) {
	var n postgres.NewPayment
	t := PaymentTarget{ReservationID: req.ReservationID, SessionID: req.SessionID}
	var price *int64
	if req.ReservationID != "" {
		r, err := a.db.Reservation(ctx, req.ReservationID)
		if err != nil {
			return n, err
		}
		if r.UserID != p.UserID {
			return n, cloud.Errorf(cloud.ENOTFOUND, "no reservation %q", req.ReservationID)
		}
		if r.Status != cloud.ReservationHeld {
			return n, cloud.Errorf(cloud.ECONFLICT, "reservation %s is %s: only a held reservation can be paid", r.ID, r.Status)
		}
		if r.Price == nil {
			return n, cloud.Errorf(cloud.ECONFLICT, "reservation %s has no price in the cloud: the garage charges the stay at exit", r.ID)
		}
		n.ReservationID, n.Facility, n.Plate, n.Currency, price = r.ID, r.Facility, r.Plate, r.Currency, r.Price
	} else {
		s, err := a.db.OpenSession(ctx, req.Facility, req.SessionID)
		if err != nil {
			return n, err
		}
		t.Session = s
		n.Facility, n.SessionID, n.Plate = s.Facility, s.ID, s.Plate
	}
	t.Facility = n.Facility
	if n.Currency == "" {
		f, err := a.db.Facility(ctx, n.Facility)
		if err != nil {
			return n, err
		}
		n.Currency = f.Currency
	}
	var due int64
	var err error
	switch {
	case a.pay.AmountDue != nil:
		due, err = a.pay.AmountDue(ctx, t)
	case price != nil:
		due = *price
	default:
		due, err = a.sessionDue(ctx, t.Session, &n)
	}
	switch {
	case cloud.ErrorCode(err) == cloud.ENOTFOUND && n.SessionID != "":
		// No tariffs in the cloud: the driver pays what the app showed from the
		// garage; the garage asks at the exit for anything still due.
		if req.Amount == nil {
			return n, invalid("the request has invalid fields", FieldError{"amount", "is required at this facility: the amount to pay, in minor units"})
		}
		n.Amount = *req.Amount
		return n, nil
	case err != nil:
		return n, err
	case due <= 0:
		return n, cloud.Errorf(cloud.ECONFLICT, "nothing is due")
	case req.Amount != nil && *req.Amount != due:
		return n, invalid("the amount due has changed", FieldError{"amount", fmt.Sprintf("the amount due is now %d", due)})
	}
	n.Amount = due
	return n, nil
}

// sessionDue prices an open stay until now by the facility's tariffs in the cloud,
// less what was paid for it: the more of what the garage recorded and what the app
// took, since an app payment is in the garage's figure only once it has applied it.
// ENOTFOUND when the facility has no tariffs in the cloud.
func (a *api) sessionDue(ctx context.Context, s cloud.Session, n *postgres.NewPayment) (int64, error) {
	appPaid, lastApp, err := a.db.SessionAppPaid(ctx, s.Facility, s.ID)
	if err != nil {
		return 0, err
	}
	_, q, err := a.db.Quote(ctx, s.Facility, s.Zone, s.RateID, tariff.Input{Entry: s.EnteredAt, Exit: a.now(),
		Paid: max(s.Paid, appPaid), PaidAt: lastApp})
	if err != nil {
		return 0, err
	}
	if q.Currency != "" {
		n.Currency = q.Currency
	}
	return q.Due, nil
}

// settlePayment asks the provider for a payment no provider has answered yet, and
// answers with the payment: 201 when this request created it, 200 with
// Idempotent-Replayed on a retry.
func (a *api) settlePayment(c *fiber.Ctx, ctx context.Context, prov payment.Provider, pay postgres.Payment, created bool) error {
	now := a.now()
	// The creating request holds the claim from the insert; a retry takes it only
	// when no request holds it (one that crashed, or gave up on the provider).
	claimed := created
	if !created {
		var err error
		if pay, claimed, err = a.db.ClaimPayment(ctx, pay.ID, now, now.Add(claimFor)); err != nil {
			return err
		}
	}
	switch {
	case claimed:
		meta := map[string]string{"payment_id": pay.ID, "facility": pay.Facility}
		if pay.SessionID != "" {
			meta["session_id"] = pay.SessionID
		}
		if pay.ReservationID != "" {
			meta["reservation_id"] = pay.ReservationID
		}
		// The provider's key is the payment's id: a retry after a crash or a timeout
		// is the same request to the provider, which charges once.
		res, perr := prov.CreatePayment(ctx, payment.Charge{Amount: pay.Amount, Currency: pay.Currency, Customer: pay.Customer,
			Method: pay.PaymentMethod, IdempotencyKey: "gatehouse-payment-" + pay.ID, Description: describe(pay), Metadata: meta})
		switch cloud.ErrorCode(perr) {
		case "":
		case cloud.EINVALID:
			res = payment.Result{Status: payment.StatusFailed, Failure: cloud.ErrorMessage(perr)}
		default:
			if err := a.db.ReleasePayment(ctx, pay.ID); err != nil {
				a.log.Error("payment claim not released", "payment", pay.ID, "err", err)
			}
			return perr
		}
		ch, err := a.db.RecordPaymentResult(ctx, pay.ID, res, a.now())
		if err != nil {
			return err
		}
		pay = ch.Payment
		if ch.Succeeded {
			a.paymentSucceeded(ctx, pay)
		}
	case pay.Status == payment.StatusPending && pay.ProviderReference == "" && pay.ClaimedUntil.After(now):
		return cloud.Errorf(cloud.ECONFLICT, "a request with this Idempotency-Key is in progress; retry in a moment")
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
		c.Set("Idempotent-Replayed", "true")
	}
	return c.Status(status).JSON(paymentOut(pay))
}

func describe(p postgres.Payment) string {
	if p.ReservationID != "" {
		return "Reservation " + p.ReservationID + " at " + p.Facility
	}
	return "Parking at " + p.Facility + ", stay " + p.SessionID
}

// paymentSucceeded runs what follows a success, once: the reservation's
// confirmation, the stay's prepaid document to the garage. Failures are logged and
// retried by RetryConfirmations and RepublishPrepaid.
func (a *api) paymentSucceeded(ctx context.Context, p postgres.Payment) {
	if p.ReservationID != "" {
		if err := a.pay.OnSucceeded(ctx, p); err != nil {
			a.log.Warn("reservation not confirmed after its payment; RetryConfirmations retries it",
				"payment", p.ID, "reservation", p.ReservationID, "err", err)
		}
	}
	if p.SessionID != "" && a.hub != nil {
		pctx, cancel := context.WithTimeout(ctx, layoutPublishTimeout)
		defer cancel()
		if err := publishPrepaid(pctx, a.db, a.hub, p.Facility, a.pay.PrepaidWindow, a.now()); err != nil {
			a.log.Warn("prepaid payment not yet published to the garage; RepublishPrepaid retries it",
				"facility", p.Facility, "payment", p.ID, "err", err)
		}
	}
}

// visiblePayment returns the payment when the caller may see it: the driver who
// made it, staff of its facility, admins. Anyone else gets 404, not 403: payment ids
// are not to be probed.
func (a *api) visiblePayment(c *fiber.Ctx, ctx context.Context) (postgres.Payment, error) {
	id := c.Params("id")
	if !uuidRE.MatchString(id) {
		return postgres.Payment{}, cloud.Errorf(cloud.ENOTFOUND, "no payment %q", id)
	}
	pay, err := a.db.Payment(ctx, strings.ToLower(id))
	if err != nil {
		return pay, err
	}
	p := principal(c)
	if p.Role == cloud.RoleDriver && p.UserID != "" && p.UserID == pay.UserID || p.Role != cloud.RoleDriver && p.CanAccess(pay.Facility) {
		return pay, nil
	}
	return postgres.Payment{}, cloud.Errorf(cloud.ENOTFOUND, "no payment %q", id)
}

func (a *api) getPayment(c *fiber.Ctx) error {
	ctx, cancel := opContext(c)
	defer cancel()
	pay, err := a.visiblePayment(c, ctx)
	if err != nil {
		return err
	}
	rs, err := a.db.PaymentRefunds(ctx, pay.ID)
	if err != nil {
		return err
	}
	out := paymentOut(pay)
	for _, r := range rs {
		out.Refunds = append(out.Refunds, refundOut(r))
	}
	return c.JSON(out)
}

func (a *api) myPayments(c *fiber.Ctx) error {
	p, err := driverOnly(c)
	if err != nil {
		return err
	}
	limit, cur, err := pageParams(c)
	if err != nil {
		return err
	}
	var after postgres.PaymentKey
	if cur.After != "" {
		at, id, ok := strings.Cut(cur.After, "|")
		t, terr := time.Parse(time.RFC3339Nano, at)
		if !ok || terr != nil {
			return malformed("invalid query parameter", FieldError{"cursor", "not a cursor this API returned"})
		}
		after = postgres.PaymentKey{CreatedAt: t, ID: id}
	}
	ctx, cancel := opContext(c)
	defer cancel()
	ps, err := a.db.UserPayments(ctx, p.UserID, after, limit+1)
	if err != nil {
		return err
	}
	out := make([]Payment, len(ps))
	for i, x := range ps {
		out[i] = paymentOut(x)
	}
	return c.JSON(makePage(out, limit, func(x Payment) string { return x.CreatedAt.Format(time.RFC3339Nano) + "|" + x.ID }))
}

func (a *api) createRefund(c *fiber.Ctx) error {
	prov, err := a.provider()
	if err != nil {
		return err
	}
	key, err := idempotencyKey(c)
	if err != nil {
		return err
	}
	var req RefundRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	ctx, cancel := providerContext(c)
	defer cancel()
	pay, err := a.visiblePayment(c, ctx)
	if err != nil {
		return err
	}
	target := "payment:" + pay.ID
	var amount int64
	if req.Amount != nil {
		amount = *req.Amount
	}
	f, pay, created, err := a.db.BeginRefund(ctx, postgres.NewRefund{PaymentID: pay.ID, Amount: amount, Reason: req.Reason,
		Actor: principal(c).Actor(), IdempotencyKey: key, RequestHash: requestHash(req)}, a.now())
	if err != nil {
		if code := cloud.ErrorCode(err); code == cloud.EINVALID || code == cloud.ECONFLICT {
			a.audit(c, cloud.AuditEntry{Action: "payment.refund", Target: target, Facility: pay.Facility, Outcome: cloud.OutcomeDenied,
				Detail: map[string]any{"amount": amount, "reason": cloud.ErrorMessage(err)}})
		}
		return err
	}
	if f.Status == postgres.RefundPending {
		res, perr := askRefund(ctx, prov, f, pay)
		if perr != nil {
			// Unknown outcome: the refund stays pending and counted; a retry with the
			// same Idempotency-Key asks the provider again with the same key.
			a.audit(c, cloud.AuditEntry{Action: "payment.refund", Target: target, Facility: pay.Facility, Outcome: cloud.OutcomeFailed,
				Detail: map[string]any{"refund_id": f.ID, "amount": f.Amount, "reason": f.Reason}})
			return perr
		}
		if f, pay, err = a.db.FinishRefund(ctx, f.ID, res, a.now()); err != nil {
			return err
		}
		outcome := cloud.OutcomeOK
		if f.Status == postgres.RefundFailed {
			outcome = cloud.OutcomeFailed
		}
		a.audit(c, cloud.AuditEntry{Action: "payment.refund", Target: target, Facility: pay.Facility, Outcome: outcome,
			Detail: map[string]any{"refund_id": f.ID, "amount": f.Amount, "currency": pay.Currency, "reason": f.Reason, "failure": f.Failure}})
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
		c.Set("Idempotent-Replayed", "true")
	}
	return c.Status(status).JSON(refundOut(f))
}

func (a *api) stripeWebhook(c *fiber.Ctx) error {
	prov, err := a.provider()
	if err != nil {
		return err
	}
	if prov.Name() != "stripe" {
		return cloud.Errorf(cloud.ENOTFOUND, "Stripe is not this service's payment provider")
	}
	ev, err := prov.VerifyWebhook(c.Body(), c.Get(HeaderStripeSignature))
	if err != nil {
		a.pay.webhooks.WithLabelValues("bad_signature").Inc()
		a.log.Warn("payment webhook refused", "provider", prov.Name(), "ip", c.IP(), "request_id", requestID(c), "err", err)
		return malformed("the webhook's " + HeaderStripeSignature + " is missing, not valid, or too old")
	}
	ctx, cancel := providerContext(c)
	defer cancel()
	res, err := a.db.ApplyPaymentEvent(ctx, prov.Name(), ev, a.now())
	if errors.Is(err, postgres.ErrWebhookUnmatched) {
		// One of our payments, not matched yet: a 503 has Stripe send it again
		// (for up to three days) rather than lose the charge.
		a.pay.webhooks.WithLabelValues("unmatched").Inc()
		a.log.Warn("payment webhook matches no payment yet; the provider will resend it",
			"provider", prov.Name(), "event", ev.ID, "payment", ev.PaymentID, "reference", ev.Reference)
		return err
	}
	if err != nil {
		return err
	}
	a.pay.webhooks.WithLabelValues(res.Outcome).Inc()
	if res.Succeeded {
		a.paymentSucceeded(ctx, res.Payment)
	}
	return c.JSON(WebhookResult{Received: true, Outcome: res.Outcome})
}

func (a *api) listPaymentMethods(c *fiber.Ctx) error {
	p, err := driverOnly(c)
	if err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	ms, err := a.db.PaymentMethods(ctx, p.UserID)
	if err != nil {
		return err
	}
	page := Page[PaymentMethod]{Items: make([]PaymentMethod, len(ms))}
	for i, m := range ms {
		page.Items[i] = methodOut(m)
	}
	return c.JSON(page)
}

func methodOut(m postgres.SavedMethod) PaymentMethod {
	return PaymentMethod{ID: m.ID, Provider: m.Provider, Token: m.Token, Brand: m.Brand, Last4: m.Last4,
		ExpMonth: m.ExpMonth, ExpYear: m.ExpYear, IsDefault: m.IsDefault, CreatedAt: m.CreatedAt}
}

func (a *api) savePaymentMethod(c *fiber.Ctx) error {
	p, err := driverOnly(c)
	if err != nil {
		return err
	}
	prov, err := a.provider()
	if err != nil {
		return err
	}
	var req PaymentMethodRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	ctx, cancel := providerContext(c)
	defer cancel()
	cus, err := a.db.PaymentCustomer(ctx, p.UserID, prov.Name())
	if err != nil {
		return err
	}
	if cus == "" {
		// Keyed by the account: two first saves racing make one customer.
		made, err := prov.CreateCustomer(ctx, payment.Customer{UserID: p.UserID, IdempotencyKey: "gatehouse-customer-" + p.UserID})
		if err != nil {
			return err
		}
		if cus, err = a.db.SetPaymentCustomer(ctx, p.UserID, prov.Name(), made); err != nil {
			return err
		}
	}
	m, err := prov.SavePaymentMethod(ctx, cus, req.Token)
	if err != nil {
		return err
	}
	saved, err := a.db.SavePaymentMethod(ctx, p.UserID, prov.Name(), m)
	if err != nil {
		return err
	}
	saved.Customer = cus
	return c.Status(http.StatusCreated).JSON(methodOut(saved))
}

// RetryConfirmations calls hook, every interval until ctx ends, for the succeeded
// payments whose reservation is still pending: the process stopped between the
// payment and the confirmation, or the confirmation failed. cmd/gatehouse-cloud runs
// it beside the API with Payments.OnSucceeded.
func RetryConfirmations(ctx context.Context, db *postgres.DB, hook func(context.Context, postgres.Payment) error,
	interval time.Duration, log interface{ Warn(msg string, args ...any) }) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ps, err := db.UnconfirmedReservationPayments(ctx)
		if err != nil && ctx.Err() == nil {
			log.Warn("listing unconfirmed reservation payments", "err", err)
		}
		for _, p := range ps {
			if err := hook(ctx, p); err != nil && ctx.Err() == nil {
				log.Warn("reservation not confirmed; retrying", "payment", p.ID, "reservation", p.ReservationID, "err", err, "in", interval)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
