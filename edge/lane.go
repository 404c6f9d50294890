package edge

import (
	"fmt"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge/plate"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
)

// laneState is where a lane is in its cycle:
//
//	idle ─arming loop─▶ armed ─credential ok─▶ opening ─arm up─▶ open ─safety loop─▶ passing
//	  ▲                   │ (denied: stays armed,                            │ safety clear
//	  │                   │  shows why, waits for                            ▼ (passage recorded)
//	  └────arm down───────┴──another credential)◀──── closing ◀──────────────┘
//
// A vehicle on the safety loop while closing raises the arm again (the safety loop holds
// it); if its credential was already used, that vehicle is a tailgater.
type laneState uint8

const (
	laneIdle laneState = iota
	laneArmed
	laneOpening
	laneOpen
	lanePassing
	laneClosing
)

var laneStateNames = [...]string{"idle", "armed", "opening", "open", "passing", "closing"}

func (s laneState) String() string { return laneStateNames[s] }

type lane struct {
	cfg   *Lane
	state laneState
	since time.Time

	armOn, safetyOn       bool
	armSince, safetySince time.Time
	armStuck, safetyStuck bool

	reads     []plate.Read
	readsFrom time.Time

	auth      *authorization // accepted credential waiting for its passage
	tailgate  bool           // the arm was raised again for a vehicle with no credential
	decision  *Decision      // the last decision, for the kiosk display
	position  Position
	commanded bool // true: last command was raise
	deadline  time.Time
	retries   int
	degraded  string // why the lane is degraded; "" when it is fine
	noCred    bool   // the no-credential alert was raised for this vehicle
}

// authorization is a decision to let one vehicle through.
type authorization struct {
	cred          *gh.Credential
	right         gh.Right
	rate          string
	sessionID     string // entry: the session to start; exit: the session to end ("" if none)
	plate, ticket string
	permitID      string
	reservationID string
	voidSession   string // soft anti-passback: an open session of this credential to end first
	fee, paid     int64
	lost          bool
	manual        bool
	images        []string // camera images of the vehicle at this lane
}

// Decision is what a lane decided for the last credential, as the kiosk shows it.
type Decision struct {
	Allowed   bool      `json:"allowed"`
	Reason    string    `json:"reason"`
	Message   string    `json:"message"`
	Plate     string    `json:"plate,omitempty"`
	Ticket    string    `json:"ticket,omitempty"`
	SessionID string    `json:"session_id,omitempty"`
	FeeDue    int64     `json:"fee_due,omitempty"`
	Currency  string    `json:"currency,omitempty"`
	At        time.Time `json:"at"`
	// Credential is kept so that a payment at the lane can decide again.
	cred credential
}

// credential is what a driver presented, before it is resolved.
type credential struct {
	kind    gh.CredentialKind
	value   string // normalized plate, ticket/QR code or card id
	conf    float64
	request bool     // entry ticket button: issue a ticket
	images  []string // camera images of the reads voted for
}

func (l *lane) setState(s laneState, now time.Time) {
	l.state, l.since = s, now
}

func (t *txn) laneEvent(l *lane, r role, ev DeviceEvent) {
	switch ev.Kind {
	case LoopChanged:
		if r == roleArming {
			t.armingLoop(l, ev.Occupied)
		} else if r == roleSafety {
			t.safetyLoop(l, ev.Occupied)
		}
	case ArmPosition:
		t.armPosition(l, ev.Position)
	case PlateRead:
		text := plate.Normalize(ev.Read.Text)
		if text == "" {
			return
		}
		switch l.state {
		case laneOpening, laneOpen, lanePassing:
			// The camera reading the vehicle that is already let through: it is not
			// the next vehicle's credential.
			return
		}
		rd := ev.Read
		rd.Text = text
		rd.At = t.now // the garage's clock: cameras' clocks drift
		if len(l.reads) == 0 {
			l.readsFrom = t.now
		}
		l.reads = append(l.reads, rd)
		if time.Duration(t.g.f.Policies.PlateVoteWindow) == 0 {
			t.votePlates(l)
		}
	case TicketPresented:
		kind := gh.CredentialKind_CREDENTIAL_KIND_TICKET
		if _, ok := t.g.st.byCode[ev.Code]; ok {
			kind = gh.CredentialKind_CREDENTIAL_KIND_QR
		}
		t.present(l, credential{kind: kind, value: ev.Code})
	case TicketRequested:
		t.present(l, credential{kind: gh.CredentialKind_CREDENTIAL_KIND_TICKET, request: true})
	case CardPresented:
		t.present(l, credential{kind: gh.CredentialKind_CREDENTIAL_KIND_PERMIT_CARD, value: ev.Code})
	case LostTicket:
		t.present(l, credential{kind: gh.CredentialKind_CREDENTIAL_KIND_LOST_TICKET})
	}
}

