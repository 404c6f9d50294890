package edge_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/edge/tariff"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
)

// sessionOf returns the open session of a plate.
func (h *harness) sessionOf(p string) edge.Session {
	h.t.Helper()
	for _, s := range h.g.OpenSessions() {
		if s.Plate == p {
			return s
		}
	}
	h.t.Fatalf("no open session of %s", p)
	return edge.Session{}
}

// feeOf is what the stay of plate p costs now.
func (h *harness) feeOf(p string) int64 {
	h.t.Helper()
	s := h.sessionOf(p)
	total, _, err := edge.SessionFee(h.f, &s, h.now, false)
	if err != nil {
		h.t.Fatal(err)
	}
	return total
}

func TestApplyPrepaid(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	for _, p := range []string{"APP111", "APP222", "APP333", "KIOSK4"} {
		h.enterByPlate(p)
	}
	h.advance(2 * time.Hour)
	fee := h.feeOf("APP111")
	if fee == 0 {
		t.Fatal("a 2 h stay costs nothing: the test needs a fee")
	}
	a := h.sessionOf("APP111")
	doc := edge.Prepaid{Version: 2, Payments: []edge.PrepaidPayment{
		{PaymentID: "pay-a", SessionID: a.ID, Plate: "APP111", Amount: fee, Currency: "EUR", Method: "app", PaidAt: h.now},
		// The cloud knows the stay under another id (or none): found by plate.
		{PaymentID: "pay-b", SessionID: "cloud-only", Plate: "APP-222", Amount: fee, Currency: "EUR", PaidAt: h.now},
		// Refunded in full: nothing to record.
		{PaymentID: "pay-c", SessionID: h.sessionOf("APP333").ID, Amount: fee, Refunded: fee, Currency: "EUR", PaidAt: h.now},
		// Not inside: nothing to record.
		{PaymentID: "pay-x", Plate: "GONE99", Amount: 300, Currency: "EUR", PaidAt: h.now},
		// Another currency: not recorded.
		{PaymentID: "pay-usd", SessionID: h.sessionOf("KIOSK4").ID, Amount: 300, Currency: "USD", PaidAt: h.now},
	}}
	before := h.g.Seq()
	if ok, err := h.g.ApplyPrepaid(ctx, doc); err != nil || !ok {
		t.Fatalf("ApplyPrepaid(v2) = %v, %v; want applied", ok, err)
	}
	if got, want := h.typesAfter(before), []string{"payment.processed", "payment.processed", "prepaid.applied"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("events = %v; want %v", got, want)
	}
	check := func(p string, paid int64) {
		t.Helper()
		if s := h.sessionOf(p); s.Paid != paid {
			t.Errorf("%s paid %d; want %d", p, s.Paid, paid)
		}
	}
	check("APP111", fee)
	check("APP222", fee)
	check("APP333", 0)
	check("KIOSK4", 0)

	// Redelivered, older, or a newer version listing the same payments: each payment
	// is recorded once.
	if ok, err := h.g.ApplyPrepaid(ctx, doc); err != nil || ok {
		t.Fatalf("same version again = %v, %v; want ignored", ok, err)
	}
	if ok, _ := h.g.ApplyPrepaid(ctx, edge.Prepaid{Version: 1, Payments: []edge.PrepaidPayment{{PaymentID: "old", SessionID: a.ID, Amount: 50}}}); ok {
		t.Fatal("an older version was applied")
	}
	doc.Version = 3
	doc.Payments = append(doc.Payments, edge.PrepaidPayment{PaymentID: "pay-a2", SessionID: a.ID, Amount: 100, Currency: "EUR", PaidAt: h.now})
	if ok, err := h.g.ApplyPrepaid(ctx, doc); err != nil || !ok {
		t.Fatalf("ApplyPrepaid(v3) = %v, %v", ok, err)
	}
	check("APP111", fee+100)
	check("APP222", fee)
	if _, err := h.g.ApplyPrepaid(ctx, edge.Prepaid{}); edge.ErrorCode(err) != edge.EINVALID {
		t.Fatalf("version 0: err = %v; want invalid", err)
	}

	// At the exit the fee is paid: the barrier opens without stopping.
	h.advance(5 * time.Minute)
	v := h.present("out", func() { h.plate("out-cam", "APP111", 0.9) })
	if v.Decision == nil || !v.Decision.Allowed || v.Decision.Reason != "paid" {
		t.Fatalf("exit of the app payer: %+v; want allowed, paid", v.Decision)
	}
	h.passThrough("out")
	v = h.present("out", func() { h.plate("out-cam", "APP333", 0.9) })
	if v.Decision == nil || v.Decision.Allowed || v.Decision.FeeDue == 0 {
		t.Fatalf("exit of the refunded payer: %+v; want the fee due", v.Decision)
	}
	h.loop("out-arm", false)

	// The same car back: a payment for its earlier stay pays nothing of this one, even
	// listed by plate in a newer version.
	h.enterByPlate("APP111")
	doc.Version = 4
	if ok, err := h.g.ApplyPrepaid(ctx, doc); err != nil || !ok {
		t.Fatalf("ApplyPrepaid(v4) = %v, %v", ok, err)
	}
	check("APP111", 0)
	if got := h.g.DocumentVersion(edge.PrepaidKind); got != 4 {
		t.Fatalf("version %d; want 4", got)
	}
	h.checkConsistent()
	h.reopen()
	if got := h.g.DocumentVersion(edge.PrepaidKind); got != 4 {
		t.Fatalf("after a restart version %d; want 4", got)
	}
	if ok, _ := h.g.ApplyPrepaid(ctx, doc); ok {
		t.Fatal("version 4 applied again after a restart")
	}
	check("APP222", fee)
}

