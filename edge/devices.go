package edge

import (
	"context"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge/plate"
)

// Barrier is what a lane needs of a barrier: commands. Where the arm is comes back as
// DeviceEvents of kind ArmPosition, because the command being sent is no proof that the
// arm moved.
type Barrier interface {
	Raise(ctx context.Context) error
	Lower(ctx context.Context) error
}

// Sink receives device events. *Garage implements it; device adapters are given one.
//
// Deliver may command a barrier (Raise or Lower) before it returns, so an adapter
// must not call it from the goroutine that would carry that command, nor while
// holding a lock the command needs: deliver from a goroutine of its own.
// Devices are presumed healthy until a DeviceHealth event says otherwise.
type Sink interface {
	Deliver(ev DeviceEvent)
}

// EventKind says what a device reported.
type EventKind uint8

// Device event kinds.
const (
	// LoopChanged: a loop detector or presence sensor became Occupied or clear.
	LoopChanged EventKind = iota + 1
	// ArmPosition: a barrier reports Position.
	ArmPosition
	// PlateRead: a camera read a plate (Read).
	PlateRead
	// TicketPresented: a ticket or QR code was scanned (Code).
	TicketPresented
	// TicketRequested: a driver without a credential pressed the ticket button.
	TicketRequested
	// CardPresented: a permit card (RFID, Code) was held to the reader.
	CardPresented
	// LostTicket: a driver at an exit declared the ticket lost.
	LostTicket
	// SpotChanged: a spot sensor reports its spot Occupied or free (Code is the spot id).
	SpotChanged
	// DeviceHealth: a device went offline (Healthy false, Detail says why) or came back.
	DeviceHealth
)

var eventKindNames = [...]string{"", "loop", "arm", "plate", "ticket", "ticket_request", "card", "lost_ticket", "spot", "health"}

func (k EventKind) String() string {
	if int(k) < len(eventKindNames) {
		return eventKindNames[k]
	}
	return "unknown"
}

// Position is where a barrier arm is.
type Position uint8

// Arm positions.
const (
	PositionUnknown Position = iota
	PositionUp
	PositionDown
	PositionMoving
	PositionFault
)

var positionNames = [...]string{"unknown", "up", "down", "moving", "fault"}

func (p Position) String() string {
	if int(p) < len(positionNames) {
		return positionNames[p]
	}
	return "unknown"
}

// DeviceEvent is one observation from one device.
type DeviceEvent struct {
	Device   string
	Kind     EventKind
	At       time.Time
	Occupied bool
	Position Position
	Read     plate.Read
	Code     string
	Healthy  bool
	Detail   string
}

// Alert codes raised by the garage.
const (
	AlertTailgating     = "tailgating"
	AlertAntiPassback   = "antipassback"
	AlertBarrierFault   = "barrier.fault"
	AlertLoopStuck      = "loop.stuck"
	AlertLaneDegraded   = "lane.degraded"
	AlertLotFull        = "lot.full"
	AlertBlocklisted    = "blocklisted"
	AlertOverCapacity   = "occupancy.over_capacity"
	AlertClamped        = "occupancy.clamped"
	AlertNoCredential   = "lane.no_credential"
	AlertManualOpen     = "gate.manual_open"
	AlertDeviceOffline  = "device.offline"
	AlertUnsurePlate    = "plate.unsure"
	AlertPermitInUse    = "permit.in_use"
	AlertUnknownExit    = "exit.no_session"
	AlertPassWithoutArm = "lane.pass_without_credential"
	AlertCaptureFailed  = "payment.capture_failed"
)

// Driver is a running device adapter: one Modbus port, serial line, MQTT subscription
// or camera endpoint, serving one or more devices of the facility. It reports what it
// sees to the Sink it was built with (loops as LoopChanged, arm positions as
// ArmPosition, spot sensors as SpotChanged with Code the spot id, plate reads as
// PlateRead, and every change of a device's health as DeviceHealth).
type Driver interface {
	// Run serves until ctx is done. A lost connection is not an error: the driver
	// reconnects with backoff and reports the devices unhealthy meanwhile.
	Run(ctx context.Context) error
	// Status reports the health of each device the driver serves.
	Status() []DeviceStatus
}

// DeviceStatus is one device's health as its driver sees it.
type DeviceStatus struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	Protocol    string    `json:"protocol"`
	Address     string    `json:"address,omitempty"`
	Healthy     bool      `json:"healthy"`
	LastContact time.Time `json:"last_contact,omitzero"`
	// Detail says what is wrong when the device is not healthy.
	Detail string `json:"detail,omitempty"`
	// Counters are the driver's error and traffic counters for this device, e.g.
	// requests, timeouts, malformed, reconnects.
	Counters map[string]uint64 `json:"counters,omitempty"`
}

// ReaderRead is one vehicle's plate as the edge's own plate reader (cameras
// with protocol lpr, firmware-adapters/lpr) made it, for the operator's view:
// every read, the unsure ones included, with its confidence and images.
type ReaderRead struct {
	Device     string    `json:"device"`
	EventID    string    `json:"event_id"`
	Plate      string    `json:"plate"`
	Confidence float64   `json:"confidence"`
	Unsure     bool      `json:"unsure,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	Frames     int       `json:"frames"`
	Votes      int       `json:"votes"`
	At         time.Time `json:"at"`
	// Images are the best frame and its plate crop, relative to the image dir
	// and to /camera/images/.
	Images []string `json:"images,omitempty"`
}

// SpotOfSensor maps each spot sensor's device id to the spot it watches.
func (f *Facility) SpotOfSensor() map[string]string {
	out := map[string]string{}
	for _, z := range f.Zones {
		for _, s := range z.Spots {
			if s.Sensor != "" {
				out[s.Sensor] = s.ID
			}
		}
	}
	return out
}

// DevicesByProtocol groups the facility's devices by protocol.
func (f *Facility) DevicesByProtocol() map[string][]Device {
	out := map[string][]Device{}
	for _, d := range f.Devices {
		out[d.Protocol] = append(out[d.Protocol], d)
	}
	return out
}
