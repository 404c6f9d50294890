package natshub_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud/natshub"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// logBuf collects a test's logs; they are printed if the test fails.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuf) contains(s string) bool { return strings.Contains(l.String(), s) }

// startHub starts an embedded hub in dir on random ports.
func startHub(tb testing.TB, dir string) (*natshub.Hub, *logBuf) {
	tb.Helper()
	logs := &logBuf{}
	h, err := natshub.Start(natshub.Config{
		Dir: dir, Port: -1, LeafPort: -1,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() {
		h.Shutdown()
		if tb.Failed() {
			tb.Logf("hub log:\n%s", logs)
		}
	})
	return h, logs
}

// issue gives facility id credentials on the running hub h.
func issue(tb testing.TB, h *natshub.Hub, id string) (user, secret string) {
	tb.Helper()
	user, secret, err := h.AddFacility(id)
	if err != nil {
		tb.Fatalf("AddFacility(%q): %v", id, err)
	}
	return user, secret
}

// startEdge starts a garage's edge server as the edge controller runs it: JetStream in
// its own domain, and a leaf remote to the hub with the facility's credentials.
func startEdge(tb testing.TB, h *natshub.Hub, facility, user, password string) *server.Server {
	tb.Helper()
	u, err := url.Parse(h.LeafURL())
	if err != nil {
		tb.Fatal(err)
	}
	u.User = url.UserPassword(user, password)
	s, err := server.NewServer(&server.Options{
		ServerName: "edge-" + facility, Host: "127.0.0.1", Port: -1,
		JetStream: true, JetStreamDomain: "fac-" + facility, StoreDir: tb.TempDir(), NoSigs: true,
		LeafNode: server.LeafNodeOpts{
			ReconnectInterval: 100 * time.Millisecond,
			Remotes:           []*server.RemoteLeafOpts{{URLs: []*url.URL{u}}},
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(5 * time.Second) {
		tb.Fatal("edge server not ready")
	}
	tb.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// startConnectedEdge starts an edge server and waits until its leaf is up.
func startConnectedEdge(tb testing.TB, h *natshub.Hub, facility, user, password string) *server.Server {
	tb.Helper()
	s := startEdge(tb, h, facility, user, password)
	waitFor(tb, "the leaf connection of "+facility, func() bool { return s.NumLeafNodes() == 1 })
	return s
}

// edgeConn connects a garage client to its edge server, with the facility's inbox prefix.
func edgeConn(tb testing.TB, edge *server.Server, facility string) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(edge.ClientURL(), nats.CustomInboxPrefix(natshub.InboxPrefix(facility)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// cloudConn is a cloud client of the hub.
func cloudConn(tb testing.TB, h *natshub.Hub) *nats.Conn {
	tb.Helper()
	nc, err := h.Connect()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// waitInterest waits until a server knows of a subscriber for subject.
func waitInterest(tb testing.TB, s *server.Server, subject string) {
	tb.Helper()
	waitFor(tb, "interest in "+subject, func() bool { return s.GlobalAccount().SubscriptionInterest(subject) })
}

// waitLeafInterest waits until the hub holds, on the leaf connection of the edge
// server edge, a subscription that matches subject. Interest in the hub's account is
// not enough in a test with several garages: another garage's wildcard subscription
// (">" is accepted, then filtered message by message) makes the subject look wanted
// before the edge's own subscription has crossed its leaf. The leaf connection's
// subscription and the account's interest are recorded under one lock, so once Leafz
// lists it a message published on the hub reaches the edge.
func waitLeafInterest(tb testing.TB, hub, edge *server.Server, subject string) {
	tb.Helper()
	waitFor(tb, "interest in "+subject+" on the hub's leaf connection from "+edge.Name(), func() bool {
		lz, err := hub.Leafz(&server.LeafzOptions{Subscriptions: true})
		if err != nil {
			tb.Fatalf("Leafz: %v", err)
		}
		for _, l := range lz.Leafs {
			if l.Name != edge.Name() {
				continue
			}
			for _, s := range l.Subs {
				if server.SubjectMatchesFilter(subject, s) {
					return true
				}
			}
		}
		return false
	})
}

func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	tb.Fatalf("timed out waiting for %s", what)
}

// streamMsgs is how many messages a stream of the hub holds.
func streamMsgs(tb testing.TB, h *natshub.Hub, stream string) uint64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := h.JetStream().Stream(ctx, stream)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return info.State.Msgs
}

// event is an encoded envelope and the message that carries it, as the uplink sends it.
func event(tb testing.TB, subjectFacility, envFacility string, seq uint64) *nats.Msg {
	tb.Helper()
	env := &gh.Envelope{FacilityId: envFacility, Seq: seq, EventId: "e", Type: "gate.opened", OccurredAt: timestamppb.Now(),
		Payload: &gh.Envelope_GateOpened{GateOpened: &gh.GateOpened{BarrierId: "b1"}}}
	data, err := proto.Marshal(env)
	if err != nil {
		tb.Fatal(err)
	}
	m := nats.NewMsg(natshub.EventSubject(subjectFacility, env.Type))
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, subjectFacility+":"+itoa(seq))
	return m
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// fakeIngester records what it is given; it fails the calls failing says to fail.
type fakeIngester struct {
	mu        sync.Mutex
	calls     int
	failing   func(call int) bool
	gaps      func(call int) []natshub.Gap
	presented map[string]int // facility:seq → times in any Ingest call
	applied   map[string]int // facility:seq → times in a successful call
}

func newFakeIngester() *fakeIngester {
	return &fakeIngester{presented: map[string]int{}, applied: map[string]int{}}
}

// Ingest implements natshub.Ingester.
func (f *fakeIngester) Ingest(ctx context.Context, envs []*gh.Envelope) (int, int, []natshub.Gap, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	for _, e := range envs {
		f.presented[e.FacilityId+":"+itoa(e.Seq)]++
	}
	if f.failing != nil && f.failing(f.calls) {
		return 0, 0, nil, context.DeadlineExceeded
	}
	applied, dups := 0, 0
	for _, e := range envs {
		k := e.FacilityId + ":" + itoa(e.Seq)
		if f.applied[k] > 0 {
			dups++
		} else {
			applied++
		}
		f.applied[k]++
	}
	var gaps []natshub.Gap
	if f.gaps != nil {
		gaps = f.gaps(f.calls)
	}
	return applied, dups, gaps, nil
}

var _ natshub.Ingester = (*fakeIngester)(nil)

// snapshot returns copies of the counts.
func (f *fakeIngester) snapshot() (presented, applied map[string]int, calls int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	presented, applied = map[string]int{}, map[string]int{}
	for k, v := range f.presented {
		presented[k] = v
	}
	for k, v := range f.applied {
		applied[k] = v
	}
	return presented, applied, f.calls
}

func (f *fakeIngester) appliedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.applied)
}

// runConsume runs h.Consume in the background until the returned stop is called.
func runConsume(tb testing.TB, h *natshub.Hub, ing natshub.Ingester, opts natshub.ConsumeOptions) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Consume(ctx, ing, opts) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("Consume: %v", err)
			}
		})
	}
	tb.Cleanup(stop)
	return stop
}

func hubDir(tb testing.TB, h *natshub.Hub) string {
	tb.Helper()
	return h.Dir()
}
