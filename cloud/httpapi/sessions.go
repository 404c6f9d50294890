package httpapi

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	"github.com/gatehouse-parking/gatehouse/edge/plate"
	"github.com/gofiber/fiber/v2"
)

// What operators see of a garage: the cars inside, the stays that ended, the event
// stream, the alerts and the lanes.

// Session is a stay at a garage, open (exited_at null) or closed.
type Session struct {
	Facility      string     `json:"facility"`
	ID            string     `json:"id"`
	Zone          string     `json:"zone"`
	Plate         string     `json:"plate,omitempty"`
	Ticket        string     `json:"ticket,omitempty"`
	Card          string     `json:"card,omitempty"`
	PermitID      string     `json:"permit_id,omitempty"`
	ReservationID string     `json:"reservation_id,omitempty"`
	Right         string     `json:"right"`
	RateID        string     `json:"rate_id,omitempty"`
	EntryLane     string     `json:"entry_lane,omitempty"`
	EnteredAt     time.Time  `json:"entered_at,omitzero"`
	ExitLane      string     `json:"exit_lane,omitempty"`
	ExitedAt      *time.Time `json:"exited_at"`
	// Paid and Fee are in minor units of Currency.
	Paid            int64  `json:"paid"`
	Fee             int64  `json:"fee"`
	Currency        string `json:"currency,omitempty"`
	EndedHow        string `json:"ended_how,omitempty"`
	DurationSeconds int64  `json:"duration_seconds,omitempty"`
}

func sessionOf(s cloud.Session) Session {
	out := Session{Facility: s.Facility, ID: s.ID, Zone: s.Zone, Plate: s.Plate, Ticket: s.Ticket, Card: s.Card,
		PermitID: s.PermitID, ReservationID: s.ReservationID, Right: s.Right, RateID: s.RateID, EntryLane: s.EntryLane,
		EnteredAt: s.EnteredAt, ExitLane: s.ExitLane, Paid: s.Paid, Fee: s.Fee, Currency: s.Currency, EndedHow: s.EndedHow,
		DurationSeconds: int64(s.Duration / time.Second)}
	if !s.ExitedAt.IsZero() {
		t := s.ExitedAt
		out.ExitedAt = &t
	}
	return out
}

// Event is one event of a garage's stream as the cloud stored it.
type Event struct {
	Seq        uint64    `json:"seq"`
	EventID    string    `json:"event_id"`
	Type       string    `json:"type"`
	OccurredAt time.Time `json:"occurred_at"`
	Lane       string    `json:"lane,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
	// Payload is the event's payload (gatehouse.v1, protojson with the proto field
	// names); null if the stored event cannot be decoded.
	Payload json.RawMessage `json:"payload"`
}

// Alert is an active alert of a garage.
type Alert struct {
	Key      string    `json:"key"`
	Code     string    `json:"code"`
	Severity string    `json:"severity"`
	Message  string    `json:"message,omitempty"`
	Lane     string    `json:"lane,omitempty"`
	Device   string    `json:"device,omitempty"`
	Zone     string    `json:"zone,omitempty"`
	RaisedAt time.Time `json:"raised_at"`
}

// Lanes is the body of GET /v1/facilities/{facility}/lanes: each lane's status with
// its devices that have active alerts, and such devices on no lane.
type Lanes struct {
	Lanes []Lane `json:"lanes"`
	// OtherDevices are devices with active alerts that name no lane (spot sensors,
	// I/O modules).
	OtherDevices []Device `json:"other_devices"`
}

// Lane is a lane's service status as the garage last reported it.
type Lane struct {
	Lane string `json:"lane"`
	// Status is ok, degraded or closed; "unknown" for a lane that reported none but
	// has a device with an alert.
	Status    string    `json:"status"`
	Reason    string    `json:"reason,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	// Devices are the lane's devices with active alerts; the others are healthy.
	Devices []Device `json:"devices"`
}

// Device is the health of a device with active alerts.
type Device struct {
	Device   string    `json:"device"`
	Severity string    `json:"severity"`
	Codes    []string  `json:"codes"`
	Since    time.Time `json:"since"`
}