// acquirer is a card terminal with its acquirer in memory. Captures are idempotent by
// reference, as a real acquirer's; collected counts the money that moved.
type acquirer struct {
	mu          sync.Mutex
	down        bool
	decline     string            // decline every authorization with this message
	refuse      map[string]string // reference -> capture refusal
	captures    map[string]edge.CardResult
	collected   int64
	authorized  int
	captureCall int
}

func newAcquirer() *acquirer {
	return &acquirer{refuse: map[string]string{}, captures: map[string]edge.CardResult{}}
}

func (a *acquirer) Authorize(ctx context.Context, req edge.CardRequest) (edge.CardResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.down {
		return edge.CardResult{}, edge.Errorf(edge.EUNAVAILABLE, "acquirer unreachable")
	}
	if a.decline != "" {
		return edge.CardResult{Message: a.decline}, nil
	}
	a.authorized++
	a.collected += req.Amount
	return edge.CardResult{Approved: true, Code: "A1"}, nil
}

func (a *acquirer) Capture(ctx context.Context, req edge.CardRequest) (edge.CardResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.captureCall++
	if a.down {
		return edge.CardResult{}, edge.Errorf(edge.EUNAVAILABLE, "acquirer unreachable")
	}
	if r, ok := a.captures[req.Reference]; ok {
		return r, nil
	}
	r := edge.CardResult{Approved: true, Code: "C1"}
	if why, ok := a.refuse[req.Reference]; ok {
		r = edge.CardResult{Message: why}
	} else {
		a.collected += req.Amount
	}
	a.captures[req.Reference] = r
	return r, nil
}

func (a *acquirer) set(fn func(a *acquirer)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fn(a)
}

func newTerminalHarness(t *testing.T, acq *acquirer, floor int64) *harness {
	f := testFacility()
	f.Payments.OfflineFloorLimit = floor
	h := &harness{t: t, f: f, now: t0, path: filepath.Join(t.TempDir(), "garage.db"), terms: map[string]edge.CardTerminal{"out": acq}}
	h.open()
	return h
}

// payments returns the payment events written after seq.
func (h *harness) paymentsAfter(seq uint64) []*gh.Envelope {
	var out []*gh.Envelope
	for _, ev := range h.events() {
		if ev.Seq > seq && strings.HasPrefix(ev.Type, "payment.") {
			out = append(out, ev)
		}
	}
	return out
}

