package edge

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
)

// OpenLane raises a lane's barrier by an operator's hand, for one vehicle. The operator
// and the reason are recorded; a reason is required. At an exit with a fee displayed,
// the session is ended as opened by the operator with its fee unpaid.
func (g *Garage) OpenLane(ctx context.Context, laneID, operator, reason string) error {
	reason, operator = strings.TrimSpace(reason), strings.TrimSpace(operator)
	if reason == "" {
		return Errorf(EINVALID, "a reason is required to open a lane by hand")
	}
	if operator == "" {
		return Errorf(EINVALID, "the operator must be named")
	}
	p, err := g.step(g.now(), func(t *txn) error {
		l, ok := g.lanes[laneID]
		if !ok {
			return Errorf(ENOTFOUND, "no lane %q", laneID)
		}
		switch l.state {
		case laneOpening, laneOpen, lanePassing:
			return Errorf(ECONFLICT, "lane %s is already open", laneID)
		}
		t.emit(laneID, &gh.GateManualOpen{Operator: operator, Reason: reason})
		t.alert(laneID, AlertManualOpen, "info", fmt.Sprintf("opened by %s: %s", operator, reason), "", "", false)
		a := &authorization{cred: &gh.Credential{Kind: gh.CredentialKind_CREDENTIAL_KIND_OPERATOR, Value: operator}, right: gh.Right_RIGHT_OPERATOR, manual: true}
		if l.cfg.Direction == Entry {
			zone, _ := g.f.Zone(l.cfg.Zone)
			a.right, a.rate, a.sessionID, a.ticket = gh.Right_RIGHT_TRANSIENT, zone.Rate, newID(), newTicket()
		} else if d := l.decision; d != nil && d.SessionID != "" {
			if s, ok := g.st.Sessions[d.SessionID]; ok {
				total, _, _ := SessionFee(g.f, s, t.now, false)
				a.sessionID, a.fee = s.ID, total
			}
		}
		if l.state == laneIdle {
			t.arm(l)
		}
		t.allow(l, a)
		return nil
	})
	if err != nil {
		return err
	}
	return wait(ctx, p)
}