func (a *api) sessionRoutes() []*route {
	pageQuery := []param{
		{name: "limit", typ: "integer", description: fmt.Sprintf("items per page, 1 to %d (default %d)", MaxLimit, DefaultLimit)},
		{name: "cursor", typ: "string", description: "next_cursor of the previous page"},
	}
	plateQuery := param{name: "plate", typ: "string", description: "keep the sessions whose plate starts with this (normalised: letters and digits)"}
	return []*route{
		{method: fiber.MethodGet, path: "/facilities/:facility/sessions", tag: "operations",
			summary:  "The vehicles inside: open sessions, the longest inside first",
			access:   access{roles: staff, scoped: true, scope: "sessions:read"},
			query:    append([]param{plateQuery}, pageQuery...),
			response: Page[Session]{}, handler: a.openSessions},
		{method: fiber.MethodGet, path: "/facilities/:facility/sessions/history", tag: "operations",
			summary: "Closed sessions, the latest exit first",
			access:  access{roles: staff, scoped: true, scope: "sessions:read"},
			query: append([]param{plateQuery,
				{name: "from", typ: "string", description: "exits at or after this time (RFC 3339)"},
				{name: "to", typ: "string", description: "exits before this time (RFC 3339)"}}, pageQuery...),
			response: Page[Session]{}, handler: a.sessionHistory},
		{method: fiber.MethodGet, path: "/facilities/:facility/events", tag: "operations",
			summary: "The garage's events as stored: the newest first, or forward from ?after_seq=",
			access:  access{roles: staff, scoped: true, scope: "events:read"},
			query: append([]param{
				{name: "after_seq", typ: "integer", description: "page forward from this seq (exclusive), oldest first"},
				{name: "type", typ: "string", description: "keep one event type, e.g. session.started"}}, pageQuery...),
			response: Page[Event]{}, handler: a.events},
		{method: fiber.MethodGet, path: "/facilities/:facility/alerts", tag: "operations",
			summary:  "The garage's active alerts",
			access:   access{roles: staff, scoped: true, scope: "status:read"},
			response: Page[Alert]{}, handler: a.alerts},
		{method: fiber.MethodGet, path: "/facilities/:facility/lanes", tag: "operations",
			summary:  "Each lane's status and the health of its devices",
			access:   access{roles: staff, scoped: true, scope: "status:read"},
			response: Lanes{}, handler: a.lanes},
	}
}

// plateQuery reads ?plate=, normalised; "" when absent.
func plateQuery(c *fiber.Ctx) (string, error) {
	raw := c.Query("plate")
	if raw == "" {
		return "", nil
	}
	if msg := plateProblem(raw); msg != "" {
		return "", malformed("invalid query parameter", FieldError{"plate", msg})
	}
	return plate.Normalize(raw), nil
}

// timeQuery reads an RFC 3339 query parameter; zero when absent.
func timeQuery(c *fiber.Ctx, name string) (time.Time, error) {
	s := c.Query(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, malformed("invalid query parameter", FieldError{name, "must be a time in RFC 3339, e.g. 2026-03-02T09:00:00Z"})
	}
	return t, nil
}

// sessionCursor is a cursor's key of a session page: "<RFC 3339 time>|<facility>|<session>".
func sessionCursor(at time.Time, facility, session string) string {
	return at.UTC().Format(time.RFC3339Nano) + "|" + facility + "|" + session
}

func parseSessionCursor(cur Cursor) (postgres.SessionKey, error) {
	if cur.After == "" {
		return postgres.SessionKey{}, nil
	}
	ts, rest, ok1 := strings.Cut(cur.After, "|")
	fac, id, ok2 := strings.Cut(rest, "|")
	t, err := time.Parse(time.RFC3339Nano, ts)
	if !ok1 || !ok2 || err != nil || id == "" {
		return postgres.SessionKey{}, malformed("invalid query parameter", FieldError{"cursor", "not a cursor this route returned"})
	}
	return postgres.SessionKey{At: t, Facility: fac, Session: id}, nil
}

// sessionPage makes a page of sessions whose cursor holds the sort key: the exit time
// when byExit, else the entry time (the exit for a stay never seen to start).
func sessionPage(ss []cloud.Session, limit int, byExit bool) Page[Session] {
	items := make([]Session, len(ss))
	for i, s := range ss {
		items[i] = sessionOf(s)
	}
	return makePage(items, limit, func(s Session) string {
		at := s.EnteredAt
		if s.ExitedAt != nil && (byExit || at.IsZero()) {
			at = *s.ExitedAt
		}
		return sessionCursor(at, s.Facility, s.ID)
	})
}

func (a *api) openSessions(c *fiber.Ctx) error {
	facility, err := facilityParam(c)
	if err != nil {
		return err
	}
	f, limit, err := sessionFilter(c)
	if err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	ss, err := a.db.OpenSessionPage(ctx, facility, f)
	if err != nil {
		return err
	}
	return c.JSON(sessionPage(ss, limit, false))
}

func (a *api) sessionHistory(c *fiber.Ctx) error {
	facility, err := facilityParam(c)
	if err != nil {
		return err
	}
	f, limit, err := sessionFilter(c)
	if err != nil {
		return err
	}
	if f.From, err = timeQuery(c, "from"); err != nil {
		return err
	}
	if f.To, err = timeQuery(c, "to"); err != nil {
		return err
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return malformed("invalid query parameter", FieldError{"to", "must be after from"})
	}
	ctx, cancel := opContext(c)
	defer cancel()
	ss, err := a.db.ClosedSessionPage(ctx, facility, f)
	if err != nil {
		return err
	}
	return c.JSON(sessionPage(ss, limit, true))
}

