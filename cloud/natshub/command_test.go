package natshub_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud/natshub"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestCommand(t *testing.T) {
	h, _ := startHub(t, t.TempDir())
	user, secret := issue(t, h, "a")
	issue(t, h, "b")
	edge := startConnectedEdge(t, h, "a", user, secret)
	ncA := edgeConn(t, edge, "a")
	if _, err := ncA.Subscribe("gh.fac.a.cmd.ping", func(m *nats.Msg) { _ = m.Respond(append([]byte("pong:"), m.Data...)) }); err != nil {
		t.Fatal(err)
	}
	if _, err := ncA.Subscribe("gh.fac.a.cmd.silent", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	waitInterest(t, h.Server(), "gh.fac.a.cmd.ping")
	waitInterest(t, h.Server(), "gh.fac.a.cmd.silent")

	for _, tc := range []struct {
		name, facility, verb string
		timeout              time.Duration
		want                 string
		wantErr              error
		within               time.Duration
	}{
		{name: "online", facility: "a", verb: "ping", want: "pong:hi", within: time.Second},
		{name: "offline", facility: "b", verb: "ping", wantErr: natshub.ErrOffline, within: 500 * time.Millisecond},
		{name: "verb without responder", facility: "a", verb: "open-lane", wantErr: natshub.ErrOffline, within: 500 * time.Millisecond},
		{name: "no answer", facility: "a", verb: "silent", timeout: 300 * time.Millisecond, wantErr: natshub.ErrTimeout, within: time.Second},
		{name: "bad facility", facility: "A.b", verb: "ping", wantErr: natshub.ErrInvalidFacility},
		{name: "bad verb", facility: "a", verb: "open.all", wantErr: natshub.ErrInvalidName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			start := time.Now()
			got, err := h.Command(ctx, tc.facility, tc.verb, []byte("hi"))
			took := time.Since(start)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Command(%s, %s) = %q, %v; want %v", tc.facility, tc.verb, got, err, tc.wantErr)
				}
			} else if err != nil || string(got) != tc.want {
				t.Fatalf("Command(%s, %s) = %q, %v; want %q", tc.facility, tc.verb, got, err, tc.want)
			}
			if tc.within > 0 && took > tc.within {
				t.Errorf("Command(%s, %s) took %v; want at most %v", tc.facility, tc.verb, took, tc.within)
			}
		})
	}

	// The garage goes away: its commands fail at once.
	edge.Shutdown()
	edge.WaitForShutdown()
	waitFor(t, "the leaf to go", func() bool { return h.Server().NumLeafNodes() == 0 })
	if _, err := h.Command(context.Background(), "a", "ping", nil); !errors.Is(err, natshub.ErrOffline) {
		t.Fatalf("Command to a stopped garage: %v; want ErrOffline", err)
	}
}

func TestPublishDownReachesAGarageThatConnectsLater(t *testing.T) {
	h, _ := startHub(t, t.TempDir())
	user, secret := issue(t, h, "a")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, d := range []struct {
		facility, kind string
		version        uint64
	}{{"a", "tariffs", 1}, {"a", "tariffs", 2}, {"a", "permits", 1}, {"b", "tariffs", 5}} {
		if err := h.PublishDown(ctx, d.facility, d.kind, d.version, []byte(d.kind+" v"+itoa(d.version))); err != nil {
			t.Fatalf("PublishDown(%s, %s, %d): %v", d.facility, d.kind, d.version, err)
		}
	}
	if err := h.PublishDown(ctx, "a", "tariffs", 1, []byte("old")); !errors.Is(err, natshub.ErrStaleVersion) {
		t.Fatalf("PublishDown of an older version: %v; want ErrStaleVersion", err)
	}
	if err := h.PublishDown(ctx, "a", "tariffs", 2, []byte("tariffs v2")); err != nil {
		t.Fatalf("PublishDown of the same version again: %v; want nil", err)
	}
	if n := streamMsgs(t, h, natshub.DownStream); n != 3 {
		t.Fatalf("%s holds %d messages; want 3 (the latest of each document)", natshub.DownStream, n)
	}

	// The garage connects now and reads its documents through its leaf.
	edge := startConnectedEdge(t, h, "a", user, secret)
	ncA := edgeConn(t, edge, "a")
	js, _ := jetstream.NewWithDomain(ncA, natshub.Domain)
	waitInterest(t, edge, "$JS.hub.API.CONSUMER.CREATE.GH_DOWN.x.gh.fac.a.down.>")
	c, err := js.OrderedConsumer(ctx, natshub.DownStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"gh.fac.a.down.>"}})
	if err != nil {
		t.Fatalf("ordered consumer through the leaf: %v", err)
	}
	got := map[string]string{}
	read := func(n int) {
		t.Helper()
		for len(got) < n {
			batch, err := c.Fetch(n-len(got), jetstream.FetchMaxWait(2*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			k := 0
			for m := range batch.Messages() {
				got[m.Subject()] = m.Headers().Get(natshub.VersionHeader) + ":" + string(m.Data())
				k++
			}
			if k == 0 {
				t.Fatalf("fetched %v; want %d documents", got, n)
			}
		}
	}
	read(2)
	want := map[string]string{"gh.fac.a.down.tariffs": "2:tariffs v2", "gh.fac.a.down.permits": "1:permits v1"}
	for s, w := range want {
		if got[s] != w {
			t.Errorf("%s = %q; want %q", s, got[s], w)
		}
	}
	if len(got) != 2 {
		t.Errorf("garage a read %v; want only its 2 documents", got)
	}

	// A new version reaches the connected garage.
	if err := h.PublishDown(ctx, "a", "tariffs", 3, []byte("tariffs v3")); err != nil {
		t.Fatal(err)
	}
	delete(got, "gh.fac.a.down.tariffs")
	read(2)
	if got["gh.fac.a.down.tariffs"] != "3:tariffs v3" {
		t.Errorf("after an update the garage read %q; want version 3", got["gh.fac.a.down.tariffs"])
	}

	// Direct get of the latest document of one subject works too.
	m, err := ncA.Request("$JS.hub.API.DIRECT.GET.GH_DOWN.gh.fac.a.down.permits", nil, 2*time.Second)
	if err != nil {
		t.Fatalf("direct get through the leaf: %v", err)
	}
	if string(m.Data) != "permits v1" || m.Header.Get(natshub.VersionHeader) != "1" {
		t.Fatalf("direct get = %q (version %q); want permits v1", m.Data, m.Header.Get(natshub.VersionHeader))
	}
}
