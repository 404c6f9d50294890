package stripe_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/payment/stripe"
)

// FuzzVerifyWebhook: any payload and signature header is refused with EINVALID or,
// only when correctly signed with the secret, accepted as an event with an id;
// never a panic.
func FuzzVerifyWebhook(f *testing.F) {
	now := time.Now()
	good := event("evt_1", "payment_intent.succeeded", "pi_1", "succeeded", now)
	f.Add(good, sign(good, secret, now))
	f.Add(good, "t=1,v1=00")
	f.Add([]byte(`{"id":"evt","type":"x","data":{"object":[]}}`), "")
	f.Add([]byte("{"), "t=,v1=,v0=")
	p, err := stripe.New(stripe.Config{Key: "sk_test_123", WebhookSecret: secret})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, payload []byte, header string) {
		ev, err := p.VerifyWebhook(payload, header)
		if err != nil {
			if cloud.ErrorCode(err) != cloud.EINVALID {
				t.Fatalf("VerifyWebhook error %v; want EINVALID", err)
			}
			return
		}
		if ev.ID == "" || ev.Type == "" {
			t.Fatalf("accepted event without id or type: %+v", ev)
		}
		if !strings.Contains(header, "v1=") {
			t.Fatalf("accepted an event without a v1 signature: %q", header)
		}
	})
}
