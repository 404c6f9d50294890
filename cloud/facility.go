package cloud

import "time"

// Facility is a garage as the fleet configures it. The ingest creates the row when a
// garage first sends events; an admin may create it before.
type Facility struct {
	ID       string
	Name     string
	Address  string
	City     string
	Country  string // ISO 3166-1 alpha-2
	Location *Location
	Timezone string // IANA
	Currency string // ISO 4217
	// Public facilities are listed to anonymous callers and in the open-data exports.
	Public bool
	// LayoutVersion is bumped by every change to the configuration; it is the version
	// of the "layout" downlink document.
	LayoutVersion uint64
	CreatedAt     time.Time
	UpdatedAt     time.Time
	LastContact   time.Time
	LastEventAt   time.Time
}

// Location is a WGS 84 point.
type Location struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// Level is a floor of a facility.
type Level struct {
	ID      string
	Name    string
	Ordinal int // 0 the ground floor, negative below
}

// Zone is a counted area of a facility as configured.
type Zone struct {
	ID       string
	Level    string // "" when on no level
	Name     string
	Kind     string
	Capacity int
	// HeldBack is how many of the spaces are kept for bookings and permits.
	HeldBack int
}

// Spot is one marked space.
type Spot struct {
	ID       string
	Zone     string
	Label    string
	Kind     string
	Features []string
}

// Zone and spot kinds.
var (
	ZoneKinds = []string{"general", "permit", "reservation", "ev", "disabled", "staff", "other"}
	SpotKinds = []string{"standard", "ev", "disabled", "family", "motorcycle", "compact", "oversize"}
)

// Layout is a facility's whole configuration at one version: the "layout" downlink
// document.
type Layout struct {
	Facility Facility
	Levels   []Level
	Zones    []Zone
	Spots    []Spot
}

// Availability is a facility's live availability: its zones' counts as the cloud last
// applied them, with the configured capacities.
type Availability struct {
	Facility string
	Name     string
	Public   bool
	Location *Location
	// LastContact is when the cloud last received events of the garage; LastEventAt the
	// newest event time among them. Zero when never.
	LastContact time.Time
	LastEventAt time.Time
	Zones       []ZoneAvailability
}

// ZoneAvailability is one zone's availability. A zone configured in the cloud has its
// configured capacity; a zone only the garage reports has the garage's.
type ZoneAvailability struct {
	Zone       string
	Name       string
	Configured bool
	Capacity   int
	HeldBack   int
	Occupied   int
	// UpdatedAt is when the garage's count last changed; zero when it never reported.
	UpdatedAt time.Time
}

// Free is how many spaces a walk-in may take: the capacity less the spaces held back
// and those occupied, never below zero.
func (z ZoneAvailability) Free() int { return max(0, z.Capacity-z.HeldBack-z.Occupied) }

// FleetEntry is one garage's line in the fleet view.
type FleetEntry struct {
	Facility    string
	Name        string
	LastContact time.Time
	LastEventAt time.Time
	Capacity    int
	Occupied    int
	Free        int
	Alerts      int
	// WorstSeverity is the worst active alert's severity ("critical", "warning",
	// "info"); "" without alerts.
	WorstSeverity string
	Gap           *Gap
}