func (t *txn) armingLoop(l *lane, on bool) {
	if on == l.armOn {
		return
	}
	l.armOn = on
	if on {
		l.armSince = t.now
		if l.state == laneIdle {
			t.arm(l)
		}
		return
	}
	if l.armStuck {
		l.armStuck = false
		t.alert(l.cfg.ID, AlertLoopStuck, "info", "arming loop clear again", l.cfg.ArmingLoop, "", true)
		t.recover(l)
	}
	if l.state == laneArmed {
		// The vehicle backed out before going through: forget it.
		t.disarm(l)
	}
}

func (t *txn) arm(l *lane) {
	l.setState(laneArmed, t.now)
	l.noCred = false
	l.decision = nil
	// Reads taken just before the loop saw the car belong to it; older ones belong to
	// the vehicle before it or to a passer-by.
	from := t.now.Add(-10 * time.Second)
	if l.armOn {
		from = l.armSince.Add(-time.Second)
	}
	kept := l.reads[:0]
	for _, r := range l.reads {
		if !r.At.Before(from) {
			kept = append(kept, r)
		}
	}
	l.reads = kept
	if len(kept) > 0 {
		l.readsFrom = kept[0].At
	}
}

func (t *txn) disarm(l *lane) {
	l.setState(laneIdle, t.now)
	l.reads, l.decision, l.auth = nil, nil, nil
}

func (t *txn) safetyLoop(l *lane, on bool) {
	if on == l.safetyOn {
		return
	}
	l.safetyOn = on
	if on {
		l.safetySince = t.now
		switch l.state {
		case laneOpening, laneOpen:
			l.setState(lanePassing, t.now)
		case laneClosing:
			// The safety loop holds the arm: never lower it onto a vehicle.
			t.command(l, true)
			l.setState(lanePassing, t.now)
			if l.auth == nil {
				l.tailgate = true
			}
		}
		return
	}
	if l.safetyStuck {
		l.safetyStuck = false
		t.alert(l.cfg.ID, AlertLoopStuck, "info", "safety loop clear again", l.cfg.SafetyLoop, "", true)
		t.recover(l)
	}
	if l.state != lanePassing {
		return
	}
	switch {
	case l.auth != nil:
		t.passage(l, l.auth)
		l.auth = nil
	case l.tailgate:
		t.tailgatePassage(l)
	}
	l.tailgate = false
	t.command(l, false)
	l.deadline, l.retries = t.now.Add(time.Duration(t.g.f.Policies.BarrierTimeout)), 0
	l.setState(laneClosing, t.now)
}

func (t *txn) armPosition(l *lane, p Position) {
	prev := l.position
	l.position = p
	switch p {
	case PositionUp:
		if prev != PositionUp {
			t.emit(l.cfg.ID, &gh.GateOpened{BarrierId: l.cfg.Barrier})
		}
		if l.state == laneOpening {
			l.setState(laneOpen, t.now)
			l.deadline = t.now.Add(time.Duration(t.g.f.Policies.PassTimeout))
		}
		if l.commanded && l.degraded == AlertBarrierFault {
			t.recover(l)
		}
	case PositionDown:
		if prev != PositionDown {
			t.emit(l.cfg.ID, &gh.GateClosed{BarrierId: l.cfg.Barrier})
		}
		if l.state == laneClosing {
			if l.armOn {
				t.arm(l)
			} else {
				l.setState(laneIdle, t.now)
			}
		}
		if !l.commanded && l.degraded == AlertBarrierFault {
			t.recover(l)
		}
	case PositionFault:
		t.degrade(l, AlertBarrierFault, "barrier reports a fault")
	}
}

