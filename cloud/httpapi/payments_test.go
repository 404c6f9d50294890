package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/httpapi"
	"github.com/gatehouse-parking/gatehouse/cloud/payment"
	"github.com/gatehouse-parking/gatehouse/cloud/payment/inproc"
	"github.com/gatehouse-parking/gatehouse/cloud/payment/stripe"
	"github.com/gatehouse-parking/gatehouse/cloud/payment/stripemock"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	stripeapi "github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"
)

const whsec = "whsec_gatehouse_test"

// stripeCounter counts the requests that reach stripe-mock, which remembers nothing
// itself, by "METHOD /path".
type stripeCounter struct {
	mu    sync.Mutex
	calls map[string]int
}

func (c *stripeCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.calls[r.Method+" "+r.URL.Path]++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *stripeCounter) n(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[k]
}

// stripeProvider returns the Stripe provider against a fresh stripe-mock, with a
// counter of the requests it sends.
func stripeProvider(t *testing.T) (*stripe.Provider, *stripeCounter) {
	t.Helper()
	url := stripemock.Start(t)
	cnt := &stripeCounter{calls: map[string]int{}}
	p, err := stripe.New(stripe.Config{Key: "sk_test_gatehouse", WebhookSecret: whsec, URL: url,
		HTTPClient: &http.Client{Transport: cnt, Timeout: 10 * time.Second}, MaxNetworkRetries: stripeapi.Int64(0)})
	if err != nil {
		t.Fatal(err)
	}
	return p, cnt
}

// payEnv is an API with the provider, a facility "fac1" (EUR, Europe/Berlin) and
// open stays s1..s5 in it.
func payEnv(t *testing.T, prov payment.Provider, hub httpapi.Hub) *authEnv {
	t.Helper()
	e := newAuthEnv(t, httpapi.Config{Payments: httpapi.Payments{Provider: prov}, Hub: hub})
	ctx := context.Background()
	for _, f := range []string{"fac1", "fac2"} {
		if _, err := e.db.CreateFacility(ctx, cloud.Facility{ID: f, Name: "Central " + f, Address: "Hauptstr. 1", City: "Köln",
			Country: "DE", Timezone: "Europe/Berlin", Currency: "EUR"}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 5; i++ {
		e.openSession("fac1", fmt.Sprintf("s%d", i), fmt.Sprintf("K%dAB123", i), 0)
	}
	return e
}

func (e *authEnv) openSession(facility, id, plate string, paid int64) {
	e.t.Helper()
	if _, err := e.db.Pool().Exec(context.Background(), `INSERT INTO open_sessions (facility_id, session_id, zone_id, plate, parking_right, entered_at, paid)
		VALUES ($1, $2, 'z1', $3, 'transient', now() - interval '2 hours', $4)`, facility, id, plate, paid); err != nil {
		e.t.Fatal(err)
	}
}

// pay posts a payment for a stay of fac1.
func (e *authEnv) pay(tok, key, session string, amount int64, method string) *response {
	e.t.Helper()
	h := bearer(tok)
	if key != "" {
		h = append(h, httpapi.HeaderIdempotencyKey, key)
	}
	return e.do(http.MethodPost, "/v1/payments", map[string]any{"facility": "fac1", "session_id": session, "amount": amount, "payment_method": method}, h...)
}

func (e *authEnv) mustPay(tok, key, session string, amount int64, method string) httpapi.Payment {
	e.t.Helper()
	res := e.pay(tok, key, session, amount, method)
	if res.Status != http.StatusCreated {
		e.t.Fatalf("POST /v1/payments: status %d, body %s; want 201", res.Status, res.Body)
	}
	var p httpapi.Payment
	res.JSON(e.t, &p)
	return p
}

func (e *authEnv) getPayment(tok, id string) (int, httpapi.Payment) {
	e.t.Helper()
	res := e.do(http.MethodGet, "/v1/payments/"+id, nil, bearer(tok)...)
	var p httpapi.Payment
	if res.Status == http.StatusOK {
		res.JSON(e.t, &p)
	}
	return res.Status, p
}

// webhook posts a Stripe event about a PaymentIntent, signed at the time.
func (e *authEnv) webhook(id, typ, intent string, signedAt time.Time, secret string) *response {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"id": id, "object": "event", "type": typ, "created": signedAt.Unix(),
		"api_version": stripeapi.APIVersion,
		"data":        map[string]any{"object": map[string]any{"id": intent, "object": "payment_intent", "amount": 450}}})
	sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: signedAt}).Header
	return e.do(http.MethodPost, "/v1/webhooks/stripe", body, "Stripe-Signature", sig)
}

