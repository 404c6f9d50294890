package stripe_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/payment"
	"github.com/gatehouse-parking/gatehouse/cloud/payment/stripe"
	"github.com/gatehouse-parking/gatehouse/cloud/payment/stripemock"
	stripeapi "github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"
)

// counter is an http.RoundTripper that counts requests by "METHOD /path", to show
// what reached stripe-mock (which remembers nothing itself).
type counter struct {
	mu    sync.Mutex
	calls map[string]int
	keys  map[string][]string // Idempotency-Key headers by request
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	k := r.Method + " " + r.URL.Path
	c.calls[k]++
	c.keys[k] = append(c.keys[k], r.Header.Get("Idempotency-Key"))
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *counter) n(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[k]
}

const secret = "whsec_test_secret"

func newProvider(t *testing.T) (*stripe.Provider, *counter) {
	t.Helper()
	url := stripemock.Start(t)
	cnt := &counter{calls: map[string]int{}, keys: map[string][]string{}}
	p, err := stripe.New(stripe.Config{Key: "sk_test_123", WebhookSecret: secret, URL: url,
		HTTPClient: &http.Client{Transport: cnt, Timeout: 10 * time.Second}, MaxNetworkRetries: stripeapi.Int64(0)})
	if err != nil {
		t.Fatal(err)
	}
	return p, cnt
}

func TestStripeAgainstMock(t *testing.T) {
	p, cnt := newProvider(t)
	ctx := context.Background()

	cus, err := p.CreateCustomer(ctx, payment.Customer{UserID: "u1", Email: "d@example.com", IdempotencyKey: "cus-u1"})
	if err != nil || !strings.HasPrefix(cus, "cus_") {
		t.Fatalf("CreateCustomer = %q, %v; want cus_...", cus, err)
	}
	m, err := p.SavePaymentMethod(ctx, cus, "pm_card_visa")
	if err != nil || m.Token == "" {
		t.Fatalf("SavePaymentMethod = %+v, %v", m, err)
	}
	res, err := p.CreatePayment(ctx, payment.Charge{Amount: 450, Currency: "EUR", Method: "pm_card_visa",
		IdempotencyKey: "gatehouse-payment-1", Metadata: map[string]string{"payment_id": "1"}})
	if err != nil {
		t.Fatalf("CreatePayment: %v", err)
	}
	if !strings.HasPrefix(res.Reference, "pi_") || !res.Status.Valid() {
		t.Fatalf("CreatePayment = %+v; want a pi_ reference and a known status", res)
	}
	if got := cnt.n("POST /v1/payment_intents"); got != 1 {
		t.Errorf("payment_intents requests = %d; want 1", got)
	}
	if k := cnt.keys["POST /v1/payment_intents"]; len(k) != 1 || k[0] != "gatehouse-payment-1" {
		t.Errorf("Idempotency-Key sent = %q; want gatehouse-payment-1", k)
	}
	rr, err := p.Refund(ctx, payment.RefundRequest{Reference: res.Reference, Amount: 100, IdempotencyKey: "gatehouse-refund-1"})
	if err != nil || !strings.HasPrefix(rr.Reference, "re_") {
		t.Fatalf("Refund = %+v, %v", rr, err)
	}
	if k := cnt.keys["POST /v1/refunds"]; len(k) != 1 || k[0] != "gatehouse-refund-1" {
		t.Errorf("refund Idempotency-Key sent = %q", k)
	}
}

func TestStripeRequiresIdempotencyKey(t *testing.T) {
	p, cnt := newProvider(t)
	_, err := p.CreatePayment(context.Background(), payment.Charge{Amount: 100, Currency: "EUR", Method: "pm_card_visa"})
	if cloud.ErrorCode(err) != cloud.EINVALID {
		t.Errorf("CreatePayment without key: %v; want EINVALID", err)
	}
	if n := cnt.n("POST /v1/payment_intents"); n != 0 {
		t.Errorf("%d requests sent; want none", n)
	}
}

