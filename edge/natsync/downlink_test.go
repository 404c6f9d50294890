package natsync_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/edge/natsync"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

type fakeGarage struct {
	mu       sync.Mutex
	versions map[string]uint64
	applied  []string
	opened   []string
	prepaid  []edge.Prepaid
}

func (f *fakeGarage) ApplyCredentials(ctx context.Context, doc *gh.CredentialsReplaced) (bool, error) {
	switch doc.Kind { // as edge.Garage
	case "permits", "reservations", "blocklist":
	default:
		return false, edge.Errorf(edge.EINVALID, "unknown document kind %q", doc.Kind)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if doc.Version <= f.versions[doc.Kind] {
		return false, nil
	}
	f.versions[doc.Kind] = doc.Version
	f.applied = append(f.applied, doc.Kind)
	return true, nil
}

func (f *fakeGarage) ApplyLayout(ctx context.Context, doc edge.Layout) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if doc.Version <= f.versions[edge.LayoutKind] {
		return false, nil
	}
	f.versions[edge.LayoutKind] = doc.Version
	f.applied = append(f.applied, edge.LayoutKind)
	return true, nil
}

func (f *fakeGarage) ApplyPrepaid(ctx context.Context, doc edge.Prepaid) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if doc.Version <= f.versions[edge.PrepaidKind] {
		return false, nil
	}
	f.versions[edge.PrepaidKind] = doc.Version
	f.applied = append(f.applied, edge.PrepaidKind)
	f.prepaid = append(f.prepaid, doc)
	return true, nil
}

func (f *fakeGarage) OpenLane(ctx context.Context, lane, operator, reason string) error {
	if lane != "entry-1" {
		return edge.Errorf(edge.ENOTFOUND, "no lane %q", lane)
	}
	f.mu.Lock()
	f.opened = append(f.opened, operator+"|"+reason)
	f.mu.Unlock()
	return nil
}

func (f *fakeGarage) ResetCount(ctx context.Context, zone string, n int, operator, reason string) error {
	return nil
}

func (f *fakeGarage) version(kind string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.versions[kind]
}

func publishDown(tb testing.TB, js jetstream.JetStream, facility, kind string, version uint64) {
	tb.Helper()
	b, _ := proto.Marshal(&gh.CredentialsReplaced{Kind: kind, Version: version})
	if _, err := js.Publish(context.Background(), natsync.DownSubject(facility, kind), b); err != nil {
		tb.Fatal(err)
	}
}

