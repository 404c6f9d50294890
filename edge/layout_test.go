package edge_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/gatehouse-parking/gatehouse/edge"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
)

func intp(n int) *int { return &n }

// zone returns the garage's view of a zone.
func (h *harness) zone(id string) edge.ZoneView {
	h.t.Helper()
	for _, z := range h.g.Occupancy() {
		if z.ID == id {
			return z
		}
	}
	h.t.Fatalf("no zone %s", id)
	return edge.ZoneView{}
}

// entry presents a plate at the entry lane and returns the decision's reason; an
// allowed vehicle drives in, a refused one backs off the loop.
func (h *harness) entry(p string) string {
	h.t.Helper()
	v := h.present("in", func() { h.plate("in-cam", p, 0.9) })
	if v.Decision == nil {
		h.t.Fatalf("entry of %s: no decision", p)
	}
	if v.Decision.Allowed {
		h.passThrough("in")
	} else {
		h.loop("in-arm", false)
	}
	return v.Decision.Reason
}

func (h *harness) limits(id string) (capacity, heldBack int) {
	h.t.Helper()
	z := h.zone(id)
	return z.Capacity, z.HeldBack
}

// TestApplyLayout shows the cloud's layout document overriding the configured
// capacity and held-back space of zones (Z: 10 with 2 held back; EV: 3) for the
// lot-full decision, the zone view and the over-capacity alert, idempotently by version,
// and surviving a restart.
func TestApplyLayout(t *testing.T) {
	ctx := context.Background()
	var logs bytes.Buffer
	h := newHarness(t, nil)
	h.log = slog.New(slog.NewTextHandler(&logs, nil))
	h.reopen()

	// Z shrinks to 5 with 1 held back; GONE is not a zone of this garage; EV is not named.
	doc := edge.Layout{Version: 2, Zones: []edge.LayoutZone{
		{ID: "Z", Capacity: intp(5), HeldBack: intp(1)},
		{ID: "GONE", Capacity: intp(40), HeldBack: intp(0)},
	}}
	if ok, err := h.g.ApplyLayout(ctx, doc); err != nil || !ok {
		t.Fatalf("ApplyLayout(v2) = %v, %v; want applied", ok, err)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), "GONE") {
		t.Fatalf("log %q; want one warning naming zone GONE", logs.String())
	}
	evs := h.events()
	got := evs[len(evs)-1].GetLayoutApplied()
	if got == nil || got.Version != 2 || len(got.Zones) != 1 || got.Zones[0].ZoneId != "Z" ||
		got.Zones[0].Capacity != 5 || got.Zones[0].HeldBack != 1 {
		t.Fatalf("last event %v; want layout.applied v2 with Z 5/1 only", evs[len(evs)-1])
	}
	if c := got.Configured; len(c) != 1 || c[0].ZoneId != "EV" || c[0].Capacity != 3 || c[0].HeldBack != 0 {
		t.Fatalf("layout.applied configured %v; want EV 3/0 (the zone the document omits)", c)
	}
	check := func(what string, zone string, capacity, heldBack int) {
		t.Helper()
		if c, hb := h.limits(zone); c != capacity || hb != heldBack {
			t.Fatalf("%s: zone %s capacity %d held back %d; want %d, %d", what, zone, c, hb, capacity, heldBack)
		}
	}
	check("v2", "Z", 5, 1)
	check("v2 omits EV", "EV", 3, 0)
	if z := h.zone("Z"); z.Available != 5 || z.AvailableWalkIn != 4 {
		t.Fatalf("zone Z %+v; want 5 available, 4 for walk-ins", z)
	}

	// Redelivery and older versions change nothing.
	if ok, err := h.g.ApplyLayout(ctx, doc); err != nil || ok {
		t.Fatalf("same version again = %v, %v; want ignored", ok, err)
	}
	old := edge.Layout{Version: 1, Zones: []edge.LayoutZone{{ID: "Z", Capacity: intp(50), HeldBack: intp(0)}}}
	if ok, err := h.g.ApplyLayout(ctx, old); err != nil || ok {
		t.Fatalf("older version = %v, %v; want ignored", ok, err)
	}
	check("after v1", "Z", 5, 1)
	if v := h.g.DocumentVersion(edge.LayoutKind); v != 2 {
		t.Fatalf("layout version %d; want 2", v)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Fatalf("%d warnings after redelivery; want still 1", n)
	}

	// Lot full at the new capacity: with 4 inside, walk-ins are refused (5-1 taken),
	// a permit takes the held-back space, then even a reservation is refused. With the
	// configured 10 spaces all three would enter.
	if err := h.g.ResetCount(ctx, "Z", 4, "op", "count"); err != nil {
		t.Fatal(err)
	}
	lotFull := func(what string) {
		t.Helper()
		if r := h.entry("XY99ZZ"); r != "lot_full" {
			t.Fatalf("%s: walk-in with 4 of 5 taken, 1 held back: %q; want lot_full", what, r)
		}
	}
	lotFull("v2")
	if r := h.entry("AB123CD"); r != "permit" {
		t.Fatalf("permit into held-back space: %q; want permit", r)
	}
	if r := h.entry("RES777"); r != "lot_full" {
		t.Fatalf("reservation with 5 of 5 taken: %q; want lot_full", r)
	}
	if err := h.g.ResetCount(ctx, "Z", 6, "op", "count"); edge.ErrorCode(err) != edge.EINVALID {
		t.Fatalf("ResetCount above the new capacity: err = %v; want invalid", err)
	}
	h.checkConsistent()

	// A restart keeps the cloud's figures, and replaying the outbox alone gives them.
	h.reopen()
	check("after restart", "Z", 5, 1)
	if err := h.g.ResetCount(ctx, "Z", 4, "op", "count"); err != nil {
		t.Fatal(err)
	}
	lotFull("after restart")
	replayed, err := edge.Replay(h.f, h.events())
	if err != nil {
		t.Fatal(err)
	}
	zc, _ := h.f.Zone("Z")
	if zl := replayed.ZoneLimits(zc); zl != (edge.ZoneLimits{Capacity: 5, HeldBack: 1}) {
		t.Fatalf("replayed Z limits %+v; want 5/1", zl)
	}
	h.checkConsistent()

	// A capacity without held-back space keeps the configured 2; a capacity below the
	// count raises the over-capacity alert.
	if ok, err := h.g.ApplyLayout(ctx, edge.Layout{Version: 3, Zones: []edge.LayoutZone{{ID: "Z", Capacity: intp(3)}}}); err != nil || !ok {
		t.Fatalf("ApplyLayout(v3) = %v, %v", ok, err)
	}
	check("v3", "Z", 3, 2)
	if !hasAlert(h.g.Alerts(), edge.AlertOverCapacity, "Z") {
		t.Fatalf("alerts %+v; want Z over capacity (4 inside, 3 spaces)", h.g.Alerts())
	}
	// Held back never exceeds capacity.
	if ok, err := h.g.ApplyLayout(ctx, edge.Layout{Version: 4, Zones: []edge.LayoutZone{{ID: "Z", Capacity: intp(1)}}}); err != nil || !ok {
		t.Fatalf("ApplyLayout(v4) = %v, %v", ok, err)
	}
	check("v4", "Z", 1, 1)

	// A version that no longer names Z gives it back its configured figures.
	if ok, err := h.g.ApplyLayout(ctx, edge.Layout{Version: 5}); err != nil || !ok {
		t.Fatalf("ApplyLayout(v5) = %v, %v", ok, err)
	}
	check("v5", "Z", 10, 2)
	if hasAlert(h.g.Alerts(), edge.AlertOverCapacity, "Z") {
		t.Fatalf("alerts %+v; want Z back within capacity", h.g.Alerts())
	}
	if r := h.entry("XY99ZZ"); r != "transient" {
		t.Fatalf("walk-in at 4 of 10: %q; want transient", r)
	}
	h.checkConsistent()
	h.reopen()
	check("v5 after restart", "Z", 10, 2)
	h.checkConsistent()
}

