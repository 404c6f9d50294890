package natsync_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/edge/boltstore"
	"github.com/gatehouse-parking/gatehouse/edge/natsync"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// layoutJSON is a "layout" document as cloud/httpapi's publishLayout writes it
// (LayoutDocument): the whole facility layout, of which the garage applies the zones'
// capacity and held-back space.
func layoutJSON(facility string, version uint64, zones string) []byte {
	return fmt.Appendf(nil, `{"facility":%q,"version":%d,"name":"Garage","timezone":"UTC","currency":"EUR",`+
		`"levels":[{"id":"L1","name":"Ground","ordinal":0}],"zones":[%s],`+
		`"spots":[{"id":"A-001","zone":"A","label":"1","kind":"standard","features":[]}]}`, facility, version, zones)
}

func publishLayout(tb testing.TB, js jetstream.JetStream, facility string, version uint64, body []byte) {
	tb.Helper()
	msg := nats.NewMsg(natsync.DownSubject(facility, edge.LayoutKind))
	msg.Data = body
	msg.Header.Set("Gh-Version", fmt.Sprint(version))
	if _, err := js.PublishMsg(context.Background(), msg); err != nil {
		tb.Fatal(err)
	}
}

// openGarage opens a real garage with zones A (capacity 20, 4 held back) and B (10).
func openGarage(tb testing.TB, path string) (*edge.Garage, *boltstore.Store) {
	tb.Helper()
	f := &edge.Facility{ID: "f1", Name: "Garage", Timezone: "UTC", Currency: "EUR",
		Levels: []edge.Level{{ID: "L1"}},
		Zones: []edge.Zone{{ID: "A", Level: "L1", Capacity: 20, HeldBack: 4, CountSource: edge.CountLanes},
			{ID: "B", Level: "L1", Capacity: 10, CountSource: edge.CountLanes}}}
	st, err := boltstore.Open(path, f.ID, &boltstore.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	g, err := edge.Open(edge.Config{Facility: f, Store: st})
	if err != nil {
		st.Close()
		tb.Fatal(err)
	}
	return g, st
}

func zoneLimits(g *edge.Garage, id string) (capacity, heldBack int) {
	for _, z := range g.Occupancy() {
		if z.ID == id {
			return z.Capacity, z.HeldBack
		}
	}
	return -1, -1
}

// TestDownlinkAppliesLayout follows the cloud's JSON layout document into a real
// garage: the zones it names take its capacity and held-back space, a zone the garage
// does not have is ignored, a zone it omits keeps its configured figures, a malformed
// document does not hold up the next, and the result survives a restart of the garage.
func TestDownlinkAppliesLayout(t *testing.T) {
	hub := startHub(t, t.TempDir(), -1)
	defer hub.Shutdown()
	nc, err := nats.Connect(hub.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	path := filepath.Join(t.TempDir(), "g.db")
	g, st := openGarage(t, path)

	publishLayout(t, js, "f1", 3, layoutJSON("f1", 3,
		`{"id":"A","level":"L1","name":"Main","kind":"general","capacity":12,"held_back":2},`+
			`{"id":"CLOUD-ONLY","name":"","kind":"ev","capacity":8,"held_back":0}`))
	publishLayout(t, js, "f2", 9, layoutJSON("f2", 9, `{"id":"A","name":"","kind":"general","capacity":1,"held_back":0}`))

	// The garage shows a document's version before the downlink reports it
	// applied (that waits for the commit to be durable): the test waits for
	// the report, as stopping first would cut it off.
	var mu sync.Mutex
	var applied []string
	appliedSoFar := func() string { mu.Lock(); defer mu.Unlock(); return fmt.Sprint(applied) }
	d := &natsync.Downlink{Facility: "f1", Conn: nc, Garage: g,
		Applied: func(kind string, v uint64) {
			mu.Lock()
			applied = append(applied, fmt.Sprintf("%s v%d", kind, v))
			mu.Unlock()
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stop := func() { cancel(); <-done }

	waitFor(t, "layout v3", func() bool { return g.DocumentVersion(edge.LayoutKind) == 3 })
	if c, hb := zoneLimits(g, "A"); c != 12 || hb != 2 {
		t.Fatalf("zone A %d/%d after layout v3; want 12/2", c, hb)
	}
	if c, hb := zoneLimits(g, "B"); c != 10 || hb != 0 {
		t.Fatalf("zone B %d/%d; want its configured 10/0 (not in the document)", c, hb)
	}

	// Not JSON, then another facility's document on our subject: both dropped, and
	// the next good document is applied.
	publishLayout(t, js, "f1", 4, []byte(`{"version":4,"zones":[`))
	publishLayout(t, js, "f1", 5, layoutJSON("f2", 5, `{"id":"A","name":"","kind":"general","capacity":1,"held_back":0}`))
	publishLayout(t, js, "f1", 6, layoutJSON("f1", 6,
		`{"id":"B","name":"","kind":"general","capacity":7,"held_back":3}`))
	waitFor(t, "layout v6", func() bool { return g.DocumentVersion(edge.LayoutKind) == 6 })
	if c, hb := zoneLimits(g, "A"); c != 20 || hb != 4 {
		t.Fatalf("zone A %d/%d after v6 omits it; want its configured 20/4", c, hb)
	}
	if c, hb := zoneLimits(g, "B"); c != 7 || hb != 3 {
		t.Fatalf("zone B %d/%d after v6; want 7/3", c, hb)
	}
	waitFor(t, "layout v6 reported", func() bool { return strings.Contains(appliedSoFar(), "layout v6") })
	stop()
	if got := appliedSoFar(); got != "[layout v3 layout v6]" {
		t.Fatalf("applied %v; want [layout v3 layout v6]", got)
	}

	// Restart: the garage holds v6 without the hub.
	if err := g.Sync(); err != nil {
		t.Fatal(err)
	}
	st.Close()
	g, st = openGarage(t, path)
	defer st.Close()
	if v := g.DocumentVersion(edge.LayoutKind); v != 6 {
		t.Fatalf("layout version %d after restart; want 6", v)
	}
	if c, hb := zoneLimits(g, "B"); c != 7 || hb != 3 {
		t.Fatalf("zone B %d/%d after restart; want 7/3", c, hb)
	}
}
