package payment

import (
	"context"
	"strings"
	"time"
)

// Provider takes payments and gives refunds. Every call that moves money carries an
// idempotency key: the provider must treat a repeated key as the same request, so a
// retry after a timeout never charges twice.
type Provider interface {
	// Name is the provider's name as stored with each payment ("stripe", "test").
	Name() string
	// CreateCustomer creates the provider's customer for an account, to save means of
	// payment on; it returns the customer's id.
	CreateCustomer(ctx context.Context, c Customer) (string, error)
	// SavePaymentMethod attaches the token to the customer and describes it.
	SavePaymentMethod(ctx context.Context, customer, token string) (Method, error)
	// CreatePayment charges the amount. A decline is not an error: it returns a
	// Result with StatusFailed. Errors have cloud codes: EINVALID when the provider
	// refused the request as such, EUNAVAILABLE when the outcome is unknown (the same
	// idempotency key then finds it out).
	CreatePayment(ctx context.Context, c Charge) (Result, error)
	// Refund gives back amount of a payment, by its provider reference.
	Refund(ctx context.Context, r RefundRequest) (RefundResult, error)
	// VerifyWebhook checks a webhook's signature header against its payload, and
	// its age, and returns its event. Errors have code EINVALID.
	VerifyWebhook(payload []byte, signature string) (Event, error)
}

// Customer is the account a provider's customer is made for.
type Customer struct {
	UserID         string
	Email          string
	IdempotencyKey string
}

// Method is a saved means of payment as it may be shown: the token and what the
// provider says of it. Never a card number.
type Method struct {
	Token    string
	Brand    string
	Last4    string
	ExpMonth int
	ExpYear  int
}

// Charge is a request to take money.
type Charge struct {
	// Amount in minor units, > 0.
	Amount int64
	// Currency is ISO 4217, upper case.
	Currency string
	// Customer is the provider's customer; "" for a one-off token.
	Customer string
	// Method is the provider's token of the means of payment.
	Method         string
	IdempotencyKey string
	Description    string
	// Metadata travels with the payment to the provider: the payment's id, its
	// facility and session or reservation. Never personal data.
	Metadata map[string]string
}

// Result is what the provider said of a charge.
type Result struct {
	// Reference is the provider's id of the payment ("pi_..."); may be "" for a
	// request refused before the provider made one.
	Reference string
	Status    Status
	// Failure says why a failed payment failed, for the driver.
	Failure string
}

// RefundRequest is a request to give money back.
type RefundRequest struct {
	// Reference is the payment's provider reference.
	Reference      string
	Amount         int64
	IdempotencyKey string
}

// RefundResult is what the provider said of a refund.
type RefundResult struct {
	Reference string
	// Succeeded is false for a refund the provider declined (Failure says why).
	Succeeded bool
	Failure   string
}

// Event is a provider's webhook event, verified.
type Event struct {
	// ID is the provider's event id, unique per provider: a replay has the same one.
	ID   string
	Type string
	// Created is when the provider created the event.
	Created time.Time
	// Reference is the provider reference of the payment the event is about; "" for
	// an event about something else.
	Reference string
	// PaymentID is our payment's id as the charge's metadata carries it
	// (metadata.payment_id); "" when the event has none. It finds the payment when
	// the provider's answer to CreatePayment was lost, so its Reference is unknown.
	PaymentID string
	// Status is the payment's status the event reports; "" when it reports none.
	Status  Status
	Amount  int64
	Failure string
}

// Status is where a payment is in its life.
type Status string

// The statuses of a payment.
const (
	StatusPending        Status = "pending"
	StatusRequiresAction Status = "requires_action"
	StatusProcessing     Status = "processing"
	StatusFailed         Status = "failed"
	StatusCanceled       Status = "canceled"
	StatusSucceeded      Status = "succeeded"
	// StatusPartiallyRefunded and StatusRefunded follow StatusSucceeded when refunds
	// are made.
	StatusPartiallyRefunded Status = "partially_refunded"
	StatusRefunded          Status = "refunded"
)

// rank orders the statuses: a payment only moves to a status of a higher rank, so an
// event that arrives late (processing after succeeded) changes nothing. A failed
// payment may still succeed (Stripe retries a declined PaymentIntent with another
// attempt); a succeeded one is never failed or canceled by a late event.
var rank = map[Status]int{
	StatusPending:           0,
	StatusRequiresAction:    1,
	StatusProcessing:        2,
	StatusFailed:            3,
	StatusCanceled:          4,
	StatusSucceeded:         4,
	StatusPartiallyRefunded: 5,
	StatusRefunded:          6,
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool { _, ok := rank[s]; return ok }

// Advances reports whether a payment in status from may move to status to: only
// forward in the order pending < requires_action < processing < failed <
// canceled|succeeded < partially_refunded < refunded.
func Advances(from, to Status) bool {
	f, ok1 := rank[from]
	t, ok2 := rank[to]
	return ok1 && ok2 && t > f
}

// Final reports whether s ends the charge: the money was taken (and maybe given
// back) or will not be.
func (s Status) Final() bool {
	switch s {
	case StatusFailed, StatusCanceled, StatusSucceeded, StatusPartiallyRefunded, StatusRefunded:
		return true
	}
	return false
}

// Paid reports whether the money of a payment in status s was taken.
func (s Status) Paid() bool {
	return s == StatusSucceeded || s == StatusPartiallyRefunded || s == StatusRefunded
}

// MaxTokenLen bounds a provider token.
const MaxTokenLen = 255

// TokenProblem says what is wrong with a means-of-payment token, "" when nothing:
// tokens are a provider's ids (letters, digits, underscores), and anything that looks
// like a card number is refused so that one is never sent on or stored.
func TokenProblem(tok string) string {
	switch {
	case tok == "":
		return "is required: a payment method token from the provider, such as pm_card_visa"
	case LooksLikeCardNumber(tok):
		return "looks like a card number: send the provider's token, never a card number"
	case len(tok) > MaxTokenLen:
		return "is too long for a token"
	}
	for i := 0; i < len(tok); i++ {
		ch := tok[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_') {
			return "may hold only letters, digits and underscores"
		}
	}
	return ""
}

// LooksLikeCardNumber reports whether s holds a run of 12 or more digits, spaces
// and dashes with at least 12 digits: a primary account number as people type it.
func LooksLikeCardNumber(s string) bool {
	digits := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
			if digits >= 12 {
				return true
			}
		case r == ' ' || r == '-':
		default:
			digits = 0
		}
	}
	return false
}

// CurrencyProblem says what is wrong with an ISO 4217 code, "" when nothing.
func CurrencyProblem(c string) string {
	if len(c) != 3 || strings.ToUpper(c) != c || strings.IndexFunc(c, func(r rune) bool { return r < 'A' || r > 'Z' }) >= 0 {
		return "must be an ISO 4217 code in upper case, e.g. EUR"
	}
	return ""
}
