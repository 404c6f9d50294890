package edge_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
)

func TestTailgating(t *testing.T) {
	for _, lane := range []string{"in", "out"} {
		t.Run(lane, func(t *testing.T) {
			h := newHarness(t, nil)
			h.g.ResetCount(context.Background(), "Z", 5, "op", "start")
			if lane == "in" {
				h.present("in", func() { h.plate("in-cam", "XY99ZZ", 0.9) })
			} else {
				h.present("out", func() { h.send(edge.DeviceEvent{Device: "out-tix", Kind: edge.CardPresented, Code: "C-1"}) })
			}
			seq := h.g.Seq()
			bar := lane + "-bar"
			h.arm(bar, edge.PositionUp)
			h.loop(lane+"-safe", true)
			h.loop(lane+"-arm", false)
			h.loop(lane+"-safe", false) // first car through
			if h.lastCommand(bar) != "lower" {
				t.Fatal("barrier not lowered after the passage")
			}
			h.loop(lane+"-safe", true) // second car follows under the closing arm
			if h.lastCommand(bar) != "raise" {
				t.Fatal("safety loop did not hold the arm up")
			}
			h.loop(lane+"-safe", false)
			if h.lastCommand(bar) != "lower" {
				t.Fatal("barrier not lowered after the tailgater")
			}
			h.arm(bar, edge.PositionDown)
			if !has(h.alertsAfter(seq), edge.AlertTailgating) {
				t.Errorf("alerts %v; want tailgating", h.alertsAfter(seq))
			}
			want := 7
			if lane == "out" {
				want = 3
			}
			if n := h.occupied("Z"); n != want {
				t.Errorf("occupancy = %d; want %d (both cars counted)", n, want)
			}
			h.checkConsistent()
		})
	}
}

func TestBarrierFault(t *testing.T) {
	for _, mode := range []edge.FailMode{edge.FailSecure, edge.FailOpen} {
		t.Run(string(mode), func(t *testing.T) {
			h := newHarness(t, func(f *edge.Facility) { f.Lanes[0].FailMode = mode })
			h.present("in", func() { h.plate("in-cam", "XY99ZZ", 0.9) })
			seq := h.g.Seq()
			// The arm never reports up: retried BarrierRetries times, then degraded.
			for range 3 {
				h.advance(3 * time.Second)
			}
			if n := len(h.bars["in-bar"].Commands()); n < 3 {
				t.Errorf("barrier commands = %d; want the first and 2 retries", n)
			}
			v := h.lane("in")
			if v.Status != "degraded" {
				t.Fatalf("lane status = %s; want degraded", v.Status)
			}
			if !has(h.alertsAfter(seq), edge.AlertBarrierFault) {
				t.Fatalf("alerts %v; want barrier.fault", h.alertsAfter(seq))
			}
			if len(h.g.Alerts()) == 0 {
				t.Fatal("no active alert for a faulty barrier")
			}
			// The arm comes up late: the car goes through and the lane recovers.
			h.passThrough("in")
			if v := h.lane("in"); v.Status != "ok" {
				t.Errorf("lane status after recovery = %s; want ok", v.Status)
			}
			if len(h.g.Alerts()) != 0 {
				t.Errorf("active alerts after recovery = %v", h.g.Alerts())
			}
			if h.occupied("Z") != 1 {
				t.Errorf("occupancy = %d; want 1", h.occupied("Z"))
			}
			h.checkConsistent()
		})
	}
}

func TestDegradedFailSecureLaneRefuses(t *testing.T) {
	h := newHarness(t, nil)
	h.present("in", func() {})
	h.arm("in-bar", edge.PositionFault)
	v := h.present("in", func() { h.plate("in-cam", "XY99ZZ", 0.9) })
	if v.Decision == nil || v.Decision.Reason != "lane_out_of_service" {
		t.Fatalf("decision = %+v; want lane_out_of_service", v.Decision)
	}
	h.checkConsistent()
}

