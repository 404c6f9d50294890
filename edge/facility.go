package edge

import (
	"time"

	"github.com/gatehouse-parking/gatehouse/edge/tariff"
)

// Facility is one garage as configured by its operator (see docs/facility-config.md).
// It is loaded and validated by package edge/config; the garage treats it as read-only.
type Facility struct {
	ID       string        `yaml:"id" json:"id"`
	Name     string        `yaml:"name" json:"name"`
	Timezone string        `yaml:"timezone" json:"timezone"`
	Currency string        `yaml:"currency" json:"currency"`
	Levels   []Level       `yaml:"levels" json:"levels"`
	Zones    []Zone        `yaml:"zones" json:"zones"`
	Lanes    []Lane        `yaml:"lanes" json:"lanes"`
	Devices  []Device      `yaml:"devices" json:"devices"`
	Tariffs  []tariff.Rate `yaml:"tariffs" json:"tariffs"`
	Policies Policies      `yaml:"policies" json:"policies"`
	Payments Payments      `yaml:"payments" json:"payments"`
	// Permits, Reservations and Blocklist seed the garage's credential lists. In a fleet
	// they arrive from the cloud over the downlink; the config form serves stand-alone
	// garages, the demo and tests.
	Permits      []Permit      `yaml:"permits" json:"permits,omitempty"`
	Reservations []Reservation `yaml:"reservations" json:"reservations,omitempty"`
	Blocklist    []BlockEntry  `yaml:"blocklist" json:"blocklist,omitempty"`
}

// Level is a floor of the garage.
type Level struct {
	ID   string `yaml:"id" json:"id"`
	Name string `yaml:"name" json:"name"`
}

// CountSource says where a zone's occupancy count comes from.
type CountSource string

// Count sources.
const (
	CountLanes   CountSource = "lanes"   // passages through the zone's entry and exit lanes
	CountSensors CountSource = "sensors" // occupied spot sensors
)

// Zone is an area with a capacity, counted as one.
type Zone struct {
	ID    string `yaml:"id" json:"id"`
	Name  string `yaml:"name" json:"name"`
	Level string `yaml:"level" json:"level"`
	// Capacity is the number of spaces in the zone.
	Capacity int `yaml:"capacity" json:"capacity"`
	// HeldBack is the part of Capacity kept for permit holders and reservations: walk-ins
	// are refused once Capacity-HeldBack spaces are taken.
	HeldBack int `yaml:"held_back" json:"held_back"`
	// Rate is the id of the tariff charged to transient parkers in this zone.
	Rate        string      `yaml:"rate" json:"rate"`
	CountSource CountSource `yaml:"count_source" json:"count_source"`
	Spots       []Spot      `yaml:"spots" json:"spots,omitempty"`
	// SpotRanges expand to spots named Prefix+number, From..To inclusive, zero-padded to
	// Width digits, so a 400-space garage needs no 400-line file.
	SpotRanges []SpotRange `yaml:"spot_ranges" json:"spot_ranges,omitempty"`
}

// Spot is one parking space.
type Spot struct {
	ID       string   `yaml:"id" json:"id"`
	Sensor   string   `yaml:"sensor" json:"sensor,omitempty"`
	Features []string `yaml:"features" json:"features,omitempty"`
}

// SpotRange is a run of numbered spots.
type SpotRange struct {
	Prefix   string   `yaml:"prefix" json:"prefix"`
	From     int      `yaml:"from" json:"from"`
	To       int      `yaml:"to" json:"to"`
	Width    int      `yaml:"width" json:"width"`
	Features []string `yaml:"features" json:"features,omitempty"`
}

// Direction is the way a lane lets vehicles through.
type Direction string

// Lane directions.
const (
	Entry Direction = "entry"
	Exit  Direction = "exit"
)

// FailMode is what a lane does when its barrier or loops fail.
type FailMode string

