package natshub_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud/natshub"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestGaragePublishesThroughItsLeaf(t *testing.T) {
	h, _ := startHub(t, t.TempDir())
	user, secret := issue(t, h, "a")
	edge := startConnectedEdge(t, h, "a", user, secret)
	waitInterest(t, edge, "gh.fac.a.evt.gate.opened")
	nc := edgeConn(t, edge, "a")
	js, err := jetstream.NewWithDomain(nc, natshub.Domain)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	ack, err := js.PublishMsg(ctx, event(t, "a", "a", 1))
	if err != nil {
		t.Fatalf("PublishMsg through the leaf: %v", err)
	}
	if ack.Stream != natshub.EventsStream || ack.Domain != natshub.Domain || ack.Duplicate {
		t.Fatalf("PubAck = %+v; want stream %s, domain %s, not a duplicate", ack, natshub.EventsStream, natshub.Domain)
	}
	ack, err = js.PublishMsg(ctx, event(t, "a", "a", 1))
	if err != nil || !ack.Duplicate {
		t.Fatalf("second PublishMsg of a:1 = %+v, %v; want a duplicate", ack, err)
	}
	if n := streamMsgs(t, h, natshub.EventsStream); n != 1 {
		t.Fatalf("%s holds %d messages; want 1", natshub.EventsStream, n)
	}
}

// TestGarageWithoutItsInboxPrefixGetsNoAck shows why the edge must use InboxPrefix:
// the hub stores the event but cannot send the acknowledgement to the default inbox.
func TestGarageWithoutItsInboxPrefixGetsNoAck(t *testing.T) {
	h, _ := startHub(t, t.TempDir())
	user, secret := issue(t, h, "a")
	edge := startConnectedEdge(t, h, "a", user, secret)
	waitInterest(t, edge, "gh.fac.a.evt.gate.opened")
	nc, err := nats.Connect(edge.ClientURL()) // no nats.CustomInboxPrefix
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.NewWithDomain(nc, natshub.Domain)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if ack, err := js.PublishMsg(ctx, event(t, "a", "a", 1)); err == nil {
		t.Fatalf("PublishMsg with the default inbox = %+v; want no acknowledgement", ack)
	}
	if n := streamMsgs(t, h, natshub.EventsStream); n != 1 {
		t.Fatalf("%s holds %d messages; want 1 (stored, only the ack is lost)", natshub.EventsStream, n)
	}
}