// laneTick runs one lane's timers.
func (t *txn) laneTick(l *lane) {
	p := &t.g.f.Policies
	now := t.now
	if len(l.reads) > 0 && l.state == laneArmed && now.Sub(l.readsFrom) >= time.Duration(p.PlateVoteWindow) {
		t.votePlates(l)
	}
	if l.state == laneIdle && len(l.reads) > 0 && now.Sub(l.readsFrom) > 10*time.Second {
		l.reads = nil // a read with no vehicle on the loop: a passer-by
	}
	switch l.state {
	case laneArmed:
		if !l.noCred && l.decision == nil && now.Sub(l.since) >= time.Duration(p.CredentialWindow) {
			l.noCred = true
			t.alert(l.cfg.ID, AlertNoCredential, "info", "vehicle waiting without a credential", "", "", false)
		}
	case laneOpening, laneClosing:
		if now.Before(l.deadline) {
			break
		}
		raise := l.state == laneOpening
		if l.retries < p.BarrierRetries {
			l.retries++
			t.command(l, raise)
			l.deadline = now.Add(time.Duration(p.BarrierTimeout))
			break
		}
		verb := "lower"
		if raise {
			verb = "raise"
		}
		t.degrade(l, AlertBarrierFault, fmt.Sprintf("barrier did not %s after %d tries", verb, p.BarrierRetries+1))
		l.deadline = now.Add(time.Duration(p.BarrierTimeout)) // keep watching; a report recovers the lane
		l.retries = 0
	case laneOpen:
		if now.Before(l.deadline) || l.safetyOn {
			break
		}
		// The vehicle never came through: it reversed or the driver walked away. The
		// credential is not used.
		t.g.log.Info("vehicle did not pass; closing", "lane", l.cfg.ID)
		l.auth = nil
		t.command(l, false)
		l.deadline, l.retries = now.Add(time.Duration(p.BarrierTimeout)), 0
		l.setState(laneClosing, now)
	}
	stuck := time.Duration(p.StuckLoopAfter)
	if stuck > 0 {
		if l.armOn && !l.armStuck && now.Sub(l.armSince) >= stuck {
			l.armStuck = true
			t.degrade(l, AlertLoopStuck, "arming loop occupied for "+stuck.String())
		}
		if l.safetyOn && !l.safetyStuck && now.Sub(l.safetySince) >= stuck {
			l.safetyStuck = true
			t.degrade(l, AlertLoopStuck, "safety loop occupied for "+stuck.String())
		}
	}
}

// degrade raises an alert and marks the lane degraded (once per reason).
func (t *txn) degrade(l *lane, code, msg string) {
	device := l.cfg.Barrier
	if code == AlertLoopStuck {
		device = l.cfg.ArmingLoop
		if l.safetyStuck {
			device = l.cfg.SafetyLoop
		}
	}
	t.alert(l.cfg.ID, code, "critical", msg, device, "", false)
	if l.degraded == "" {
		l.degraded = code
		t.emit(l.cfg.ID, &gh.LaneStatusChanged{Status: "degraded", Reason: msg})
		if l.cfg.FailMode == FailOpen && code == AlertBarrierFault {
			// Fail open: keep the arm up so nobody is trapped; passages are still counted.
			t.command(l, true)
		}
	}
}

// recover clears a degraded lane once nothing is wrong with it any more.
func (t *txn) recover(l *lane) {
	if l.degraded == "" || l.armStuck || l.safetyStuck {
		return
	}
	if l.degraded == AlertBarrierFault {
		t.alert(l.cfg.ID, AlertBarrierFault, "info", "barrier reports position again", l.cfg.Barrier, "", true)
	}
	l.degraded = ""
	t.emit(l.cfg.ID, &gh.LaneStatusChanged{Status: "ok", Reason: "recovered"})
}

func (t *txn) alert(laneID, code, severity, msg, device, zone string, cleared bool) {
	if cleared {
		if _, ok := t.g.st.Alerts[alertKey(code, laneID, device, zone)]; !ok && lastingAlert(code) {
			return // nothing to clear
		}
	}
	t.emit(laneID, &gh.AlertTriggered{Code: code, Severity: severity, Message: msg, DeviceId: device, ZoneId: zone, Cleared: cleared})
}

