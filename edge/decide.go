package edge

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge/plate"
	"github.com/gatehouse-parking/gatehouse/edge/tariff"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// lookupPlate finds a plate in idx: exactly, or with one edit or OCR confusion when the
// facility allows fuzzy plates. An ambiguous fuzzy match is no match: never guess.
func (t *txn) lookupPlate(idx *plate.Index, p string) (string, bool) {
	hit, ok := t.plateHit(idx, p)
	return hit.ID, ok
}

// plateHit is lookupPlate returning the known plate that matched too.
func (t *txn) plateHit(idx *plate.Index, p string) (plate.Hit, bool) {
	if p == "" {
		return plate.Hit{}, false
	}
	hit, out := idx.Best(p)
	if out != plate.Found {
		return plate.Hit{}, false
	}
	if hit.Match.Kind != plate.Exact && !t.g.f.Policies.FuzzyPlates {
		return plate.Hit{}, false
	}
	return hit, true
}

// decideEntry resolves a credential at an entry lane. It returns an authorization or
// records a denial and returns nil.
func (t *txn) decideEntry(l *lane, c credential) *authorization {
	st, f := t.g.st, t.g.f
	zone, _ := f.Zone(l.cfg.Zone)

	// Block list first: a blocked plate or card is refused whatever else it holds.
	if c.kind == gh.CredentialKind_CREDENTIAL_KIND_PLATE {
		if why, ok := t.lookupPlate(st.blocked, c.value); ok {
			t.alert(l.cfg.ID, AlertBlocklisted, "warning", fmt.Sprintf("blocked plate %s (%s)", c.value, why), "", "", false)
			t.deny(l, c, "blocklisted", "Entry refused: please contact the office", nil, 0)
			return nil
		}
	}
	if c.kind == gh.CredentialKind_CREDENTIAL_KIND_PERMIT_CARD {
		if why, ok := st.blockCard[c.value]; ok {
			t.alert(l.cfg.ID, AlertBlocklisted, "warning", fmt.Sprintf("blocked card %s (%s)", c.value, why), "", "", false)
			t.deny(l, c, "blocklisted", "Entry refused: please contact the office", nil, 0)
			return nil
		}
	}

	a := &authorization{cred: c.proto(), right: gh.Right_RIGHT_TRANSIENT, rate: zone.Rate, sessionID: newID()}
	if c.kind == gh.CredentialKind_CREDENTIAL_KIND_PLATE {
		a.plate = c.value
	} else if len(l.reads) > 0 {
		// A driver taking a ticket while the camera saw the plate: keep both, so the
		// exit can find the session by plate too.
		if v := plate.Vote(l.reads, f.Policies.PlateConfidence); !v.Unsure {
			a.plate = v.Plate
		}
	}

	// What right does the credential carry?
	var permit *PermitState
	var res *ReservationState
	switch c.kind {
	case gh.CredentialKind_CREDENTIAL_KIND_PLATE:
		if hit, ok := t.plateHit(st.permPlate, c.value); ok {
			permit = st.Permits[hit.ID]
			// The permit's own spelling, not the camera's: a misread of one plate of a
			// shared permit must still be told apart from its other plates.
			c.value, a.plate = hit.Plate, hit.Plate
		} else if hit, ok := t.plateHit(st.resPlate, c.value); ok {
			res = st.Reservations[hit.ID]
			a.plate = hit.Plate
		}
	case gh.CredentialKind_CREDENTIAL_KIND_PERMIT_CARD:
		id, ok := st.byCard[c.value]
		if !ok {
			t.deny(l, c, "unknown", "Card not recognised", nil, 0)
			return nil
		}
		permit = st.Permits[id]
	case gh.CredentialKind_CREDENTIAL_KIND_QR, gh.CredentialKind_CREDENTIAL_KIND_TICKET:
		if id, ok := st.byCode[c.value]; ok {
			res = st.Reservations[id]
			if !t.reservationValid(res, zone) && !res.Used {
				t.deny(l, c, "reservation_not_valid", "This booking is not valid now or not for this car park", nil, 0)
				return nil
			}
		} else if !c.request {
			if _, inside := st.byTicket[c.value]; inside {
				t.deny(l, c, "antipassback", "This ticket is already inside", nil, 0)
				return nil
			}
			t.deny(l, c, "unknown", "Code not recognised: please take a ticket", nil, 0)
			return nil
		}
	}

	// Permits and reservations must be valid now and for this zone.
	if permit != nil {
		switch {
		case t.now.Before(permit.From) || !t.now.Before(permit.Until):
			permit = nil // expired or not yet valid: the driver may still park as a walk-in
		case len(permit.Zones) > 0 && !contains(permit.Zones, zone.ID):
			permit = nil
		}
	}
	if res != nil {
		switch {
		case res.Used:
			t.deny(l, c, "reservation_used", "This reservation has already been used", nil, 0)
			return nil
		case !t.reservationValid(res, zone):
			res = nil
		}
	}
	if permit != nil {
		a.right, a.permitID = gh.Right_RIGHT_PERMIT, permit.ID
		a.cred.PermitId = permit.ID
		if permit.Inside >= max(1, permit.MaxInside) {
			// A shared permit whose car is in, or this car's entry again.
			open := t.sessionOfPermit(permit.ID, c)
			if open == nil || permit.MaxInside > 1 || t.g.f.Policies.AntiPassback == PassbackHard {
				reason, msg := "permit_in_use", "This permit is already in use inside"
				if open != nil {
					reason, msg = "antipassback", "This permit is already inside"
				}
				t.alert(l.cfg.ID, alertFor(reason), "warning", fmt.Sprintf("permit %s: %s", permit.ID, msg), "", "", false)
				t.deny(l, c, reason, msg, nil, 0)
				return nil
			}
			// Same car again: its exit was missed. Soft: let it in and alert; none: quietly.
			if t.g.f.Policies.AntiPassback == PassbackSoft {
				t.alert(l.cfg.ID, AlertAntiPassback, "warning", fmt.Sprintf("permit %s entered again without an exit", permit.ID), "", "", false)
			}
			a.voidSession = open.ID
		}
	} else if res != nil {
		a.right, a.reservationID = gh.Right_RIGHT_RESERVATION, res.ID
		a.cred.ReservationId = res.ID
		a.cred.Kind = c.kind
	} else if a.plate != "" {
		// A walk-in by plate: is this plate already inside? Only an exact or
		// OCR-confusion match counts: one edit apart is too often another car.
		if hit, ok := t.plateHit(st.sessPlate, a.plate); ok && hit.Match.Kind != plate.OneEdit {
			id := hit.ID
			switch t.g.f.Policies.AntiPassback {
			case PassbackHard:
				t.alert(l.cfg.ID, AlertAntiPassback, "warning", fmt.Sprintf("plate %s is already inside", a.plate), "", "", false)
				t.deny(l, c, "antipassback", "This vehicle is already inside: please press for help", nil, 0)
				return nil
			case PassbackSoft:
				t.alert(l.cfg.ID, AlertAntiPassback, "warning", fmt.Sprintf("plate %s entered again without an exit", a.plate), "", "", false)
			}
			a.voidSession = id
		}
	}

	// Lot full: walk-ins only into the free space that is not held back; permits and
	// reservations into any free space.
	occupied := st.Zones[zone.ID].Occupied + t.authorizedInto(zone.ID)
	if a.voidSession != "" {
		occupied-- // the same car, counted already
	}
	zl := st.ZoneLimits(zone)
	limit := zl.Capacity
	if a.right == gh.Right_RIGHT_TRANSIENT {
		limit -= zl.HeldBack
	}
	if occupied >= limit {
		t.deny(l, c, "lot_full", "Full", nil, 0)
		return nil
	}
	if a.right == gh.Right_RIGHT_TRANSIENT && c.kind != gh.CredentialKind_CREDENTIAL_KIND_PLATE {
		a.ticket = newTicket()
	}
	if a.right == gh.Right_RIGHT_RESERVATION && c.kind != gh.CredentialKind_CREDENTIAL_KIND_PLATE {
		a.ticket = c.value
	}
	return a
}