// Fail modes.
const (
	// FailSecure keeps the barrier down and sends drivers to the intercom.
	FailSecure FailMode = "fail_secure"
	// FailOpen raises the barrier and leaves it up, counting nothing it cannot see.
	FailOpen FailMode = "fail_open"
)

// Lane is one entry or exit lane with its devices.
type Lane struct {
	ID        string    `yaml:"id" json:"id"`
	Name      string    `yaml:"name" json:"name"`
	Direction Direction `yaml:"direction" json:"direction"`
	// Zone is the zone an entry lane admits into or an exit lane lets out of.
	Zone string `yaml:"zone" json:"zone"`
	// Device ids (see Facility.Devices).
	ArmingLoop   string   `yaml:"arming_loop" json:"arming_loop"`
	SafetyLoop   string   `yaml:"safety_loop" json:"safety_loop"`
	Barrier      string   `yaml:"barrier" json:"barrier"`
	Cameras      []string `yaml:"cameras" json:"cameras,omitempty"`
	TicketReader string   `yaml:"ticket_reader" json:"ticket_reader,omitempty"`
	// CardTerminal is the card terminal of an exit lane's kiosk (see
	// docs/payments-at-the-garage.md); empty: the kiosk takes no cards.
	CardTerminal string   `yaml:"card_terminal" json:"card_terminal,omitempty"`
	FailMode     FailMode `yaml:"fail_mode" json:"fail_mode"`
}

// DeviceKind says what a device is for.
type DeviceKind string

// Device kinds.
const (
	KindBarrier      DeviceKind = "barrier"
	KindLoop         DeviceKind = "loop"
	KindCamera       DeviceKind = "camera"
	KindTicketReader DeviceKind = "ticket_reader"
	KindSpotSensor   DeviceKind = "spot_sensor"
	KindCardTerminal DeviceKind = "card_terminal"
)

// Device is one piece of hardware and how to reach it.
type Device struct {
	ID   string     `yaml:"id" json:"id"`
	Kind DeviceKind `yaml:"kind" json:"kind"`
	// Protocol names the adapter: "inmem", "modbus_tcp", "modbus_rtu", "serial", "mqtt",
	// "http_push". Address and Profile are the adapter's business.
	Protocol string            `yaml:"protocol" json:"protocol"`
	Address  string            `yaml:"address" json:"address,omitempty"`
	Profile  string            `yaml:"profile" json:"profile,omitempty"`
	Options  map[string]string `yaml:"options" json:"options,omitempty"`
}

// AntiPassback is how strictly a credential must alternate entry and exit.
type AntiPassback string

// Anti-passback modes.
const (
	PassbackNone AntiPassback = "none"
	PassbackSoft AntiPassback = "soft" // allow, raise an alert
	PassbackHard AntiPassback = "hard" // deny
)

// Policies are the facility-wide rules of the lanes.
type Policies struct {
	AntiPassback AntiPassback `yaml:"anti_passback" json:"anti_passback"`
	// PlateConfidence is the minimum voted confidence for a plate read to count.
	PlateConfidence float64 `yaml:"plate_confidence" json:"plate_confidence"`
	// FuzzyPlates allows one-edit and OCR-confusion matches of plate reads.
	FuzzyPlates bool `yaml:"fuzzy_plates" json:"fuzzy_plates"`
	// PlateVoteWindow is how long after the first read of a vehicle further reads are
	// collected before the lane decides.
	PlateVoteWindow Duration `yaml:"plate_vote_window" json:"plate_vote_window"`
	// CredentialWindow is how long a vehicle may sit on the arming loop without
	// presenting a credential before the lane raises an alert.
	CredentialWindow Duration `yaml:"credential_window" json:"credential_window"`
	// BarrierTimeout is how long the barrier has to report up or down after a command.
	BarrierTimeout Duration `yaml:"barrier_timeout" json:"barrier_timeout"`
	// BarrierRetries is how many times a command is repeated before the lane is degraded.
	BarrierRetries int `yaml:"barrier_retries" json:"barrier_retries"`
	// PassTimeout is how long an opened lane waits for the vehicle to pass.
	PassTimeout Duration `yaml:"pass_timeout" json:"pass_timeout"`
	// StuckLoopAfter is how long a loop may stay occupied before it is reported stuck.
	StuckLoopAfter Duration `yaml:"stuck_loop_after" json:"stuck_loop_after"`
	// ExitGrace is how long after entry a walk-in may leave free of charge when the rate
	// has no free time of its own (turnaround).
	ExitGrace Duration `yaml:"exit_grace" json:"exit_grace"`
}