// PayAtLane records a payment made at a lane's kiosk for the fee it displays, and lets
// the vehicle out when the fee is covered.
func (g *Garage) PayAtLane(ctx context.Context, laneID string, amount int64, method, reference string) error {
	if amount <= 0 {
		return Errorf(EINVALID, "amount must be positive")
	}
	p, err := g.step(g.now(), func(t *txn) error {
		l, ok := g.lanes[laneID]
		if !ok {
			return Errorf(ENOTFOUND, "no lane %q", laneID)
		}
		d := l.decision
		if l.state != laneArmed || d == nil || d.Allowed || d.FeeDue == 0 {
			return Errorf(ECONFLICT, "lane %s has no fee to pay", laneID)
		}
		if amount < d.FeeDue {
			return Errorf(EINVALID, "amount %d is less than the fee due %d", amount, d.FeeDue)
		}
		t.emit(laneID, &gh.PaymentProcessed{PaymentId: newID(), SessionId: d.SessionID, Amount: amount, Currency: g.f.Currency, Method: method, Reference: reference})
		if d.SessionID == "" {
			// A lost ticket with no session: the payment is the whole fee.
			t.allow(l, &authorization{cred: &gh.Credential{Kind: gh.CredentialKind_CREDENTIAL_KIND_LOST_TICKET}, lost: true, fee: amount, paid: amount})
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

// PaySession records a payment for an open session made elsewhere: a pay station, the
// app. The exit then opens without stopping within the rate's grace period. The
// reference (the provider's payment id) makes it idempotent: a payment whose reference
// the session already holds is not recorded again.
func (g *Garage) PaySession(ctx context.Context, sessionID string, amount int64, method, reference string) error {
	if amount <= 0 {
		return Errorf(EINVALID, "amount must be positive")
	}
	p, err := g.step(g.now(), func(t *txn) error {
		s, ok := g.st.Sessions[sessionID]
		if !ok {
			return Errorf(ENOTFOUND, "no open session %q", sessionID)
		}
		if reference != "" && slices.Contains(s.PaymentRefs, reference) {
			return nil // a retry of a payment already recorded: record nothing twice
		}
		t.emit("", &gh.PaymentProcessed{PaymentId: newID(), SessionId: sessionID, Amount: amount, Currency: g.f.Currency, Method: method, Reference: reference})
		return nil
	})
	if err != nil {
		return err
	}
	return wait(ctx, p)
}

// ResetCount sets a zone's count by an operator's hand after a physical count. The
// operator, the reason, the old and the new count are recorded.
func (g *Garage) ResetCount(ctx context.Context, zoneID string, occupied int, operator, reason string) error {
	reason, operator = strings.TrimSpace(reason), strings.TrimSpace(operator)
	if reason == "" || operator == "" {
		return Errorf(EINVALID, "operator and reason are required to reset a count")
	}
	p, err := g.step(g.now(), func(t *txn) error {
		zc, ok := g.f.Zone(zoneID)
		if !ok {
			return Errorf(ENOTFOUND, "no zone %q", zoneID)
		}
		if capacity := g.st.ZoneLimits(zc).Capacity; occupied < 0 || occupied > capacity {
			return Errorf(EINVALID, "count must be between 0 and %d", capacity)
		}
		prev := g.st.Zones[zoneID].Occupied
		t.emit("", &gh.OccupancyReset{ZoneId: zoneID, Previous: int32(prev), Occupied: int32(occupied), Operator: operator, Reason: reason})
		if _, active := g.st.Alerts[alertKey(AlertOverCapacity, "", "", zoneID)]; active {
			t.alert("", AlertOverCapacity, "info", "count reset", "", zoneID, true)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return wait(ctx, p)
}

// spotChanged records a spot sensor's report and, for zones counted by sensors, the
// zone's new count.
func (t *txn) spotChanged(ev DeviceEvent) error {
	st := t.g.st
	sp, ok := st.Spots[ev.Code]
	if !ok {
		t.g.stats.UnknownDevices.Add(1)
		return Errorf(ENOTFOUND, "no spot %q", ev.Code)
	}
	if sp.Occupied == ev.Occupied {
		return nil // sensors repeat themselves
	}
	t.emit("", &gh.SpotStatusChanged{SpotId: sp.ID, ZoneId: sp.Zone, Occupied: ev.Occupied, Source: ev.Device})
	zc, _ := t.g.f.Zone(sp.Zone)
	if zc == nil || zc.CountSource != CountSensors {
		return nil
	}
	n := 0
	for _, s := range zc.Spots {
		if st.Spots[s.ID].Occupied {
			n++
		}
	}
	z := st.Zones[sp.Zone]
	t.emit("", &gh.OccupancyChanged{ZoneId: zc.ID, Delta: int32(n - z.Occupied), Occupied: int32(n), Capacity: int32(st.ZoneLimits(zc).Capacity), Cause: "sensor"})
	return nil
}

func wait(ctx context.Context, p Pending) error {
	done := make(chan error, 1)
	go func() { done <- p.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ZoneView is a zone's live occupancy. Capacity and HeldBack are those in force: the
// cloud's layout document's when it set them, otherwise the config file's.
type ZoneView struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Level     string `json:"level"`
	Capacity  int    `json:"capacity"`
	HeldBack  int    `json:"held_back"`
	Occupied  int    `json:"occupied"`
	Available int    `json:"available"`
	// AvailableWalkIn is what a driver without a permit or booking can still get.
	AvailableWalkIn int `json:"available_walk_in"`
}

// Occupancy returns every zone's count.
func (g *Garage) Occupancy() []ZoneView {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]ZoneView, 0, len(g.f.Zones))
	for i := range g.f.Zones {
		z := &g.f.Zones[i]
		n, zl := g.st.Zones[z.ID].Occupied, g.st.ZoneLimits(z)
		out = append(out, ZoneView{ID: z.ID, Name: z.Name, Level: z.Level, Capacity: zl.Capacity, HeldBack: zl.HeldBack,
			Occupied: n, Available: max(0, zl.Capacity-n), AvailableWalkIn: max(0, zl.Capacity-zl.HeldBack-n)})
	}
	return out
}

// LaneView is a lane's live status.
type LaneView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Direction Direction `json:"direction"`
	Zone      string    `json:"zone"`
	State     string    `json:"state"`
	Since     time.Time `json:"since,omitzero"`
	Barrier   string    `json:"barrier"`
	ArmingOn  bool      `json:"arming_loop"`
	SafetyOn  bool      `json:"safety_loop"`
	Status    string    `json:"status"`
	Degraded  string    `json:"degraded,omitempty"`
	Decision  *Decision `json:"decision,omitempty"`
}

// Lanes returns every lane's status.
func (g *Garage) Lanes() []LaneView {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]LaneView, 0, len(g.laneList))
	for _, l := range g.laneList {
		v := LaneView{ID: l.cfg.ID, Name: l.cfg.Name, Direction: l.cfg.Direction, Zone: l.cfg.Zone, State: l.state.String(),
			Since: l.since, Barrier: l.position.String(), ArmingOn: l.armOn, SafetyOn: l.safetyOn, Status: "ok", Degraded: l.degraded}
		if l.degraded != "" {
			v.Status = "degraded"
		}
		if l.decision != nil {
			d := *l.decision
			v.Decision = &d
		}
		out = append(out, v)
	}
	return out
}

// OpenSessions returns the sessions of vehicles inside, oldest first.
func (g *Garage) OpenSessions() []Session {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Session, 0, len(g.st.Sessions))
	for _, s := range g.st.Sessions {
		c := *s
		c.Segments = slices.Clone(s.Segments)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Session) int {
		if c := a.Entered.Compare(b.Entered); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Alerts returns the active alerts.
func (g *Garage) Alerts() []Alert {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Alert, 0, len(g.st.Alerts))
	for _, a := range g.st.Alerts {
		out = append(out, *a)
	}
	slices.SortFunc(out, func(a, b Alert) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// Seq returns the seq of the newest event.
func (g *Garage) Seq() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.st.Seq
}

// Events returns up to limit events after seq, from the store.
func (g *Garage) Events(after uint64, limit int) ([]*gh.Envelope, error) {
	return g.store.Events(after, limit)
}

// State returns a copy-free view for verification; callers must not modify it and
// must not use it while the garage runs.
func (g *Garage) State() *State { return g.st }

// deviceHealth raises or clears a device.offline alert and degrades or recovers the
// lane the device belongs to.
func (t *txn) deviceHealth(ev DeviceEvent) {
	r, onLane := t.g.routes[ev.Device]
	laneID := ""
	if onLane {
		laneID = r.lane.cfg.ID
	}
	// A lane without its loops or barrier cannot work; a lane without its camera or
	// ticket reader still can (drivers use the other credential or the intercom), so
	// those raise the alert without degrading the lane.
	degrades := onLane && (r.role == roleArming || r.role == roleSafety || r.role == roleBarrier)
	if !ev.Healthy {
		if _, active := t.g.st.Alerts[alertKey(AlertDeviceOffline, laneID, ev.Device, "")]; active {
			return
		}
		msg := "device " + ev.Device + " offline"
		if ev.Detail != "" {
			msg += ": " + ev.Detail
		}
		if degrades && r.lane.degraded == "" {
			r.lane.degraded = AlertDeviceOffline
			t.emit(laneID, &gh.LaneStatusChanged{Status: "degraded", Reason: msg})
		}
		t.alert(laneID, AlertDeviceOffline, "critical", msg, ev.Device, "", false)
		return
	}
	t.alert(laneID, AlertDeviceOffline, "info", "device "+ev.Device+" back online", ev.Device, "", true)
	if degrades && r.lane.degraded == AlertDeviceOffline {
		for key := range t.g.st.Alerts {
			if a := t.g.st.Alerts[key]; a.Code == AlertDeviceOffline && a.Lane == laneID && t.g.routes[a.Device].role != roleCamera && t.g.routes[a.Device].role != roleTicket {
				return // another device of the lane is still offline
			}
		}
		t.recover(r.lane)
	}
}

// ApplyCredentials applies a downlink document from the cloud: the whole list of
// permits, reservations or blocked plates, as of its version. A version that is not
// newer than the one held is ignored and reported as not applied, so that redelivery
// is harmless.
func (g *Garage) ApplyCredentials(ctx context.Context, doc *gh.CredentialsReplaced) (bool, error) {
	switch doc.GetKind() {
	case "permits", "reservations", "blocklist":
	default:
		return false, Errorf(EINVALID, "unknown document kind %q", doc.GetKind())
	}
	applied := false
	p, err := g.step(g.now(), func(t *txn) error {
		if doc.Version <= g.st.Versions[doc.Kind] {
			return nil
		}
		applied = true
		t.emit("", doc)
		return nil
	})
	if err != nil {
		return false, err
	}
	return applied, wait(ctx, p)
}

// Layout is what the garage applies of the cloud's "layout" downlink document: the
// capacity and held-back space of zones, as of a version.
type Layout struct {
	Version uint64
	Zones   []LayoutZone
}

// LayoutZone is one zone of a layout document. A nil Capacity or HeldBack keeps the
// config file's value.
type LayoutZone struct {
	ID       string
	Capacity *int
	HeldBack *int
}

// ApplyLayout applies the cloud's layout document: for each zone of the garage that it
// names, its capacity and held-back space replace the config file's, for the lot-full
// decision, the counts' over-capacity alerts and the occupancy the garage reports. A
// zone it does not name keeps the config file's values; a zone the garage does not
// have is ignored, with one warning. A version that is not newer than the one held is
// ignored and reported as not applied, so that redelivery is harmless.
func (g *Garage) ApplyLayout(ctx context.Context, doc Layout) (bool, error) {
	if doc.Version == 0 {
		return false, Errorf(EINVALID, "layout version 0")
	}
	seen := map[string]bool{}
	for _, z := range doc.Zones {
		switch {
		case seen[z.ID]:
			return false, Errorf(EINVALID, "layout names zone %q twice", z.ID)
		case z.Capacity != nil && *z.Capacity < 0, z.HeldBack != nil && *z.HeldBack < 0:
			return false, Errorf(EINVALID, "layout zone %q: negative capacity or held-back space", z.ID)
		case z.Capacity != nil && *z.Capacity > math.MaxInt32, z.HeldBack != nil && *z.HeldBack > math.MaxInt32:
			return false, Errorf(EINVALID, "layout zone %q: capacity out of range", z.ID)
		}
		seen[z.ID] = true
	}
	applied := false
	var unknown []string
	p, err := g.step(g.now(), func(t *txn) error {
		if doc.Version <= g.st.Versions[LayoutKind] {
			return nil
		}
		applied = true
		ev := &gh.LayoutApplied{Version: doc.Version}
		for _, z := range doc.Zones {
			zc, ok := g.f.Zone(z.ID)
			if !ok {
				unknown = append(unknown, z.ID)
				continue
			}
			zl := ZoneLimits{Capacity: zc.Capacity, HeldBack: zc.HeldBack}
			if z.Capacity != nil {
				zl.Capacity = *z.Capacity
			}
			if z.HeldBack != nil {
				zl.HeldBack = *z.HeldBack
			}
			zl.HeldBack = min(zl.HeldBack, zl.Capacity)
			ev.Zones = append(ev.Zones, &gh.ZoneCapacity{ZoneId: z.ID, Capacity: int32(zl.Capacity), HeldBack: int32(zl.HeldBack)})
		}
		for i := range g.f.Zones {
			if zc := &g.f.Zones[i]; !slices.ContainsFunc(ev.Zones, func(z *gh.ZoneCapacity) bool { return z.ZoneId == zc.ID }) {
				ev.Configured = append(ev.Configured, &gh.ZoneCapacity{ZoneId: zc.ID, Capacity: int32(zc.Capacity), HeldBack: int32(zc.HeldBack)})
			}
		}
		t.emit("", ev)
		for i := range g.f.Zones {
			zc := &g.f.Zones[i]
			t.capacityAlert(zc.ID, g.st.Zones[zc.ID].Occupied, g.st.ZoneLimits(zc).Capacity)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	if len(unknown) > 0 {
		g.log.Warn("layout document names zones this garage does not have; ignored",
			"version", doc.Version, "zones", unknown)
	}
	return applied, wait(ctx, p)
}

// DocumentVersion returns the version of the downlink document of kind held.
func (g *Garage) DocumentVersion(kind string) uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.st.Versions[kind]
}