func hasAlert(as []edge.Alert, code, zone string) bool {
	for _, a := range as {
		if a.Code == code && a.Zone == zone {
			return true
		}
	}
	return false
}

// TestApplyLayoutRefusesMalformed shows that a document the garage cannot apply is
// refused as invalid and records nothing.
func TestApplyLayoutRefusesMalformed(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	for _, tc := range []struct {
		name string
		doc  edge.Layout
	}{
		{"version 0", edge.Layout{Zones: []edge.LayoutZone{{ID: "Z", Capacity: intp(5)}}}},
		{"negative capacity", edge.Layout{Version: 1, Zones: []edge.LayoutZone{{ID: "Z", Capacity: intp(-1)}}}},
		{"negative held back", edge.Layout{Version: 1, Zones: []edge.LayoutZone{{ID: "Z", HeldBack: intp(-1)}}}},
		{"zone twice", edge.Layout{Version: 1, Zones: []edge.LayoutZone{{ID: "Z", Capacity: intp(5)}, {ID: "Z", Capacity: intp(6)}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seq := h.g.Seq()
			if ok, err := h.g.ApplyLayout(ctx, tc.doc); ok || edge.ErrorCode(err) != edge.EINVALID {
				t.Fatalf("ApplyLayout = %v, %v; want refused as invalid", ok, err)
			}
			if h.g.Seq() != seq {
				t.Fatalf("seq %d after a refused document; want %d", h.g.Seq(), seq)
			}
		})
	}
	if c, hb := h.limits("Z"); c != 10 || hb != 2 {
		t.Fatalf("Z %d/%d; want the configured 10/2", c, hb)
	}
}

// TestReplayRejectsBackwardsLayout shows that an outbox whose layout versions go
// backwards does not replay: Apply holds the rule, not only ApplyLayout.
func TestReplayRejectsBackwardsLayout(t *testing.T) {
	h := newHarness(t, nil)
	if _, err := h.g.ApplyLayout(context.Background(), edge.Layout{Version: 2}); err != nil {
		t.Fatal(err)
	}
	evs := h.events()
	ev := evs[len(evs)-1]
	back := &gh.Envelope{FacilityId: ev.FacilityId, Seq: ev.Seq + 1, EventId: "x", OccurredAt: ev.OccurredAt}
	back.SetPayload(&gh.LayoutApplied{Version: 1})
	if _, err := edge.Replay(h.f, append(evs, back)); err == nil {
		t.Fatal("Replay accepted a layout version going backwards")
	}
}
