package natshub_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud/natshub"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestIsolation shows that garage A's credentials give access to A's subjects only.
func TestIsolation(t *testing.T) {
	h, logs := startHub(t, t.TempDir())
	userA, secretA := issue(t, h, "a")
	userB, secretB := issue(t, h, "b")
	edgeA := startConnectedEdge(t, h, "a", userA, secretA)
	edgeB := startConnectedEdge(t, h, "b", userB, secretB)
	ncA, ncB := edgeConn(t, edgeA, "a"), edgeConn(t, edgeB, "b")
	jsA, _ := jetstream.NewWithDomain(ncA, natshub.Domain)
	jsB, _ := jetstream.NewWithDomain(ncB, natshub.Domain)
	cloud := cloudConn(t, h)
	hub := h.Server()
	waitInterest(t, edgeA, "gh.fac.a.evt.x")
	waitInterest(t, edgeB, "gh.fac.b.evt.x")

	ctx := func(d time.Duration) context.Context {
		c, cancel := context.WithTimeout(context.Background(), d)
		t.Cleanup(cancel)
		return c
	}

	t.Run("A cannot publish B's events", func(t *testing.T) {
		before := streamMsgs(t, h, natshub.EventsStream)
		if _, err := jsA.PublishMsg(ctx(time.Second), event(t, "b", "b", 1)); err == nil {
			t.Fatal("A's JetStream publish to gh.fac.b.evt.gate.opened was acknowledged")
		}
		if err := ncA.Publish("gh.fac.b.evt.gate.opened", event(t, "b", "b", 2).Data); err != nil {
			t.Fatal(err)
		}
		if err := ncA.Flush(); err != nil {
			t.Fatal(err)
		}
		// B's own publish goes through: the path works, the permission is what stops A.
		if _, err := jsB.PublishMsg(ctx(5*time.Second), event(t, "b", "b", 3)); err != nil {
			t.Fatalf("B's publish of its own event: %v", err)
		}
		if n := streamMsgs(t, h, natshub.EventsStream); n != before+1 {
			t.Fatalf("%s holds %d messages; want %d (B's only)", natshub.EventsStream, n, before+1)
		}
	})

	t.Run("A cannot receive B's downlink or commands", func(t *testing.T) {
		var subsA []*nats.Subscription
		for _, s := range []string{"gh.fac.b.down.>", "gh.fac.b.cmd.>", "gh.fac.b.cmd.open", "gh.fac.>", ">"} {
			sub, err := ncA.SubscribeSync(s)
			if err != nil {
				t.Fatal(err)
			}
			subsA = append(subsA, sub)
		}
		subB, err := ncB.SubscribeSync("gh.fac.b.>")
		if err != nil {
			t.Fatal(err)
		}
		if err := ncA.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := ncB.Flush(); err != nil {
			t.Fatal(err)
		}
		// B's own subscription must have crossed B's leaf: interest in the hub's account
		// alone is already there from A's ">" (see waitLeafInterest).
		waitLeafInterest(t, hub, edgeB, "gh.fac.b.down.tariffs")
		waitLeafInterest(t, hub, edgeA, "gh.fac.a.cmd.marker")
		for _, s := range []string{"gh.fac.b.down.tariffs", "gh.fac.b.cmd.open"} {
			if err := cloud.Publish(s, []byte("for B only")); err != nil {
				t.Fatal(err)
			}
			m, err := subB.NextMsg(5 * time.Second)
			if err != nil {
				t.Fatalf("B did not receive %s: %v", s, err)
			}
			if m.Subject != s {
				t.Fatalf("B received %s; want %s", m.Subject, s)
			}
		}
		// A marker for A, published after B's messages on the same connection, crosses
		// A's leaf after anything of B's would have: once A's ">" has it, A's other
		// subscriptions hold whatever of B's reached A.
		if err := cloud.Publish("gh.fac.a.cmd.marker", []byte("for A")); err != nil {
			t.Fatal(err)
		}
		all := subsA[len(subsA)-1]
		for {
			m, err := all.NextMsg(5 * time.Second)
			if err != nil {
				t.Fatalf("A did not receive its own marker: %v", err)
			}
			if m.Subject == "gh.fac.a.cmd.marker" {
				break
			}
			t.Errorf("A's subscription %q received %q", all.Subject, m.Subject)
		}
		for _, sub := range subsA[:len(subsA)-1] {
			for {
				m, err := sub.NextMsg(time.Millisecond)
				if err != nil {
					break
				}
				if m.Subject != "gh.fac.a.cmd.marker" {
					t.Errorf("A's subscription %q received %q", sub.Subject, m.Subject)
				}
			}
		}
	})

	t.Run("A cannot read B's downlink through JetStream", func(t *testing.T) {
		if err := h.PublishDown(ctx(5*time.Second), "b", "tariffs", 1, []byte("B's tariffs")); err != nil {
			t.Fatal(err)
		}
		for _, filter := range []string{"gh.fac.b.down.>", "gh.fac.*.down.>", "gh.fac.>"} {
			c, err := jsA.OrderedConsumer(ctx(400*time.Millisecond), natshub.DownStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
			if err == nil {
				if msgs, ferr := c.Fetch(1, jetstream.FetchMaxWait(300*time.Millisecond)); ferr == nil {
					for m := range msgs.Messages() {
						t.Errorf("A read %s through an ordered consumer filtered on %s", m.Subject(), filter)
					}
				}
			}
		}
		// The rest of the hub's JetStream API is closed to a garage.
		for _, subj := range []string{
			"$JS.hub.API.STREAM.INFO." + natshub.EventsStream,
			"$JS.hub.API.STREAM.PURGE." + natshub.EventsStream,
			"$JS.hub.API.STREAM.DELETE." + natshub.DownStream,
			"$JS.hub.API.CONSUMER.LIST." + natshub.DownStream,
			"$JS.hub.API.DIRECT.GET." + natshub.DownStream + ".gh.fac.b.down.tariffs",
			"$JS.hub.API.STREAM.MSG.GET." + natshub.DownStream,
		} {
			if m, err := ncA.Request(subj, []byte(`{"last_by_subj":"gh.fac.b.down.tariffs"}`), 200*time.Millisecond); err == nil {
				t.Errorf("A's request to %s was answered: %q", subj, m.Data)
			}
		}
		if n := streamMsgs(t, h, natshub.EventsStream); n == 0 {
			t.Errorf("%s was purged", natshub.EventsStream)
		}
	})

	t.Run("a modified edge with A's credentials is cut off by the hub", func(t *testing.T) {
		before := streamMsgs(t, h, natshub.EventsStream)
		for _, tc := range []struct{ name, send, want string }{
			{"publish B's event", "LMSG gh.fac.b.evt.gate.opened 5\r\nforge\r\n", `Permissions Violation for Publish to "gh.fac.b.evt.gate.opened"`},
			{"subscribe to B's commands", "LS+ gh.fac.b.cmd.open\r\n", `Permissions Violation for Subscription to "gh.fac.b.cmd.open"`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got := rogueLeaf(t, h.LeafURL(), userA, secretA, tc.send)
				if !strings.Contains(got, tc.want) {
					t.Fatalf("the hub answered %q; want an error containing %q", got, tc.want)
				}
			})
		}
		if n := streamMsgs(t, h, natshub.EventsStream); n != before {
			t.Fatalf("%s holds %d messages; want %d", natshub.EventsStream, n, before)
		}
		waitFor(t, "the violation in the hub's log", func() bool { return logs.contains(`Publish Violation on \"gh.fac.b.evt.gate.opened\"`) })
	})

	t.Run("a forged envelope for B on A's subject is not ingested", func(t *testing.T) {
		ing := newFakeIngester()
		if _, err := jsA.PublishMsg(ctx(5*time.Second), event(t, "a", "b", 7)); err != nil {
			t.Fatal(err)
		}
		forgedID := event(t, "a", "a", 8)
		forgedID.Header.Set(jetstream.MsgIDHeader, "b:8")
		if _, err := jsA.PublishMsg(ctx(5*time.Second), forgedID); err != nil {
			t.Fatal(err)
		}
		if _, err := jsA.PublishMsg(ctx(5*time.Second), event(t, "a", "a", 9)); err != nil {
			t.Fatal(err)
		}
		before := h.Stats().Invalid
		stop := runConsume(t, h, ing, natshub.ConsumeOptions{Durable: "isolation"})
		waitFor(t, "a:9 ingested", func() bool { _, applied, _ := ing.snapshot(); return applied["a:9"] == 1 })
		stop()
		_, applied, _ := ing.snapshot()
		for _, k := range []string{"b:7", "a:8"} {
			if applied[k] != 0 {
				t.Errorf("forged event %s was ingested", k)
			}
		}
		if got := h.Stats().Invalid - before; got != 2 {
			t.Errorf("Stats().Invalid grew by %d; want 2", got)
		}
		if !logs.contains("forged") {
			t.Error("the hub did not log the forged envelope")
		}
	})

	t.Run("wrong credentials are refused", func(t *testing.T) {
		creds, err := natshub.LoadCredentials(hubDir(t, h))
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ name, user, password string }{
			{"wrong password", userA, secretB},
			{"unknown user", "fac-zzz", secretA},
			{"the cloud user as a leaf", natshub.CloudUser, creds.CloudPassword},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got := rogueLeaf(t, h.LeafURL(), tc.user, tc.password, "")
				if !strings.Contains(got, "Authorization Violation") {
					t.Fatalf("the hub answered %q; want an Authorization Violation", got)
				}
			})
		}
		// A real edge server with a wrong password never gets its leaf up.
		bad := startEdge(t, h, "a", userA, "not-the-password")
		time.Sleep(500 * time.Millisecond)
		if n := bad.NumLeafNodes(); n != 0 {
			t.Fatalf("edge with a wrong password has %d leaf connections", n)
		}
		// A garage's credentials are for leaf connections only.
		if nc, err := nats.Connect(h.ClientURL(), nats.UserInfo(userA, secretA)); err == nil {
			nc.Close()
			t.Fatal("A's credentials were accepted on the client port")
		}
	})
}

