// Package inproc is the built-in test payment provider ("test"): deterministic and
// in-process, for the demo and for tests that need no network. It answers like
// Stripe's test mode does for its test tokens: "pm_card_visa" and the other
// pm_card_* tokens succeed, "pm_card_chargeDeclined" (and the other decline tokens)
// decline. It sends no webhooks: every payment is final when CreatePayment returns.
package inproc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/payment"
)

// Name is the provider's name.
const Name = "test"

// Tokens that decline, with the message the driver sees.
var declines = map[string]string{
	"pm_card_chargeDeclined":                  "Your card was declined.",
	"pm_card_chargeDeclinedInsufficientFunds": "Your card has insufficient funds.",
	"pm_card_chargeDeclinedExpiredCard":       "Your card has expired.",
	"pm_card_chargeDeclinedProcessingError":   "An error occurred while processing your card.",
}

// brands are what the known tokens describe.
var brands = map[string]payment.Method{
	"pm_card_visa":       {Brand: "visa", Last4: "4242", ExpMonth: 12, ExpYear: 2034},
	"pm_card_mastercard": {Brand: "mastercard", Last4: "4444", ExpMonth: 12, ExpYear: 2034},
	"pm_card_amex":       {Brand: "amex", Last4: "8431", ExpMonth: 12, ExpYear: 2034},
}

// Provider is the test provider. It remembers every request by idempotency key, as
// a real provider does, so a repeated key returns the first answer and charges once.
// The zero value is not usable: call New.
type Provider struct {
	mu       sync.Mutex
	charges  map[string]payment.Result // by idempotency key
	amounts  map[string]int64          // charged, by reference
	refunded map[string]int64          // by reference
	refunds  map[string]payment.RefundResult
	// Calls counts the requests that moved money or made objects, repeats included.
	calls int
}

var _ payment.Provider = (*Provider)(nil)

// New returns a test provider with no history.
func New() *Provider {
	return &Provider{charges: map[string]payment.Result{}, amounts: map[string]int64{},
		refunded: map[string]int64{}, refunds: map[string]payment.RefundResult{}}
}

// Name returns "test".
func (p *Provider) Name() string { return Name }

// Calls returns how many requests the provider has answered.
func (p *Provider) Calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// ref derives a deterministic reference from an idempotency key.
func ref(prefix, key string) string {
	h := sha256.Sum256([]byte(key))
	return prefix + hex.EncodeToString(h[:12])
}

// CreateCustomer returns a customer id derived from the idempotency key (or the
// account).
func (p *Provider) CreateCustomer(ctx context.Context, c payment.Customer) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	return ref("cus_test_", c.UserID+"|"+c.IdempotencyKey), nil
}

// SavePaymentMethod describes the test token; an unknown token is refused.
func (p *Provider) SavePaymentMethod(ctx context.Context, customer, token string) (payment.Method, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	m, ok := brands[token]
	if !ok {
		if _, declined := declines[token]; !declined && !strings.HasPrefix(token, "pm_card_") {
			return payment.Method{}, cloud.Errorf(cloud.EINVALID, "the test provider does not know payment method %q", token)
		}
		m = payment.Method{Brand: "visa", Last4: "0002", ExpMonth: 12, ExpYear: 2034}
	}
	m.Token = token
	return m, nil
}

// CreatePayment charges a test token: pm_card_* tokens succeed except the decline
// tokens; anything else is refused as an unknown payment method.
func (p *Provider) CreatePayment(ctx context.Context, c payment.Charge) (payment.Result, error) {
	if c.IdempotencyKey == "" {
		return payment.Result{}, cloud.Errorf(cloud.EINVALID, "an idempotency key is required")
	}
	if c.Amount <= 0 {
		return payment.Result{}, cloud.Errorf(cloud.EINVALID, "amount must be positive")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if r, ok := p.charges[c.IdempotencyKey]; ok {
		return r, nil
	}
	r := payment.Result{Reference: ref("pi_test_", c.IdempotencyKey)}
	switch msg, declined := declines[c.Method]; {
	case declined:
		r.Status, r.Failure = payment.StatusFailed, msg
	case strings.HasPrefix(c.Method, "pm_card_"):
		r.Status = payment.StatusSucceeded
		p.amounts[r.Reference] = c.Amount
	default:
		return payment.Result{}, cloud.Errorf(cloud.EINVALID, "the test provider does not know payment method %q", c.Method)
	}
	p.charges[c.IdempotencyKey] = r
	return r, nil
}

// Refund gives back part of a test payment, never more than was charged.
func (p *Provider) Refund(ctx context.Context, r payment.RefundRequest) (payment.RefundResult, error) {
	if r.IdempotencyKey == "" {
		return payment.RefundResult{}, cloud.Errorf(cloud.EINVALID, "an idempotency key is required")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if res, ok := p.refunds[r.IdempotencyKey]; ok {
		return res, nil
	}
	charged, ok := p.amounts[r.Reference]
	if !ok {
		return payment.RefundResult{}, cloud.Errorf(cloud.EINVALID, "no payment %q to refund", r.Reference)
	}
	if r.Amount <= 0 || p.refunded[r.Reference]+r.Amount > charged {
		return payment.RefundResult{}, cloud.Errorf(cloud.EINVALID, "refund of %d exceeds what remains of payment %s", r.Amount, r.Reference)
	}
	p.refunded[r.Reference] += r.Amount
	res := payment.RefundResult{Reference: ref("re_test_", r.IdempotencyKey), Succeeded: true}
	p.refunds[r.IdempotencyKey] = res
	return res, nil
}

// VerifyWebhook refuses every webhook: the test provider sends none.
func (p *Provider) VerifyWebhook(payload []byte, signature string) (payment.Event, error) {
	return payment.Event{}, cloud.Errorf(cloud.EINVALID, "the test provider sends no webhooks")
}
