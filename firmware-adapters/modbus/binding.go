package modbus

import (
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// Protocols served by this package (edge.Device.Protocol).
const (
	ProtocolTCP = "modbus_tcp"
	ProtocolRTU = "modbus_rtu"
)

// Defaults of the device options.
const (
	DefaultUnit        = 1
	DefaultLoopPoll    = 100 * time.Millisecond // loops and barriers
	DefaultSensorPoll  = time.Second            // spot sensors
	DefaultTimeout     = 500 * time.Millisecond
	DefaultLoopInput   = "di0"
	DefaultBaud        = 19200
	DefaultParity      = "E" // the Modbus serial line default
	DefaultDataBits    = 8
	DefaultTravel      = time.Second // simulator only: barrier arm travel time
	minPoll            = 10 * time.Millisecond
	maxTimeout         = 10 * time.Second
	minTimeout         = 10 * time.Millisecond
	defaultTCPPort     = "502"
	optionsDescription = "unit, resource, offset, poll, timeout, invert, baud, parity, data_bits, stop_bits, travel"
)

// baudRates are the usual RS-485 line speeds.
var baudRates = []int{1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600}

var knownOptions = []string{"unit", "resource", "offset", "poll", "timeout", "invert", "baud", "parity", "data_bits", "stop_bits", "travel"}

// Serial is the line setting of a Modbus RTU port.
type Serial struct {
	Baud     int
	Parity   string // N, E or O
	DataBits int
	StopBits int
}

// Binding is one facility device resolved against its profile and options: which
// unit, which absolute addresses, how often. The driver polls it; the simulator
// serves it. Resources in a Binding carry absolute addresses (profile address +
// offset).
type Binding struct {
	Device  edge.Device
	Profile *Profile
	Unit    uint8
	Offset  int
	Poll    time.Duration
	Timeout time.Duration
	// Occupied is, for a loop or spot sensor, the resource that says whether it is
	// occupied, and Rule how.
	Occupied *Resource
	Rule     Rule
	// Command, Up and Down are a barrier's resources; Open and Close the values
	// written to Command.
	Command, Up, Down *Resource
	Open, Close       uint16
	// Fault is the device's own fault indicator, if its profile has one.
	Fault *Resource
	// Serial is the line setting (modbus_rtu only).
	Serial Serial
	// Travel is the simulated arm travel time (option travel; simulator only).
	Travel time.Duration
}

// Polled returns the resources the driver reads for the device.
func (b *Binding) Polled() []*Resource {
	var out []*Resource
	for _, r := range []*Resource{b.Occupied, b.Up, b.Down, b.Fault} {
		if r != nil && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// PortKey identifies the physical port of the device: devices with the same key share
// one connection and one request at a time.
func (b *Binding) PortKey() string { return b.Device.Protocol + "://" + b.Device.Address }

// Bind resolves a device against profiles. The error lists every problem.
func Bind(d edge.Device, profiles Profiles) (*Binding, error) {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	b := &Binding{Device: d, Unit: DefaultUnit, Timeout: DefaultTimeout, Travel: DefaultTravel}
	opt := d.Options

	for k := range opt {
		if !slices.Contains(knownOptions, k) {
			add("option %q: unknown (known: %s)", k, optionsDescription)
		}
	}
	switch d.Protocol {
	case ProtocolTCP:
		if _, _, err := net.SplitHostPort(d.Address); err != nil {
			add("address %q: want host:port (%v)", d.Address, err)
		}
	case ProtocolRTU:
		if d.Address == "" {
			add("address: required, the serial device such as /dev/ttyUSB0")
		}
	default:
		add("protocol %q: want %s or %s", d.Protocol, ProtocolTCP, ProtocolRTU)
	}

	intOpt := func(key string, lo, hi, def int) int {
		s, ok := opt[key]
		if !ok {
			return def
		}
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < lo || n > hi {
			add("option %s %q: want a whole number %d..%d", key, s, lo, hi)
			return def
		}
		return n
	}
	durOpt := func(key string, lo, hi, def time.Duration) time.Duration {
		s, ok := opt[key]
		if !ok {
			return def
		}
		v, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || v < lo || v > hi {
			add("option %s %q: want a duration %v..%v, such as 250ms", key, s, lo, hi)
			return def
		}
		return v
	}

	b.Unit = uint8(intOpt("unit", 0, 247, DefaultUnit))
	b.Offset = intOpt("offset", 0, math.MaxUint16, 0)
	defPoll := DefaultLoopPoll
	if d.Kind == edge.KindSpotSensor {
		defPoll = DefaultSensorPoll
	}
	b.Poll = durOpt("poll", minPoll, time.Hour, defPoll)
	b.Timeout = durOpt("timeout", minTimeout, maxTimeout, DefaultTimeout)
	b.Travel = durOpt("travel", 0, time.Minute, DefaultTravel)
	invert := false
	if s, ok := opt["invert"]; ok {
		v, err := strconv.ParseBool(s)
		if err != nil {
			add("option invert %q: want true or false", s)
		}
		invert = v
	}
	if d.Protocol == ProtocolRTU {
		b.Serial.Baud = intOpt("baud", 1200, 921600, DefaultBaud)
		if !slices.Contains(baudRates, b.Serial.Baud) {
			add("option baud %d: want one of %v", b.Serial.Baud, baudRates)
		}
		b.Serial.Parity = DefaultParity
		if s, ok := opt["parity"]; ok {
			switch p := strings.ToUpper(strings.TrimSpace(s)); p {
			case "N", "NONE":
				b.Serial.Parity = "N"
			case "E", "EVEN":
				b.Serial.Parity = "E"
			case "O", "ODD":
				b.Serial.Parity = "O"
			default:
				add("option parity %q: want N, E or O", s)
			}
		}
		b.Serial.DataBits = intOpt("data_bits", 7, 8, DefaultDataBits)
		defStop := 1
		if b.Serial.Parity == "N" {
			defStop = 2 // the serial line spec keeps 11 bits a character
		}
		b.Serial.StopBits = intOpt("stop_bits", 1, 2, defStop)
	} else {
		for _, k := range []string{"baud", "parity", "data_bits", "stop_bits"} {
			if _, ok := opt[k]; ok {
				add("option %s: only for %s", k, ProtocolRTU)
			}
		}
	}

	p, ok := profiles[d.Profile]
	switch {
	case d.Profile == "":
		add("profile: required (one of %s)", strings.Join(profiles.Names(), ", "))
	case !ok:
		add("profile %q: unknown (known: %s)", d.Profile, strings.Join(profiles.Names(), ", "))
	}
	if p != nil {
		b.Profile = p
		b.bindKind(opt, invert, add)
	}
	if len(probs) > 0 {
		return nil, fmt.Errorf("modbus: device %q: %s", d.ID, strings.Join(probs, "; "))
	}
	return b, nil
}

// bindKind resolves the resources the device's kind needs.
func (b *Binding) bindKind(opt map[string]string, invert bool, add func(string, ...any)) {
	p, d := b.Profile, b.Device
	at := func(name string) *Resource {
		r, ok := p.Resource(name)
		if !ok {
			return nil
		}
		c := *r
		c.Address += b.Offset
		if c.Address+c.Words()-1 > math.MaxUint16 {
			add("offset %d: resource %q ends beyond address 65535", b.Offset, name)
		}
		return &c
	}
	compatible := map[edge.DeviceKind][]ProfileKind{
		edge.KindBarrier:    {KindBarrier},
		edge.KindLoop:       {KindLoop, KindIOModule, KindSpotSensor},
		edge.KindSpotSensor: {KindSpotSensor, KindIOModule, KindLoop},
	}
	kinds, ok := compatible[d.Kind]
	if !ok {
		add("kind %q: the Modbus driver serves barrier, loop and spot_sensor devices", d.Kind)
		return
	}
	if !slices.Contains(kinds, p.Kind) {
		add("profile %q is for a %s, not a %s", p.Name, p.Kind, d.Kind)
		return
	}
	if p.Fault != "" {
		b.Fault = at(p.Fault)
	}
	if d.Kind == edge.KindBarrier {
		if _, ok := opt["resource"]; ok {
			add("option resource: not for a barrier (its profile names its resources)")
		}
		bm := p.Barrier
		b.Command, b.Up, b.Down = at(bm.Command), at(bm.Up), at(bm.Down)
		b.Open, b.Close = bm.OpenValue(), bm.CloseValue()
		return
	}
	// A loop or spot sensor: one resource says occupied.
	name, explicit := opt["resource"]
	switch {
	case explicit:
		b.Rule = Rule{Resource: name}
	case p.Occupied != nil:
		b.Rule = *p.Occupied
	case d.Kind == edge.KindLoop:
		b.Rule = Rule{Resource: DefaultLoopInput}
	default:
		add("option resource: required, profile %q has no occupied rule", p.Name)
		return
	}
	b.Occupied = at(b.Rule.Resource)
	if b.Occupied == nil {
		var names []string
		for _, r := range p.Resources {
			names = append(names, r.Name)
		}
		add("resource %q: profile %q has none (it has %s)", b.Rule.Resource, p.Name, strings.Join(names, ", "))
		return
	}
	if explicit && p.Occupied != nil && p.Occupied.Resource == name {
		b.Rule = *p.Occupied // the profile's rule for its own resource still holds
	}
	if invert {
		if b.Rule.Below != nil || b.Rule.Above != nil {
			add("option invert: only for flags, not for a threshold rule")
		} else {
			f := b.Rule.Flag == nil || *b.Rule.Flag
			f = !f
			b.Rule.Flag = &f
		}
	}
}
