package httpapi

import (
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	"github.com/gofiber/fiber/v2"
)

// FleetGarage is a line of GET /v1/fleet: one garage's link, occupancy and alerts.
type FleetGarage struct {
	Facility string `json:"facility"`
	Name     string `json:"name"`
	// Online and OfflineSince are as in Availability.
	Online       *bool      `json:"online,omitempty"`
	OfflineSince *time.Time `json:"offline_since,omitempty"`
	LastContact  time.Time  `json:"last_contact,omitzero"`
	Capacity     int        `json:"capacity"`
	Occupied     int        `json:"occupied"`
	Free         int        `json:"free"`
	// ActiveAlerts counts the garage's active alerts; WorstSeverity is the worst of
	// them (critical, warning, info).
	ActiveAlerts  int    `json:"active_alerts"`
	WorstSeverity string `json:"worst_severity,omitempty"`
	// Gap is the first run of seqs missing from the garage's stream, being resent.
	Gap *SeqRange `json:"gap,omitempty"`
}

func (a *api) fleetRoutes() []*route {
	return []*route{
		{method: fiber.MethodGet, path: "/fleet", tag: "fleet",
			summary: "Every garage the caller runs (admins: all): online, last contact, occupancy, active alerts, gaps",
			access:  access{roles: staff}, query: facilityListQuery,
			response: Page[FleetGarage]{}, handler: a.fleet},
	}
}

func (a *api) fleet(c *fiber.Ctx) error {
	limit, cur, err := pageParams(c)
	if err != nil {
		return err
	}
	p := principal(c)
	flt := postgres.FleetFilter{All: p.Role == cloud.RoleAdmin, Facilities: p.Facilities, After: cur.After, Limit: limit + 1}
	ctx, cancel := opContext(c)
	defer cancel()
	rows, err := a.db.Fleet(ctx, flt)
	if err != nil {
		return err
	}
	out := make([]FleetGarage, 0, len(rows))
	for _, r := range rows {
		g := FleetGarage{Facility: r.Facility, Name: r.Name, LastContact: r.LastContact, Capacity: r.Capacity,
			Occupied: r.Occupied, Free: r.Free, ActiveAlerts: r.Alerts, WorstSeverity: r.WorstSeverity}
		g.Online, g.OfflineSince = a.presence(r.Facility, r.LastContact)
		if r.Gap != nil {
			g.Gap = &SeqRange{From: r.Gap.From, To: r.Gap.To}
		}
		out = append(out, g)
	}
	return c.JSON(makePage(out, limit, func(g FleetGarage) string { return g.Facility }))
}
