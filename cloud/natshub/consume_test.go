package natshub_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud/natshub"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	"github.com/nats-io/nats.go"
)

// publishEvents puts events from..to of facility f in GH_EVENTS, as the cloud user.
func publishEvents(tb testing.TB, h *natshub.Hub, f string, from, to uint64) {
	tb.Helper()
	js := h.JetStream()
	for seq := from; seq <= to; seq++ {
		if _, err := js.PublishMsgAsync(event(tb, f, f, seq)); err != nil {
			tb.Fatal(err)
		}
		if seq%1000 == 0 || seq == to {
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(10 * time.Second):
				tb.Fatal("publishing events timed out")
			}
		}
	}
}

// orderIngester wraps a fakeIngester and records the seqs of successful calls in order.
type orderIngester struct {
	*fakeIngester
	mu    sync.Mutex
	order []uint64
}

func (o *orderIngester) Ingest(ctx context.Context, envs []*gh.Envelope) (int, int, []natshub.Gap, error) {
	a, d, g, err := o.fakeIngester.Ingest(ctx, envs)
	if err == nil {
		o.mu.Lock()
		for _, e := range envs {
			o.order = append(o.order, e.Seq)
		}
		o.mu.Unlock()
	}
	return a, d, g, err
}

func TestConsumeOnceAcrossRestartsAndRedeliversAfterError(t *testing.T) {
	h, logs := startHub(t, t.TempDir())
	user, secret := issue(t, h, "a")
	edge := startConnectedEdge(t, h, "a", user, secret)
	ncA := edgeConn(t, edge, "a")
	resends := make(chan natshub.ResendRequest, 10)
	if _, err := ncA.Subscribe("gh.fac.a.cmd.resend", func(m *nats.Msg) {
		var req natshub.ResendRequest
		_ = json.Unmarshal(m.Data, &req)
		resends <- req
		_ = m.Respond([]byte(`{}`))
	}); err != nil {
		t.Fatal(err)
	}
	waitInterest(t, h.Server(), "gh.fac.a.cmd.resend")

	publishEvents(t, h, "a", 1, 2500)
	ing := &orderIngester{fakeIngester: newFakeIngester()}
	ing.failing = func(call int) bool { return call == 2 }
	ing.gaps = func(call int) []natshub.Gap {
		if call == 1 {
			// b has no garage connected: its request fails and is retried.
			return []natshub.Gap{{Facility: "a", From: 4000, To: 4001}, {Facility: "b", From: 5, To: 9}}
		}
		return nil
	}
	opts := natshub.ConsumeOptions{Durable: "ingest", Batch: 1000, MaxWait: 100 * time.Millisecond, ResendInterval: 100 * time.Millisecond}
	stop := runConsume(t, h, ing, opts)
	waitFor(t, "2500 events ingested", func() bool { return ing.appliedCount() == 2500 })

	select {
	case req := <-resends:
		if req.From != 4000 {
			t.Errorf("garage a was asked to resend from %d; want 4000", req.From)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("garage a got no resend request")
	}
	waitFor(t, "two failed resend requests to the offline garage b", func() bool { return h.Stats().ResendFailures >= 2 })
	if !logs.contains("garage offline") {
		t.Error("the offline garage was not logged")
	}
	stop()

	// The consumer restarts while new events arrive.
	publishEvents(t, h, "a", 2501, 3000)
	stop = runConsume(t, h, ing, opts)
	waitFor(t, "3000 events ingested", func() bool { return ing.appliedCount() == 3000 })
	time.Sleep(300 * time.Millisecond) // room for a wrongful redelivery
	stop()

	presented, applied, _ := ing.snapshot()
	redelivered := 0
	for seq := uint64(1); seq <= 3000; seq++ {
		k := "a:" + itoa(seq)
		if applied[k] != 1 {
			t.Fatalf("event %s ingested %d times; want once", k, applied[k])
		}
		if presented[k] == 2 {
			redelivered++
		}
	}
	if redelivered == 0 {
		t.Error("no event was delivered again after the failed Ingest")
	}
	ing.mu.Lock()
	for i := 1; i < len(ing.order); i++ {
		if ing.order[i] != ing.order[i-1]+1 {
			t.Errorf("ingested out of order: %d after %d", ing.order[i], ing.order[i-1])
			break
		}
	}
	ing.mu.Unlock()
	st := h.Stats()
	if st.IngestErrors != 1 || st.Applied != 3000 || st.Duplicates != 0 || st.ResendRequests < 1 {
		t.Errorf("Stats() = %+v; want 1 ingest error, 3000 applied, no duplicates, a resend request", st)
	}
}

func TestConsumeDropsUndecodableMessages(t *testing.T) {
	h, _ := startHub(t, t.TempDir())
	js := h.JetStream()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tc := range []struct{ name, subject string }{
		{"garbage", "gh.fac.a.evt.gate.opened"},
		{"wrong type", "gh.fac.a.evt.session.started"},
	} {
		data := []byte{0xff, 0xff, 0xff}
		if tc.name == "wrong type" {
			data = event(t, "a", "a", 2).Data // a gate.opened envelope
		}
		if _, err := js.Publish(ctx, tc.subject, data); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.PublishMsg(ctx, event(t, "a", "a", 3)); err != nil {
		t.Fatal(err)
	}
	ing := newFakeIngester()
	stop := runConsume(t, h, ing, natshub.ConsumeOptions{MaxWait: 100 * time.Millisecond})
	waitFor(t, "a:3 ingested", func() bool { return ing.appliedCount() == 1 })
	stop()
	if got := h.Stats().Invalid; got != 2 {
		t.Fatalf("Stats().Invalid = %d; want 2", got)
	}
	_, applied, _ := ing.snapshot()
	for k := range applied {
		if !strings.HasSuffix(k, ":3") {
			t.Errorf("invalid message ingested as %s", k)
		}
	}
	// They were acknowledged: nothing is pending on the consumer.
	c, err := js.Consumer(ctx, natshub.EventsStream, "gh-ingest")
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.NumPending != 0 {
		t.Fatalf("consumer has %d unacknowledged and %d pending; want none", info.NumAckPending, info.NumPending)
	}
}