func TestDownlinkCatchesUpAndFollows(t *testing.T) {
	hub := startHub(t, t.TempDir(), -1)
	defer hub.Shutdown()
	nc, err := nats.Connect(hub.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	// Published while the garage was away: two versions of its permits, another
	// garage's block list.
	publishDown(t, js, "f1", "permits", 1)
	publishDown(t, js, "f1", "permits", 2)
	publishDown(t, js, "f1", "reservations", 7)
	publishDown(t, js, "f2", "blocklist", 9)

	g := &fakeGarage{versions: map[string]uint64{}}
	d := &natsync.Downlink{Facility: "f1", Conn: nc, Garage: g}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the latest documents", func() bool { return g.version("permits") == 2 && g.version("reservations") == 7 })
	if g.version("blocklist") != 0 {
		t.Fatal("received another garage's document")
	}
	publishDown(t, js, "f1", "blocklist", 1)
	waitFor(t, "a new document", func() bool { return g.version("blocklist") == 1 })
	g.mu.Lock()
	n := len(g.applied)
	g.mu.Unlock()
	if n != 3 { // permits v1 was superseded before the garage came back
		t.Fatalf("applied %d documents; want 3", n)
	}
}

func TestCommands(t *testing.T) {
	hub := startHub(t, t.TempDir(), -1)
	defer hub.Shutdown()
	nc, err := nats.Connect(hub.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	g := &fakeGarage{versions: map[string]uint64{}}
	c := &natsync.Commands{Facility: "f1", Conn: nc, Garage: g}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	time.Sleep(50 * time.Millisecond)

	ask := func(verb, body string) natsync.Reply {
		t.Helper()
		m, err := nc.Request(natsync.CommandSubject("f1", verb), []byte(body), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var r natsync.Reply
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		verb, body string
		ok         bool
		code       string
	}{
		{"open", `{"operator":"alice","reason":"intercom","lane":"entry-1"}`, true, ""},
		{"open", `{"operator":"alice","reason":"x","lane":"nope"}`, false, edge.ENOTFOUND},
		{"open", `{"reason":"x","lane":"entry-1"}`, false, edge.EINVALID},
		{"open", `{broken`, false, edge.EINVALID},
		{"open", `{"operator":"a","lane":"entry-1","sneaky":1}`, false, edge.EINVALID},
		{"reset_count", `{"operator":"a","reason":"x","zone":"z"}`, false, edge.EINVALID},
		{"reset_count", `{"operator":"a","reason":"x","zone":"z","occupied":3}`, true, ""},
		{"resend", `{"from":5}`, false, edge.EUNAVAILABLE},
		{"launch", `{"operator":"a"}`, false, edge.ENOTFOUND},
	}
	for _, tt := range tests {
		r := ask(tt.verb, tt.body)
		if r.OK != tt.ok || r.Code != tt.code {
			t.Errorf("%s %s = %+v; want ok %v code %q", tt.verb, tt.body, r, tt.ok, tt.code)
		}
	}
	if len(g.opened) != 1 || g.opened[0] != "cloud:alice|intercom" {
		t.Fatalf("opened = %v; want the cloud operator recorded", g.opened)
	}
}

// TestDownlinkSkipsDocumentsItCannotApply shows that a document the garage refuses (a
// kind it does not know) or that is malformed (its kind is not its subject's) does not
// hold up the documents published after it.
func TestDownlinkSkipsDocumentsItCannotApply(t *testing.T) {
	hub := startHub(t, t.TempDir(), -1)
	defer hub.Shutdown()
	nc, err := nats.Connect(hub.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	publishDown(t, js, "f1", "tariffs", 3)
	b, _ := proto.Marshal(&gh.CredentialsReplaced{Kind: "permits", Version: 9})
	if _, err := js.Publish(context.Background(), natsync.DownSubject("f1", "reservations"), b); err != nil {
		t.Fatal(err)
	}
	publishDown(t, js, "f1", "blocklist", 2)

	g := &fakeGarage{versions: map[string]uint64{}}
	d := &natsync.Downlink{Facility: "f1", Conn: nc, Garage: g}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the block list after the refused documents", func() bool { return g.version("blocklist") == 2 })
	publishDown(t, js, "f1", "permits", 1)
	waitFor(t, "a document published later", func() bool { return g.version("permits") == 1 })
	if v := g.version("permits"); v != 1 {
		t.Errorf("permits version %d; want 1 (the permits document on the reservations subject is dropped)", v)
	}
}

// TestDownlinkPrepaid shows the garage reading the cloud's JSON prepaid document:
// the newest version on start, each payment decoded; a malformed document or one of
// another facility dropped without holding up the next.
func TestDownlinkPrepaid(t *testing.T) {
	hub := startHub(t, t.TempDir(), -1)
	defer hub.Shutdown()
	nc, err := nats.Connect(hub.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	pub := func(body string) {
		t.Helper()
		if _, err := js.Publish(context.Background(), natsync.DownSubject("f1", edge.PrepaidKind), []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	pub(`{"facility":"f1","version":1,"payments":[]}`)
	pub(`{"facility":"f1","version":2,"since":"2026-03-01T00:00:00Z","payments":[
		{"payment_id":"p1","session_id":"s1","plate":"AB-12","amount":450,"currency":"EUR","method":"app","reference":"pi_1","paid_at":"2026-03-02T10:00:00Z"},
		{"payment_id":"p2","session_id":"s2","amount":300,"refunded":300,"currency":"EUR","method":"app","paid_at":"2026-03-02T10:05:00Z"}]}`)

	g := &fakeGarage{versions: map[string]uint64{}}
	d := &natsync.Downlink{Facility: "f1", Conn: nc, Garage: g}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "prepaid version 2", func() bool { return g.version(edge.PrepaidKind) == 2 })
	g.mu.Lock()
	got := g.prepaid
	g.mu.Unlock()
	if len(got) != 1 || len(got[0].Payments) != 2 {
		t.Fatalf("applied %+v; want only version 2 (the newest) with its two payments", got)
	}
	want := edge.PrepaidPayment{PaymentID: "p1", SessionID: "s1", Plate: "AB-12", Amount: 450, Currency: "EUR", Method: "app",
		Reference: "pi_1", PaidAt: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
	if p := got[0].Payments[0]; p != want {
		t.Errorf("payment 0 = %+v; want %+v", p, want)
	}
	if p := got[0].Payments[1]; p.Refunded != 300 {
		t.Errorf("payment 1 refunded %d; want 300", p.Refunded)
	}

	for _, bad := range []string{
		`{"facility":"f2","version":5,"payments":[]}`,                              // another garage's
		`{"facility":"f1","version":6,"payments":[{"session_id":"s","amount":1}]}`, // no payment id
		`{"facility":"f1","version":7,"payments":[{"payment_id":"x","amount":-1}]}`,
		`not json`,
	} {
		pub(bad)
	}
	pub(`{"facility":"f1","version":8,"payments":[{"payment_id":"p3","session_id":"s3","amount":100}]}`)
	waitFor(t, "prepaid version 8 after the malformed ones", func() bool { return g.version(edge.PrepaidKind) == 8 })
	g.mu.Lock()
	n := len(g.prepaid)
	g.mu.Unlock()
	if n != 2 {
		t.Errorf("applied %d prepaid documents; want 2 (versions 2 and 8)", n)
	}
}
