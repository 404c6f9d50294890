package natshub_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud/natshub"
	"github.com/nats-io/nats.go/jetstream"
)

// TestDownStreamKeepsTheLatestDocumentWithoutAgeLimit shows why a garage offline for a
// week (or a year) still finds its documents: GH_DOWN keeps the latest message of each
// subject on disk with no age, count or size limit that could drop it, and nobody can
// delete it; the documents survive a restart of the hub.
func TestDownStreamKeepsTheLatestDocumentWithoutAgeLimit(t *testing.T) {
	dir := t.TempDir()
	h, _ := startHub(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := h.JetStream().Stream(ctx, natshub.DownStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"Subjects", cfg.Subjects, []string{"gh.fac.*.down.>"}},
		{"Storage", cfg.Storage, jetstream.FileStorage},
		{"Retention", cfg.Retention, jetstream.LimitsPolicy},
		{"MaxAge", cfg.MaxAge, time.Duration(0)},
		{"MaxMsgsPerSubject", cfg.MaxMsgsPerSubject, int64(1)},
		{"MaxMsgs", cfg.MaxMsgs, int64(-1)},
		{"MaxBytes", cfg.MaxBytes, int64(-1)},
		{"Discard", cfg.Discard, jetstream.DiscardOld},
		{"DenyDelete", cfg.DenyDelete, true},
	} {
		if !equal(c.got, c.want) {
			t.Errorf("%s %s = %v; want %v", natshub.DownStream, c.what, c.got, c.want)
		}
	}

	for v := uint64(1); v <= 3; v++ {
		if err := h.PublishDown(ctx, "a", "permits", v, []byte("permits v"+itoa(v))); err != nil {
			t.Fatal(err)
		}
	}
	h.Shutdown()
	h, _ = startHub(t, dir)
	if v, err := h.DownVersion(ctx, "a", "permits"); err != nil || v != 3 {
		t.Fatalf("DownVersion after a restart of the hub = %d, %v; want 3", v, err)
	}
	if n := streamMsgs(t, h, natshub.DownStream); n != 1 {
		t.Fatalf("%s holds %d messages; want 1 (the latest)", natshub.DownStream, n)
	}
}

func equal(a, b any) bool {
	if as, ok := a.([]string); ok {
		bs, _ := b.([]string)
		if len(as) != len(bs) {
			return false
		}
		for i := range as {
			if as[i] != bs[i] {
				return false
			}
		}
		return true
	}
	return a == b
}

// TestPublishDownNext publishes documents as "the next version", also from several
// publishers at once: each gets a version of its own, and the document stored under a
// version is the one made for it.
func TestPublishDownNext(t *testing.T) {
	h, _ := startHub(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	body := func(who string) func(uint64) ([]byte, error) {
		return func(v uint64) ([]byte, error) { return []byte(who + "@" + itoa(v)), nil }
	}
	if v, err := h.DownVersion(ctx, "a", "blocklist"); err != nil || v != 0 {
		t.Fatalf("DownVersion of nothing = %d, %v; want 0", v, err)
	}
	for want := uint64(1); want <= 2; want++ {
		v, err := h.PublishDownNext(ctx, "a", "blocklist", body("seq"))
		if err != nil || v != want {
			t.Fatalf("PublishDownNext = %d, %v; want %d", v, err, want)
		}
	}
	if err := h.PublishDown(ctx, "a", "blocklist", 1, []byte("old")); !errors.Is(err, natshub.ErrStaleVersion) {
		t.Fatalf("PublishDown of version 1 after 2: %v; want ErrStaleVersion", err)
	}
	if _, err := h.PublishDownNext(ctx, "a", "blocklist", func(uint64) ([]byte, error) { return nil, errors.New("no body") }); err == nil {
		t.Fatal("PublishDownNext with a failing encoder succeeded")
	}

	const n = 6
	var wg sync.WaitGroup
	versions := make([]uint64, n)
	for i := range n {
		wg.Go(func() {
			v, err := h.PublishDownNext(ctx, "a", "blocklist", body("p"+strconv.Itoa(i)))
			if err != nil {
				t.Errorf("publisher %d: %v", i, err)
			}
			versions[i] = v
		})
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for i, v := range versions {
		if v < 3 || v > 2+n || seen[v] {
			t.Errorf("publisher %d got version %d; want distinct versions 3..%d (all %v)", i, v, 2+n, versions)
		}
		seen[v] = true
	}
	m, err := h.JetStream().Stream(ctx, natshub.DownStream)
	if err != nil {
		t.Fatal(err)
	}
	last, err := m.GetLastMsgForSubject(ctx, natshub.DownSubject("a", "blocklist"))
	if err != nil {
		t.Fatal(err)
	}
	v := last.Header.Get(natshub.VersionHeader)
	if v != itoa(2+n) {
		t.Fatalf("the hub holds version %s; want %d", v, 2+n)
	}
	for i, pv := range versions {
		if pv == 2+n && string(last.Data) != "p"+strconv.Itoa(i)+"@"+v {
			t.Errorf("version %s holds %q; want publisher %d's document", v, last.Data, i)
		}
	}
}