func (t *txn) votePlates(l *lane) {
	res := plate.Vote(l.reads, t.g.f.Policies.PlateConfidence)
	var images []string
	for _, r := range l.reads {
		if plate.Canonical(r.Text) == plate.Canonical(res.Plate) {
			images = append(images, r.Images...)
		}
	}
	l.reads = nil
	if res.Unsure {
		// Never guess: an unsure read is no credential; the driver takes a ticket or
		// uses the intercom.
		t.g.log.Info("plate unsure", "lane", l.cfg.ID, "reason", res.Reason)
		l.decision = &Decision{Allowed: false, Reason: "plate_unsure", Message: "Plate not recognised: please take a ticket or press for help", At: t.now}
		t.emit(l.cfg.ID, &gh.GateDecision{Credential: &gh.Credential{Kind: gh.CredentialKind_CREDENTIAL_KIND_PLATE}, Reason: "plate_unsure"})
		return
	}
	t.present(l, credential{kind: gh.CredentialKind_CREDENTIAL_KIND_PLATE, value: res.Plate, conf: res.Confidence, images: images})
}

// present decides on a credential presented at a lane.
func (t *txn) present(l *lane, c credential) {
	t.g.stats.Decisions.Add(1)
	switch l.state {
	case laneIdle:
		// A credential with no vehicle on the arming loop still counts: the loop may be
		// faulty, and a driver who presents something is there.
		t.arm(l)
	case laneArmed:
	default:
		// The lane is busy with the vehicle in front: a credential now is ignored; the
		// next vehicle presents its own once the arm is down.
		return
	}
	if l.degraded != "" && l.cfg.FailMode == FailSecure && l.degraded == AlertBarrierFault {
		t.deny(l, c, "lane_out_of_service", "Lane out of service: please use another lane or press for help", nil, 0)
		return
	}
	var a *authorization
	if l.cfg.Direction == Entry {
		a = t.decideEntry(l, c)
	} else {
		a = t.decideExit(l, c)
	}
	if a != nil {
		a.images = c.images
		if len(a.images) == 0 {
			// A ticket or card at a lane whose camera also saw the vehicle.
			for _, r := range l.reads {
				a.images = append(a.images, r.Images...)
			}
		}
		t.allow(l, a)
	}
}

func (t *txn) allow(l *lane, a *authorization) {
	l.auth = a
	reason := map[gh.Right]string{gh.Right_RIGHT_PERMIT: "permit", gh.Right_RIGHT_RESERVATION: "reservation", gh.Right_RIGHT_OPERATOR: "operator"}[a.right]
	if reason == "" {
		reason = "transient"
		if l.cfg.Direction == Exit {
			reason = "paid"
			if a.fee == 0 {
				reason = "no_fee"
			}
		}
	}
	l.decision = &Decision{Allowed: true, Reason: reason, Message: "Welcome", Plate: a.plate, Ticket: a.ticket, SessionID: a.sessionID, At: t.now}
	if l.cfg.Direction == Exit {
		l.decision.Message = "Goodbye"
	}
	t.emit(l.cfg.ID, &gh.GateDecision{Credential: a.cred, Allowed: true, Reason: reason, SessionId: a.sessionID, FeeDue: 0, Currency: t.g.f.Currency})
	if l.position != PositionUp || !l.commanded {
		t.command(l, true)
	}
	l.deadline, l.retries = t.now.Add(time.Duration(t.g.f.Policies.BarrierTimeout)), 0
	if l.position == PositionUp {
		l.setState(laneOpen, t.now)
		l.deadline = t.now.Add(time.Duration(t.g.f.Policies.PassTimeout))
	} else {
		l.setState(laneOpening, t.now)
	}
}

func (t *txn) deny(l *lane, c credential, reason, msg string, sess *Session, fee int64) {
	t.g.stats.Denials.Add(1)
	d := &Decision{Allowed: false, Reason: reason, Message: msg, FeeDue: fee, At: t.now, cred: c}
	gd := &gh.GateDecision{Credential: c.proto(), Reason: reason, FeeDue: fee}
	if fee > 0 {
		d.Currency, gd.Currency = t.g.f.Currency, t.g.f.Currency
	}
	if c.kind == gh.CredentialKind_CREDENTIAL_KIND_PLATE {
		d.Plate = c.value
	}
	if sess != nil {
		d.SessionID, gd.SessionId = sess.ID, sess.ID
		d.Ticket = sess.Ticket
	}
	l.decision = d
	t.emit(l.cfg.ID, gd)
}

func (c credential) proto() *gh.Credential {
	return &gh.Credential{Kind: c.kind, Value: c.value, Confidence: c.conf}
}

