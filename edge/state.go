package edge

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge/plate"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
)

// ZoneState is a zone's live count.
type ZoneState struct {
	ID       string `json:"id"`
	Occupied int    `json:"occupied"`
}

// Segment is a part of a stay with one right and one rate (APDS Session/Segment).
type Segment struct {
	Start  time.Time `json:"start"`
	Right  gh.Right  `json:"right"`
	Rate   string    `json:"rate,omitempty"`
	Reason string    `json:"reason,omitempty"`
}

// MarshalJSON writes the right by name ("RIGHT_PERMIT"), as the event JSON does.
func (s Segment) MarshalJSON() ([]byte, error) {
	type plain Segment
	return json.Marshal(struct {
		plain
		Right string `json:"right"`
	}{plain(s), s.Right.String()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Segment) UnmarshalJSON(b []byte) error {
	type plain Segment
	var v struct {
		plain
		Right string `json:"right"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	r, ok := gh.Right_value[v.Right]
	if !ok {
		return fmt.Errorf("segment: unknown right %q", v.Right)
	}
	*s = Segment(v.plain)
	s.Right = gh.Right(r)
	return nil
}

// Session is one vehicle's stay, from its entry passage to its exit passage.
type Session struct {
	ID            string    `json:"id"`
	Zone          string    `json:"zone"`
	Plate         string    `json:"plate,omitempty"`
	Ticket        string    `json:"ticket,omitempty"`
	Card          string    `json:"card,omitempty"`
	PermitID      string    `json:"permit_id,omitempty"`
	ReservationID string    `json:"reservation_id,omitempty"`
	EntryLane     string    `json:"entry_lane,omitempty"`
	Entered       time.Time `json:"entered"`
	// EntryImages and ExitImages are the camera images of the vehicle (paths under
	// the edge's /camera/images/).
	EntryImages []string  `json:"entry_images,omitempty"`
	ExitImages  []string  `json:"exit_images,omitempty"`
	Segments    []Segment `json:"segments"`
	Paid        int64     `json:"paid"`
	PaidAt      time.Time `json:"paid_at,omitzero"`
	// PaymentRefs are the references of the payments made, so a retried payment is
	// recognised.
	PaymentRefs []string `json:"payment_refs,omitempty"`
	// Set when the session ends.
	ExitLane string    `json:"exit_lane,omitempty"`
	Exited   time.Time `json:"exited,omitzero"`
	Fee      int64     `json:"fee,omitempty"`
	EndedHow string    `json:"ended_how,omitempty"`
}

// Right is the right of the session's current segment.
func (s *Session) Right() gh.Right { return s.Segments[len(s.Segments)-1].Right }

// PermitState is a permit with how many vehicles are inside on it.
type PermitState struct {
	Permit
	Inside int `json:"inside"`
}

// ReservationState is a reservation with whether it has been used.
type ReservationState struct {
	Reservation
	Used bool `json:"used"`
}

// SpotState is one spot's sensor status.
type SpotState struct {
	ID       string    `json:"id"`
	Zone     string    `json:"zone"`
	Occupied bool      `json:"occupied"`
	Since    time.Time `json:"since,omitzero"`
}

// LaneStatus is a lane's service status as recorded in the store.
type LaneStatus struct {
	ID     string `json:"id"`
	Status string `json:"status"` // "ok", "degraded"
	Reason string `json:"reason,omitempty"`
}

// Alert is an active alert.
type Alert struct {
	Key      string    `json:"key"`
	Code     string    `json:"code"`
	Severity string    `json:"severity"`
	Message  string    `json:"message"`
	Lane     string    `json:"lane,omitempty"`
	Device   string    `json:"device,omitempty"`
	Zone     string    `json:"zone,omitempty"`
	Raised   time.Time `json:"raised"`
}

// State is everything a garage decides from. It changes only through Apply, so that the
// state written to the store and the state rebuilt from the outbox are the same by
// construction; Verify checks that they are.
type State struct {
	Facility     *Facility
	Seq          uint64
	Zones        map[string]*ZoneState
	Sessions     map[string]*Session // open
	Permits      map[string]*PermitState
	Reservations map[string]*ReservationState
	Spots        map[string]*SpotState
	Lanes        map[string]*LaneStatus
	Alerts       map[string]*Alert
	Blocklist    []BlockEntry
	// Versions holds the version of each downlink document applied, by kind. Once a
	// kind has arrived from the cloud, the config file's list of that kind is ignored.
	Versions map[string]uint64
	// Layout holds, by zone id, the capacity and held-back space that the cloud's
	// "layout" document sets; a zone not in it has the config file's. Read it through
	// ZoneLimits.
	Layout map[string]ZoneLimits
	// Captures holds the card payments approved offline that the acquirer has not
	// captured yet, by payment id.
	Captures map[string]*PendingCapture

	byTicket  map[string]string // ticket -> open session id
	byCard    map[string]string // permit card -> permit id
	byCode    map[string]string // reservation code -> reservation id
	sessPlate *plate.Index      // plate -> open session id
	permPlate *plate.Index      // plate -> permit id
	resPlate  *plate.Index      // plate -> reservation id
	blocked   *plate.Index      // plate -> block reason
	blockCard map[string]string // card -> block reason

	dirty  map[string]map[string]bool // bucket -> keys touched since the last Records
	closed []*Session                 // sessions ended since the last Records
}

// NewState returns the state of a garage that has never run: every zone empty, the
// facility's permits, reservations and block list loaded.
func NewState(f *Facility) *State {
	s := &State{
		Facility:     f,
		Zones:        map[string]*ZoneState{},
		Sessions:     map[string]*Session{},
		Permits:      map[string]*PermitState{},
		Reservations: map[string]*ReservationState{},
		Spots:        map[string]*SpotState{},
		Lanes:        map[string]*LaneStatus{},
		Alerts:       map[string]*Alert{},
		Blocklist:    append([]BlockEntry(nil), f.Blocklist...),
		Versions:     map[string]uint64{},
		Layout:       map[string]ZoneLimits{},
		Captures:     map[string]*PendingCapture{},
		byTicket:     map[string]string{},
		byCard:       map[string]string{},
		byCode:       map[string]string{},
		sessPlate:    plate.NewIndex(),
		permPlate:    plate.NewIndex(),
		resPlate:     plate.NewIndex(),
		blocked:      plate.NewIndex(),
		blockCard:    map[string]string{},
		dirty:        map[string]map[string]bool{},
	}
	for _, z := range f.Zones {
		s.Zones[z.ID] = &ZoneState{ID: z.ID}
		for _, sp := range z.Spots {
			s.Spots[sp.ID] = &SpotState{ID: sp.ID, Zone: z.ID}
		}
	}
	for _, l := range f.Lanes {
		s.Lanes[l.ID] = &LaneStatus{ID: l.ID, Status: "ok"}
	}
	for _, p := range f.Permits {
		s.Permits[p.ID] = &PermitState{Permit: p}
	}
	for _, r := range f.Reservations {
		s.Reservations[r.ID] = &ReservationState{Reservation: r}
	}
	s.reindex()
	return s
}

// Restore returns the state held in snap, on top of NewState(f): records override the
// defaults, so counts, open sessions and permit use survive restarts while zones,
// permits and reservations added to the config since appear.
func Restore(f *Facility, snap *Snapshot) (*State, error) {
	s := NewState(f)
	s.Seq = snap.LastSeq
	// Downlink documents first: they say which of the config's lists still count.
	for key, val := range snap.Records[BucketDownlink] {
		if err := s.restoreDownlink(key, val); err != nil {
			return nil, fmt.Errorf("restore %s/%s: %w", BucketDownlink, key, err)
		}
	}
	for bucket, recs := range snap.Records {
		if bucket == BucketDownlink {
			continue
		}
		for key, val := range recs {
			if err := s.restoreRecord(bucket, val); err != nil {
				return nil, fmt.Errorf("restore %s/%s: %w", bucket, key, err)
			}
		}
	}
	s.reindex()
	s.dirty = map[string]map[string]bool{}
	return s, nil
}

func (s *State) restoreDownlink(key string, val []byte) error {
	switch {
	case key == "blocklist":
		return json.Unmarshal(val, &s.Blocklist)
	case key == "layout":
		s.Layout = map[string]ZoneLimits{}
		return json.Unmarshal(val, &s.Layout)
	case strings.HasPrefix(key, "version/"):
		var v uint64
		if err := json.Unmarshal(val, &v); err != nil {
			return err
		}
		kind := strings.TrimPrefix(key, "version/")
		s.Versions[kind] = v
		switch kind { // the cloud's list replaced the config's
		case "permits":
			s.Permits = map[string]*PermitState{}
		case "reservations":
			s.Reservations = map[string]*ReservationState{}
		}
	}
	return nil
}

func (s *State) restoreRecord(bucket string, val []byte) error {
	switch bucket {
	case BucketZones:
		var z ZoneState
		if err := json.Unmarshal(val, &z); err != nil {
			return err
		}
		if _, ok := s.Zones[z.ID]; ok { // a zone removed from the config is dropped
			s.Zones[z.ID] = &z
		}
	case BucketSessions:
		var x Session
		if err := json.Unmarshal(val, &x); err != nil {
			return err
		}
		s.Sessions[x.ID] = &x
	case BucketPermits:
		var x PermitState
		if err := json.Unmarshal(val, &x); err != nil {
			return err
		}
		if cur, ok := s.Permits[x.ID]; ok {
			cur.Inside = x.Inside // the config's terms win; the use is ours
		} else {
			s.Permits[x.ID] = &x
		}
	case BucketReservations:
		var x ReservationState
		if err := json.Unmarshal(val, &x); err != nil {
			return err
		}
		if cur, ok := s.Reservations[x.ID]; ok {
			cur.Used = x.Used
		} else {
			s.Reservations[x.ID] = &x
		}
	case BucketSpots:
		var x SpotState
		if err := json.Unmarshal(val, &x); err != nil {
			return err
		}
		if _, ok := s.Spots[x.ID]; ok {
			s.Spots[x.ID] = &x
		}
	case BucketLanes:
		var x LaneStatus
		if err := json.Unmarshal(val, &x); err != nil {
			return err
		}
		if _, ok := s.Lanes[x.ID]; ok {
			s.Lanes[x.ID] = &x
		}
	case BucketAlerts:
		var x Alert
		if err := json.Unmarshal(val, &x); err != nil {
			return err
		}
		s.Alerts[x.Key] = &x
	case BucketCaptures:
		var x PendingCapture
		if err := json.Unmarshal(val, &x); err != nil {
			return err
		}
		s.Captures[x.PaymentID] = &x
	}
	return nil
}

func (s *State) reindex() {
	s.blocked, s.blockCard = plate.NewIndex(), map[string]string{}
	for _, b := range s.Blocklist {
		if b.Plate != "" {
			s.blocked.Add(b.Plate, b.Reason)
		}
		if b.Card != "" {
			s.blockCard[b.Card] = b.Reason
		}
	}
	s.byTicket = map[string]string{}
	s.sessPlate = plate.NewIndex()
	for _, x := range s.Sessions {
		s.indexSession(x)
	}
	s.byCard = map[string]string{}
	s.permPlate = plate.NewIndex()
	for _, p := range s.Permits {
		for _, c := range p.Cards {
			s.byCard[c] = p.ID
		}
		for _, pl := range p.Plates {
			s.permPlate.Add(pl, p.ID)
		}
	}
	s.byCode = map[string]string{}
	s.resPlate = plate.NewIndex()
	for _, r := range s.Reservations {
		if r.Code != "" {
			s.byCode[r.Code] = r.ID
		}
		if r.Plate != "" {
			s.resPlate.Add(r.Plate, r.ID)
		}
	}
}

func (s *State) indexSession(x *Session) {
	if x.Ticket != "" {
		s.byTicket[x.Ticket] = x.ID
	}
	if x.Plate != "" {
		s.sessPlate.Add(x.Plate, x.ID)
	}
}

func (s *State) unindexSession(x *Session) {
	if x.Ticket != "" {
		delete(s.byTicket, x.Ticket)
	}
	if x.Plate != "" {
		s.sessPlate.Remove(x.Plate, x.ID)
	}
}

func (s *State) touch(bucket, key string) {
	m := s.dirty[bucket]
	if m == nil {
		m = map[string]bool{}
		s.dirty[bucket] = m
	}
	m[key] = true
}

// Apply folds one event into the state. It is the only way state changes: the garage
// applies each event as it emits it, and Replay applies a whole outbox.
func (s *State) Apply(ev *gh.Envelope) error {
	if ev.GetSeq() != s.Seq+1 {
		return fmt.Errorf("apply: seq %d after %d", ev.GetSeq(), s.Seq)
	}
	at := ev.GetOccurredAt().AsTime()
	switch p := ev.GetPayload().(type) {
	case *gh.Envelope_SessionStarted:
		x := p.SessionStarted
		sess := &Session{
			ID: x.SessionId, Zone: x.ZoneId, Plate: x.Plate, Ticket: x.Ticket,
			PermitID: x.GetCredential().GetPermitId(), ReservationID: x.GetCredential().GetReservationId(),
			EntryLane: ev.LaneId, Entered: at, EntryImages: x.Images,
			Segments: []Segment{{Start: at, Right: x.Right, Rate: x.RateId}},
		}
		if x.GetCredential().GetKind() == gh.CredentialKind_CREDENTIAL_KIND_PERMIT_CARD {
			sess.Card = x.GetCredential().GetValue()
		}
		s.Sessions[sess.ID] = sess
		s.indexSession(sess)
		s.touch(BucketSessions, sess.ID)
	case *gh.Envelope_SessionSegmentStarted:
		x := p.SessionSegmentStarted
		sess, ok := s.Sessions[x.SessionId]
		if !ok {
			return fmt.Errorf("apply %s: no open session %s", ev.Type, x.SessionId)
		}
		start := at
		if x.Start != nil {
			start = x.Start.AsTime()
		}
		sess.Segments = append(sess.Segments, Segment{Start: start, Right: x.Right, Rate: x.RateId, Reason: x.Reason})
		s.touch(BucketSessions, sess.ID)
	case *gh.Envelope_PaymentProcessed:
		x := p.PaymentProcessed
		if x.Offline {
			s.Captures[x.PaymentId] = &PendingCapture{PaymentID: x.PaymentId, Reference: x.Reference, Session: x.SessionId,
				Lane: ev.LaneId, Amount: x.Amount, Currency: x.Currency, Approved: at}
			s.touch(BucketCaptures, x.PaymentId)
		}
		if x.SessionId == "" {
			break // a lost-ticket fee paid for a stay that could not be found
		}
		sess, ok := s.Sessions[x.SessionId]
		if !ok {
			return fmt.Errorf("apply %s: no open session %s", ev.Type, x.SessionId)
		}
		sess.Paid += x.Amount
		sess.PaidAt = at
		if x.Reference != "" {
			sess.PaymentRefs = append(sess.PaymentRefs, x.Reference)
		}
		s.touch(BucketSessions, sess.ID)
	case *gh.Envelope_SessionEnded:
		x := p.SessionEnded
		sess, ok := s.Sessions[x.SessionId]
		if !ok {
			return fmt.Errorf("apply %s: no open session %s", ev.Type, x.SessionId)
		}
		delete(s.Sessions, sess.ID)
		s.unindexSession(sess)
		sess.ExitLane, sess.Exited, sess.Fee, sess.EndedHow, sess.ExitImages = ev.LaneId, at, x.FeeTotal, x.Reason, x.Images
		s.touch(BucketSessions, sess.ID)
		s.closed = append(s.closed, sess)
	case *gh.Envelope_OccupancyChanged:
		x := p.OccupancyChanged
		z, ok := s.Zones[x.ZoneId]
		if !ok {
			return fmt.Errorf("apply %s: no zone %s", ev.Type, x.ZoneId)
		}
		z.Occupied = int(x.Occupied)
		s.touch(BucketZones, z.ID)
	case *gh.Envelope_OccupancyReset:
		x := p.OccupancyReset
		z, ok := s.Zones[x.ZoneId]
		if !ok {
			return fmt.Errorf("apply %s: no zone %s", ev.Type, x.ZoneId)
		}
		z.Occupied = int(x.Occupied)
		s.touch(BucketZones, z.ID)
	case *gh.Envelope_SpotStatusChanged:
		x := p.SpotStatusChanged
		sp, ok := s.Spots[x.SpotId]
		if !ok {
			return fmt.Errorf("apply %s: no spot %s", ev.Type, x.SpotId)
		}
		sp.Occupied, sp.Since = x.Occupied, at
		s.touch(BucketSpots, sp.ID)
	case *gh.Envelope_CredentialUsed:
		x := p.CredentialUsed
		if x.PermitId != "" {
			pm, ok := s.Permits[x.PermitId]
			if !ok {
				return fmt.Errorf("apply %s: no permit %s", ev.Type, x.PermitId)
			}
			pm.Inside = int(x.Inside)
			s.touch(BucketPermits, pm.ID)
		}
		if x.ReservationId != "" {
			r, ok := s.Reservations[x.ReservationId]
			if !ok {
				return fmt.Errorf("apply %s: no reservation %s", ev.Type, x.ReservationId)
			}
			r.Used = true
			s.touch(BucketReservations, r.ID)
		}
	case *gh.Envelope_LaneStatusChanged:
		l, ok := s.Lanes[ev.LaneId]
		if !ok {
			return fmt.Errorf("apply %s: no lane %s", ev.Type, ev.LaneId)
		}
		l.Status, l.Reason = p.LaneStatusChanged.Status, p.LaneStatusChanged.Reason
		s.touch(BucketLanes, l.ID)
	case *gh.Envelope_AlertTriggered:
		x := p.AlertTriggered
		key := alertKey(x.Code, ev.LaneId, x.DeviceId, x.ZoneId)
		if x.Cleared {
			delete(s.Alerts, key)
		} else if _, ok := s.Alerts[key]; !ok {
			s.Alerts[key] = &Alert{Key: key, Code: x.Code, Severity: x.Severity, Message: x.Message,
				Lane: ev.LaneId, Device: x.DeviceId, Zone: x.ZoneId, Raised: at}
		}
		// Only lasting conditions are kept as active alerts; one-off alerts (tailgating,
		// anti-passback) are events only.
		if !lastingAlert(x.Code) {
			delete(s.Alerts, key)
		}
		s.touch(BucketAlerts, key)
	case *gh.Envelope_CredentialsReplaced:
		if err := s.replaceCredentials(p.CredentialsReplaced); err != nil {
			return fmt.Errorf("apply %s: %w", ev.Type, err)
		}
	case *gh.Envelope_LayoutApplied:
		if err := s.replaceLayout(p.LayoutApplied); err != nil {
			return fmt.Errorf("apply %s: %w", ev.Type, err)
		}
	case *gh.Envelope_PaymentCaptured:
		if err := s.settleCapture(p.PaymentCaptured.PaymentId); err != nil {
			return fmt.Errorf("apply %s: %w", ev.Type, err)
		}
	case *gh.Envelope_PaymentCaptureFailed:
		if err := s.settleCapture(p.PaymentCaptureFailed.PaymentId); err != nil {
			return fmt.Errorf("apply %s: %w", ev.Type, err)
		}
	case *gh.Envelope_PrepaidApplied:
		x := p.PrepaidApplied
		if x.Version <= s.Versions[PrepaidKind] {
			return fmt.Errorf("apply %s: version %d does not follow %d", ev.Type, x.Version, s.Versions[PrepaidKind])
		}
		s.Versions[PrepaidKind] = x.Version
		s.touch(BucketDownlink, "version/"+PrepaidKind)
	case *gh.Envelope_GateDecision, *gh.Envelope_GateOpened, *gh.Envelope_GateClosed, *gh.Envelope_GateManualOpen:
		// Audit only.
	default:
		return fmt.Errorf("apply: unknown event type %q", ev.Type)
	}
	s.Seq = ev.GetSeq()
	return nil
}

// settleCapture ends a pending offline card payment: captured, or refused for good.
func (s *State) settleCapture(paymentID string) error {
	if _, ok := s.Captures[paymentID]; !ok {
		return fmt.Errorf("no pending capture of payment %s", paymentID)
	}
	delete(s.Captures, paymentID)
	s.touch(BucketCaptures, paymentID)
	return nil
}

// replaceCredentials swaps in a downlink document's list. Use of permits and
// reservations that stay (cars inside, bookings used) is kept.
func (s *State) replaceCredentials(x *gh.CredentialsReplaced) error {
	if x.Version <= s.Versions[x.Kind] {
		return fmt.Errorf("%s version %d does not follow %d", x.Kind, x.Version, s.Versions[x.Kind])
	}
	switch x.Kind {
	case "permits":
		old := s.Permits
		s.Permits = map[string]*PermitState{}
		for _, p := range x.Permits {
			ps := &PermitState{Permit: Permit{ID: p.Id, Holder: p.Holder, Plates: p.Plates, Cards: p.Cards, Zones: p.Zones,
				From: p.From.AsTime(), Until: p.Until.AsTime(), MaxInside: max(1, int(p.MaxInside))}}
			if o, ok := old[p.Id]; ok {
				ps.Inside = o.Inside
			}
			s.Permits[p.Id] = ps
			s.touch(BucketPermits, p.Id)
		}
		for id := range old {
			if _, ok := s.Permits[id]; !ok {
				s.touch(BucketPermits, id)
			}
		}
	case "reservations":
		old := s.Reservations
		s.Reservations = map[string]*ReservationState{}
		for _, r := range x.Reservations {
			rs := &ReservationState{Reservation: Reservation{ID: r.Id, Plate: r.Plate, Code: r.Code, Zone: r.Zone,
				From: r.From.AsTime(), Until: r.Until.AsTime(), Grace: Duration(time.Duration(r.GraceSeconds) * time.Second), Prepaid: r.Prepaid}}
			if o, ok := old[r.Id]; ok {
				rs.Used = o.Used
			}
			s.Reservations[r.Id] = rs
			s.touch(BucketReservations, r.Id)
		}
		for id := range old {
			if _, ok := s.Reservations[id]; !ok {
				s.touch(BucketReservations, id)
			}
		}
	case "blocklist":
		s.Blocklist = nil
		for _, b := range x.Blocklist {
			s.Blocklist = append(s.Blocklist, BlockEntry{Plate: b.Plate, Card: b.Card, Reason: b.Reason})
		}
		s.touch(BucketDownlink, "blocklist")
	default:
		return fmt.Errorf("unknown kind %q", x.Kind)
	}
	s.Versions[x.Kind] = x.Version
	s.touch(BucketDownlink, "version/"+x.Kind)
	s.reindex()
	return nil
}

// LayoutKind is the kind of the cloud's downlink document that sets zone capacities.
const LayoutKind = "layout"

// ZoneLimits are a zone's capacity and the part of it held back for permits and
// reservations.
type ZoneLimits struct {
	Capacity int `json:"capacity"`
	HeldBack int `json:"held_back"`
}

// ZoneLimits returns the capacity and held-back space in force for zone z: those of the
// cloud's layout document when it set them, otherwise the config file's.
func (s *State) ZoneLimits(z *Zone) ZoneLimits {
	if l, ok := s.Layout[z.ID]; ok {
		return l
	}
	return ZoneLimits{Capacity: z.Capacity, HeldBack: z.HeldBack}
}

// replaceLayout swaps in a layout document's zone limits as a whole: a zone the
// previous version set and this one does not goes back to its configured limits.
func (s *State) replaceLayout(x *gh.LayoutApplied) error {
	if x.Version <= s.Versions[LayoutKind] {
		return fmt.Errorf("%s version %d does not follow %d", LayoutKind, x.Version, s.Versions[LayoutKind])
	}
	s.Layout = make(map[string]ZoneLimits, len(x.Zones))
	for _, z := range x.Zones {
		if z.Capacity < 0 || z.HeldBack < 0 || z.HeldBack > z.Capacity {
			return fmt.Errorf("zone %s: capacity %d with %d held back", z.ZoneId, z.Capacity, z.HeldBack)
		}
		s.Layout[z.ZoneId] = ZoneLimits{Capacity: int(z.Capacity), HeldBack: int(z.HeldBack)}
	}
	s.Versions[LayoutKind] = x.Version
	s.touch(BucketDownlink, LayoutKind)
	s.touch(BucketDownlink, "version/"+LayoutKind)
	return nil
}

func alertKey(code, lane, device, zone string) string {
	return strings.Join([]string{code, lane, device, zone}, "|")
}

// lastingAlert reports whether an alert code names a condition that stays until cleared.
func lastingAlert(code string) bool {
	switch code {
	case AlertBarrierFault, AlertLoopStuck, AlertLaneDegraded, AlertOverCapacity, AlertDeviceOffline:
		return true
	}
	return false
}

// Records returns the records touched since the last call, as the store must write them
// with the events that touched them.
func (s *State) Records() []Record {
	var out []Record
	for _, bucket := range slices.Sorted(maps.Keys(s.dirty)) {
		for _, key := range slices.Sorted(maps.Keys(s.dirty[bucket])) {
			out = append(out, s.record(bucket, key)...)
		}
	}
	s.dirty = map[string]map[string]bool{}
	s.closed = nil
	return out
}

func (s *State) record(bucket, key string) []Record {
	var v any
	switch bucket {
	case BucketZones:
		v = s.Zones[key]
	case BucketSessions:
		if x, ok := s.Sessions[key]; ok {
			v = x
		} else {
			// Ended: move it from the open bucket to the closed one.
			for _, c := range s.closed {
				if c.ID == key {
					return []Record{{Bucket: BucketSessions, Key: key}, {Bucket: BucketClosed, Key: closedKey(c), Value: mustJSON(c)}}
				}
			}
			return []Record{{Bucket: BucketSessions, Key: key}}
		}
	case BucketPermits:
		p, ok := s.Permits[key]
		if !ok {
			return []Record{{Bucket: bucket, Key: key}}
		}
		v = p
	case BucketReservations:
		r, ok := s.Reservations[key]
		if !ok {
			return []Record{{Bucket: bucket, Key: key}}
		}
		v = r
	case BucketSpots:
		v = s.Spots[key]
	case BucketLanes:
		v = s.Lanes[key]
	case BucketAlerts:
		a, ok := s.Alerts[key]
		if !ok {
			return []Record{{Bucket: bucket, Key: key}}
		}
		v = a
	case BucketCaptures:
		c, ok := s.Captures[key]
		if !ok {
			return []Record{{Bucket: bucket, Key: key}}
		}
		v = c
	case BucketDownlink:
		switch key {
		case "blocklist":
			v = s.Blocklist
		case LayoutKind:
			v = s.Layout
		default:
			v = s.Versions[strings.TrimPrefix(key, "version/")]
		}
	}
	return []Record{{Bucket: bucket, Key: key, Value: mustJSON(v)}}
}

// closedKey orders closed sessions by exit time, so history reads newest last.
func closedKey(s *Session) string {
	return s.Exited.UTC().Format("20060102T150405.000000000Z") + "/" + s.ID
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("edge: marshal state record: %v", err)) // our own types; cannot fail
	}
	return b
}

// Replay rebuilds the state of facility f from its whole outbox.
func Replay(f *Facility, events []*gh.Envelope) (*State, error) {
	s := NewState(f)
	for _, ev := range events {
		if err := s.Apply(ev); err != nil {
			return nil, err
		}
	}
	s.Records()
	return s, nil
}

// Diff lists the differences between two states' durable content (counts, open
// sessions, permit and reservation use, spots, lanes, alerts), empty when they agree.
func Diff(a, b *State) []string {
	var out []string
	if a.Seq != b.Seq {
		out = append(out, fmt.Sprintf("seq %d != %d", a.Seq, b.Seq))
	}
	cmp := func(what string, x, y any) {
		jx, jy := mustJSON(x), mustJSON(y)
		if string(jx) != string(jy) {
			out = append(out, fmt.Sprintf("%s: %s != %s", what, jx, jy))
		}
	}
	cmp("zones", a.Zones, b.Zones)
	cmp("open sessions", a.Sessions, b.Sessions)
	cmp("permits", a.Permits, b.Permits)
	cmp("reservations", a.Reservations, b.Reservations)
	cmp("spots", a.Spots, b.Spots)
	cmp("lanes", a.Lanes, b.Lanes)
	cmp("alerts", a.Alerts, b.Alerts)
	cmp("blocklist", a.Blocklist, b.Blocklist)
	cmp("versions", a.Versions, b.Versions)
	cmp("layout", a.Layout, b.Layout)
	cmp("pending captures", a.Captures, b.Captures)
	return out
}
