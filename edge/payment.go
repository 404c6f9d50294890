package edge

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge/plate"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
)

// PrepaidKind is the kind of the cloud's downlink document that lists app payments for
// stays (cloud/httpapi.PrepaidDocument).
const PrepaidKind = "prepaid"

// Prepaid is what the garage applies of the cloud's "prepaid" document: the
// facility's recent app payments for stays, as of a version.
type Prepaid struct {
	Version  uint64
	Payments []PrepaidPayment
}

// PrepaidPayment is one app payment for a stay.
type PrepaidPayment struct {
	// PaymentID is the cloud's id of the payment; the garage records it as the
	// payment's reference, once.
	PaymentID string
	// SessionID is the stay paid for; Plate finds it when the id is not (or no longer)
	// that of an open session here.
	SessionID string
	Plate     string
	// Amount is what was paid and Refunded what went back, in minor units.
	Amount   int64
	Refunded int64
	Currency string
	Method   string
	// Reference is the payment provider's id.
	Reference string
	PaidAt    time.Time
}

// ApplyPrepaid applies the cloud's prepaid document: each payment it lists is recorded
// once against the open session it pays for, so that the exit opens for the car
// without stopping (within the rate's grace after the payment). A payment is matched
// by its session id, or else by plate among the sessions that began before it was
// made; one already recorded (its payment id is a reference of an open session), one
// for a stay that is not open here, or one refunded in full records nothing. The
// payments and the version are written in one batch; a version that is not newer than
// the one held is ignored and reported as not applied.
func (g *Garage) ApplyPrepaid(ctx context.Context, doc Prepaid) (bool, error) {
	if doc.Version == 0 {
		return false, Errorf(EINVALID, "prepaid version 0")
	}
	applied := false
	var skipped []string
	p, err := g.step(g.now(), func(t *txn) error {
		if doc.Version <= g.st.Versions[PrepaidKind] {
			return nil
		}
		applied = true
		refs := map[string]bool{}
		for _, s := range g.st.Sessions {
			for _, r := range s.PaymentRefs {
				refs[r] = true
			}
		}
		ev := &gh.PrepaidApplied{Version: doc.Version}
		for _, pp := range doc.Payments {
			net := pp.Amount - pp.Refunded
			switch {
			case pp.PaymentID == "" || net <= 0 || refs[pp.PaymentID]:
				continue
			case pp.Currency != "" && !strings.EqualFold(pp.Currency, g.f.Currency):
				skipped = append(skipped, pp.PaymentID+" (currency "+pp.Currency+")")
				continue
			}
			s := t.prepaidSession(pp)
			if s == nil {
				continue // the car has left, or its entry has not happened here
			}
			method := pp.Method
			if method == "" {
				method = "app"
			}
			t.emit("", &gh.PaymentProcessed{PaymentId: newID(), SessionId: s.ID, Amount: net, Currency: g.f.Currency,
				Method: method, Reference: pp.PaymentID})
			refs[pp.PaymentID] = true
			ev.Recorded = append(ev.Recorded, pp.PaymentID)
		}
		t.emit("", ev)
		return nil
	})
	if err != nil {
		return false, err
	}
	if len(skipped) > 0 {
		g.log.Warn("prepaid document lists payments in another currency; not recorded", "version", doc.Version, "payments", skipped)
	}
	return applied, wait(ctx, p)
}

// prepaidSession finds the open session an app payment is for: by id, or else by
// plate. A plate match must have entered before the payment: a payment for an earlier
// stay of the same car must not pay for this one.
func (t *txn) prepaidSession(pp PrepaidPayment) *Session {
	st := t.g.st
	if s, ok := st.Sessions[pp.SessionID]; ok {
		return s
	}
	if pp.Plate == "" {
		return nil
	}
	hit, ok := t.plateHit(st.sessPlate, pp.Plate)
	if !ok || hit.Match.Kind == plate.OneEdit {
		return nil // one edit apart is too often another car
	}
	s := st.Sessions[hit.ID]
	if s == nil || (!pp.PaidAt.IsZero() && pp.PaidAt.Before(s.Entered)) {
		return nil
	}
	return s
}

// PendingCapture is a card payment approved offline that the acquirer has not
// captured yet. The garage keeps them in its state (bucket "captures"), so that they
// survive restarts and are captured exactly once.
type PendingCapture struct {
	PaymentID string    `json:"payment_id"`
	Reference string    `json:"reference"`
	Session   string    `json:"session_id,omitempty"`
	Lane      string    `json:"lane"`
	Amount    int64     `json:"amount"`
	Currency  string    `json:"currency"`
	Approved  time.Time `json:"approved"`
}

