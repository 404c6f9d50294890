package serial

import (
	"fmt"
	"strconv"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// Device option defaults.
const (
	DefaultBaud    = 9600
	DefaultAddr    = 0x01
	DefaultChannel = 1
)

// bauds are the rates a port may be set to.
var bauds = map[int]bool{
	1200: true, 2400: true, 4800: true, 9600: true, 19200: true, 38400: true,
	57600: true, 115200: true,
}

// options the devices of this protocol may carry. travel is the simulator's (a
// simulated barrier's arm travel time); the driver accepts and ignores it so one
// facility file serves both.
var knownOptions = map[string]bool{"baud": true, "line_address": true, "channel": true, "travel": true}

// Endpoint is where a device sits, as its config says: the port, its speed, the line
// address of its controller and, for a loop, the detector channel.
type Endpoint struct {
	Path    string
	Baud    int
	Addr    uint8
	Channel int // loops only; 0 for barriers
}

// ParseEndpoint reads a device's address and options: address is the port's path;
// options baud (default 9600), line_address (two hex digits, 01 to FE, default 01)
// and, for a loop, channel (1 to 16, default 1). Unknown options are errors, so a
// misspelt key is not silently replaced by its default.
func ParseEndpoint(d edge.Device) (Endpoint, error) {
	e := Endpoint{Path: d.Address, Baud: DefaultBaud, Addr: DefaultAddr}
	if d.Kind != edge.KindLoop && d.Kind != edge.KindBarrier {
		return e, fmt.Errorf("device %s: kind %q: the serial protocol serves loops and barriers", d.ID, d.Kind)
	}
	if e.Path == "" {
		return e, fmt.Errorf("device %s: address: want the serial port's path, such as /dev/ttyUSB0", d.ID)
	}
	for k := range d.Options {
		if !knownOptions[k] {
			return e, fmt.Errorf("device %s: unknown option %q (want baud, line_address, channel)", d.ID, k)
		}
	}
	if s, ok := d.Options["baud"]; ok {
		b, err := strconv.Atoi(s)
		if err != nil || !bauds[b] {
			return e, fmt.Errorf("device %s: baud %q: want one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200", d.ID, s)
		}
		e.Baud = b
	}
	if s, ok := d.Options["line_address"]; ok {
		a, err := ParseAddr(s)
		if err != nil || a == 0x00 || a == 0xFF {
			return e, fmt.Errorf("device %s: line_address %q: want two hex digits from 01 to FE", d.ID, s)
		}
		e.Addr = a
	}
	if d.Kind == edge.KindLoop {
		e.Channel = DefaultChannel
		if s, ok := d.Options["channel"]; ok {
			c, err := strconv.Atoi(s)
			if err != nil || c < 1 || c > MaxChannels {
				return e, fmt.Errorf("device %s: channel %q: want 1 to %d", d.ID, s, MaxChannels)
			}
			e.Channel = c
		}
	} else if _, ok := d.Options["channel"]; ok {
		return e, fmt.Errorf("device %s: channel: only loops have a channel", d.ID)
	}
	return e, nil
}