func TestStuckLoop(t *testing.T) {
	h := newHarness(t, nil)
	h.loop("in-arm", true)
	seq := h.g.Seq()
	h.advance(4 * time.Minute)
	if h.lane("in").Status != "ok" {
		t.Fatal("lane degraded before the stuck-loop time")
	}
	h.advance(2 * time.Minute)
	if h.lane("in").Status != "degraded" || !has(h.alertsAfter(seq), edge.AlertLoopStuck) {
		t.Fatalf("lane %+v, alerts %v; want degraded with loop.stuck", h.lane("in"), h.alertsAfter(seq))
	}
	h.loop("in-arm", false)
	if h.lane("in").Status != "ok" || len(h.g.Alerts()) != 0 {
		t.Fatalf("after the loop cleared: lane %s, alerts %v", h.lane("in").Status, h.g.Alerts())
	}
	h.checkConsistent()
}

func TestVehicleBacksOut(t *testing.T) {
	h := newHarness(t, nil)
	h.present("in", func() { h.plate("in-cam", "XY99ZZ", 0.9) })
	h.arm("in-bar", edge.PositionUp)
	h.loop("in-arm", false) // reversed away without touching the safety loop
	h.advance(31 * time.Second)
	if h.lastCommand("in-bar") != "lower" {
		t.Fatal("barrier left up after the vehicle did not pass")
	}
	h.arm("in-bar", edge.PositionDown)
	if h.occupied("Z") != 0 || len(h.g.OpenSessions()) != 0 {
		t.Fatalf("occupancy %d sessions %d; want none", h.occupied("Z"), len(h.g.OpenSessions()))
	}
	// Backing off the arming loop before any decision leaves nothing behind.
	h.loop("in-arm", true)
	h.loop("in-arm", false)
	if st := h.lane("in").State; st != "idle" {
		t.Fatalf("lane state = %s; want idle", st)
	}
	h.checkConsistent()
}

func TestNoCredentialAlert(t *testing.T) {
	h := newHarness(t, nil)
	h.loop("in-arm", true)
	seq := h.g.Seq()
	h.advance(61 * time.Second)
	if !has(h.alertsAfter(seq), edge.AlertNoCredential) {
		t.Fatalf("alerts %v; want %s", h.alertsAfter(seq), edge.AlertNoCredential)
	}
}

func TestManualOpen(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	if err := h.g.OpenLane(ctx, "in", "alice", " "); edge.ErrorCode(err) != edge.EINVALID {
		t.Fatalf("OpenLane without reason: err = %v; want invalid", err)
	}
	if err := h.g.OpenLane(ctx, "nope", "alice", "x"); edge.ErrorCode(err) != edge.ENOTFOUND {
		t.Fatalf("OpenLane unknown lane: err = %v; want not_found", err)
	}
	h.loop("in-arm", true)
	if err := h.g.OpenLane(ctx, "in", "alice", "ticket printer jammed"); err != nil {
		t.Fatal(err)
	}
	h.passThrough("in")
	var audited bool
	for _, ev := range h.events() {
		if m := ev.GetGateManualOpen(); m != nil && m.Operator == "alice" && m.Reason == "ticket printer jammed" {
			audited = true
		}
	}
	if !audited {
		t.Fatal("manual open not audited")
	}
	if h.occupied("Z") != 1 || len(h.g.OpenSessions()) != 1 {
		t.Fatalf("occupancy %d sessions %d; want 1 and 1", h.occupied("Z"), len(h.g.OpenSessions()))
	}
	// At the exit an operator lets out a car with a fee due: the stay ends unpaid.
	h.advance(3 * time.Hour)
	h.present("out", func() {
		h.send(edge.DeviceEvent{Device: "out-tix", Kind: edge.TicketPresented, Code: h.g.OpenSessions()[0].Ticket})
	})
	if d := h.lane("out").Decision; d == nil || d.Reason != "fee_due" {
		t.Fatalf("exit decision = %+v; want fee_due", d)
	}
	if err := h.g.OpenLane(ctx, "out", "bob", "driver has no card, invoiced"); err != nil {
		t.Fatal(err)
	}
	h.passThrough("out")
	var ended bool
	for _, ev := range h.events() {
		if e := ev.GetSessionEnded(); e != nil && e.Reason == "operator" && e.FeeTotal == 600 && e.Paid == 0 {
			ended = true
		}
	}
	if !ended {
		t.Fatal("operator exit not recorded with its unpaid fee")
	}
	h.checkConsistent()
}

