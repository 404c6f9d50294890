package natsync_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/edge/boltstore"
	"github.com/gatehouse-parking/gatehouse/edge/natsync"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// startHub runs a hub server with JetStream and the events stream, on port (-1: any).
func startHub(tb testing.TB, dir string, port int) *server.Server {
	tb.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, JetStreamDomain: "hub", StoreDir: dir, NoSigs: true})
	if err != nil {
		tb.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(5 * time.Second) {
		tb.Fatal("hub not ready")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		tb.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	_, err = js.CreateOrUpdateStream(context.Background(), jetstream.StreamConfig{Name: "GH_EVENTS", Subjects: []string{"gh.fac.*.evt.>"}, Duplicates: 2 * time.Minute})
	if err != nil {
		tb.Fatal(err)
	}
	_, err = js.CreateOrUpdateStream(context.Background(), jetstream.StreamConfig{Name: natsync.DownStream, Subjects: []string{"gh.fac.*.down.>"}, MaxMsgsPerSubject: 1})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func streamMsgs(tb testing.TB, url string) uint64 {
	tb.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(context.Background(), "GH_EVENTS")
	if err != nil {
		tb.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return info.State.Msgs
}

func fill(tb testing.TB, s *boltstore.Store, from, to uint64) {
	tb.Helper()
	b := &edge.Batch{}
	for seq := from; seq <= to; seq++ {
		b.Events = append(b.Events, &gh.Envelope{FacilityId: "f1", Seq: seq, EventId: "e", Type: "gate.opened", OccurredAt: timestamppb.Now(),
			Payload: &gh.Envelope_GateOpened{GateOpened: &gh.GateOpened{BarrierId: "b"}}})
	}
	if err := s.Submit(b).Wait(); err != nil {
		tb.Fatal(err)
	}
}

func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	tb.Fatalf("timed out waiting for %s", what)
}

func TestUplinkShipsOnceAcrossRestartsAndOutages(t *testing.T) {
	hubDir := t.TempDir()
	hub := startHub(t, hubDir, -1)
	url := hub.ClientURL()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "g.db"), "f1", &boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fill(t, st, 1, 1000)

	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	run := func() (*natsync.Uplink, context.CancelFunc, chan error) {
		u := &natsync.Uplink{Facility: "f1", Conn: nc, Outbox: st, AckTimeout: time.Second}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- u.Run(ctx) }()
		return u, cancel, done
	}
	u, cancel, done := run()
	waitFor(t, "1000 events on the hub", func() bool { return u.Status().Cursor == 1000 })
	if n := streamMsgs(t, url); n != 1000 {
		t.Fatalf("stream holds %d; want 1000", n)
	}
	// New events reach the hub without polling delay.
	fill(t, st, 1001, 1010)
	waitFor(t, "the new events", func() bool { return u.Status().Cursor == 1010 })

	// The cloud asks for everything again: the hub drops the duplicates.
	u.Resend(1)
	waitFor(t, "the resend", func() bool { return u.Status().Acked >= 2010 })
	if n := streamMsgs(t, url); n != 1010 {
		t.Fatalf("after resend the stream holds %d; want 1010", n)
	}

	// Restart of the uplink: it continues from its cursor.
	cancel()
	<-done
	if c, _ := st.Cursor(); c != 1010 {
		t.Fatalf("stored cursor = %d; want 1010", c)
	}

	// The hub goes away while events pile up, then comes back on the same port.
	addr := hub.Addr().String()
	hub.Shutdown()
	hub.WaitForShutdown()
	u, cancel, done = run()
	defer func() { cancel(); <-done }()
	fill(t, st, 1011, 1500)
	time.Sleep(500 * time.Millisecond)
	if c := u.Status().Cursor; c != 1010 {
		t.Fatalf("cursor moved to %d with the hub down", c)
	}
	_, portStr, _ := splitHostPort(addr)
	hub = startHub(t, hubDir, portStr)
	defer hub.Shutdown()
	waitFor(t, "the backlog after the outage", func() bool { return u.Status().Cursor == 1500 })
	if n := streamMsgs(t, url); n != 1500 {
		t.Fatalf("after the outage the stream holds %d; want 1500", n)
	}
}
