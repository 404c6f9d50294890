package httpapi

import (
	"context"
	"sync"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	"github.com/gofiber/fiber/v2"
)

// Availability is the body of GET /v1/facilities/{facility}/availability: each zone's
// counts as the cloud last applied them from the garage's events, and how fresh they
// are.
type Availability struct {
	Facility string `json:"facility"`
	Name     string `json:"name"`
	// Online is whether the garage's link to the hub is up now; absent when the
	// service runs without a hub and cannot tell.
	Online *bool `json:"online,omitempty"`
	// OfflineSince is when the link went down; when the hub has not seen it go down
	// (it restarted since), the garage's last contact.
	OfflineSince *time.Time `json:"offline_since,omitempty"`
	LastContact  time.Time  `json:"last_contact,omitzero"`
	// AgeSeconds is how long ago the cloud last received events of the garage: the
	// counts are at most that old. Null when it never has.
	AgeSeconds *float64           `json:"age_seconds"`
	Capacity   int                `json:"capacity"`
	HeldBack   int                `json:"held_back"`
	Occupied   int                `json:"occupied"`
	Free       int                `json:"free"`
	Zones      []ZoneAvailability `json:"zones"`
}

// ZoneAvailability is one zone's line of Availability.
type ZoneAvailability struct {
	Zone     string `json:"zone"`
	Name     string `json:"name,omitempty"`
	Capacity int    `json:"capacity"`
	HeldBack int    `json:"held_back"`
	Occupied int    `json:"occupied"`
	// Free is what walk-ins may take: capacity less held-back and occupied spaces.
	Free int `json:"free"`
	// UpdatedAt is when the garage's count last changed.
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// availabilityTTL is how long a facility's availability is served from memory. It
// bounds the extra staleness the cache adds; the age reported is always that of the
// garage's data, computed at the response.
const availabilityTTL = 500 * time.Millisecond

// availabilityCache keeps each facility's last read for availabilityTTL, so that a
// burst of reads of one facility costs one query per TTL; concurrent misses of one
// facility wait for a single query. Only existing facilities are cached, so unknown
// ids cannot grow it.
type availabilityCache struct {
	db *postgres.DB
	mu sync.Mutex
	m  map[string]*availabilityEntry
}

type availabilityEntry struct {
	mu      sync.Mutex
	fetched time.Time
	a       cloud.Availability
}

func (ac *availabilityCache) get(ctx context.Context, facility string) (cloud.Availability, error) {
	ac.mu.Lock()
	e := ac.m[facility]
	if e == nil {
		e = &availabilityEntry{}
		ac.m[facility] = e
	}
	ac.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.fetched.IsZero() && time.Since(e.fetched) < availabilityTTL {
		return e.a, nil
	}
	a, err := ac.db.Availability(ctx, facility)
	if err != nil {
		if cloud.ErrorCode(err) == cloud.ENOTFOUND {
			ac.mu.Lock()
			delete(ac.m, facility)
			ac.mu.Unlock()
		}
		return a, err
	}
	e.a, e.fetched = a, time.Now()
	return a, nil
}

func (a *api) availabilityRoutes() []*route {
	cache := &availabilityCache{db: a.db, m: map[string]*availabilityEntry{}}
	return []*route{
		{method: fiber.MethodGet, path: "/facilities/:facility/availability", tag: "availability",
			summary: "Live availability per zone, with the data's age and the garage's link state. " +
				"Public facilities: anyone; others: admins, assigned staff, API keys with availability:read issued for it",
			access:   access{public: true, roles: anyRole, scope: "availability:read", scoped: true},
			response: Availability{}, handler: func(c *fiber.Ctx) error { return a.availability(c, cache) }},
	}
}

func (a *api) availability(c *fiber.Ctx, cache *availabilityCache) error {
	id, err := facilityParam(c)
	if err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	av, err := cache.get(ctx, id)
	if err != nil {
		return err
	}
	if !visibleTo(principal(c), id, av.Public, "availability:read") {
		return cloud.Errorf(cloud.ENOTFOUND, "no facility %q", id)
	}
	if av.Public {
		c.Set(fiber.HeaderCacheControl, "public, max-age=1")
	} else {
		c.Set(fiber.HeaderCacheControl, "private, no-store")
	}
	return c.JSON(a.availabilityOut(av))
}

func (a *api) availabilityOut(av cloud.Availability) Availability {
	now := a.now()
	out := Availability{Facility: av.Facility, Name: av.Name, LastContact: av.LastContact,
		Zones: make([]ZoneAvailability, 0, len(av.Zones))}
	out.Online, out.OfflineSince = a.presence(av.Facility, av.LastContact)
	if !av.LastContact.IsZero() {
		age := max(0, now.Sub(av.LastContact).Seconds())
		out.AgeSeconds = &age
	}
	for _, z := range av.Zones {
		zo := ZoneAvailability{Zone: z.Zone, Name: z.Name, Capacity: z.Capacity, HeldBack: z.HeldBack,
			Occupied: z.Occupied, Free: z.Free(), UpdatedAt: z.UpdatedAt}
		out.Zones = append(out.Zones, zo)
		out.Capacity += zo.Capacity
		out.HeldBack += zo.HeldBack
		out.Occupied += zo.Occupied
		out.Free += zo.Free
	}
	return out
}

// presence asks the hub whether the garage is connected. Without a hub it cannot
// tell (nil). Offline with no time known (the hub has not seen the garage since it
// started) falls back to the last contact, the latest time the garage is known to
// have been connected; nil when it never was.
func (a *api) presence(facility string, lastContact time.Time) (*bool, *time.Time) {
	if a.hub == nil {
		return nil, nil
	}
	online, since := a.hub.Presence(facility)
	if online {
		return &online, nil
	}
	if since.IsZero() {
		since = lastContact
	}
	if since.IsZero() {
		return &online, nil
	}
	since = since.UTC()
	return &online, &since
}