func (e *authEnv) paymentEvents(paymentID, typ string) int {
	e.t.Helper()
	var n int
	if err := e.db.Pool().QueryRow(context.Background(), `SELECT count(*) FROM payment_events WHERE payment_id::text = $1 AND type = $2`,
		paymentID, typ).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// TestPaymentIdempotencyAgainstStripeMock: a retried request with the same
// Idempotency-Key returns the same payment and reaches Stripe once; the same key
// with another body is refused and reaches Stripe not at all.
func TestPaymentIdempotencyAgainstStripeMock(t *testing.T) {
	prov, cnt := stripeProvider(t)
	e := payEnv(t, prov, nil)
	tok := loginAs(t, e, cloud.RoleDriver)

	first := e.mustPay(tok, "key-1", "s1", 450, "pm_card_visa")
	if !strings.HasPrefix(first.ProviderReference, "pi_") || first.Amount != 450 || first.Currency != "EUR" || first.Provider != "stripe" {
		t.Fatalf("payment = %+v; want a stripe pi_ reference, 450 EUR", first)
	}
	for i := range 3 {
		res := e.pay(tok, "key-1", "s1", 450, "pm_card_visa")
		var again httpapi.Payment
		res.JSON(t, &again)
		if res.Status != http.StatusOK || again.ID != first.ID || again.ProviderReference != first.ProviderReference ||
			res.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("retry %d: status %d, %+v; want 200 replay of %s", i, res.Status, again, first.ID)
		}
	}
	if n := e.count("payments"); n != 1 {
		t.Errorf("payments rows = %d; want 1", n)
	}
	if n := cnt.n("POST /v1/payment_intents"); n != 1 {
		t.Errorf("PaymentIntents created at Stripe = %d; want 1", n)
	}

	// The same key with another request.
	res := e.pay(tok, "key-1", "s1", 999, "pm_card_visa")
	if res.Status != http.StatusUnprocessableEntity {
		t.Errorf("same key, other amount: status %d, body %s; want 422", res.Status, res.Body)
	}
	if n := cnt.n("POST /v1/payment_intents"); n != 1 {
		t.Errorf("PaymentIntents after a mismatched key = %d; want 1", n)
	}
	// No key at all.
	if res := e.pay(tok, "", "s2", 450, "pm_card_visa"); res.Status != http.StatusBadRequest {
		t.Errorf("no Idempotency-Key: status %d; want 400", res.Status)
	}
	// Keys are per account: another driver's same key is another payment.
	other := loginAs(t, e, cloud.RoleDriver)
	if p := e.mustPay(other, "key-1", "s2", 300, "pm_card_visa"); p.ID == first.ID {
		t.Error("another driver's key-1 returned the first driver's payment")
	}
	if n := cnt.n("POST /v1/payment_intents"); n != 2 {
		t.Errorf("PaymentIntents = %d; want 2", n)
	}
}

// TestPaymentConcurrentRetries: a burst of the same request with the same key makes
// one payment and one provider call; the others are answered with it or told to
// retry (409), never charged again.
func TestPaymentConcurrentRetries(t *testing.T) {
	prov, cnt := stripeProvider(t)
	e := payEnv(t, prov, nil)
	tok := loginAs(t, e, cloud.RoleDriver)
	var wg sync.WaitGroup
	statuses := make([]int, 12)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = e.pay(tok, "burst", "s1", 450, "pm_card_visa").Status
		}()
	}
	wg.Wait()
	created := 0
	for _, s := range statuses {
		switch s {
		case http.StatusCreated:
			created++
		case http.StatusOK, http.StatusConflict:
		default:
			t.Errorf("status %d; want 201, 200 or 409", s)
		}
	}
	if created != 1 {
		t.Errorf("%d requests created the payment; want 1 (statuses %v)", created, statuses)
	}
	if n := e.count("payments"); n != 1 {
		t.Errorf("payments rows = %d; want 1", n)
	}
	if n := cnt.n("POST /v1/payment_intents"); n != 1 {
		t.Errorf("PaymentIntents created = %d; want 1", n)
	}
}