// reservationValid reports whether a booking admits now into zone: from its start
// less the arrival grace until its end.
func (t *txn) reservationValid(r *ReservationState, zone *Zone) bool {
	g := time.Duration(r.Grace)
	return r.Zone == zone.ID && !t.now.Before(r.From.Add(-g)) && t.now.Before(r.Until)
}

func alertFor(reason string) string {
	if reason == "antipassback" {
		return AlertAntiPassback
	}
	return AlertPermitInUse
}

// sessionOfPermit finds the open session a permit credential belongs to: the same
// plate or the same card.
func (t *txn) sessionOfPermit(permitID string, c credential) *Session {
	for _, s := range t.g.st.Sessions {
		if s.PermitID != permitID {
			continue
		}
		switch c.kind {
		case gh.CredentialKind_CREDENTIAL_KIND_PLATE:
			if plate.Normalize(c.value) == plate.Normalize(s.Plate) {
				return s
			}
		case gh.CredentialKind_CREDENTIAL_KIND_PERMIT_CARD:
			if s.Card == c.value {
				return s
			}
		}
	}
	return nil
}

// authorizedInto counts vehicles allowed into a zone that have not passed yet, so that
// two lanes cannot both give away the last space.
func (t *txn) authorizedInto(zone string) int {
	n := 0
	for _, l := range t.g.laneList {
		if l.auth != nil && l.cfg.Direction == Entry && l.cfg.Zone == zone {
			n++
		}
	}
	return n
}