// CardTerminal is the card terminal of an exit kiosk, with the acquirer behind it.
// Adapters in firmware-adapters/terminal implement it.
type CardTerminal interface {
	// Authorize takes a card payment of req.Amount: the terminal reads the card and the
	// acquirer approves and captures it. An error of code EUNAVAILABLE means the
	// acquirer could not be reached (the garage may then approve offline, within its
	// floor limit); any other error means no payment took place.
	Authorize(ctx context.Context, req CardRequest) (CardResult, error)
	// Capture forwards a payment approved offline to the acquirer. Capturing a
	// reference again returns the outcome of the first capture, so a retry after a
	// crash collects the money once. EUNAVAILABLE: try again later.
	Capture(ctx context.Context, req CardRequest) (CardResult, error)
}

// CardRequest is one card payment asked of a terminal.
type CardRequest struct {
	// Reference is the garage's id of the payment, the acquirer's idempotency key.
	Reference string
	Amount    int64
	Currency  string
	Lane      string
}

// CardResult is the acquirer's answer.
type CardResult struct {
	Approved bool
	// Code is the acquirer's approval code or decline code.
	Code string
	// Message says why a payment was declined, fit for the kiosk.
	Message string
}

// CardPayment is the outcome of a card payment at an exit kiosk.
type CardPayment struct {
	Approved bool   `json:"approved"`
	Offline  bool   `json:"offline,omitempty"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	// Reference is the payment's reference at the acquirer.
	Reference string `json:"reference,omitempty"`
	// Message is what the kiosk shows the driver.
	Message string `json:"message"`
}

// defaultCardTimeout bounds a terminal's answer: a driver at the kiosk is waiting.
const defaultCardTimeout = 30 * time.Second

// PayByCard takes the fee a lane's kiosk displays through the lane's card terminal.
// Approved online, the payment is recorded and the barrier opens. With the acquirer
// unreachable, a fee within the facility's offline floor limit is approved offline:
// recorded at once with the barrier opening, and kept for capture when the acquirer
// is back (CaptureOffline); a fee above it is declined, and the kiosk sends the driver
// to the app or the intercom. A decline is a CardPayment with Approved false, not an
// error.
func (g *Garage) PayByCard(ctx context.Context, laneID string) (CardPayment, error) {
	term := g.terminals[laneID]
	g.mu.Lock()
	l, ok := g.lanes[laneID]
	var d Decision
	if ok && l.decision != nil {
		d = *l.decision
	}
	g.mu.Unlock()
	switch {
	case !ok:
		return CardPayment{}, Errorf(ENOTFOUND, "no lane %q", laneID)
	case term == nil:
		return CardPayment{}, Errorf(ECONFLICT, "lane %s has no card terminal", laneID)
	case d.Allowed || d.FeeDue == 0:
		return CardPayment{}, Errorf(ECONFLICT, "lane %s has no fee to pay", laneID)
	}
	out := CardPayment{Amount: d.FeeDue, Currency: g.f.Currency}
	req := CardRequest{Reference: "gh-" + newID(), Amount: d.FeeDue, Currency: g.f.Currency, Lane: laneID}
	actx, cancel := context.WithTimeout(ctx, defaultCardTimeout)
	res, err := term.Authorize(actx, req)
	cancel()
	limit := g.f.Payments.OfflineFloorLimit
	switch {
	case ErrorCode(err) == EUNAVAILABLE && limit > 0 && req.Amount <= limit:
		out.Approved, out.Offline = true, true
		g.log.Info("card payment approved offline: acquirer unreachable", "lane", laneID, "amount", req.Amount, "reference", req.Reference, "err", err)
	case ErrorCode(err) == EUNAVAILABLE:
		g.log.Warn("card payment declined: acquirer unreachable and the fee is above the offline floor limit",
			"lane", laneID, "amount", req.Amount, "floor_limit", limit, "err", err)
		out.Message = fmt.Sprintf("Card payments are offline for %s: please pay in the app, or press the intercom", money(req.Amount, g.f.Currency))
		return out, nil
	case err != nil:
		g.log.Warn("card terminal failed", "lane", laneID, "err", err)
		return CardPayment{}, Errorf(EUNAVAILABLE, "the card terminal is not working: please pay in the app, or press the intercom")
	case !res.Approved:
		out.Message = "Card declined"
		if res.Message != "" {
			out.Message += ": " + res.Message
		}
		return out, nil
	default:
		out.Approved = true
	}
	out.Reference, out.Message = req.Reference, "Thank you"
	if err := g.recordCard(ctx, laneID, d.SessionID, req, out.Offline); err != nil {
		return CardPayment{}, err
	}
	return out, nil
}

// recordCard records an approved card payment and lets the vehicle out when the lane
// still shows the fee. Approved money is never dropped: if the vehicle has backed out
// meanwhile, the payment goes to its session, or is recorded without one.
func (g *Garage) recordCard(ctx context.Context, laneID, sessionID string, req CardRequest, offline bool) error {
	p, err := g.step(g.now(), func(t *txn) error {
		l := g.lanes[laneID]
		d := l.decision
		// Still the same vehicle at the kiosk: decide again, which opens the barrier or,
		// had the fee gone up while the card was read, shows what is left to pay.
		atLane := l.state == laneArmed && d != nil && !d.Allowed && d.FeeDue > 0 && d.SessionID == sessionID
		sid := sessionID
		if _, open := g.st.Sessions[sid]; !open {
			sid = ""
		}
		t.emit(laneID, &gh.PaymentProcessed{PaymentId: newID(), SessionId: sid, Amount: req.Amount, Currency: req.Currency,
			Method: "card", Reference: req.Reference, Offline: offline})
		if !atLane {
			return nil
		}
		if d.SessionID == "" {
			if req.Amount >= d.FeeDue {
				t.allow(l, &authorization{cred: &gh.Credential{Kind: gh.CredentialKind_CREDENTIAL_KIND_LOST_TICKET}, lost: true, fee: req.Amount, paid: req.Amount})
			}
			return nil
		}
		t.present(l, d.cred)
		return nil
	})
	if err != nil {
		return err
	}
	return wait(ctx, p)
}

// PendingCaptures returns the card payments approved offline and not captured yet,
// oldest first.
func (g *Garage) PendingCaptures() []PendingCapture {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]PendingCapture, 0, len(g.st.Captures))
	for _, c := range g.st.Captures {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b PendingCapture) int {
		if c := a.Approved.Compare(b.Approved); c != 0 {
			return c
		}
		return strings.Compare(a.PaymentID, b.PaymentID)
	})
	return out
}

// CaptureOffline forwards the card payments approved offline to the acquirer, oldest
// first, and records each outcome: payment.captured, or payment.capture_failed with
// an alert when the acquirer refuses. It stops at the first EUNAVAILABLE (the acquirer
// is still away) and returns how many payments it settled. A payment whose capture
// reached the acquirer but whose outcome was not recorded (a crash) is captured again
// by reference, which the acquirer answers with the first outcome.
func (g *Garage) CaptureOffline(ctx context.Context) (int, error) {
	n := 0
	for _, pc := range g.PendingCaptures() {
		term := g.terminals[pc.Lane]
		if term == nil {
			for _, t := range g.terminalList {
				term = t // the lane lost its terminal: any terminal reaches the acquirer
				break
			}
		}
		if term == nil {
			return n, Errorf(EUNAVAILABLE, "no card terminal to capture payments with")
		}
		cctx, cancel := context.WithTimeout(ctx, defaultCardTimeout)
		res, err := term.Capture(cctx, CardRequest{Reference: pc.Reference, Amount: pc.Amount, Currency: pc.Currency, Lane: pc.Lane})
		cancel()
		if err != nil {
			return n, err
		}
		p, err := g.step(g.now(), func(t *txn) error {
			if _, ok := g.st.Captures[pc.PaymentID]; !ok {
				return nil // settled meanwhile
			}
			if res.Approved {
				t.emit(pc.Lane, &gh.PaymentCaptured{PaymentId: pc.PaymentID, Reference: pc.Reference, Amount: pc.Amount, Currency: pc.Currency})
				return nil
			}
			reason := res.Message
			if reason == "" {
				reason = "declined"
			}
			t.emit(pc.Lane, &gh.PaymentCaptureFailed{PaymentId: pc.PaymentID, Reference: pc.Reference, Amount: pc.Amount, Currency: pc.Currency, Reason: reason})
			t.alert(pc.Lane, AlertCaptureFailed, "warning",
				fmt.Sprintf("card payment %s of %s approved offline was refused by the acquirer: %s", pc.Reference, money(pc.Amount, pc.Currency), reason), "", "", false)
			return nil
		})
		if err != nil {
			return n, err
		}
		if err := wait(ctx, p); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// runCaptures calls CaptureOffline every interval while payments are pending.
func (g *Garage) runCaptures(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if len(g.PendingCaptures()) == 0 {
			continue
		}
		n, err := g.CaptureOffline(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				g.log.Warn("offline card payments not captured yet; retrying", "err", err, "every", every)
			}
			failing = true
		case n > 0:
			g.log.Info("offline card payments captured", "settled", n)
			failing = false
		}
	}
}