// TestStripeWebhooks: a signed event moves the payment on; the same event again, a
// replay signed long ago, a forged one and an older status arriving late change
// nothing.
func TestStripeWebhooks(t *testing.T) {
	prov, _ := stripeProvider(t)
	e := payEnv(t, prov, nil)
	tok := loginAs(t, e, cloud.RoleDriver)
	p := e.mustPay(tok, "k", "s1", 450, "pm_card_visa")
	// stripe-mock answers a confirmation with requires_payment_method: the payment
	// waits for the webhook.
	if p.Status != "pending" {
		t.Fatalf("status after create = %q; want pending until the webhook", p.Status)
	}
	now := time.Now()
	outcome := func(res *response) string {
		t.Helper()
		var w httpapi.WebhookResult
		if res.Status != http.StatusOK {
			t.Fatalf("webhook: status %d, body %s; want 200", res.Status, res.Body)
		}
		res.JSON(t, &w)
		return w.Outcome
	}
	if o := outcome(e.webhook("evt_1", "payment_intent.succeeded", p.ProviderReference, now, whsec)); o != "applied" {
		t.Fatalf("succeeded: outcome %q; want applied", o)
	}
	_, got := e.getPayment(tok, p.ID)
	if got.Status != "succeeded" || got.ReceiptNumber == "" || got.SucceededAt.IsZero() {
		t.Fatalf("after succeeded webhook: %+v; want succeeded with a receipt number", got)
	}
	if n := e.paymentEvents(p.ID, "payment.processed"); n != 1 {
		t.Errorf("payment.processed events = %d; want 1", n)
	}
	before := got

	for name, tc := range map[string]struct {
		res     func() *response
		status  int
		outcome string
	}{
		"duplicate": {func() *response {
			return e.webhook("evt_1", "payment_intent.succeeded", p.ProviderReference, now, whsec)
		}, 200, "duplicate"},
		"late processing": {func() *response {
			return e.webhook("evt_0", "payment_intent.processing", p.ProviderReference, now, whsec)
		}, 200, "stale"},
		"late failure": {func() *response {
			return e.webhook("evt_f", "payment_intent.payment_failed", p.ProviderReference, now, whsec)
		}, 200, "stale"},
		"unknown intent":   {func() *response { return e.webhook("evt_u", "payment_intent.succeeded", "pi_nobody", now, whsec) }, 200, "unknown"},
		"other event type": {func() *response { return e.webhook("evt_c", "charge.updated", p.ProviderReference, now, whsec) }, 200, "ignored"},
		"replay too old": {func() *response {
			return e.webhook("evt_old", "payment_intent.canceled", p.ProviderReference, now.Add(-stripe.DefaultTolerance-time.Minute), whsec)
		}, 400, ""},
		"forged": {func() *response {
			return e.webhook("evt_x", "payment_intent.canceled", p.ProviderReference, now, "whsec_forger")
		}, 400, ""},
		"unsigned": {func() *response {
			return e.do(http.MethodPost, "/v1/webhooks/stripe", `{"id":"evt_y","type":"payment_intent.canceled"}`)
		}, 400, ""},
	} {
		t.Run(name, func(t *testing.T) {
			res := tc.res()
			if res.Status != tc.status {
				t.Fatalf("status %d, body %s; want %d", res.Status, res.Body, tc.status)
			}
			if tc.outcome != "" && outcome(res) != tc.outcome {
				t.Errorf("outcome %s; want %s", res.Body, tc.outcome)
			}
			_, now := e.getPayment(tok, p.ID)
			if now.Status != before.Status || now.ReceiptNumber != before.ReceiptNumber || !now.UpdatedAt.Equal(before.UpdatedAt) {
				t.Errorf("payment changed: %+v; was %+v", now, before)
			}
		})
	}
	if n := e.paymentEvents(p.ID, "payment.processed"); n != 1 {
		t.Errorf("payment.processed events = %d; want 1", n)
	}
	if n := e.count("webhook_events"); n != 5 {
		t.Errorf("webhook_events = %d; want 5 (the verified ones, once each)", n)
	}
	metrics := string(e.do(http.MethodGet, "/metrics", nil).Body)
	if !strings.Contains(metrics, `gatehouse_cloud_payment_webhooks_total{outcome="bad_signature"} 3`) {
		t.Errorf("metrics lack 3 bad_signature webhooks")
	}
}

// TestWebhookOutOfOrder: events of one payment arriving in any order leave the
// status of the furthest one.
func TestWebhookOutOfOrder(t *testing.T) {
	prov, _ := stripeProvider(t)
	e := payEnv(t, prov, nil)
	tok := loginAs(t, e, cloud.RoleDriver)
	now := time.Now()
	for i, order := range [][]string{
		{"payment_intent.succeeded", "payment_intent.processing", "payment_intent.requires_action"},
		{"payment_intent.processing", "payment_intent.payment_failed", "payment_intent.succeeded"},
		{"payment_intent.payment_failed", "payment_intent.succeeded", "payment_intent.canceled", "payment_intent.processing"},
	} {
		p := e.mustPay(tok, fmt.Sprintf("ooo-%d", i), fmt.Sprintf("s%d", i+1), 450, "pm_card_visa")
		for j, typ := range order {
			e.webhook(fmt.Sprintf("evt_%d_%d", i, j), typ, p.ProviderReference, now, whsec)
		}
		if _, got := e.getPayment(tok, p.ID); got.Status != "succeeded" {
			t.Errorf("order %v: status %q; want succeeded", order, got.Status)
		}
	}
}

// succeededPayment makes a stay's payment that succeeded through the provider
// (inproc), or through the webhook (stripe-mock).
func succeededPayment(t *testing.T, e *authEnv, prov payment.Provider, tok, key, session string, amount int64) httpapi.Payment {
	t.Helper()
	p := e.mustPay(tok, key, session, amount, "pm_card_visa")
	if prov.Name() == "stripe" {
		e.webhook("evt_"+key, "payment_intent.succeeded", p.ProviderReference, time.Now(), whsec)
		_, p = e.getPayment(tok, p.ID)
	}
	if p.Status != "succeeded" {
		t.Fatalf("payment %+v; want succeeded", p)
	}
	return p
}

func (e *authEnv) refund(tok, id, key string, amount int64) *response {
	e.t.Helper()
	body := map[string]any{"reason": "customer complaint"}
	if amount > 0 {
		body["amount"] = amount
	}
	return e.do(http.MethodPost, "/v1/payments/"+id+"/refunds", body, append(bearer(tok), httpapi.HeaderIdempotencyKey, key)...)
}

