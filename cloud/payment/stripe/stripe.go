// Package stripe is the Stripe payment provider, through stripe-go v82: a
// PaymentIntent confirmed at once per payment, customers with saved PaymentMethods,
// refunds, and webhooks verified by their Stripe-Signature header. The tests run it
// against stripe-mock.
package stripe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/payment"
	stripeapi "github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"
)

// Name is the provider's name.
const Name = "stripe"

// DefaultTolerance is how old a webhook's signature may be: older ones are refused as
// replays. Stripe's own default.
const DefaultTolerance = webhook.DefaultTolerance

// Config is what New builds the provider from.
type Config struct {
	// Key is the secret API key (sk_live_..., sk_test_...). Required.
	Key string
	// WebhookSecret is the signing secret of the webhook endpoint (whsec_...);
	// without it every webhook is refused.
	WebhookSecret string
	// URL is the API's base URL; "" means Stripe's. Tests point it at stripe-mock.
	URL string
	// HTTPClient makes the requests; nil means one with a 30 s timeout.
	HTTPClient *http.Client
	// MaxNetworkRetries is how often stripe-go retries a request that failed on the
	// network (with the same idempotency key); nil means stripe-go's default (2).
	MaxNetworkRetries *int64
	// Tolerance is how old a webhook signature may be; 0 means DefaultTolerance.
	Tolerance time.Duration
	// Logger receives stripe-go's warnings and errors; nil discards.
	Logger *slog.Logger
}

// Provider is the Stripe provider. It is safe for concurrent use.
type Provider struct {
	client    *stripeapi.Client
	secret    string
	tolerance time.Duration
}

var _ payment.Provider = (*Provider)(nil)

