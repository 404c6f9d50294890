package modbus

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
)

func TestBind(t *testing.T) {
	ps := BuiltinProfiles()
	t.Run("defaults", func(t *testing.T) {
		tests := []struct {
			dev      edge.Device
			poll     time.Duration
			occupied string
			addr     int
		}{
			{edge.Device{ID: "l", Kind: edge.KindLoop, Protocol: ProtocolTCP, Address: "h:502", Profile: "io-module-8di"}, DefaultLoopPoll, "di0", 0},
			{edge.Device{ID: "s", Kind: edge.KindSpotSensor, Protocol: ProtocolTCP, Address: "h:502", Profile: "ultrasonic-spot"}, DefaultSensorPoll, "distance", 0},
			{edge.Device{ID: "b", Kind: edge.KindBarrier, Protocol: ProtocolTCP, Address: "h:502", Profile: "barrier-generic"}, DefaultLoopPoll, "", 0},
		}
		for _, tt := range tests {
			t.Run(tt.dev.ID, func(t *testing.T) {
				b, err := Bind(tt.dev, ps)
				if err != nil {
					t.Fatal(err)
				}
				if b.Unit != DefaultUnit || b.Poll != tt.poll || b.Timeout != DefaultTimeout || b.Offset != 0 {
					t.Errorf("Bind() = unit %d poll %v timeout %v offset %d; want %d %v %v 0", b.Unit, b.Poll, b.Timeout, b.Offset, DefaultUnit, tt.poll, DefaultTimeout)
				}
				if tt.occupied != "" && (b.Occupied == nil || b.Occupied.Name != tt.occupied) {
					t.Errorf("Occupied = %+v; want %s", b.Occupied, tt.occupied)
				}
			})
		}
	})

	t.Run("options", func(t *testing.T) {
		b, err := Bind(edge.Device{ID: "s", Kind: edge.KindSpotSensor, Protocol: ProtocolTCP, Address: "h:502", Profile: "ultrasonic-spot-status",
			Options: map[string]string{"unit": "7", "offset": "42", "poll": "2s", "timeout": "250ms"}}, ps)
		if err != nil {
			t.Fatal(err)
		}
		if b.Unit != 7 || b.Offset != 42 || b.Poll != 2*time.Second || b.Timeout != 250*time.Millisecond {
			t.Errorf("Bind() = %+v", b)
		}
		if b.Occupied.Address != 42 || b.Fault == nil || b.Fault.Address != 1042 {
			t.Errorf("addresses: distance %d, status %+v; want 42 and 1042", b.Occupied.Address, b.Fault)
		}
		if p, _ := ps["ultrasonic-spot-status"].Resource("distance"); p.Address != 0 {
			t.Error("Bind changed the shared profile")
		}
	})

	t.Run("loop resource and invert", func(t *testing.T) {
		b, err := Bind(edge.Device{ID: "l", Kind: edge.KindLoop, Protocol: ProtocolTCP, Address: "h:502", Profile: "io-module-8di",
			Options: map[string]string{"resource": "di3", "invert": "true"}}, ps)
		if err != nil {
			t.Fatal(err)
		}
		if b.Occupied.Address != 3 || b.Rule.Occupied(1) || !b.Rule.Occupied(0) {
			t.Errorf("Bind() = resource %+v rule %+v; want di3 inverted", b.Occupied, b.Rule)
		}
	})

	t.Run("barrier", func(t *testing.T) {
		b, err := Bind(edge.Device{ID: "b", Kind: edge.KindBarrier, Protocol: ProtocolTCP, Address: "h:502", Profile: "barrier-register",
			Options: map[string]string{"offset": "10", "travel": "2s"}}, ps)
		if err != nil {
			t.Fatal(err)
		}
		if b.Command.Table != HoldingRegister || b.Command.Address != 10 || b.Open != 1 || b.Close != 2 ||
			b.Up.Address != 10 || b.Down.Address != 11 || b.Fault.Address != 12 || b.Travel != 2*time.Second {
			t.Errorf("Bind() = command %+v open %d close %d up %+v down %+v", b.Command, b.Open, b.Close, b.Up, b.Down)
		}
		if got := len(b.Polled()); got != 3 {
			t.Errorf("Polled() = %d resources; want 3", got)
		}
	})

	t.Run("rtu", func(t *testing.T) {
		tests := []struct {
			opts map[string]string
			want Serial
		}{
			{nil, Serial{19200, "E", 8, 1}},
			{map[string]string{"baud": "9600", "parity": "N"}, Serial{9600, "N", 8, 2}},
			{map[string]string{"parity": "odd", "stop_bits": "1", "data_bits": "7"}, Serial{19200, "O", 7, 1}},
		}
		for _, tt := range tests {
			b, err := Bind(edge.Device{ID: "l", Kind: edge.KindLoop, Protocol: ProtocolRTU, Address: "/dev/ttyUSB0", Profile: "io-module-8di", Options: tt.opts}, ps)
			if err != nil {
				t.Fatal(err)
			}
			if b.Serial != tt.want {
				t.Errorf("Bind(%v).Serial = %+v; want %+v", tt.opts, b.Serial, tt.want)
			}
		}
	})

	t.Run("problems", func(t *testing.T) {
		tests := []struct {
			name string
			dev  edge.Device
			want []string
		}{
			{"everything wrong", edge.Device{ID: "x", Kind: edge.KindLoop, Protocol: ProtocolTCP, Address: "nohost", Profile: "io-module-8di",
				Options: map[string]string{"unit": "300", "poll": "fast", "colour": "red", "timeout": "1h", "resource": "di9", "baud": "9600", "offset": "-1"}},
				[]string{`address "nohost"`, "option unit", "option poll", `option "colour": unknown`, "option timeout", `resource "di9"`, "option baud: only for modbus_rtu", "option offset"}},
			{"unknown profile", edge.Device{ID: "x", Kind: edge.KindLoop, Protocol: ProtocolTCP, Address: "h:1", Profile: "nope"}, []string{`profile "nope": unknown`, "io-module-8di"}},
			{"no profile", edge.Device{ID: "x", Kind: edge.KindLoop, Protocol: ProtocolTCP, Address: "h:1"}, []string{"profile: required"}},
			{"wrong protocol", edge.Device{ID: "x", Kind: edge.KindLoop, Protocol: "mqtt", Address: "h:1", Profile: "io-module-8di"}, []string{`protocol "mqtt"`}},
			{"rtu without path", edge.Device{ID: "x", Kind: edge.KindLoop, Protocol: ProtocolRTU, Profile: "io-module-8di", Options: map[string]string{"parity": "X"}}, []string{"address: required", "option parity"}},
			{"profile for another kind", edge.Device{ID: "x", Kind: edge.KindBarrier, Protocol: ProtocolTCP, Address: "h:1", Profile: "io-module-8di"}, []string{"is for a io_module, not a barrier"}},
			{"camera", edge.Device{ID: "x", Kind: edge.KindCamera, Protocol: ProtocolTCP, Address: "h:1", Profile: "io-module-8di"}, []string{`kind "camera"`}},
			{"offset beyond the table", edge.Device{ID: "x", Kind: edge.KindSpotSensor, Protocol: ProtocolTCP, Address: "h:1", Profile: "ultrasonic-spot-status", Options: map[string]string{"offset": "65000"}}, []string{"ends beyond address 65535"}},
			{"invert a threshold", edge.Device{ID: "x", Kind: edge.KindSpotSensor, Protocol: ProtocolTCP, Address: "h:1", Profile: "ultrasonic-spot", Options: map[string]string{"invert": "true"}}, []string{"option invert"}},
			{"barrier with resource", edge.Device{ID: "x", Kind: edge.KindBarrier, Protocol: ProtocolTCP, Address: "h:1", Profile: "barrier-generic", Options: map[string]string{"resource": "arm_up"}}, []string{"option resource: not for a barrier"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := Bind(tt.dev, ps)
				for _, w := range tt.want {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Errorf("Bind() = %v\nwant it to contain %q", err, w)
					}
				}
			})
		}
	})
}