// decideExit resolves a credential at an exit lane to the session it ends and its fee.
func (t *txn) decideExit(l *lane, c credential) *authorization {
	st, f := t.g.st, t.g.f
	var sess *Session
	lost := false
	switch c.kind {
	case gh.CredentialKind_CREDENTIAL_KIND_PLATE:
		if id, ok := t.lookupPlate(st.sessPlate, c.value); ok {
			sess = st.Sessions[id]
		}
	case gh.CredentialKind_CREDENTIAL_KIND_TICKET, gh.CredentialKind_CREDENTIAL_KIND_QR:
		if id, ok := st.byTicket[c.value]; ok {
			sess = st.Sessions[id]
		}
	case gh.CredentialKind_CREDENTIAL_KIND_PERMIT_CARD:
		if id, ok := st.byCard[c.value]; ok {
			sess = t.sessionOfPermit(id, c)
			if sess == nil {
				// A permit holder leaving with no recorded entry.
				if f.Policies.AntiPassback == PassbackHard {
					t.alert(l.cfg.ID, AlertAntiPassback, "warning", fmt.Sprintf("permit %s leaving with no entry", id), "", "", false)
					t.deny(l, c, "antipassback", "No entry recorded for this card: please press for help", nil, 0)
					return nil
				}
				if f.Policies.AntiPassback == PassbackSoft {
					t.alert(l.cfg.ID, AlertAntiPassback, "warning", fmt.Sprintf("permit %s leaving with no entry", id), "", "", false)
				}
				return &authorization{cred: c.proto(), right: gh.Right_RIGHT_PERMIT, permitID: id}
			}
		}
	case gh.CredentialKind_CREDENTIAL_KIND_LOST_TICKET:
		lost = true
		if d := l.decision; d != nil && d.SessionID != "" {
			sess = st.Sessions[d.SessionID]
		} else if d != nil && d.Plate != "" {
			if id, ok := t.lookupPlate(st.sessPlate, d.Plate); ok {
				sess = st.Sessions[id]
			}
		}
	}
	if sess == nil && !lost {
		t.alert(l.cfg.ID, AlertUnknownExit, "info", "no session found for "+c.kind.String()+" "+c.value, "", "", false)
		t.deny(l, c, "no_session", "Ticket not recognised: please insert your ticket or press for help", nil, 0)
		return nil
	}
	a := &authorization{cred: c.proto(), lost: lost}
	if sess == nil {
		// Lost ticket and no way to find the stay: charge the zone's lost-ticket fee.
		zone, _ := f.Zone(l.cfg.Zone)
		rate, _ := f.Rate(zone.Rate)
		fee := int64(0)
		if rate != nil {
			fee = rate.LostTicket
		}
		a.fee = fee
		if fee > 0 {
			t.deny(l, c, "fee_due", fmt.Sprintf("Lost ticket: %s", money(fee, f.Currency)), nil, fee)
			return nil
		}
		return a
	}
	t.checkSegment(sess) // price the stay with its rights as they are now, not as of the last tick
	a.sessionID, a.plate, a.ticket, a.right = sess.ID, sess.Plate, sess.Ticket, sess.Right()
	a.permitID = sess.PermitID
	a.cred.PermitId, a.cred.ReservationId = sess.PermitID, sess.ReservationID
	total, due, err := SessionFee(f, sess, t.now, lost)
	if err != nil {
		t.g.log.Error("fee", "session", sess.ID, "err", err)
		t.deny(l, c, "fee_error", "Fee cannot be computed: please press for help", sess, 0)
		return nil
	}
	a.fee, a.paid = total, sess.Paid
	if due > 0 {
		t.deny(l, c, "fee_due", fmt.Sprintf("Please pay %s", money(due, f.Currency)), sess, due)
		l.decision.cred.kind = c.kind
		if lost {
			l.decision.cred.kind = gh.CredentialKind_CREDENTIAL_KIND_LOST_TICKET
		}
		return nil
	}
	return a
}