func TestStripeInvalidRequestIsInvalid(t *testing.T) {
	p, _ := newProvider(t)
	// stripe-mock validates parameters against Stripe's specification.
	_, err := p.CreatePayment(context.Background(), payment.Charge{Amount: 100, Currency: "EURO_NOT", Method: "pm_card_visa", IdempotencyKey: "k"})
	if err == nil {
		return // stripe-mock accepts any string currency; nothing to check
	}
	if code := cloud.ErrorCode(err); code != cloud.EINVALID {
		t.Errorf("CreatePayment with a bad request: %v (code %s); want EINVALID", err, code)
	}
}

func TestStripeUnreachableIsUnavailable(t *testing.T) {
	p, err := stripe.New(stripe.Config{Key: "sk_test_123", URL: "http://127.0.0.1:1", MaxNetworkRetries: stripeapi.Int64(0)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.CreatePayment(context.Background(), payment.Charge{Amount: 100, Currency: "EUR", Method: "pm_card_visa", IdempotencyKey: "k"})
	if cloud.ErrorCode(err) != cloud.EUNAVAILABLE {
		t.Errorf("CreatePayment to nowhere: %v; want EUNAVAILABLE", err)
	}
}

// event returns a webhook payload of a PaymentIntent event.
func event(id, typ, intent, status string, created time.Time) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": id, "object": "event", "type": typ, "created": created.Unix(), "api_version": stripeapi.APIVersion,
		"data": map[string]any{"object": map[string]any{"id": intent, "object": "payment_intent", "status": status, "amount": 450}},
	})
	return b
}

func sign(payload []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: at}).Header
}

func TestVerifyWebhook(t *testing.T) {
	p, err := stripe.New(stripe.Config{Key: "sk_test_123", WebhookSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	good := event("evt_1", "payment_intent.succeeded", "pi_1", "succeeded", now)
	ev, err := p.VerifyWebhook(good, sign(good, secret, now))
	if err != nil {
		t.Fatalf("VerifyWebhook(signed) = %v", err)
	}
	want := payment.Event{ID: "evt_1", Type: "payment_intent.succeeded", Created: time.Unix(now.Unix(), 0).UTC(),
		Reference: "pi_1", Status: payment.StatusSucceeded, Amount: 450}
	if ev != want {
		t.Errorf("VerifyWebhook = %+v; want %+v", ev, want)
	}
	failed := event("evt_2", "payment_intent.payment_failed", "pi_1", "requires_payment_method", now)
	if ev, err := p.VerifyWebhook(failed, sign(failed, secret, now)); err != nil || ev.Status != payment.StatusFailed {
		t.Errorf("VerifyWebhook(payment_failed) = %+v, %v; want status failed", ev, err)
	}
	other := []byte(`{"id":"evt_3","object":"event","type":"customer.created","created":1,"data":{"object":{"id":"cus_1","object":"customer"}}}`)
	if ev, err := p.VerifyWebhook(other, sign(other, secret, now)); err != nil || ev.Reference != "" || ev.Type != "customer.created" {
		t.Errorf("VerifyWebhook(customer.created) = %+v, %v; want no reference", ev, err)
	}

	tampered := []byte(strings.Replace(string(good), "pi_1", "pi_2", 1))
	for name, tc := range map[string]struct {
		payload []byte
		header  string
	}{
		"no header":       {good, ""},
		"garbage header":  {good, "nonsense"},
		"wrong secret":    {good, sign(good, "whsec_other", now)},
		"tampered body":   {tampered, sign(good, secret, now)},
		"replayed old":    {good, sign(good, secret, now.Add(-stripe.DefaultTolerance-time.Minute))},
		"not JSON signed": {[]byte("{"), sign([]byte("{"), secret, now)},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := p.VerifyWebhook(tc.payload, tc.header); cloud.ErrorCode(err) != cloud.EINVALID {
				t.Errorf("VerifyWebhook = %v; want EINVALID", err)
			}
		})
	}
	nosecret, _ := stripe.New(stripe.Config{Key: "sk_test_123"})
	if _, err := nosecret.VerifyWebhook(good, sign(good, "", now)); cloud.ErrorCode(err) != cloud.EINVALID {
		t.Errorf("VerifyWebhook without a secret configured = %v; want EINVALID", err)
	}
}
