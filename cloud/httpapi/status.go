package httpapi

import (
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gofiber/fiber/v2"
)

// FacilityStatus is the body of GET /v1/facilities/{facility}/status: the state of a
// garage's event stream as the cloud holds it, for operators.
type FacilityStatus struct {
	ID              string    `json:"id"`
	Name            string    `json:"name,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	LastContact     time.Time `json:"last_contact,omitzero"`
	LastEventAt     time.Time `json:"last_event_at,omitzero"`
	LastSeqReceived uint64    `json:"last_seq_received"`
	AppliedSeq      uint64    `json:"applied_seq"`
	// Events is how many of the garage's events are stored.
	Events int64 `json:"events"`
	// Gap is the first run of seqs missing after AppliedSeq, being resent.
	Gap   *SeqRange   `json:"gap,omitempty"`
	Zones []ZoneCount `json:"zones"`
}

// SeqRange is a run of seqs, From to To inclusive.
type SeqRange struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// ZoneCount is a zone's count as the cloud last applied it.
type ZoneCount struct {
	Zone      string    `json:"zone"`
	Occupied  int       `json:"occupied"`
	Capacity  int       `json:"capacity"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (a *api) statusRoutes() []*route {
	return []*route{
		{method: fiber.MethodGet, path: "/facilities/:facility/status", tag: "fleet",
			summary:  "The garage's event stream as the cloud holds it: seqs received and applied, gaps, zone counts",
			access:   access{roles: staff, scoped: true, scope: "status:read"},
			response: FacilityStatus{}, handler: a.facilityStatus},
	}
}

// facilityParam returns the :facility path parameter, validated.
func facilityParam(c *fiber.Ctx) (string, error) {
	id := c.Params("facility")
	if !cloud.ValidFacilityID(id) {
		return "", malformed("invalid facility id", FieldError{"facility", "must be a facility id: lower-case letters, digits and dashes"})
	}
	return id, nil
}

func (a *api) facilityStatus(c *fiber.Ctx) error {
	id, err := facilityParam(c)
	if err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	st, err := a.db.FacilityStatus(ctx, id)
	if err != nil {
		return err
	}
	n, err := a.db.EventCount(ctx, id)
	if err != nil {
		return err
	}
	zones, err := a.db.Occupancy(ctx, id)
	if err != nil {
		return err
	}
	resp := FacilityStatus{ID: st.ID, Name: st.Name, CreatedAt: st.CreatedAt, LastContact: st.LastContact,
		LastEventAt: st.LastEventAt, LastSeqReceived: st.LastSeqReceived, AppliedSeq: st.AppliedSeq, Events: n,
		Zones: make([]ZoneCount, 0, len(zones))}
	if st.Gap != nil {
		resp.Gap = &SeqRange{From: st.Gap.From, To: st.Gap.To}
	}
	for _, z := range zones {
		resp.Zones = append(resp.Zones, ZoneCount{Zone: z.Zone, Occupied: z.Occupied, Capacity: z.Capacity, UpdatedAt: z.UpdatedAt})
	}
	return c.JSON(resp)
}