// passage records a vehicle that went through with an authorization.
func (t *txn) passage(l *lane, a *authorization) {
	t.g.stats.Passages.Add(1)
	st := t.g.st
	zone := l.cfg.Zone
	if l.cfg.Direction == Entry {
		if a.voidSession != "" {
			if old, ok := st.Sessions[a.voidSession]; ok {
				t.endSession(l, old, 0, "antipassback_void", a.cred, nil)
			}
		}
		t.emit(l.cfg.ID, &gh.SessionStarted{SessionId: a.sessionID, ZoneId: zone, Credential: a.cred, Right: a.right, RateId: a.rate, Plate: a.plate, Ticket: a.ticket, Images: a.images})
		t.count(l, zone, +1, "entry")
		if a.permitID != "" {
			t.emit(l.cfg.ID, &gh.CredentialUsed{PermitId: a.permitID, Inside: int32(st.Permits[a.permitID].Inside + 1)})
		}
		if a.reservationID != "" {
			t.emit(l.cfg.ID, &gh.CredentialUsed{ReservationId: a.reservationID})
		}
		return
	}
	if sess, ok := st.Sessions[a.sessionID]; ok && a.sessionID != "" {
		how := "exit"
		switch {
		case a.lost:
			how = "lost_ticket"
		case a.manual:
			how = "operator"
		}
		t.endSession(l, sess, a.fee, how, a.cred, a.images)
		return
	}
	// Out with no session: a permit whose entry was missed, or an operator opening.
	t.count(l, zone, -1, "exit")
}

func (t *txn) endSession(l *lane, s *Session, fee int64, how string, cred *gh.Credential, images []string) {
	st := t.g.st
	permit := s.PermitID
	t.emit(l.cfg.ID, &gh.SessionEnded{SessionId: s.ID, ZoneId: s.Zone, Credential: cred, FeeTotal: fee, Paid: s.Paid,
		Currency: t.g.f.Currency, Reason: how, DurationSeconds: int64(t.now.Sub(s.Entered) / time.Second), Images: images})
	t.count(l, s.Zone, -1, "exit")
	if p, ok := st.Permits[permit]; ok && permit != "" {
		t.emit(l.cfg.ID, &gh.CredentialUsed{PermitId: permit, Inside: int32(max(0, p.Inside-1))})
	}
}

// tailgatePassage counts a vehicle that followed another through without a credential.
func (t *txn) tailgatePassage(l *lane) {
	d := +1
	if l.cfg.Direction == Exit {
		d = -1
	}
	t.alert(l.cfg.ID, AlertTailgating, "warning", "a second vehicle passed on one credential", l.cfg.SafetyLoop, l.cfg.Zone, false)
	t.count(l, l.cfg.Zone, d, "tailgate")
}

// count moves a zone's count, never below zero and never silently above capacity.
func (t *txn) count(l *lane, zoneID string, delta int, cause string) {
	z, ok := t.g.st.Zones[zoneID]
	zc, _ := t.g.f.Zone(zoneID)
	if !ok || zc == nil {
		return
	}
	n := z.Occupied + delta
	if n < 0 {
		t.alert(l.cfg.ID, AlertClamped, "warning", fmt.Sprintf("zone %s count would go below zero; kept at 0", zoneID), "", zoneID, false)
		n, cause = 0, "clamped"
	}
	capacity := t.g.st.ZoneLimits(zc).Capacity
	t.emit(l.cfg.ID, &gh.OccupancyChanged{ZoneId: zoneID, Delta: int32(n - z.Occupied), Occupied: int32(n), Capacity: int32(capacity), Cause: cause})
	t.capacityAlert(zoneID, n, capacity)
}

// capacityAlert raises or clears a zone's over-capacity alert as its count n stands
// against its capacity.
func (t *txn) capacityAlert(zoneID string, n, capacity int) {
	over := n > capacity
	_, active := t.g.st.Alerts[alertKey(AlertOverCapacity, "", "", zoneID)]
	if over && !active {
		t.alert("", AlertOverCapacity, "warning", fmt.Sprintf("zone %s holds %d vehicles for %d spaces", zoneID, n, capacity), "", zoneID, false)
	} else if !over && active {
		t.alert("", AlertOverCapacity, "info", fmt.Sprintf("zone %s back within capacity", zoneID), "", zoneID, true)
	}
}