func TestCountNeverNegative(t *testing.T) {
	h := newHarness(t, nil)
	seq := h.g.Seq()
	// A permit holder whose entry was never seen leaves (soft anti-passback).
	h.present("out", func() { h.send(edge.DeviceEvent{Device: "out-tix", Kind: edge.CardPresented, Code: "C-1"}) })
	h.passThrough("out")
	if n := h.occupied("Z"); n != 0 {
		t.Fatalf("occupancy = %d; want 0", n)
	}
	if a := h.alertsAfter(seq); !has(a, edge.AlertClamped) || !has(a, edge.AlertAntiPassback) {
		t.Fatalf("alerts %v; want clamped and antipassback", a)
	}
	h.checkConsistent()
}

func TestOverCapacityAlert(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	h.g.ResetCount(ctx, "Z", 10, "op", "full")
	h.loop("in-arm", true)
	if err := h.g.OpenLane(ctx, "in", "op", "fire brigade"); err != nil {
		t.Fatal(err)
	}
	h.passThrough("in")
	if h.occupied("Z") != 11 {
		t.Fatalf("occupancy = %d; want 11", h.occupied("Z"))
	}
	if len(h.g.Alerts()) != 1 || h.g.Alerts()[0].Code != edge.AlertOverCapacity {
		t.Fatalf("alerts = %+v; want over capacity", h.g.Alerts())
	}
	if err := h.g.ResetCount(ctx, "Z", 11, "op", "x"); edge.ErrorCode(err) != edge.EINVALID {
		t.Fatalf("reset above capacity: err = %v; want invalid", err)
	}
	if err := h.g.ResetCount(ctx, "Z", 9, "op", "recount"); err != nil {
		t.Fatal(err)
	}
	if len(h.g.Alerts()) != 0 {
		t.Fatalf("alerts after reset = %+v; want none", h.g.Alerts())
	}
	h.checkConsistent()
}

func TestSpotSensors(t *testing.T) {
	h := newHarness(t, nil)
	for _, s := range []string{"EV1", "EV2", "EV2", "EV3"} { // EV2 repeats itself
		h.send(edge.DeviceEvent{Device: "s", Kind: edge.SpotChanged, Code: s, Occupied: true})
	}
	h.send(edge.DeviceEvent{Device: "s1", Kind: edge.SpotChanged, Code: "EV1", Occupied: false})
	h.send(edge.DeviceEvent{Device: "s9", Kind: edge.SpotChanged, Code: "NOPE", Occupied: true})
	if n := h.occupied("EV"); n != 2 {
		t.Fatalf("EV occupancy = %d; want 2", n)
	}
	var changes int
	for _, ev := range h.events() {
		if ev.GetSpotStatusChanged() != nil {
			changes++
		}
	}
	if changes != 4 {
		t.Fatalf("spot.status.changed events = %d; want 4", changes)
	}
	h.checkConsistent()
}

func TestPermitExpiresInside(t *testing.T) {
	h := newHarness(t, func(f *edge.Facility) { f.Permits[0].Until = t0.Add(2 * time.Hour) })
	h.enterByPlate("AB123CD")
	h.advance(4*time.Hour + 30*time.Minute) // 2.5 h beyond the permit
	ss := h.g.OpenSessions()
	if len(ss) != 1 || len(ss[0].Segments) != 2 || ss[0].Segments[1].Reason != "permit_expired" || !ss[0].Segments[1].Start.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("session = %+v; want a second segment from the permit's end", ss)
	}
	h.present("out", func() { h.plate("out-cam", "AB123CD", 0.9) })
	if d := h.lane("out").Decision; d == nil || d.FeeDue != 600 {
		t.Fatalf("decision = %+v; want 6.00 due for 2.5 h at the zone rate", d)
	}
	h.checkConsistent()
}

