package httpapi

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gofiber/fiber/v2"
	"google.golang.org/protobuf/encoding/protojson"
)

// OccupancyResponse is the body of GET /v1/occupancy.
type OccupancyResponse struct {
	FacilityID string          `json:"facility_id"`
	Zones      []edge.ZoneView `json:"zones"`
	Total      Total           `json:"total"`
	At         time.Time       `json:"at"`
}

// Total sums the zones of a garage.
type Total struct {
	Capacity  int `json:"capacity"`
	Occupied  int `json:"occupied"`
	Available int `json:"available"`
}

// LanesResponse is the body of GET /v1/lanes.
type LanesResponse struct {
	Lanes []edge.LaneView `json:"lanes"`
}

// SessionsResponse is the body of GET /v1/sessions.
type SessionsResponse struct {
	Open     bool           `json:"open"`
	Sessions []edge.Session `json:"sessions"`
}

// EventsResponse is the body of GET /v1/events. Events are envelopes in the protobuf
// JSON mapping with the proto field names (the payload appears under its oneof field
// name, e.g. "gate_manual_open"); 64-bit integers such as seq are strings there.
// NextAfter is the seq to pass as ?after= for the next page: the last event's seq, or
// the request's own after when there was none.
type EventsResponse struct {
	Events    []json.RawMessage `json:"events"`
	NextAfter uint64            `json:"next_after"`
}

// AlertsResponse is the body of GET /v1/alerts.
type AlertsResponse struct {
	Alerts []edge.Alert `json:"alerts"`
}

var eventJSON = protojson.MarshalOptions{UseProtoNames: true}

func (a *api) occupancy(c *fiber.Ctx) error {
	zones := a.g.Occupancy()
	r := OccupancyResponse{FacilityID: a.g.Facility().ID, Zones: zones, At: time.Now().UTC()}
	for _, z := range zones {
		r.Total.Capacity += z.Capacity
		r.Total.Occupied += z.Occupied
		r.Total.Available += z.Available
	}
	return c.JSON(r)
}

func (a *api) lanes(c *fiber.Ctx) error {
	return c.JSON(LanesResponse{Lanes: a.g.Lanes()})
}

func (a *api) lane(c *fiber.Ctx) error {
	v, err := a.findLane(c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(v)
}

// Display is what a lane's kiosk shows: no plate, ticket or session id, because the
// kiosk polls it without a token from a screen in a public place.
type Display struct {
	ID       string           `json:"id"`
	State    string           `json:"state"`
	Status   string           `json:"status"`
	Decision *DisplayDecision `json:"decision,omitempty"`
}

// DisplayDecision is the public part of a lane's last decision.
type DisplayDecision struct {
	Allowed  bool   `json:"allowed"`
	Reason   string `json:"reason"`
	Message  string `json:"message"`
	FeeDue   int64  `json:"fee_due,omitempty"`
	Currency string `json:"currency,omitempty"`
}

func (a *api) display(c *fiber.Ctx) error {
	v, err := a.findLane(c.Params("id"))
	if err != nil {
		return err
	}
	d := Display{ID: v.ID, State: v.State, Status: v.Status}
	if v.Decision != nil {
		d.Decision = &DisplayDecision{Allowed: v.Decision.Allowed, Reason: v.Decision.Reason, Message: v.Decision.Message,
			FeeDue: v.Decision.FeeDue, Currency: v.Decision.Currency}
	}
	return c.JSON(d)
}

func (a *api) findLane(id string) (edge.LaneView, error) {
	for _, l := range a.g.Lanes() {
		if l.ID == id {
			return l, nil
		}
	}
	return edge.LaneView{}, edge.Errorf(edge.ENOTFOUND, "no lane %q", id)
}

func (a *api) sessions(c *fiber.Ctx) error {
	open, err := queryBool(c, "open", true)
	if err != nil {
		return err
	}
	if open {
		// All of them: a garage holds at most its capacity.
		return c.JSON(SessionsResponse{Open: true, Sessions: a.g.OpenSessions()})
	}
	limit, err := queryLimit(c)
	if err != nil {
		return err
	}
	raw, err := a.store.ClosedSessions(limit)
	if err != nil {
		return fmt.Errorf("closed sessions: %w", err)
	}
	out := make([]edge.Session, len(raw))
	for i, b := range raw {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			return fmt.Errorf("closed session %d: %w", i, err)
		}
	}
	return c.JSON(SessionsResponse{Open: false, Sessions: out})
}

func (a *api) events(c *fiber.Ctx) error {
	after, err := queryUint(c, "after", 0)
	if err != nil {
		return err
	}
	limit, err := queryLimit(c)
	if err != nil {
		return err
	}
	evs, err := a.g.Events(after, limit)
	if err != nil {
		return fmt.Errorf("events after %d: %w", after, err)
	}
	r := EventsResponse{Events: make([]json.RawMessage, 0, len(evs)), NextAfter: after}
	for _, ev := range evs {
		b, err := eventJSON.Marshal(ev)
		if err != nil {
			return fmt.Errorf("event %d: %w", ev.GetSeq(), err)
		}
		r.Events = append(r.Events, b)
		r.NextAfter = ev.GetSeq()
	}
	return c.JSON(r)
}

func (a *api) alerts(c *fiber.Ctx) error {
	return c.JSON(AlertsResponse{Alerts: a.g.Alerts()})
}
