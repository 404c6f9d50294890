package modbus

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
)

func TestArmPosition(t *testing.T) {
	tests := []struct {
		up, down, fault bool
		want            edge.Position
	}{
		{true, false, false, edge.PositionUp},
		{false, true, false, edge.PositionDown},
		{false, false, false, edge.PositionMoving},
		{true, true, false, edge.PositionFault},
		{true, false, true, edge.PositionFault},
		{false, true, true, edge.PositionFault},
		{false, false, true, edge.PositionFault},
	}
	for _, tt := range tests {
		if got := armPosition(tt.up, tt.down, tt.fault); got != tt.want {
			t.Errorf("armPosition(up %v, down %v, fault %v) = %v; want %v", tt.up, tt.down, tt.fault, got, tt.want)
		}
	}
}

// show renders events compactly: "loop:true", "arm:up", "spot:S-x:true", "health:false".
func show(evs []edge.DeviceEvent) string {
	var out []string
	for _, ev := range evs {
		switch ev.Kind {
		case edge.LoopChanged:
			out = append(out, fmt.Sprintf("loop:%v", ev.Occupied))
		case edge.ArmPosition:
			out = append(out, "arm:"+ev.Position.String())
		case edge.SpotChanged:
			out = append(out, fmt.Sprintf("spot:%s:%v", ev.Code, ev.Occupied))
		case edge.DeviceHealth:
			out = append(out, fmt.Sprintf("health:%v", ev.Healthy))
		}
	}
	return strings.Join(out, " ")
}

// step is one thing that happens to a device: a poll with values (by slot), or a
// failed request.
type step struct {
	values []float64 // nil: the request failed
	want   string    // events, as show renders them
}

func runSteps(t *testing.T, d *device, steps []step) {
	t.Helper()
	now := time.Unix(1e9, 0)
	for i, s := range steps {
		now = now.Add(time.Second)
		var evs []edge.DeviceEvent
		if s.values == nil {
			evs = d.failed(now, failTimeout, "i/o timeout")
		} else {
			for slot, v := range s.values {
				d.set(slot, v)
			}
			evs = append(d.succeeded(now), d.evaluate(now)...)
		}
		if got := show(evs); got != s.want {
			t.Errorf("step %d (%v): events %q; want %q", i, s.values, got, s.want)
		}
		for _, ev := range evs {
			if ev.Device != d.id() || !ev.At.Equal(now) {
				t.Errorf("step %d: event %+v: wrong device or time", i, ev)
			}
		}
	}
}

func TestDeviceEvents(t *testing.T) {
	dev := func(kind edge.DeviceKind, profile string, opts map[string]string) *device {
		t.Helper()
		b, err := Bind(edge.Device{ID: "dev", Kind: kind, Protocol: ProtocolTCP, Address: "h:502", Profile: profile, Options: opts}, BuiltinProfiles())
		if err != nil {
			t.Fatal(err)
		}
		return newDevice(b, "S-7")
	}
	fail := step{nil, ""}
	tests := []struct {
		name  string
		dev   *device
		steps []step
	}{
		{"loop reports first state then changes only", dev(edge.KindLoop, "io-module-8di", map[string]string{"resource": "di3"}), []step{
			{[]float64{0}, "loop:false"},
			{[]float64{0}, ""},
			{[]float64{1}, "loop:true"},
			{[]float64{1}, ""},
			{[]float64{0}, "loop:false"},
		}},
		{"loop inverted", dev(edge.KindLoop, "io-module-8di", map[string]string{"invert": "true"}), []step{
			{[]float64{1}, "loop:false"},
			{[]float64{0}, "loop:true"},
		}},
		{"barrier positions", dev(edge.KindBarrier, "barrier-generic", nil), []step{ // slots: up, down, fault
			{[]float64{0, 1, 0}, "arm:down"},
			{[]float64{0, 1, 0}, ""},
			{[]float64{0, 0, 0}, "arm:moving"},
			{[]float64{1, 0, 0}, "arm:up"},
			{[]float64{1, 0, 1}, "arm:fault"},
			{[]float64{1, 0, 1}, ""},
			{[]float64{1, 0, 0}, "arm:up"},
			{[]float64{1, 1, 0}, "arm:fault"},
		}},
		{"spot sensor by distance", dev(edge.KindSpotSensor, "ultrasonic-spot", nil), []step{
			{[]float64{300}, "spot:S-7:false"},
			{[]float64{297}, ""},
			{[]float64{52}, "spot:S-7:true"},
			{[]float64{149}, ""},
			{[]float64{150}, "spot:S-7:false"},
		}},
		{"spot sensor fault flag", dev(edge.KindSpotSensor, "magnetic-spot", nil), []step{ // slots: occupied, sensor_fault
			{[]float64{1, 0}, "spot:S-7:true"},
			{[]float64{1, 1}, "health:false"},
			{[]float64{0, 1}, "spot:S-7:false"},
			{[]float64{0, 0}, "health:true"},
		}},
		{"health after three failures, back on first success", dev(edge.KindLoop, "io-module-8di", nil), []step{
			{[]float64{1}, "loop:true"},
			fail, fail, {[]float64{1}, ""}, // two in a row are forgiven
			fail, fail, {nil, "health:false"},
			fail, fail,
			{[]float64{1}, "health:true"},
			{[]float64{0}, "loop:false"},
		}},
		{"never answered", dev(edge.KindSpotSensor, "ultrasonic-spot", nil), []step{
			fail, fail, {nil, "health:false"},
			{[]float64{40}, "health:true spot:S-7:true"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runSteps(t, tt.dev, tt.steps)
		})
	}

	t.Run("status", func(t *testing.T) {
		d := dev(edge.KindLoop, "io-module-8di", nil)
		if st := d.status(); st.Healthy || st.Detail != "no contact yet" || st.ID != "dev" || st.Protocol != ProtocolTCP {
			t.Errorf("status() before contact = %+v", st)
		}
		runSteps(t, d, []step{{[]float64{0}, "loop:false"}})
		if st := d.status(); !st.Healthy || st.Detail != "" || st.LastContact.IsZero() {
			t.Errorf("status() after contact = %+v", st)
		}
		runSteps(t, d, []step{fail, fail, {nil, "health:false"}})
		st := d.status()
		if st.Healthy || !strings.Contains(st.Detail, "3 failed requests in a row") {
			t.Errorf("status() after failures = %+v", st)
		}
		if st.Counters["errors"] != 3 || st.Counters["timeouts"] != 3 {
			t.Errorf("Counters = %v; want 3 errors, 3 timeouts", st.Counters)
		}
	})
}
