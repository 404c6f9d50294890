package postgres_test

import (
	"context"
	"fmt"
	"google.golang.org/protobuf/proto"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/pgtest"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	"github.com/gatehouse-parking/gatehouse/edge"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testLogger logs to the test's output when -v is given, so failures carry the story.
func testLogger(tb testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(b []byte) (int, error) { w.tb.Log(string(b)); return len(b), nil }

// openDB returns a migrated database of its own for the test.
func openDB(tb testing.TB) *postgres.DB {
	tb.Helper()
	return openDSN(tb, pgtest.ForTest(tb))
}

func openDSN(tb testing.TB, dsn string) *postgres.DB {
	tb.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, dsn, testLogger(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(db.Close)
	if err := db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	return db
}

// streamFacility is the garage the synthetic streams describe: two counted zones, a
// sensor zone, four lanes, permits. Replaying a stream on it with edge.Replay is the
// reference fold the cloud's projections must equal.
func streamFacility(id string) *edge.Facility {
	f := &edge.Facility{ID: id, Name: "Stream " + id, Currency: "EUR",
		Zones: []edge.Zone{{ID: "L1", Capacity: 300}, {ID: "L2", Capacity: 200},
			{ID: "EV", Capacity: 4, Spots: []edge.Spot{{ID: "EV1"}, {ID: "EV2"}, {ID: "EV3"}, {ID: "EV4"}}}},
		Lanes: []edge.Lane{{ID: "in-1", Direction: edge.Entry, Zone: "L1"}, {ID: "out-1", Direction: edge.Exit, Zone: "L1"},
			{ID: "in-2", Direction: edge.Entry, Zone: "L2"}, {ID: "out-2", Direction: edge.Exit, Zone: "L2"}},
	}
	for i := range 20 {
		f.Permits = append(f.Permits, edge.Permit{ID: fmt.Sprintf("P%02d", i), Plates: []string{fmt.Sprintf("PERM%02d", i)}})
	}
	return f
}

// stream generates a realistic outbox of n events of one garage: cars entering and
// leaving with gate decisions, barrier movements, counts (absolute, as the edge sends
// them), payments, rate changes, permit use, device alerts raised and cleared, lane
// status, spot sensors and the odd manual recount.
type stream struct {
	f      string
	r      *rand.Rand
	seq    uint64
	now    time.Time
	count  map[string]int32
	open   []openCar
	active map[string]bool // lasting alerts raised: code|lane|device
	out    []*gh.Envelope
	nsess  int
}

type openCar struct {
	id, zone, plate, ticket, permit string
}

func newStream(facility string, seed uint64) *stream {
	return &stream{f: facility, r: rand.New(rand.NewPCG(seed, 99)), now: time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC),
		count: map[string]int32{"L1": 0, "L2": 0}, active: map[string]bool{}}
}

// generate returns the first n events of a stream.
func generate(facility string, seed uint64, n int) []*gh.Envelope {
	s := newStream(facility, seed)
	for len(s.out) < n {
		s.step()
	}
	return s.out[:n]
}

func (s *stream) emit(lane string, payload proto.Message) {
	s.seq++
	var id [16]byte
	for i := range id {
		id[i] = byte(s.r.Uint32())
	}
	ev := &gh.Envelope{FacilityId: s.f, Seq: s.seq, EventId: fmt.Sprintf("%x", id),
		OccurredAt: timestamppb.New(s.now), LaneId: lane}
	ev.SetPayload(payload)
	s.out = append(s.out, ev)
}

func (s *stream) plate() string {
	const letters = "ABCDEFGHJKLMNPRSTVWXYZ"
	return fmt.Sprintf("%c%c%03d%c%c", letters[s.r.IntN(22)], letters[s.r.IntN(22)], s.r.IntN(1000), letters[s.r.IntN(22)], letters[s.r.IntN(22)])
}

var capacity = map[string]int32{"L1": 300, "L2": 200}

func (s *stream) step() {
	// PostgreSQL keeps microseconds.
	s.now = s.now.Add(time.Duration(s.r.ExpFloat64() * float64(20*time.Second))).Truncate(time.Microsecond)
	zone := []string{"L1", "L2"}[s.r.IntN(2)]
	in, out := "in-"+zone[1:], "out-"+zone[1:]
	bar := func(lane string) {
		s.emit(lane, &gh.GateOpened{BarrierId: lane + "-bar"})
		s.emit(lane, &gh.GateClosed{BarrierId: lane + "-bar"})
	}
	switch k := s.r.IntN(100); {
	case k < 45 || len(s.open) == 0: // an entry
		if s.count[zone] >= capacity[zone] {
			s.emit(in, &gh.GateDecision{Allowed: false, Reason: "lot_full"})
			return
		}
		s.nsess++
		c := openCar{id: fmt.Sprintf("S%07d", s.nsess), zone: zone}
		cred := &gh.Credential{}
		right := gh.Right_RIGHT_TRANSIENT
		switch s.r.IntN(10) {
		case 0:
			p := s.r.IntN(20)
			c.permit, c.plate = fmt.Sprintf("P%02d", p), fmt.Sprintf("PERM%02d", p)
			cred = &gh.Credential{Kind: gh.CredentialKind_CREDENTIAL_KIND_PLATE, Value: c.plate, Confidence: 0.97, PermitId: c.permit}
			right = gh.Right_RIGHT_PERMIT
		case 1, 2, 3:
			c.ticket = fmt.Sprintf("T%08d", s.r.IntN(1e8))
			cred = &gh.Credential{Kind: gh.CredentialKind_CREDENTIAL_KIND_TICKET, Value: c.ticket}
		default:
			c.plate = s.plate()
			cred = &gh.Credential{Kind: gh.CredentialKind_CREDENTIAL_KIND_PLATE, Value: c.plate, Confidence: 0.8 + 0.2*s.r.Float64()}
		}
		reason := map[bool]string{true: "permit", false: "ticket_issued"}[c.permit != ""]
		s.emit(in, &gh.GateDecision{Credential: cred, Allowed: true, Reason: reason, SessionId: c.id})
		s.emit(in, &gh.SessionStarted{SessionId: c.id, ZoneId: zone, Credential: cred, Right: right, RateId: "std", Plate: c.plate, Ticket: c.ticket})
		if c.permit != "" {
			s.emit(in, &gh.CredentialUsed{PermitId: c.permit, Inside: 1})
		}
		s.count[zone]++
		s.emit(in, &gh.OccupancyChanged{ZoneId: zone, Delta: 1, Occupied: s.count[zone], Capacity: capacity[zone], Cause: "entry"})
		bar(in)
		s.open = append(s.open, c)
	case k < 88: // an exit, maybe after paying
		i := s.r.IntN(len(s.open))
		c := s.open[i]
		s.open = slices.Delete(s.open, i, i+1)
		out = "out-" + c.zone[1:]
		cred := &gh.Credential{Kind: gh.CredentialKind_CREDENTIAL_KIND_PLATE, Value: c.plate, Confidence: 0.9}
		if c.ticket != "" {
			cred = &gh.Credential{Kind: gh.CredentialKind_CREDENTIAL_KIND_TICKET, Value: c.ticket}
		}
		var fee, paid int64
		if c.permit == "" {
			fee = int64(s.r.IntN(12)) * 200
		}
		if fee > 0 {
			s.emit(out, &gh.GateDecision{Credential: cred, Allowed: false, Reason: "fee_due", SessionId: c.id, FeeDue: fee, Currency: "EUR"})
			s.emit(out, &gh.PaymentProcessed{PaymentId: fmt.Sprintf("pay-%d", s.seq), SessionId: c.id, Amount: fee, Currency: "EUR",
				Method: "kiosk_card", Reference: fmt.Sprintf("ref-%d", s.seq)})
			paid = fee
		}
		s.emit(out, &gh.GateDecision{Credential: cred, Allowed: true, Reason: "paid", SessionId: c.id, Currency: "EUR"})
		s.emit(out, &gh.SessionEnded{SessionId: c.id, ZoneId: c.zone, Credential: cred, FeeTotal: fee, Paid: paid,
			Currency: "EUR", Reason: "exit", DurationSeconds: int64(s.r.IntN(20000))})
		if c.permit != "" {
			s.emit(out, &gh.CredentialUsed{PermitId: c.permit, Inside: 0})
		}
		s.count[c.zone] = max(0, s.count[c.zone]-1)
		s.emit(out, &gh.OccupancyChanged{ZoneId: c.zone, Delta: -1, Occupied: s.count[c.zone], Capacity: capacity[c.zone], Cause: "exit"})
		bar(out)
	case k < 90: // prepaid in the app
		c := s.open[s.r.IntN(len(s.open))]
		s.emit("", &gh.PaymentProcessed{PaymentId: fmt.Sprintf("app-%d", s.seq), SessionId: c.id, Amount: 500, Currency: "EUR", Method: "app"})
	case k < 92: // a permit or booking ends while the car is inside
		c := s.open[s.r.IntN(len(s.open))]
		s.emit("", &gh.SessionSegmentStarted{SessionId: c.id, Right: gh.Right_RIGHT_TRANSIENT, RateId: "std", Reason: "permit_expired",
			Start: timestamppb.New(s.now.Add(-time.Minute))})
	case k < 95: // a device goes offline or comes back; a barrier faults
		lane := []string{in, out}[s.r.IntN(2)]
		code := []string{"device.offline", "barrier.fault", "loop.stuck"}[s.r.IntN(3)]
		dev := lane + "-" + map[string]string{"device.offline": "cam", "barrier.fault": "bar", "loop.stuck": "arm"}[code]
		key := code + "|" + lane + "|" + dev
		if s.active[key] {
			s.emit(lane, &gh.AlertTriggered{Code: code, Severity: "warning", Message: "recovered", DeviceId: dev, Cleared: true})
			s.emit(lane, &gh.LaneStatusChanged{Status: "ok"})
		} else {
			s.emit(lane, &gh.AlertTriggered{Code: code, Severity: "critical", Message: code + " at " + dev, DeviceId: dev})
			s.emit(lane, &gh.LaneStatusChanged{Status: "degraded", Reason: code})
		}
		s.active[key] = !s.active[key]
	case k < 97: // one-off alerts
		s.emit(in, &gh.AlertTriggered{Code: "tailgating", Severity: "warning", Message: "second vehicle on the safety loop"})
	case k < 99:
		spot := fmt.Sprintf("EV%d", 1+s.r.IntN(4))
		s.emit("", &gh.SpotStatusChanged{SpotId: spot, ZoneId: "EV", Occupied: s.r.IntN(2) == 0, Source: "sensor"})
	default: // an operator recount
		prev := s.count[zone]
		s.count[zone] = int32(len(s.openIn(zone)))
		s.emit("", &gh.OccupancyReset{ZoneId: zone, Previous: prev, Occupied: s.count[zone], Operator: "op", Reason: "recount"})
	}
}

func (s *stream) openIn(zone string) []openCar {
	var out []openCar
	for _, c := range s.open {
		if c.zone == zone {
			out = append(out, c)
		}
	}
	return out
}

// checkProjections compares the cloud's projections of facility f with the edge's
// fold of events (edge.Replay): zone counts, open sessions with their payments and
// rights, active alerts, lane status and the number of closed sessions.
func checkProjections(tb testing.TB, db *postgres.DB, f *edge.Facility, events []*gh.Envelope) {
	tb.Helper()
	ctx := context.Background()
	want, err := edge.Replay(f, events)
	if err != nil {
		tb.Fatalf("edge.Replay: %v", err)
	}
	wantZones := map[string]int{}
	for id, z := range want.Zones {
		if z.Occupied != 0 {
			wantZones[id] = z.Occupied
		}
	}
	zones, err := db.Occupancy(ctx, f.ID)
	if err != nil {
		tb.Fatal(err)
	}
	gotZones := map[string]int{}
	for _, z := range zones {
		if z.Occupied != 0 {
			gotZones[z.Zone] = z.Occupied
		}
	}
	if !maps.Equal(gotZones, wantZones) {
		tb.Errorf("occupancy after %d events = %v; want %v", len(events), gotZones, wantZones)
	}

	type sess struct {
		zone, plate, ticket, right, lane string
		paid                             int64
		entered                          time.Time
	}
	wantSess := map[string]sess{}
	for id, s := range want.Sessions {
		wantSess[id] = sess{s.Zone, s.Plate, s.Ticket, rightName(s.Right()), s.EntryLane, s.Paid, s.Entered.Truncate(time.Microsecond)}
	}
	open, err := db.OpenSessions(ctx, f.ID)
	if err != nil {
		tb.Fatal(err)
	}
	gotSess := map[string]sess{}
	for _, s := range open {
		gotSess[s.ID] = sess{s.Zone, s.Plate, s.Ticket, s.Right, s.EntryLane, s.Paid, s.EnteredAt.UTC()}
	}
	if len(gotSess) != len(wantSess) {
		tb.Errorf("open sessions after %d events: %d; want %d", len(events), len(gotSess), len(wantSess))
	}
	for id, w := range wantSess {
		if g, ok := gotSess[id]; !ok || g != w {
			tb.Errorf("open session %s = %+v (found %v); want %+v", id, g, ok, w)
			break
		}
	}

	wantAlerts := map[string]time.Time{}
	for key, a := range want.Alerts {
		wantAlerts[key] = a.Raised.Truncate(time.Microsecond)
	}
	alerts, err := db.ActiveAlerts(ctx, f.ID)
	if err != nil {
		tb.Fatal(err)
	}
	gotAlerts := map[string]time.Time{}
	for _, a := range alerts {
		gotAlerts[a.Key] = a.RaisedAt.UTC()
	}
	if !maps.Equal(gotAlerts, wantAlerts) {
		tb.Errorf("active alerts after %d events = %v; want %v", len(events), gotAlerts, wantAlerts)
	}

	lanes, err := db.LaneStatuses(ctx, f.ID)
	if err != nil {
		tb.Fatal(err)
	}
	gotLanes := map[string]string{}
	for _, l := range lanes {
		gotLanes[l.Lane] = l.Status
	}
	for id, l := range want.Lanes {
		if got := cmpOr(gotLanes[id], "ok"); got != l.Status {
			tb.Errorf("lane %s status = %s; want %s", id, got, l.Status)
		}
	}

	ended := 0
	for _, ev := range events {
		if ev.GetSessionEnded() != nil {
			ended++
		}
	}
	closed, err := db.ClosedSessions(ctx, f.ID, 1<<30)
	if err != nil {
		tb.Fatal(err)
	}
	if len(closed) != ended {
		tb.Errorf("closed sessions = %d; want %d", len(closed), ended)
	}
}

func rightName(r gh.Right) string {
	return map[gh.Right]string{gh.Right_RIGHT_TRANSIENT: "transient", gh.Right_RIGHT_PERMIT: "permit",
		gh.Right_RIGHT_RESERVATION: "reservation", gh.Right_RIGHT_OPERATOR: "operator", gh.Right_RIGHT_UNSPECIFIED: "unspecified"}[r]
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// checkStatus checks the facility's stream position and that applied_seq equals the
// contiguous run computed from the events themselves.
func checkStatus(tb testing.TB, db *postgres.DB, facility string, count int64, applied, received uint64, gap *cloud.Gap) {
	tb.Helper()
	ctx := context.Background()
	n, err := db.EventCount(ctx, facility)
	if err != nil {
		tb.Fatal(err)
	}
	if n != count {
		tb.Errorf("EventCount(%s) = %d; want %d", facility, n, count)
	}
	st, err := db.FacilityStatus(ctx, facility)
	if err != nil {
		tb.Fatal(err)
	}
	if st.AppliedSeq != applied || st.LastSeqReceived != received {
		tb.Errorf("FacilityStatus(%s) applied %d, received %d; want %d, %d", facility, st.AppliedSeq, st.LastSeqReceived, applied, received)
	}
	if fmt.Sprint(st.Gap) != fmt.Sprint(gap) {
		tb.Errorf("FacilityStatus(%s).Gap = %v; want %v", facility, st.Gap, gap)
	}
	mc, err := db.MaxContiguousSeq(ctx, facility)
	if err != nil {
		tb.Fatal(err)
	}
	if mc != applied {
		tb.Errorf("MaxContiguousSeq(%s) = %d; want applied %d", facility, mc, applied)
	}
}

// envInt reads a positive integer from the environment.
func envInt(name string, def int) int {
	var n int
	if _, err := fmt.Sscan(os.Getenv(name), &n); err != nil || n <= 0 {
		return def
	}
	return n
}