func TestPayByCard(t *testing.T) {
	ctx := context.Background()
	acq := newAcquirer()
	h := newTerminalHarness(t, acq, 1000)
	for _, p := range []string{"ONLINE1", "OFFLN02", "OFFLN03", "REFUSE4", "TOOMCH5"} {
		h.enterByPlate(p)
	}
	h.advance(2 * time.Hour)
	fee := h.feeOf("ONLINE1")
	if fee == 0 || fee > 1000 {
		t.Fatalf("fee %d: the test needs a fee within the floor limit of 1000", fee)
	}
	atExit := func(p string) {
		t.Helper()
		v := h.present("out", func() { h.plate("out-cam", p, 0.9) })
		if v.Decision == nil || v.Decision.Allowed || v.Decision.FeeDue == 0 {
			t.Fatalf("%s at the exit: %+v; want a fee due", p, v.Decision)
		}
	}
	pay := func(p string, wantOffline bool) edge.CardPayment {
		t.Helper()
		atExit(p)
		cp, err := h.g.PayByCard(ctx, "out")
		if err != nil || !cp.Approved || cp.Offline != wantOffline || cp.Reference == "" {
			t.Fatalf("PayByCard for %s = %+v, %v; want approved, offline %v", p, cp, err, wantOffline)
		}
		if d := h.lane("out").Decision; d == nil || !d.Allowed {
			t.Fatalf("%s paid by card: lane decision %+v; want allowed", p, d)
		}
		h.passThrough("out")
		return cp
	}

	// Online: paid and collected at once, nothing left to capture.
	seq := h.g.Seq()
	pay("ONLINE1", false)
	if evs := h.paymentsAfter(seq); len(evs) != 1 || evs[0].GetPaymentProcessed().Offline || evs[0].GetPaymentProcessed().Method != "card" {
		t.Fatalf("online payment events %v; want one payment.processed, method card, not offline", evs)
	}
	if n := len(h.g.PendingCaptures()); n != 0 {
		t.Fatalf("%d pending captures after an online payment", n)
	}

	// Declined online: the lane keeps the fee and says why.
	acq.set(func(a *acquirer) { a.decline = "insufficient funds" })
	atExit("TOOMCH5")
	if cp, err := h.g.PayByCard(ctx, "out"); err != nil || cp.Approved || !strings.Contains(cp.Message, "insufficient funds") {
		t.Fatalf("declined card = %+v, %v", cp, err)
	}
	h.loop("out-arm", false)
	acq.set(func(a *acquirer) { a.decline = "" })

	// The acquirer unreachable: within the floor limit, approved offline and the car
	// leaves; the payments wait for capture, also across a restart.
	acq.set(func(a *acquirer) { a.down = true })
	seq = h.g.Seq()
	off2 := pay("OFFLN02", true)
	off3 := pay("OFFLN03", true)
	refused := pay("REFUSE4", true)
	acq.set(func(a *acquirer) { a.refuse[refused.Reference] = "card blocked" })
	if evs := h.paymentsAfter(seq); len(evs) != 3 || !evs[0].GetPaymentProcessed().Offline {
		t.Fatalf("offline payment events %v; want three payment.processed, offline", evs)
	}

	// Above the floor limit: declined, the driver sent to the app or the intercom.
	h.advance(6 * time.Hour)
	atExit("TOOMCH5")
	cp, err := h.g.PayByCard(ctx, "out")
	if err != nil || cp.Approved || !strings.Contains(cp.Message, "app") || !strings.Contains(cp.Message, "intercom") {
		t.Fatalf("above the floor limit offline = %+v, %v; want declined, pointing at the app and the intercom", cp, err)
	}
	if d := h.lane("out").Decision; d == nil || d.Allowed || d.FeeDue <= 1000 {
		t.Fatalf("lane after the decline: %+v; want the fee still due", d)
	}
	h.loop("out-arm", false)

	if n, err := h.g.CaptureOffline(ctx); n != 0 || edge.ErrorCode(err) != edge.EUNAVAILABLE {
		t.Fatalf("CaptureOffline with the acquirer down = %d, %v; want 0, unavailable", n, err)
	}
	h.checkConsistent()
	h.reopen()
	pending := h.g.PendingCaptures()
	if len(pending) != 3 || pending[0].Reference != off2.Reference {
		t.Fatalf("after a restart pending captures %+v; want the three offline payments, oldest first", pending)
	}

	// A crash after the acquirer captured one, before the garage recorded it: the
	// retry by reference collects nothing twice.
	acq.set(func(a *acquirer) { a.down = false })
	if _, err := acq.Capture(ctx, edge.CardRequest{Reference: off3.Reference, Amount: off3.Amount, Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	seq = h.g.Seq()
	if n, err := h.g.CaptureOffline(ctx); n != 3 || err != nil {
		t.Fatalf("CaptureOffline = %d, %v; want 3, nil", n, err)
	}
	var captured, failed []string
	for _, ev := range h.paymentsAfter(seq) {
		switch ev.Type {
		case "payment.captured":
			captured = append(captured, ev.GetPaymentCaptured().Reference)
		case "payment.capture_failed":
			failed = append(failed, ev.GetPaymentCaptureFailed().Reference+": "+ev.GetPaymentCaptureFailed().Reason)
		}
	}
	if len(captured) != 2 || len(failed) != 1 || failed[0] != refused.Reference+": card blocked" {
		t.Fatalf("captured %v, failed %v; want two captured and %s refused", captured, failed, refused.Reference)
	}
	if !has(h.alertsAfter(seq), edge.AlertCaptureFailed) {
		t.Errorf("no %s alert for the refused capture", edge.AlertCaptureFailed)
	}
	if want := fee + off2.Amount + off3.Amount; acq.collected != want {
		t.Errorf("acquirer collected %d; want %d (each payment once)", acq.collected, want)
	}
	if n, err := h.g.CaptureOffline(ctx); n != 0 || err != nil || len(h.g.PendingCaptures()) != 0 {
		t.Fatalf("CaptureOffline again = %d, %v, %d pending; want nothing left", n, err, len(h.g.PendingCaptures()))
	}
	h.checkConsistent()

	// No terminal at the lane, or no fee: refused as conflicts.
	if _, err := h.g.PayByCard(ctx, "in"); edge.ErrorCode(err) != edge.ECONFLICT {
		t.Errorf("PayByCard at an entry = %v; want conflict", err)
	}
	if _, err := h.g.PayByCard(ctx, "out"); edge.ErrorCode(err) != edge.ECONFLICT {
		t.Errorf("PayByCard with no fee = %v; want conflict", err)
	}
}

// TestPayByCardOfflineDisabled: with no floor limit, an unreachable acquirer declines
// every card payment.
func TestPayByCardOfflineDisabled(t *testing.T) {
	acq := newAcquirer()
	acq.down = true
	h := newTerminalHarness(t, acq, 0)
	h.enterByPlate("NOLIM01")
	h.advance(2 * time.Hour)
	v := h.present("out", func() { h.plate("out-cam", "NOLIM01", 0.9) })
	if v.Decision == nil || v.Decision.FeeDue == 0 {
		t.Fatalf("exit: %+v", v.Decision)
	}
	cp, err := h.g.PayByCard(context.Background(), "out")
	if err != nil || cp.Approved {
		t.Fatalf("PayByCard = %+v, %v; want declined", cp, err)
	}
	if s := h.sessionOf("NOLIM01"); s.Paid != 0 {
		t.Fatalf("paid %d after a decline", s.Paid)
	}
}

// TestSessionFeeGrace: within the rate's grace after a payment, what accrued since the
// payment is waived; what the payment fell short of is still due; after the grace,
// the stay is priced to now.
func TestSessionFeeGrace(t *testing.T) {
	h := newHarness(t, nil)
	rate, ok := h.f.Rate("std")
	if !ok {
		t.Fatal("no rate std")
	}
	start := h.now
	quote := func(d time.Duration) int64 {
		q, err := rate.Quote(tariff.Input{Entry: start, Exit: start.Add(d)})
		if err != nil {
			t.Fatal(err)
		}
		return q.Total
	}
	paidAt := start.Add(3 * time.Hour)
	full := quote(3 * time.Hour)
	if full == 0 || quote(3*time.Hour+20*time.Minute) == full {
		t.Fatal("the rate must charge for 3 h and more for 3 h 20 min")
	}
	for _, c := range []struct {
		name  string
		paid  int64
		after time.Duration // since the payment
		due   int64
	}{
		{"paid in full, leaving in the grace", full, 10 * time.Minute, 0},
		{"paid short, leaving in the grace", full / 2, 10 * time.Minute, full - full/2},
		{"paid in full, leaving after the grace", full, 20 * time.Minute, quote(3*time.Hour+20*time.Minute) - full},
	} {
		s := edge.Session{ID: "s1", Segments: []edge.Segment{{Start: start, Right: gh.Right_RIGHT_TRANSIENT, Rate: "std"}},
			Paid: c.paid, PaidAt: paidAt}
		_, due, err := edge.SessionFee(h.f, &s, paidAt.Add(c.after), false)
		if err != nil {
			t.Fatal(err)
		}
		if due != c.due {
			t.Errorf("%s: due %d; want %d", c.name, due, c.due)
		}
	}
}
