package modbus

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// UnhealthyAfter is how many requests in a row must fail before a device is reported
// unhealthy: one lost frame on a busy RS-485 line is no reason to degrade a lane.
const UnhealthyAfter = 3

// counters of one device, reported by Status.
type counters struct {
	requests, errors, timeouts, reconnects, malformed, exceptions atomic.Uint64
}

func (c *counters) snapshot() map[string]uint64 {
	return map[string]uint64{
		"requests":   c.requests.Load(),
		"errors":     c.errors.Load(),
		"timeouts":   c.timeouts.Load(),
		"reconnects": c.reconnects.Load(),
		"malformed":  c.malformed.Load(),
		"exceptions": c.exceptions.Load(),
	}
}

// failure says how a request failed.
type failure uint8

const (
	failLink      failure = iota + 1 // no connection, connection lost
	failTimeout                      // no answer in time
	failException                    // the device answered with a Modbus exception
	failMalformed                    // the answer made no sense
)

func (f failure) String() string {
	switch f {
	case failLink:
		return "link"
	case failTimeout:
		return "timeout"
	case failException:
		return "exception"
	case failMalformed:
		return "malformed"
	}
	return "unknown"
}

// device is one served device and what the driver knows of it. Everything but mu's
// fields and the counters belongs to the port goroutine.
type device struct {
	bind   *Binding
	spot   string      // spot sensors: the spot id
	polled []*Resource // what is read, by slot
	values []float64
	have   []bool
	nhave  int

	reported  bool // the current state was reported once
	occupied  bool
	pos       edge.Position
	fails     int  // consecutive failed requests
	commOK    bool // false once UnhealthyAfter requests failed in a row
	faulty    bool // the device reports a fault of its own (not barriers)
	healthOut bool // health last reported to the sink; the garage assumes healthy

	stats counters

	mu          sync.Mutex
	contacted   bool
	lastContact time.Time
	healthy     bool
	detail      string
}

func newDevice(b *Binding, spot string) *device {
	d := &device{bind: b, spot: spot, polled: b.Polled(), commOK: true, healthOut: true, detail: "no contact yet"}
	d.values = make([]float64, len(d.polled))
	d.have = make([]bool, len(d.polled))
	return d
}

func (d *device) id() string { return d.bind.Device.ID }

func (d *device) slotOf(r *Resource) int {
	for i, p := range d.polled {
		if p == r {
			return i
		}
	}
	return -1
}

func (d *device) set(slot int, v float64) {
	if !d.have[slot] {
		d.have[slot] = true
		d.nhave++
	}
	d.values[slot] = v
}

func (d *device) value(r *Resource) float64 {
	if i := d.slotOf(r); i >= 0 {
		return d.values[i]
	}
	return 0
}

// armPosition is where a barrier's arm is by its end stops and fault input.
func armPosition(up, down, fault bool) edge.Position {
	switch {
	case fault:
		return edge.PositionFault
	case up && !down:
		return edge.PositionUp
	case down && !up:
		return edge.PositionDown
	case !up && !down:
		return edge.PositionMoving
	}
	return edge.PositionFault // both end stops at once: a wiring or sensor fault
}

// evaluate turns the values read into events: the current state the first time,
// changes after that. It is called once all polled values have been read at least
// once.
func (d *device) evaluate(now time.Time) []edge.DeviceEvent {
	if d.nhave < len(d.polled) {
		return nil
	}
	var evs []edge.DeviceEvent
	b := d.bind
	id := d.id()
	switch b.Device.Kind {
	case edge.KindBarrier:
		fault := b.Fault != nil && d.value(b.Fault) != 0
		pos := armPosition(d.value(b.Up) != 0, d.value(b.Down) != 0, fault)
		if !d.reported || pos != d.pos {
			d.pos = pos
			evs = append(evs, edge.DeviceEvent{Device: id, Kind: edge.ArmPosition, At: now, Position: pos})
		}
	default:
		occ := b.Rule.Occupied(d.value(b.Occupied))
		if !d.reported || occ != d.occupied {
			d.occupied = occ
			ev := edge.DeviceEvent{Device: id, Kind: edge.LoopChanged, At: now, Occupied: occ}
			if b.Device.Kind == edge.KindSpotSensor {
				ev.Kind, ev.Code = edge.SpotChanged, d.spot
			}
			evs = append(evs, ev)
		}
		if b.Fault != nil {
			d.faulty = d.value(b.Fault) != 0
		}
	}
	d.reported = true
	return append(evs, d.health(now, "")...)
}

// succeeded records a request that the device answered.
func (d *device) succeeded(now time.Time) []edge.DeviceEvent {
	d.fails = 0
	d.commOK = true
	d.mu.Lock()
	d.contacted = true
	d.lastContact = now
	d.mu.Unlock()
	return d.health(now, "")
}

// failed records a failed request; the UnhealthyAfter-th in a row makes the device
// unhealthy.
func (d *device) failed(now time.Time, f failure, detail string) []edge.DeviceEvent {
	d.stats.errors.Add(1)
	switch f {
	case failTimeout:
		d.stats.timeouts.Add(1)
	case failMalformed:
		d.stats.malformed.Add(1)
	case failException:
		d.stats.exceptions.Add(1)
	}
	d.fails++
	if d.fails >= UnhealthyAfter {
		d.commOK = false
	}
	return d.health(now, fmt.Sprintf("%d failed requests in a row, last: %s", d.fails, detail))
}

// health updates the status and reports a change of health.
func (d *device) health(now time.Time, commDetail string) []edge.DeviceEvent {
	healthy := d.commOK && !d.faulty
	detail := ""
	switch {
	case !d.commOK:
		detail = commDetail
	case d.faulty:
		detail = fmt.Sprintf("device reports a fault (%s = %v)", d.bind.Fault.Name, d.value(d.bind.Fault))
	}
	d.mu.Lock()
	if d.contacted || !healthy {
		d.healthy = healthy
		if detail != "" || healthy {
			d.detail = detail
		}
	}
	d.mu.Unlock()
	if healthy == d.healthOut {
		return nil
	}
	d.healthOut = healthy
	return []edge.DeviceEvent{{Device: d.id(), Kind: edge.DeviceHealth, At: now, Healthy: healthy, Detail: detail}}
}

func (d *device) status() edge.DeviceStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	dev := d.bind.Device
	return edge.DeviceStatus{
		ID:          dev.ID,
		Kind:        string(dev.Kind),
		Protocol:    dev.Protocol,
		Address:     dev.Address,
		Healthy:     d.healthy,
		LastContact: d.lastContact,
		Detail:      d.detail,
		Counters:    d.stats.snapshot(),
	}
}
