package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/httpapi"
	"github.com/gatehouse-parking/gatehouse/cloud/payment/inproc"
	"github.com/gatehouse-parking/gatehouse/cloud/payment/stripe"
	"github.com/gatehouse-parking/gatehouse/cloud/payment/stripemock"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	"github.com/gatehouse-parking/gatehouse/edge/tariff"
	stripeapi "github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"
)

// loseFirstIntent forwards requests to stripe-mock but loses the answer to the first
// PaymentIntent creation: Stripe charged, the service never heard.
type loseFirstIntent struct{ lost atomic.Bool }

func (l *loseFirstIntent) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && r.Method == http.MethodPost && r.URL.Path == "/v1/payment_intents" && l.lost.CompareAndSwap(false, true) {
		res.Body.Close()
		return nil, errors.New("connection reset by peer")
	}
	return res, err
}

// webhookFor posts a signed payment_intent event whose metadata names paymentID.
func (e *authEnv) webhookFor(id, typ, intent, paymentID string) *response {
	e.t.Helper()
	now := time.Now()
	body, _ := json.Marshal(map[string]any{"id": id, "object": "event", "type": typ, "created": now.Unix(), "api_version": stripeapi.APIVersion,
		"data": map[string]any{"object": map[string]any{"id": intent, "object": "payment_intent", "amount": 450,
			"metadata": map[string]string{"payment_id": paymentID}}}})
	sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: whsec, Timestamp: now}).Header
	return e.do(http.MethodPost, "/v1/webhooks/stripe", body, "Stripe-Signature", sig)
}

// TestWebhookAfterLostResponse: when the answer to the charge is lost, the
// payment_intent.succeeded webhook finds the payment by its metadata and records
// the reference; an event naming a payment not matched is refused for a resend and
// not recorded.
func TestWebhookAfterLostResponse(t *testing.T) {
	p, err := stripe.New(stripe.Config{Key: "sk_test_gatehouse", WebhookSecret: whsec, URL: stripemock.Start(t),
		HTTPClient: &http.Client{Transport: &loseFirstIntent{}, Timeout: 10 * time.Second}, MaxNetworkRetries: stripeapi.Int64(0)})
	if err != nil {
		t.Fatal(err)
	}
	e := payEnv(t, p, nil)
	tok := loginAs(t, e, cloud.RoleDriver)
	if res := e.pay(tok, "lost", "s1", 450, "pm_card_visa"); res.Status != http.StatusServiceUnavailable {
		t.Fatalf("payment whose answer is lost: %d %s; want 503", res.Status, res.Body)
	}
	var id string
	if err := e.db.Pool().QueryRow(context.Background(), `SELECT id::text FROM payments WHERE idempotency_key = 'lost'`).Scan(&id); err != nil {
		t.Fatal(err)
	}

	stranger := "00000000-0000-4000-8000-000000000000"
	if res := e.webhookFor("evt_stranger", "payment_intent.succeeded", "pi_stranger", stranger); res.Status != http.StatusServiceUnavailable {
		t.Errorf("event naming a payment not here: %d %s; want 503 so that Stripe resends it", res.Status, res.Body)
	}
	if res := e.webhookFor("evt_lost", "payment_intent.succeeded", "pi_lost", id); res.Status != http.StatusOK {
		t.Fatalf("succeeded webhook: %d %s; want 200", res.Status, res.Body)
	} else {
		var w httpapi.WebhookResult
		res.JSON(t, &w)
		if w.Outcome != postgres.WebhookApplied {
			t.Errorf("outcome %q; want applied", w.Outcome)
		}
	}
	_, got := e.getPayment(tok, id)
	if got.Status != "succeeded" || got.ProviderReference != "pi_lost" || got.ReceiptNumber == "" {
		t.Errorf("after the webhook: %+v; want succeeded with reference pi_lost", got)
	}
	var n int
	if err := e.db.Pool().QueryRow(context.Background(), `SELECT count(*) FROM webhook_events WHERE event_id = 'evt_stranger'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("unmatched event recorded %d times (%v); want 0, so that its resend is applied", n, err)
	}
	// The driver's retry finds the payment done, without charging again.
	if res := e.pay(tok, "lost", "s1", 450, "pm_card_visa"); res.Status != http.StatusOK {
		t.Errorf("retry: %d %s; want 200", res.Status, res.Body)
	}
}

// TestRefundWorker: a paid booking cancelled in time is refunded by the worker
// through the provider, once, and marked refunded.
func TestRefundWorker(t *testing.T) {
	prov := inproc.New()
	e := payEnv(t, prov, nil)
	ctx := context.Background()
	if _, err := e.db.CreateZone(ctx, "fac1", cloud.Zone{ID: "A", Kind: "general", Capacity: 10, HeldBack: 2}); err != nil {
		t.Fatal(err)
	}
	rate := tariff.Rate{ID: "r", Currency: "EUR", Timezone: "UTC", Increment: tariff.Duration(time.Hour), Tiers: []tariff.Tier{{PerIncrement: 450}}}
	if _, err := e.db.SetTariffs(ctx, "fac1", postgres.Tariffs{DefaultRate: "r", Rates: []tariff.Rate{rate}}, "test"); err != nil {
		t.Fatal(err)
	}
	u := e.createUser(cloud.RoleDriver)
	toks, err := e.svc.Login(ctx, u.Email, testPassword, "")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Now().Add(72 * time.Hour).Truncate(time.Hour)
	r, _, err := e.db.Book(ctx, postgres.BookRequest{Facility: "fac1", Zone: "A", UserID: u.ID, Plate: "B1234",
		From: from, Until: from.Add(2 * time.Hour), At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	res := e.do(http.MethodPost, "/v1/payments", map[string]any{"reservation_id": r.ID, "amount": 900, "payment_method": "pm_card_visa"},
		append(bearer(toks.AccessToken), httpapi.HeaderIdempotencyKey, "book")...)
	var pay httpapi.Payment
	res.JSON(t, &pay)
	if res.Status != http.StatusCreated || pay.Status != "succeeded" {
		t.Fatalf("payment: %d %s", res.Status, res.Body)
	}
	c, err := e.db.Reservation(ctx, r.ID)
	if err != nil || c.Status != cloud.ReservationConfirmed || c.Paid != 900 {
		t.Fatalf("after paying: %s paid %d, %v; want confirmed, 900", c.Status, c.Paid, err)
	}
	if _, _, err := e.db.Cancel(ctx, r.ID, "user:"+u.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		httpapi.RefundDue(ctx, e.db, prov, time.Now, &tlog{})
	}
	x, err := e.db.Reservation(ctx, r.ID)
	if err != nil || x.RefundedAt.IsZero() || x.RefundReference == "" {
		t.Errorf("after the worker: refunded at %v, reference %q, %v; want refunded", x.RefundedAt, x.RefundReference, err)
	}
	_, got := e.getPayment(toks.AccessToken, pay.ID)
	if got.Status != "refunded" || len(got.Refunds) != 1 || got.Refunds[0].Amount != 900 {
		t.Errorf("payment after the worker: %+v; want refunded once, 900", got)
	}
}
