package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/edge/boltstore"
	"github.com/gatehouse-parking/gatehouse/edge/config"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestDownlinkCatchUpAfterSIGKILL runs the real binaries: a garage applies the
// documents `gatehouse-cloud publish` sends; it is killed (SIGKILL), and while it is
// down the cloud publishes several versions of its permits and its block list, and is
// refused an older version after a newer one. Restarted, the garage applies the newest
// of each kind and nothing in between, its versions never going backwards; restarted
// again, it applies nothing twice. Its BoltDB holds the newest documents at the end.
func TestDownlinkCatchUpAfterSIGKILL(t *testing.T) {
	cloudBin, edgeBin := buildBinaries(t)
	work := t.TempDir()
	cloud := startCloud(t, cloudBin, work) // data in work/gatehouse-cloud-data, as the commands below find it
	const id = "garage-d"
	creds := issueCredentials(t, cloudBin, filepath.Join(work, defaultDataDir), id, "")
	e := &edgeProc{id: id, cfg: garageConfig(t, id), data: t.TempDir(), log: &syncBuffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gatehouse-edge %s log (all runs):\n%s", id, e.log)
		}
	})
	startConnected := func() {
		t.Helper()
		runEdge(t, edgeBin, e, "--hub-credentials", creds)
		waitFor(t, 20*time.Second, "the garage's leaf connection", func() bool { return metric(e.api, "gatehouse_hub_connected") == 1 })
	}

	docs := t.TempDir()
	permits := func(ids ...string) string {
		var ps []string
		for _, p := range ids {
			ps = append(ps, fmt.Sprintf(`{"id":%q,"holder":"ACME","plates":["P%s"],"until":"2030-01-01T00:00:00Z"}`, p, strings.ToUpper(p)))
		}
		return `{"permits":[` + strings.Join(ps, ",") + `]}`
	}
	blocklist := func(plates ...string) string {
		var bs []string
		for _, p := range plates {
			bs = append(bs, fmt.Sprintf(`{"plate":%q,"reason":"test"}`, p))
		}
		return `{"blocklist":[` + strings.Join(bs, ",") + `]}`
	}
	n := 0
	publish := func(kind, doc string, flags ...string) (string, error) {
		t.Helper()
		n++
		f := filepath.Join(docs, fmt.Sprintf("%d-%s.json", n, kind))
		if err := os.WriteFile(f, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"publish"}, flags...)
		return cloudCommand(cloudBin, work, append(args, id, kind, f)...)
	}
	mustPublish := func(kind, doc string, version uint64, flags ...string) {
		t.Helper()
		out, err := publish(kind, doc, flags...)
		want := fmt.Sprintf("published %s's %s version %d", id, kind, version)
		if err != nil || !strings.Contains(out, want) {
			t.Fatalf("publish %s %s: %v\n%s\nwant %q", kind, doc, err, out, want)
		}
	}

	startConnected()
	mustPublish("permits", permits("a"), 1)
	mustPublish("blocklist", blocklist("BAD1"), 1)
	waitApplied(t, e, map[string]uint64{"permits": 1, "blocklist": 1})

	e.cmd.Process.Kill()
	<-e.done
	t.Logf("SIGKILL of the garage; publishing while it is down")

	mustPublish("permits", permits("a", "b"), 2)
	mustPublish("permits", permits("a", "b", "c"), 3)
	mustPublish("blocklist", blocklist("BAD1", "BAD2"), 5, "--version", "5")
	// From standard input, as the next version.
	cmd := exec.Command(cloudBin, "publish", id, "blocklist", "-")
	cmd.Dir, cmd.Env = work, cleanEnv()
	cmd.Stdin = strings.NewReader(blocklist("BAD2", "BAD3"))
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "blocklist version 6") {
		t.Fatalf("publish from standard input: %v\n%s", err, out)
	}
	// An older version after a newer one is refused, and says so.
	out, err := publish("blocklist", blocklist("OLD"), "--version", "4")
	if err == nil || !strings.Contains(out, "refused: the hub holds garage-d's blocklist version 6, newer than 4") {
		t.Fatalf("publish of version 4 after 6: err %v\n%s\nwant a refusal naming version 6", err, out)
	}
	// The version the hub holds again: nothing published.
	out, err = publish("blocklist", blocklist("OTHER"), "--version", "6")
	if err != nil || !strings.Contains(out, "already holds garage-d's blocklist version 6: nothing published") {
		t.Fatalf("publish of the version held: err %v\n%s", err, out)
	}
	// A document the garage could not apply is refused before it reaches the hub.
	for _, bad := range []struct{ kind, doc, want string }{
		{"tariffs", `{}`, `document kind "tariffs"`},
		{"permits", blocklist("X"), "publish those as their own document"},
		{"permits", `{"permitz":[]}`, "unknown field"},
		{"blocklist", `{"blocklist":[{"reason":"no plate"}]}`, "a plate or a card is required"},
	} {
		if out, err := publish(bad.kind, bad.doc); err == nil || !strings.Contains(out, bad.want) {
			t.Errorf("publish %s %s: err %v\n%s\nwant an error containing %q", bad.kind, bad.doc, err, out, bad.want)
		}
	}

	startConnected()
	waitApplied(t, e, map[string]uint64{"permits": 3, "blocklist": 6})
	got := appliedDocs(t, e)
	want := map[string][]uint64{"permits": {1, 3}, "blocklist": {1, 6}}
	for kind, w := range want {
		if v := versionsOf(got[kind]); !slices.Equal(v, w) {
			t.Errorf("%s versions applied: %v; want %v (the newest on return, nothing in between, never backwards)", kind, v, w)
		}
	}
	if p := got["permits"]; len(p) > 0 && len(p[len(p)-1].Permits) != 3 {
		t.Errorf("permits v3 applied with %d permits; want 3", len(p[len(p)-1].Permits))
	}

	// Restarted again, the garage reads the same documents and applies none of them
	// twice. A new version is the barrier: it comes after them in the hub's stream.
	e.cmd.Process.Signal(syscall.SIGTERM)
	if err := e.wait(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	startConnected()
	mustPublish("permits", permits("c"), 4)
	waitApplied(t, e, map[string]uint64{"permits": 4, "blocklist": 6})
	got = appliedDocs(t, e)
	want = map[string][]uint64{"permits": {1, 3, 4}, "blocklist": {1, 6}}
	for kind, w := range want {
		if v := versionsOf(got[kind]); !slices.Equal(v, w) {
			t.Errorf("after a second restart %s versions applied: %v; want %v", kind, v, w)
		}
	}

	// BoltDB holds the newest documents.
	e.cmd.Process.Signal(syscall.SIGTERM)
	if err := e.wait(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	st := storedState(t, e)
	if st.Versions["permits"] != 4 || st.Versions["blocklist"] != 6 {
		t.Errorf("BoltDB versions %v; want permits 4, blocklist 6", st.Versions)
	}
	if len(st.Permits) != 1 || st.Permits["c"] == nil {
		t.Errorf("BoltDB permits %v; want only c", slices.Collect(maps.Keys(st.Permits)))
	}
	var plates []string
	for _, b := range st.Blocklist {
		plates = append(plates, b.Plate)
	}
	if !slices.Equal(plates, []string{"BAD2", "BAD3"}) {
		t.Errorf("BoltDB block list %v; want [BAD2 BAD3] (version 6)", plates)
	}
	cloud.stop(t)
}

// appliedDocs reads the documents the garage applied, in order, from its outbox
// through its local API (GET /v1/events): each is a credentials.replaced event.
func appliedDocs(t *testing.T, e *edgeProc) map[string][]*gh.CredentialsReplaced {
	t.Helper()
	out := map[string][]*gh.CredentialsReplaced{}
	after := uint64(0)
	for {
		resp, err := http.Get(fmt.Sprintf("%s/v1/events?after=%d", e.api, after))
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Events    []json.RawMessage `json:"events"`
			NextAfter uint64            `json:"next_after"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("GET /v1/events: %v", err)
		}
		for _, raw := range page.Events {
			var env gh.Envelope
			if err := protojson.Unmarshal(raw, &env); err != nil {
				t.Fatalf("event %s: %v", raw, err)
			}
			if d := env.GetCredentialsReplaced(); d != nil {
				out[d.Kind] = append(out[d.Kind], d)
			}
		}
		if len(page.Events) == 0 || page.NextAfter == after {
			return out
		}
		after = page.NextAfter
	}
}

// waitApplied waits until the garage has applied the given version of each kind.
func waitApplied(t *testing.T, e *edgeProc, want map[string]uint64) {
	t.Helper()
	var got map[string][]*gh.CredentialsReplaced
	ok := poll(20*time.Second, func() bool {
		got = appliedDocs(t, e)
		for kind, v := range want {
			vs := versionsOf(got[kind])
			if len(vs) == 0 || vs[len(vs)-1] != v {
				return false
			}
		}
		return true
	})
	if !ok {
		applied := map[string][]uint64{}
		for k, d := range got {
			applied[k] = versionsOf(d)
		}
		t.Fatalf("the garage applied %v; want the last of each to be %v", applied, want)
	}
}

func versionsOf(docs []*gh.CredentialsReplaced) []uint64 {
	var vs []uint64
	for _, d := range docs {
		vs = append(vs, d.Version)
	}
	return vs
}

// storedState reads the stopped garage's state from its BoltDB file.
func storedState(t *testing.T, e *edgeProc) *edge.State {
	t.Helper()
	fac, err := config.Load(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	store, err := boltstore.Open(filepath.Join(e.data, "garage.db"), "", &boltstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	snap, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	st, err := edge.Restore(fac, snap)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