// TestRefundsAgainstStripeMock: partial and full refunds through Stripe, never
// more than was paid, audited.
func TestRefundsAgainstStripeMock(t *testing.T) {
	prov, cnt := stripeProvider(t)
	e := payEnv(t, prov, nil)
	driver := loginAs(t, e, cloud.RoleDriver)
	manager := loginAs(t, e, cloud.RoleManager, "fac1")
	p := succeededPayment(t, e, prov, driver, "k1", "s1", 450)

	res := e.refund(manager, p.ID, "r1", 100)
	var r httpapi.Refund
	res.JSON(t, &r)
	if res.Status != http.StatusCreated || r.Status != "succeeded" || !strings.HasPrefix(r.ProviderReference, "re_") || r.Amount != 100 {
		t.Fatalf("refund 100: status %d, %+v; want 201 succeeded re_", res.Status, r)
	}
	// Retried: the same refund, not a second one.
	if res := e.refund(manager, p.ID, "r1", 100); res.Status != http.StatusOK {
		t.Errorf("retried refund: status %d; want 200", res.Status)
	}
	if n := cnt.n("POST /v1/refunds"); n != 1 {
		t.Errorf("refunds sent to Stripe = %d; want 1", n)
	}
	// More than remains (350) is refused before Stripe hears of it.
	res = e.refund(manager, p.ID, "r2", 351)
	if res.Status != http.StatusUnprocessableEntity {
		t.Errorf("refund beyond what remains: status %d, body %s; want 422", res.Status, res.Body)
	}
	if n := cnt.n("POST /v1/refunds"); n != 1 {
		t.Errorf("refunds sent to Stripe = %d; want 1", n)
	}
	// The rest.
	if res := e.refund(manager, p.ID, "r3", 0); res.Status != http.StatusCreated {
		t.Fatalf("refund the rest: status %d, body %s", res.Status, res.Body)
	}
	_, got := e.getPayment(driver, p.ID)
	if got.Status != "refunded" || got.Refunded != 450 || len(got.Refunds) != 2 {
		t.Errorf("after full refund: %+v; want refunded 450 with 2 refunds", got)
	}
	if res := e.refund(manager, p.ID, "r4", 1); res.Status != http.StatusConflict {
		t.Errorf("refund of a refunded payment: status %d; want 409", res.Status)
	}
	acts := strings.Join(e.auditActions(), " ")
	if strings.Count(acts, "payment.refund/ok") != 2 || strings.Count(acts, "payment.refund/denied") != 2 {
		t.Errorf("audit = %s; want 2 payment.refund/ok and 2 denied", acts)
	}
	if n := e.paymentEvents(p.ID, "payment.refunded"); n != 2 {
		t.Errorf("payment.refunded events = %d; want 2", n)
	}
}

// TestConcurrentRefunds: refunds racing each other never add up to more than was
// paid, in the database or at the provider.
func TestConcurrentRefunds(t *testing.T) {
	prov := inproc.New()
	e := payEnv(t, prov, nil)
	driver := loginAs(t, e, cloud.RoleDriver)
	manager := loginAs(t, e, cloud.RoleManager, "fac1")
	p := succeededPayment(t, e, prov, driver, "k", "s1", 1000)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := range 25 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := e.refund(manager, p.ID, fmt.Sprintf("race-%d", i), 100)
			switch res.Status {
			case http.StatusCreated:
				mu.Lock()
				ok++
				mu.Unlock()
			case http.StatusUnprocessableEntity, http.StatusConflict:
			default:
				t.Errorf("refund: status %d, body %s", res.Status, res.Body)
			}
		}()
	}
	wg.Wait()
	if ok != 10 {
		t.Errorf("%d refunds of 100 succeeded on a payment of 1000; want 10", ok)
	}
	var sum int64
	if err := e.db.Pool().QueryRow(context.Background(), `SELECT coalesce(sum(amount), 0) FROM refunds WHERE status <> 'failed'`).Scan(&sum); err != nil {
		t.Fatal(err)
	}
	if _, got := e.getPayment(driver, p.ID); sum != 1000 || got.Refunded != 1000 || got.Status != "refunded" {
		t.Errorf("refunds sum %d, payment %+v; want 1000 refunded", sum, got)
	}
	// The database refuses an excess even when written around the API.
	_, err := e.db.Pool().Exec(context.Background(), `INSERT INTO refunds (payment_id, amount, actor, idempotency_key) VALUES ($1, 1, 'sql', 'x')`, p.ID)
	if err == nil {
		t.Error("a refund beyond the payment was stored by SQL")
	}
}