// Payments are the facility's rules for payments taken at the garage.
type Payments struct {
	// OfflineFloorLimit is the largest fee, in minor units, that a kiosk's card
	// terminal approves while its acquirer cannot be reached; the payment is captured
	// when the acquirer is back. Zero: no offline approvals.
	OfflineFloorLimit int64 `yaml:"offline_floor_limit" json:"offline_floor_limit"`
	// CaptureEvery is how often payments approved offline are offered to the acquirer
	// until it takes them.
	CaptureEvery Duration `yaml:"capture_every" json:"capture_every"`
}

// Duration is a time.Duration written as "90s" or "15m" in config files.
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Permit is a right to park for a period, for one or more plates or cards.
type Permit struct {
	ID     string    `yaml:"id" json:"id"`
	Holder string    `yaml:"holder" json:"holder,omitempty"`
	Plates []string  `yaml:"plates" json:"plates,omitempty"`
	Cards  []string  `yaml:"cards" json:"cards,omitempty"`
	Zones  []string  `yaml:"zones" json:"zones,omitempty"` // empty: every zone
	From   time.Time `yaml:"from" json:"from"`
	Until  time.Time `yaml:"until" json:"until"`
	// MaxInside is how many vehicles may be inside at once on this permit; a shared
	// family or pool permit with several plates has 1. Zero means 1.
	MaxInside int `yaml:"max_inside" json:"max_inside,omitempty"`
}

// Reservation is a booked stay, entered by plate or QR code.
type Reservation struct {
	ID    string    `yaml:"id" json:"id"`
	Plate string    `yaml:"plate" json:"plate,omitempty"`
	Code  string    `yaml:"code" json:"code,omitempty"`
	Zone  string    `yaml:"zone" json:"zone"`
	From  time.Time `yaml:"from" json:"from"`
	Until time.Time `yaml:"until" json:"until"`
	// Grace is how early before From and late after From the car may arrive.
	Grace Duration `yaml:"grace" json:"grace,omitempty"`
	// Prepaid means the booked window is paid; time beyond Until is charged at the zone rate.
	Prepaid bool `yaml:"prepaid" json:"prepaid"`
}

// BlockEntry refuses a plate or card at every lane.
type BlockEntry struct {
	Plate  string `yaml:"plate" json:"plate,omitempty"`
	Card   string `yaml:"card" json:"card,omitempty"`
	Reason string `yaml:"reason" json:"reason"`
}

// Lane returns the lane with the given id.
func (f *Facility) Lane(id string) (*Lane, bool) {
	for i := range f.Lanes {
		if f.Lanes[i].ID == id {
			return &f.Lanes[i], true
		}
	}
	return nil, false
}

// Zone returns the zone with the given id.
func (f *Facility) Zone(id string) (*Zone, bool) {
	for i := range f.Zones {
		if f.Zones[i].ID == id {
			return &f.Zones[i], true
		}
	}
	return nil, false
}

// Rate returns the tariff with the given id.
func (f *Facility) Rate(id string) (*tariff.Rate, bool) {
	for i := range f.Tariffs {
		if f.Tariffs[i].ID == id {
			return &f.Tariffs[i], true
		}
	}
	return nil, false
}