func TestRestartKeepsState(t *testing.T) {
	h := newHarness(t, nil)
	h.enterByPlate("AB123CD")
	h.enterByPlate("XY99ZZ")
	h.present("in", func() { h.send(edge.DeviceEvent{Device: "in-tix", Kind: edge.TicketRequested}) })
	h.passThrough("in")
	seq := h.g.Seq()
	h.reopen()
	if h.g.Seq() != seq || h.occupied("Z") != 3 || len(h.g.OpenSessions()) != 3 {
		t.Fatalf("after restart: seq %d occupancy %d sessions %d; want %d 3 3", h.g.Seq(), h.occupied("Z"), len(h.g.OpenSessions()), seq)
	}
	// The permit is still inside (anti-passback survives), the plate still found at exit.
	h.present("out", func() { h.plate("out-cam", "XY99ZZ", 0.9) })
	if d := h.lane("out").Decision; d == nil || d.Reason != "no_fee" {
		t.Fatalf("exit after restart: %+v", d)
	}
	h.passThrough("out")
	h.checkConsistent()
}

func TestDeviceHealth(t *testing.T) {
	h := newHarness(t, nil)
	h.send(edge.DeviceEvent{Device: "in-bar", Kind: edge.DeviceHealth, Healthy: false, Detail: "modbus timeout"})
	h.send(edge.DeviceEvent{Device: "in-bar", Kind: edge.DeviceHealth, Healthy: false, Detail: "modbus timeout"}) // repeated
	if v := h.lane("in"); v.Status != "degraded" {
		t.Fatalf("lane status = %s; want degraded", v.Status)
	}
	if a := h.g.Alerts(); len(a) != 1 || a[0].Code != edge.AlertDeviceOffline || a[0].Device != "in-bar" {
		t.Fatalf("alerts = %+v; want one device.offline for in-bar", a)
	}
	h.send(edge.DeviceEvent{Device: "in-bar", Kind: edge.DeviceHealth, Healthy: true})
	if v := h.lane("in"); v.Status != "ok" || len(h.g.Alerts()) != 0 {
		t.Fatalf("after recovery: lane %s alerts %+v", v.Status, h.g.Alerts())
	}
	// A device on no lane (a spot sensor gateway) still raises and clears its alert.
	h.send(edge.DeviceEvent{Device: "gw-1", Kind: edge.DeviceHealth, Healthy: false})
	if len(h.g.Alerts()) != 1 {
		t.Fatalf("alerts = %+v; want one", h.g.Alerts())
	}
	h.send(edge.DeviceEvent{Device: "gw-1", Kind: edge.DeviceHealth, Healthy: true})
	if len(h.g.Alerts()) != 0 {
		t.Fatalf("alerts = %+v; want none", h.g.Alerts())
	}
	h.checkConsistent()
}

func TestPaySessionIdempotent(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	h.enterByPlate("XY99ZZ")
	id := h.g.OpenSessions()[0].ID
	for range 3 {
		if err := h.g.PaySession(ctx, id, 400, "app", "pi_123"); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.g.PaySession(ctx, id, 100, "app", "pi_456"); err != nil {
		t.Fatal(err)
	}
	if s := h.g.OpenSessions()[0]; s.Paid != 500 {
		t.Fatalf("paid = %d; want 500 (the retried payment once)", s.Paid)
	}
	if err := h.g.PaySession(ctx, "nope", 100, "app", "x"); edge.ErrorCode(err) != edge.ENOTFOUND {
		t.Fatalf("unknown session: err = %v", err)
	}
	h.reopen()
	if err := h.g.PaySession(ctx, id, 400, "app", "pi_123"); err != nil {
		t.Fatal(err)
	}
	if s := h.g.OpenSessions()[0]; s.Paid != 500 {
		t.Fatalf("after restart paid = %d; want 500", s.Paid)
	}
	h.checkConsistent()
}

func TestOfflineCameraDoesNotDegradeLane(t *testing.T) {
	h := newHarness(t, nil)
	h.send(edge.DeviceEvent{Device: "in-cam", Kind: edge.DeviceHealth, Healthy: false, Detail: "silent"})
	if v := h.lane("in"); v.Status != "ok" {
		t.Fatalf("lane status = %s; want ok: tickets still work", v.Status)
	}
	if a := h.g.Alerts(); len(a) != 1 || a[0].Device != "in-cam" {
		t.Fatalf("alerts = %+v; want the camera's", a)
	}
	h.send(edge.DeviceEvent{Device: "in-cam", Kind: edge.DeviceHealth, Healthy: true})
	if len(h.g.Alerts()) != 0 {
		t.Fatalf("alerts = %+v; want none", h.g.Alerts())
	}
	h.checkConsistent()
}