// TestPaymentAuthz: a driver sees only their payments; refunds are for managers of
// the payment's facility.
func TestPaymentAuthz(t *testing.T) {
	prov := inproc.New()
	e := payEnv(t, prov, nil)
	owner := loginAs(t, e, cloud.RoleDriver)
	p := succeededPayment(t, e, prov, owner, "k", "s1", 500)
	other := loginAs(t, e, cloud.RoleDriver)
	for _, tc := range []struct {
		name string
		tok  string
		want int
	}{
		{"owner", owner, 200},
		{"other driver", other, 404},
		{"operator of fac1", loginAs(t, e, cloud.RoleOperator, "fac1"), 200},
		{"manager of fac2", loginAs(t, e, cloud.RoleManager, "fac2"), 404},
		{"admin", loginAs(t, e, cloud.RoleAdmin), 200},
	} {
		if st, _ := e.getPayment(tc.tok, p.ID); st != tc.want {
			t.Errorf("GET payment as %s: %d; want %d", tc.name, st, tc.want)
		}
		for _, path := range []string{"/receipt", "/receipt.pdf"} {
			if res := e.do(http.MethodGet, "/v1/payments/"+p.ID+path, nil, bearer(tc.tok)...); res.Status != tc.want {
				t.Errorf("GET %s as %s: %d; want %d", path, tc.name, res.Status, tc.want)
			}
		}
	}
	if st, _ := e.getPayment(owner, "not-a-uuid"); st != 404 {
		t.Errorf("GET a malformed id: %d; want 404", st)
	}
	var mine httpapi.Page[httpapi.Payment]
	e.do(http.MethodGet, "/v1/me/payments", nil, bearer(other)...).JSON(t, &mine)
	if len(mine.Items) != 0 {
		t.Errorf("another driver's /me/payments lists %d payments; want 0", len(mine.Items))
	}
	e.do(http.MethodGet, "/v1/me/payments", nil, bearer(owner)...).JSON(t, &mine)
	if len(mine.Items) != 1 || mine.Items[0].ID != p.ID {
		t.Errorf("owner's /me/payments = %+v; want the one payment", mine.Items)
	}
	for _, tc := range []struct {
		name string
		tok  string
		want int
	}{
		{"driver", owner, 403},
		{"operator of fac1", loginAs(t, e, cloud.RoleOperator, "fac1"), 403},
		{"manager of fac2", loginAs(t, e, cloud.RoleManager, "fac2"), 404},
		{"manager of fac1", loginAs(t, e, cloud.RoleManager, "fac1"), 201},
	} {
		if res := e.refund(tc.tok, p.ID, "authz-"+strings.ReplaceAll(tc.name, " ", "-"), 10); res.Status != tc.want {
			t.Errorf("refund as %s: %d; want %d", tc.name, res.Status, tc.want)
		}
	}
	if res := e.refund(loginAs(t, e, cloud.RoleManager, "fac1"), p.ID, "", 10); res.Status != http.StatusBadRequest {
		t.Errorf("refund without key: %d; want 400", res.Status)
	}
}