// sessionFilter reads the plate and paging parameters; the filter fetches one more
// than the page, so that makePage knows whether another follows.
func sessionFilter(c *fiber.Ctx) (postgres.SessionFilter, int, error) {
	var f postgres.SessionFilter
	limit, cur, err := pageParams(c)
	if err != nil {
		return f, 0, err
	}
	if f.After, err = parseSessionCursor(cur); err != nil {
		return f, 0, err
	}
	if f.Plate, err = plateQuery(c); err != nil {
		return f, 0, err
	}
	f.Limit = limit + 1
	return f, limit, nil
}

var eventTypeRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){0,7}$`)

func (a *api) events(c *fiber.Ctx) error {
	facility, err := facilityParam(c)
	if err != nil {
		return err
	}
	limit, cur, err := pageParams(c)
	if err != nil {
		return err
	}
	f := postgres.EventFilter{Type: c.Query("type"), Limit: limit + 1}
	if f.Type != "" && (len(f.Type) > 64 || !eventTypeRE.MatchString(f.Type)) {
		return malformed("invalid query parameter", FieldError{"type", "must be an event type such as session.started"})
	}
	if s := c.Query("after_seq"); s != "" {
		if f.After, err = strconv.ParseUint(s, 10, 63); err != nil {
			return malformed("invalid query parameter", FieldError{"after_seq", "must be a non-negative integer"})
		}
		f.Ascending = true
	}
	// The cursor says which way it pages: "a<seq>" forward, "d<seq>" newest first.
	if cur.After != "" {
		seq, err := strconv.ParseUint(cur.After[1:], 10, 63)
		if err != nil || (cur.After[0] != 'a' && cur.After[0] != 'd') {
			return malformed("invalid query parameter", FieldError{"cursor", "not a cursor this route returned"})
		}
		f.Ascending = cur.After[0] == 'a'
		if f.Ascending {
			f.After = seq
		} else {
			f.Before = seq
		}
	}
	ctx, cancel := opContext(c)
	defer cancel()
	evs, err := a.db.Events(ctx, facility, f)
	if err != nil {
		return err
	}
	items := make([]Event, len(evs))
	for i, e := range evs {
		items[i] = Event{Seq: e.Seq, EventID: e.EventID, Type: e.Type, OccurredAt: e.OccurredAt, Lane: e.Lane,
			ReceivedAt: e.ReceivedAt, Payload: e.Payload}
		if items[i].Payload == nil {
			items[i].Payload = json.RawMessage("null")
		}
	}
	dir := "d"
	if f.Ascending {
		dir = "a"
	}
	return c.JSON(makePage(items, limit, func(e Event) string { return dir + strconv.FormatUint(e.Seq, 10) }))
}

func (a *api) alerts(c *fiber.Ctx) error {
	facility, err := facilityParam(c)
	if err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	as, err := a.db.ActiveAlerts(ctx, facility)
	if err != nil {
		return err
	}
	p := Page[Alert]{Items: make([]Alert, len(as))}
	for i, x := range as {
		p.Items[i] = Alert{Key: x.Key, Code: x.Code, Severity: x.Severity, Message: x.Message, Lane: x.Lane,
			Device: x.Device, Zone: x.Zone, RaisedAt: x.RaisedAt}
	}
	return c.JSON(p)
}

func (a *api) lanes(c *fiber.Ctx) error {
	facility, err := facilityParam(c)
	if err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	ls, err := a.db.LaneStatuses(ctx, facility)
	if err != nil {
		return err
	}
	ds, err := a.db.DeviceHealths(ctx, facility)
	if err != nil {
		return err
	}
	resp := Lanes{Lanes: make([]Lane, 0, len(ls)), OtherDevices: []Device{}}
	index := map[string]int{}
	for _, l := range ls {
		index[l.Lane] = len(resp.Lanes)
		resp.Lanes = append(resp.Lanes, Lane{Lane: l.Lane, Status: l.Status, Reason: l.Reason, UpdatedAt: l.UpdatedAt, Devices: []Device{}})
	}
	for _, d := range ds {
		dev := Device{Device: d.Device, Severity: d.Severity, Codes: d.Codes, Since: d.Since}
		if d.Lane == "" {
			resp.OtherDevices = append(resp.OtherDevices, dev)
			continue
		}
		i, ok := index[d.Lane]
		if !ok {
			i = len(resp.Lanes)
			index[d.Lane] = i
			resp.Lanes = append(resp.Lanes, Lane{Lane: d.Lane, Status: "unknown", Devices: []Device{}})
		}
		resp.Lanes[i].Devices = append(resp.Lanes[i].Devices, dev)
	}
	return c.JSON(resp)
}