// SessionFee prices a session at now: total is the whole stay's fee, due what remains
// after payments (zero within the rate's grace after a payment). Segments with a permit
// or a prepaid reservation are free; transient segments are priced by their rate.
func SessionFee(f *Facility, s *Session, now time.Time, lost bool) (total, due int64, err error) {
	total, lastRate, err := stayFee(f, s, now, lost)
	if err != nil {
		return 0, 0, err
	}
	due = max(0, total-s.Paid)
	if lastRate != nil && s.Paid > 0 && !now.After(s.PaidAt.Add(time.Duration(lastRate.Grace))) {
		// Paid at a pay station or in the app, leaving within the grace period: what
		// accrued since the payment is waived, not what the payment fell short of.
		atPayment, _, err := stayFee(f, s, s.PaidAt, lost)
		if err != nil {
			return 0, 0, err
		}
		due = max(0, atPayment-s.Paid)
	}
	return total, due, nil
}

// stayFee prices a session's transient segments up to end, and returns the rate of
// the last one priced.
func stayFee(f *Facility, s *Session, end time.Time, lost bool) (total int64, lastRate *tariff.Rate, err error) {
	var chargedLost bool
	for i, seg := range s.Segments {
		if !seg.Start.Before(end) && i > 0 {
			break // a segment that had not begun by end
		}
		segEnd := end
		if i+1 < len(s.Segments) && s.Segments[i+1].Start.Before(end) {
			segEnd = s.Segments[i+1].Start
		}
		if seg.Right != gh.Right_RIGHT_TRANSIENT {
			continue
		}
		rate, ok := f.Rate(seg.Rate)
		if !ok {
			return 0, nil, fmt.Errorf("session %s: unknown rate %q", s.ID, seg.Rate)
		}
		q, err := rate.Quote(tariff.Input{Entry: seg.Start, Exit: segEnd, LostTicket: lost && !chargedLost})
		if err != nil {
			return 0, nil, err
		}
		chargedLost = chargedLost || lost
		total += q.Total
		lastRate = rate
	}
	return total, lastRate, nil
}

// checkSegments starts a new segment for sessions whose permit or reservation has
// ended while the car is inside: from then on it parks at the zone's rate.
func (t *txn) checkSegments() {
	for _, s := range t.g.st.Sessions {
		t.checkSegment(s)
	}
}

func (t *txn) checkSegment(s *Session) {
	var until time.Time
	switch s.Right() {
	case gh.Right_RIGHT_PERMIT:
		if p, ok := t.g.st.Permits[s.PermitID]; ok {
			until = p.Until
		}
	case gh.Right_RIGHT_RESERVATION:
		if r, ok := t.g.st.Reservations[s.ReservationID]; ok {
			until = r.Until
		}
	default:
		return
	}
	if until.IsZero() || t.now.Before(until) {
		return
	}
	zone, ok := t.g.f.Zone(s.Zone)
	if !ok {
		return
	}
	reason := "permit_expired"
	if s.Right() == gh.Right_RIGHT_RESERVATION {
		reason = "reservation_ended"
	}
	t.emit(s.EntryLane, &gh.SessionSegmentStarted{SessionId: s.ID, Right: gh.Right_RIGHT_TRANSIENT, RateId: zone.Rate, Reason: reason, Start: timestamppb.New(until)})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func newTicket() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(1e12))
	return fmt.Sprintf("T%012d", n.Int64())
}

func money(cents int64, currency string) string {
	return fmt.Sprintf("%s %d.%02d", currency, cents/100, cents%100)
}