// TestPaymentDeclinedAndBadInput: a decline is a failed payment answered once; bad
// requests leave nothing behind.
func TestPaymentDeclinedAndBadInput(t *testing.T) {
	prov := inproc.New()
	e := payEnv(t, prov, nil)
	tok := loginAs(t, e, cloud.RoleDriver)
	p := e.mustPay(tok, "dec", "s1", 450, "pm_card_chargeDeclined")
	if p.Status != "failed" || p.Failure == "" || p.ReceiptNumber != "" {
		t.Errorf("declined payment = %+v; want failed with a failure message", p)
	}
	calls := prov.Calls()
	if res := e.pay(tok, "dec", "s1", 450, "pm_card_chargeDeclined"); res.Status != http.StatusOK || prov.Calls() != calls {
		t.Errorf("retried decline: status %d, provider calls %d -> %d; want 200 and no call", res.Status, calls, prov.Calls())
	}
	if res := e.do(http.MethodGet, "/v1/payments/"+p.ID+"/receipt", nil, bearer(tok)...); res.Status != http.StatusConflict {
		t.Errorf("receipt of a failed payment: %d; want 409", res.Status)
	}
	rows := e.count("payments")
	for _, tc := range []struct {
		name string
		body any
		want int
	}{
		{"card number", map[string]any{"facility": "fac1", "session_id": "s2", "amount": 100, "payment_method": "4242 4242 4242 4242"}, 422},
		{"card number in token", map[string]any{"facility": "fac1", "session_id": "s2", "amount": 100, "payment_method": "pm_4242424242424242"}, 422},
		{"both targets", map[string]any{"reservation_id": "6f1c2a7e-1111-4222-8333-944455556666", "facility": "fac1", "session_id": "s2", "amount": 100, "payment_method": "pm_card_visa"}, 422},
		{"no target", map[string]any{"amount": 100, "payment_method": "pm_card_visa"}, 422},
		{"zero amount", map[string]any{"facility": "fac1", "session_id": "s2", "amount": 0, "payment_method": "pm_card_visa"}, 422},
		{"no amount, no tariff", map[string]any{"facility": "fac1", "session_id": "s2", "payment_method": "pm_card_visa"}, 422},
		{"huge amount", map[string]any{"facility": "fac1", "session_id": "s2", "amount": 1 << 40, "payment_method": "pm_card_visa"}, 422},
		{"unknown stay", map[string]any{"facility": "fac1", "session_id": "nope", "amount": 100, "payment_method": "pm_card_visa"}, 404},
		{"unknown reservation", map[string]any{"reservation_id": "6f1c2a7e-1111-4222-8333-944455556666", "payment_method": "pm_card_visa"}, 404},
		{"unknown member", map[string]any{"facility": "fac1", "session_id": "s2", "amount": 100, "payment_method": "pm_card_visa", "card": "x"}, 400},
		{"not JSON", "{", 400},
	} {
		res := e.do(http.MethodPost, "/v1/payments", tc.body, append(bearer(tok), httpapi.HeaderIdempotencyKey, "bad-"+strings.ReplaceAll(tc.name, " ", "-"))...)
		if res.Status != tc.want {
			t.Errorf("%s: status %d, body %s; want %d", tc.name, res.Status, res.Body, tc.want)
		}
	}
	if n := e.count("payments"); n != rows {
		t.Errorf("payments rows %d after bad requests; want %d", n, rows)
	}
	var cards int
	e.db.Pool().QueryRow(context.Background(), `SELECT count(*) FROM payments WHERE payment_method ~ '[0-9]{12}'`).Scan(&cards)
	if cards != 0 {
		t.Errorf("%d payments hold a card-number-like token", cards)
	}
	// Staff do not pay through the app.
	if res := e.pay(loginAs(t, e, cloud.RoleManager, "fac1"), "staff", "s2", 100, "pm_card_visa"); res.Status != http.StatusForbidden {
		t.Errorf("manager paying: %d; want 403", res.Status)
	}
	// Without a provider the routes answer 503.
	bare := newAuthEnv(t, httpapi.Config{})
	if res := bare.pay(loginAs(t, bare, cloud.RoleDriver), "k", "s1", 100, "pm_card_visa"); res.Status != http.StatusServiceUnavailable {
		t.Errorf("no provider: %d; want 503", res.Status)
	}
	// One payment in flight per stay: a stuck pending one blocks a second.
	if _, err := e.db.Pool().Exec(context.Background(), `INSERT INTO payments (user_id, facility_id, session_id, amount, currency, provider, idempotency_key)
		VALUES ('someone', 'fac1', 's3', 100, 'EUR', 'test', 'stuck')`); err != nil {
		t.Fatal(err)
	}
	if res := e.pay(tok, "second", "s3", 100, "pm_card_visa"); res.Status != http.StatusConflict {
		t.Errorf("a second payment while one is in flight: %d; want 409", res.Status)
	}
}

// TestReceipts: the HTML and PDF receipts of a payment that succeeded, with a
// refund.
func TestReceipts(t *testing.T) {
	prov := inproc.New()
	e := payEnv(t, prov, nil)
	tok := loginAs(t, e, cloud.RoleDriver)
	p := succeededPayment(t, e, prov, tok, "k", "s1", 1250)
	if res := e.refund(loginAs(t, e, cloud.RoleAdmin), p.ID, "r", 250); res.Status != http.StatusCreated {
		t.Fatalf("refund: %d %s", res.Status, res.Body)
	}
	res := e.do(http.MethodGet, "/v1/payments/"+p.ID+"/receipt", nil, bearer(tok)...)
	html := string(res.Body)
	if res.Status != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("receipt: %d %s", res.Status, res.Header.Get("Content-Type"))
	}
	for _, want := range []string{p.ReceiptNumber, "12.50 EUR", "-2.50 EUR", "10.00 EUR", "Central fac1", "K1AB123", "Parking stay s1", p.ProviderReference} {
		if !strings.Contains(html, want) {
			t.Errorf("receipt HTML lacks %q", want)
		}
	}
	pdf := e.do(http.MethodGet, "/v1/payments/"+p.ID+"/receipt.pdf", nil, bearer(tok)...)
	if pdf.Status != 200 || pdf.Header.Get("Content-Type") != "application/pdf" || !bytes.HasPrefix(pdf.Body, []byte("%PDF-")) || len(pdf.Body) < 500 {
		t.Errorf("receipt.pdf: %d %s, %d bytes starting %q", pdf.Status, pdf.Header.Get("Content-Type"), len(pdf.Body), pdf.Body[:min(8, len(pdf.Body))])
	}
	// Receipt numbers go up without gaps.
	q := succeededPayment(t, e, prov, tok, "k2", "s2", 100)
	var y1, n1, y2, n2 int
	fmt.Sscanf(p.ReceiptNumber, "%d-%d", &y1, &n1)
	fmt.Sscanf(q.ReceiptNumber, "%d-%d", &y2, &n2)
	if y1 != y2 || n2 != n1+1 {
		t.Errorf("receipt numbers %s then %s; want consecutive", p.ReceiptNumber, q.ReceiptNumber)
	}
}