// New returns the Stripe provider.
func New(cfg Config) (*Provider, error) {
	if cfg.Key == "" {
		return nil, errors.New("stripe: an API key is required")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bc := &stripeapi.BackendConfig{HTTPClient: hc, LeveledLogger: leveled{log}, MaxNetworkRetries: cfg.MaxNetworkRetries,
		EnableTelemetry: stripeapi.Bool(false)}
	if cfg.URL != "" {
		bc.URL = stripeapi.String(strings.TrimSuffix(cfg.URL, "/"))
	}
	tol := cfg.Tolerance
	if tol <= 0 {
		tol = DefaultTolerance
	}
	return &Provider{client: stripeapi.NewClient(cfg.Key, stripeapi.WithBackends(stripeapi.NewBackendsWithConfig(bc))),
		secret: cfg.WebhookSecret, tolerance: tol}, nil
}

// Name returns "stripe".
func (p *Provider) Name() string { return Name }

// CreateCustomer creates a Stripe customer for the account.
func (p *Provider) CreateCustomer(ctx context.Context, c payment.Customer) (string, error) {
	params := &stripeapi.CustomerCreateParams{}
	if c.Email != "" {
		params.Email = stripeapi.String(c.Email)
	}
	params.AddMetadata("user_id", c.UserID)
	params.SetIdempotencyKey(c.IdempotencyKey)
	cu, err := p.client.V1Customers.Create(ctx, params)
	if err != nil {
		return "", providerError("create customer", err)
	}
	return cu.ID, nil
}

// SavePaymentMethod attaches the PaymentMethod to the customer.
func (p *Provider) SavePaymentMethod(ctx context.Context, customer, token string) (payment.Method, error) {
	pm, err := p.client.V1PaymentMethods.Attach(ctx, token, &stripeapi.PaymentMethodAttachParams{Customer: stripeapi.String(customer)})
	if err != nil {
		return payment.Method{}, providerError("save payment method", err)
	}
	m := payment.Method{Token: pm.ID}
	if pm.Card != nil {
		m.Brand, m.Last4, m.ExpMonth, m.ExpYear = string(pm.Card.Brand), pm.Card.Last4, int(pm.Card.ExpMonth), int(pm.Card.ExpYear)
	}
	return m, nil
}

// CreatePayment creates and confirms a card PaymentIntent. A decline (card_error)
// is a failed Result, not an error.
func (p *Provider) CreatePayment(ctx context.Context, c payment.Charge) (payment.Result, error) {
	if c.IdempotencyKey == "" {
		return payment.Result{}, cloud.Errorf(cloud.EINVALID, "an idempotency key is required")
	}
	params := &stripeapi.PaymentIntentCreateParams{
		Amount:             stripeapi.Int64(c.Amount),
		Currency:           stripeapi.String(strings.ToLower(c.Currency)),
		PaymentMethod:      stripeapi.String(c.Method),
		PaymentMethodTypes: []*string{stripeapi.String("card")},
		Confirm:            stripeapi.Bool(true),
	}
	if c.Customer != "" {
		params.Customer = stripeapi.String(c.Customer)
	}
	if c.Description != "" {
		params.Description = stripeapi.String(c.Description)
	}
	for k, v := range c.Metadata {
		params.AddMetadata(k, v)
	}
	params.SetIdempotencyKey(c.IdempotencyKey)
	pi, err := p.client.V1PaymentIntents.Create(ctx, params)
	var se *stripeapi.Error
	if errors.As(err, &se) && se.Type == stripeapi.ErrorTypeCard {
		r := payment.Result{Status: payment.StatusFailed, Failure: se.Msg}
		if se.PaymentIntent != nil {
			r.Reference = se.PaymentIntent.ID
		}
		if r.Failure == "" {
			r.Failure = "The card was declined."
		}
		return r, nil
	}
	if err != nil {
		return payment.Result{}, providerError("create payment", err)
	}
	r := payment.Result{Reference: pi.ID, Status: intentStatus(pi.Status)}
	return r, nil
}

// intentStatus maps a PaymentIntent's status to a payment's. A confirmation that
// Stripe declines comes back as a card_error, handled by the caller; an intent still
// at requires_payment_method otherwise is left pending, for the webhook
// (payment_intent.payment_failed or .succeeded) to settle: a payment is never called
// failed on a guess.
func intentStatus(s stripeapi.PaymentIntentStatus) payment.Status {
	switch s {
	case stripeapi.PaymentIntentStatusSucceeded:
		return payment.StatusSucceeded
	case stripeapi.PaymentIntentStatusProcessing:
		return payment.StatusProcessing
	case stripeapi.PaymentIntentStatusRequiresAction:
		return payment.StatusRequiresAction
	case stripeapi.PaymentIntentStatusCanceled:
		return payment.StatusCanceled
	}
	return payment.StatusPending
}

// Refund refunds part or all of a PaymentIntent.
func (p *Provider) Refund(ctx context.Context, r payment.RefundRequest) (payment.RefundResult, error) {
	if r.IdempotencyKey == "" {
		return payment.RefundResult{}, cloud.Errorf(cloud.EINVALID, "an idempotency key is required")
	}
	params := &stripeapi.RefundCreateParams{PaymentIntent: stripeapi.String(r.Reference), Amount: stripeapi.Int64(r.Amount)}
	params.SetIdempotencyKey(r.IdempotencyKey)
	re, err := p.client.V1Refunds.Create(ctx, params)
	if err != nil {
		return payment.RefundResult{}, providerError("refund", err)
	}
	res := payment.RefundResult{Reference: re.ID, Succeeded: re.Status != stripeapi.RefundStatusFailed && re.Status != stripeapi.RefundStatusCanceled}
	if !res.Succeeded {
		res.Failure = "the refund was " + string(re.Status)
	}
	return res, nil
}

// VerifyWebhook checks the Stripe-Signature header (HMAC-SHA256 with the endpoint's
// secret) and the signature's age, and reads the event. Events of PaymentIntents
// carry the intent's id and status; other events carry only their id and type.
func (p *Provider) VerifyWebhook(payload []byte, signature string) (payment.Event, error) {
	if p.secret == "" {
		return payment.Event{}, cloud.Errorf(cloud.EINVALID, "no webhook secret is configured")
	}
	// The API version is not checked: only an event's id, type and the intent's id,
	// status and amount are read, which every version carries alike.
	ev, err := webhook.ConstructEventWithOptions(payload, signature, p.secret,
		webhook.ConstructEventOptions{Tolerance: p.tolerance, IgnoreAPIVersionMismatch: true})
	if err != nil {
		return payment.Event{}, &cloud.Error{Code: cloud.EINVALID, Message: "webhook signature not valid", Err: err}
	}
	if ev.ID == "" || ev.Type == "" {
		return payment.Event{}, cloud.Errorf(cloud.EINVALID, "webhook event without id or type")
	}
	out := payment.Event{ID: ev.ID, Type: string(ev.Type), Created: time.Unix(ev.Created, 0).UTC()}
	if !strings.HasPrefix(out.Type, "payment_intent.") || ev.Data == nil {
		return out, nil
	}
	var pi stripeapi.PaymentIntent
	if err := json.Unmarshal(ev.Data.Raw, &pi); err != nil || pi.ID == "" {
		return payment.Event{}, &cloud.Error{Code: cloud.EINVALID, Message: "webhook event without a PaymentIntent", Err: err}
	}
	out.Reference, out.Amount, out.PaymentID = pi.ID, pi.Amount, pi.Metadata["payment_id"]
	switch out.Type {
	case "payment_intent.succeeded":
		out.Status = payment.StatusSucceeded
	case "payment_intent.processing":
		out.Status = payment.StatusProcessing
	case "payment_intent.requires_action":
		out.Status = payment.StatusRequiresAction
	case "payment_intent.canceled":
		out.Status = payment.StatusCanceled
	case "payment_intent.payment_failed":
		out.Status = payment.StatusFailed
		if pi.LastPaymentError != nil {
			out.Failure = pi.LastPaymentError.Msg
		}
	}
	return out, nil
}

// providerError turns a stripe-go error into a cloud error: the request refused as
// such is EINVALID; anything else (network, Stripe's own errors, rate limits) is
// EUNAVAILABLE, since the outcome is unknown and a retry with the same idempotency
// key finds it out.
func providerError(what string, err error) error {
	var se *stripeapi.Error
	if errors.As(err, &se) && se.HTTPStatusCode >= 400 && se.HTTPStatusCode < 500 &&
		se.HTTPStatusCode != http.StatusTooManyRequests && se.Type != stripeapi.ErrorTypeIdempotency {
		msg := se.Msg
		if msg == "" {
			msg = "the payment provider refused the request"
		}
		return &cloud.Error{Code: cloud.EINVALID, Message: msg, Err: fmt.Errorf("stripe: %s: %w", what, err)}
	}
	return &cloud.Error{Code: cloud.EUNAVAILABLE, Message: "the payment provider is not reachable; retry with the same Idempotency-Key",
		Err: fmt.Errorf("stripe: %s: %w", what, err)}
}

// leveled adapts slog to stripe-go's logger.
type leveled struct{ log *slog.Logger }

func (l leveled) Debugf(format string, v ...any) {}
func (l leveled) Infof(format string, v ...any)  {}
func (l leveled) Warnf(format string, v ...any)  { l.log.Warn("stripe: " + fmt.Sprintf(format, v...)) }
func (l leveled) Errorf(format string, v ...any) { l.log.Error("stripe: " + fmt.Sprintf(format, v...)) }