// rogueLeaf speaks the leafnode protocol by hand, as a modified edge could, with user
// and password; it sends send once connected and returns what the hub answered, up to
// the connection's close or its first error.
func rogueLeaf(tb testing.TB, leafURL, user, password, send string) string {
	tb.Helper()
	u, err := url.Parse(leafURL)
	if err != nil {
		tb.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "INFO ") {
		tb.Fatalf("first line from the hub %q, %v; want INFO", line, err)
	}
	connect, _ := json.Marshal(map[string]any{"user": user, "pass": password, "name": "rogue", "headers": true, "protocol": 1})
	if _, err := conn.Write([]byte("CONNECT " + string(connect) + "\r\nPING\r\n")); err != nil {
		tb.Fatal(err)
	}
	sent := false
	var got strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "reset") {
				return got.String()
			}
			tb.Fatalf("reading from the hub: %v (got %q)", err, got.String())
		}
		switch {
		case strings.HasPrefix(line, "-ERR"):
			got.WriteString(line)
			return got.String()
		case strings.HasPrefix(line, "PING"):
			_, _ = conn.Write([]byte("PONG\r\n"))
		case strings.HasPrefix(line, "PONG") && !sent:
			sent = true
			if send == "" {
				return "connected"
			}
			if _, err := conn.Write([]byte(send + "PING\r\n")); err != nil {
				return got.String()
			}
		case strings.HasPrefix(line, "PONG") && sent:
			return "accepted: " + got.String()
		}
	}
}