// TestPrepaidDownlink: an app payment for a stay is published to its garage in the
// "prepaid" document, at a version that goes up with each payment.
func TestPrepaidDownlink(t *testing.T) {
	prov := inproc.New()
	hub := &fakeHub{}
	e := payEnv(t, prov, hub)
	tok := loginAs(t, e, cloud.RoleDriver)
	p1 := succeededPayment(t, e, prov, tok, "k1", "s1", 300)
	p2 := succeededPayment(t, e, prov, tok, "k2", "s2", 400)
	var docs []httpapi.PrepaidDocument
	for _, d := range hub.published() {
		if d.kind != httpapi.PrepaidKind || d.facility != "fac1" {
			continue
		}
		var doc httpapi.PrepaidDocument
		if err := json.Unmarshal(d.body, &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Version != d.version {
			t.Errorf("document version %d published as %d", doc.Version, d.version)
		}
		docs = append(docs, doc)
	}
	if len(docs) != 2 || docs[0].Version != 1 || docs[1].Version != 2 {
		t.Fatalf("prepaid documents = %+v; want versions 1 and 2", docs)
	}
	last := docs[1].Payments
	if len(last) != 2 || last[0].PaymentID != p1.ID || last[0].SessionID != "s1" || last[0].Amount != 300 || last[0].Plate != "K1AB123" ||
		last[1].PaymentID != p2.ID || last[1].Amount != 400 || last[1].Reference == "" {
		t.Errorf("prepaid payments = %+v", last)
	}
	// A hub that was down: the republish loop catches up.
	hub.setFail(true)
	succeededPayment(t, e, prov, tok, "k3", "s3", 500)
	hub.setFail(false)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { httpapi.RepublishPrepaid(ctx, e.db, hub, 0, time.Hour, &tlog{}); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ps := hub.published()
		if d := ps[len(ps)-1]; d.kind == httpapi.PrepaidKind && d.version == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("RepublishPrepaid did not publish version 3")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}

// Warn lets a test be RepublishPrepaid's logger.
func (t *tlog) Warn(msg string, args ...any) {}

type tlog struct{}

// TestReconciliation: a day's stays, fees, garage and app payments, refunds and the
// differences between them.
func TestReconciliation(t *testing.T) {
	prov := inproc.New()
	e := payEnv(t, prov, nil)
	tok := loginAs(t, e, cloud.RoleDriver)
	// s1 paid in the app (500) and the garage counted it; s2 paid 300 in the app but
	// the garage never saw it; s3 paid at the kiosk and left owing 100.
	p1 := succeededPayment(t, e, prov, tok, "k1", "s1", 500)
	succeededPayment(t, e, prov, tok, "k2", "s2", 300)
	if res := e.refund(loginAs(t, e, cloud.RoleAdmin), p1.ID, "r", 50); res.Status != http.StatusCreated {
		t.Fatalf("refund: %d", res.Status)
	}
	loc, _ := time.LoadLocation("Europe/Berlin")
	now := time.Now().In(loc)
	exit := now.Add(-time.Minute)
	if exit.Day() != now.Day() {
		exit = now
	}
	ctx := context.Background()
	for _, s := range []struct {
		id        string
		fee, paid int64
	}{{"s1", 500, 500}, {"s2", 300, 0}, {"s3", 400, 300}} {
		if _, err := e.db.Pool().Exec(ctx, `WITH o AS (DELETE FROM open_sessions WHERE facility_id = 'fac1' AND session_id = $1 RETURNING *)
			INSERT INTO sessions (facility_id, session_id, zone_id, plate, parking_right, entered_at, exited_at, fee, paid, currency, ended_how, closed_seq)
			SELECT facility_id, session_id, zone_id, plate, parking_right, entered_at, $2, $3, $4, 'EUR', 'exit', 1 FROM o`,
			s.id, exit, s.fee, s.paid); err != nil {
			t.Fatal(err)
		}
	}
	// A stay of the day before is not counted.
	if _, err := e.db.Pool().Exec(ctx, `INSERT INTO sessions (facility_id, session_id, exited_at, fee, paid, closed_seq)
		VALUES ('fac1', 'old', $1, 999, 0, 1)`, exit.AddDate(0, 0, -1)); err != nil {
		t.Fatal(err)
	}
	date := now.Format(time.DateOnly)
	res := e.do(http.MethodGet, "/v1/facilities/fac1/reconciliation?date="+date, nil, bearer(loginAs(t, e, cloud.RoleOperator, "fac1"))...)
	if res.Status != 200 {
		t.Fatalf("reconciliation: %d %s", res.Status, res.Body)
	}
	var r httpapi.Reconciliation
	res.JSON(t, &r)
	lines := map[string]httpapi.ReconciliationLine{}
	for _, l := range r.Sessions {
		lines[l.SessionID] = l
	}
	want := map[string]httpapi.ReconciliationLine{
		"s1": {FeeDue: 500, PaidAtGarage: 500, AppPaid: 500, AppRefunded: 50, Difference: 0, AppUnmatched: 0},
		"s2": {FeeDue: 300, PaidAtGarage: 0, AppPaid: 300, Difference: -300, AppUnmatched: 300},
		"s3": {FeeDue: 400, PaidAtGarage: 300, Difference: -100},
	}
	if len(lines) != 3 {
		t.Fatalf("reconciliation sessions = %+v; want s1, s2, s3", r.Sessions)
	}
	for id, w := range want {
		l := lines[id]
		if l.FeeDue != w.FeeDue || l.PaidAtGarage != w.PaidAtGarage || l.AppPaid != w.AppPaid || l.AppRefunded != w.AppRefunded ||
			l.Difference != w.Difference || l.AppUnmatched != w.AppUnmatched {
			t.Errorf("%s = %+v; want %+v", id, l, w)
		}
	}
	wt := httpapi.ReconciliationTotals{Sessions: 3, FeesDue: 1200, PaidAtGarage: 800, AppPaid: 800, AppRefunded: 50, Difference: -400,
		AppUnmatched: 300, AppPayments: 800, AppPaymentCount: 2, Refunds: 50, RefundCount: 1, NetApp: 750}
	if r.Totals != wt {
		t.Errorf("totals = %+v; want %+v", r.Totals, wt)
	}
	if r.Currency != "EUR" || r.Timezone != "Europe/Berlin" {
		t.Errorf("currency %q timezone %q", r.Currency, r.Timezone)
	}
	for _, tc := range []struct {
		path string
		tok  string
		want int
	}{
		{"/v1/facilities/fac1/reconciliation?date=" + date, tok, 403},
		{"/v1/facilities/fac1/reconciliation?date=" + date, loginAs(t, e, cloud.RoleOperator, "fac2"), 403},
		{"/v1/facilities/fac1/reconciliation?date=yesterday", loginAs(t, e, cloud.RoleAdmin), 400},
		{"/v1/facilities/fac1/reconciliation", loginAs(t, e, cloud.RoleAdmin), 400},
		{"/v1/facilities/nope/reconciliation?date=" + date, loginAs(t, e, cloud.RoleAdmin), 404},
	} {
		if res := e.do(http.MethodGet, tc.path, nil, bearer(tc.tok)...); res.Status != tc.want {
			t.Errorf("GET %s: %d; want %d", tc.path, res.Status, tc.want)
		}
	}
}

// TestReservationPayment: a held booking is paid at its quoted price, once, and the
// success hook confirms it.
func TestReservationPayment(t *testing.T) {
	prov := inproc.New()
	var mu sync.Mutex
	var confirmed []string
	e := newAuthEnv(t, httpapi.Config{Payments: httpapi.Payments{Provider: prov,
		OnSucceeded: func(ctx context.Context, p postgres.Payment) error {
			mu.Lock()
			defer mu.Unlock()
			confirmed = append(confirmed, p.ReservationID+"/"+p.ID)
			return nil
		}}})
	ctx := context.Background()
	if _, err := e.db.CreateFacility(ctx, cloud.Facility{ID: "fac1", Name: "Central", Timezone: "UTC", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	u := e.createUser(cloud.RoleDriver)
	toks, err := e.svc.Login(ctx, u.Email, testPassword, "")
	if err != nil {
		t.Fatal(err)
	}
	var id string
	if err := e.db.Pool().QueryRow(ctx, `INSERT INTO reservations (facility_id, zone_id, user_id, plate, period, status, hold_expires_at, price, currency)
		VALUES ('fac1', 'z1', $1, 'B1234', tstzrange(now() + interval '1 day', now() + interval '1 day 2 hours'), 'held', now() + interval '10 minutes', 1800, 'EUR')
		RETURNING id::text`, u.ID).Scan(&id); err != nil {
		t.Fatal(err)
	}
	payRes := func(tok, key string, amount any) *response {
		body := map[string]any{"reservation_id": id, "payment_method": "pm_card_visa"}
		if amount != nil {
			body["amount"] = amount
		}
		return e.do(http.MethodPost, "/v1/payments", body, append(bearer(tok), httpapi.HeaderIdempotencyKey, key)...)
	}
	if res := payRes(toks.AccessToken, "wrong", 100); res.Status != http.StatusUnprocessableEntity {
		t.Errorf("paying another amount than the price: %d; want 422", res.Status)
	}
	if res := payRes(loginAs(t, e, cloud.RoleDriver), "theirs", nil); res.Status != http.StatusNotFound {
		t.Errorf("another driver paying the booking: %d; want 404", res.Status)
	}
	res := payRes(toks.AccessToken, "book", nil)
	var p httpapi.Payment
	res.JSON(t, &p)
	if res.Status != http.StatusCreated || p.Status != "succeeded" || p.Amount != 1800 || p.ReservationID != id || p.Facility != "fac1" {
		t.Fatalf("reservation payment: %d %+v; want 201 succeeded 1800", res.Status, p)
	}
	if res := payRes(toks.AccessToken, "book", nil); res.Status != http.StatusOK {
		t.Errorf("retry: %d; want 200", res.Status)
	}
	// Paid already: a second payment with a fresh key is refused.
	if res := payRes(toks.AccessToken, "again", nil); res.Status != http.StatusConflict {
		t.Errorf("second payment of a paid booking: %d; want 409", res.Status)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(confirmed) != 1 || confirmed[0] != id+"/"+p.ID {
		t.Errorf("confirmations = %v; want one for %s/%s", confirmed, id, p.ID)
	}
}
