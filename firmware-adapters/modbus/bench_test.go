package modbus_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/modbus"
)

type discard struct{}

func (discard) Deliver(edge.DeviceEvent) {}

// BenchmarkPollCycle500 times one full poll cycle of a bank of 500 ultrasonic spot
// sensors behind one unit (offsets 0..499), served by the simulator on loopback: all
// 500 registers, in 4 read requests of at most 125.
func BenchmarkPollCycle500(b *testing.B) {
	a := addr(freePort(b))
	var devs []edge.Device
	spots := map[string]string{}
	for i := range 500 {
		id := fmt.Sprintf("us-%03d", i)
		devs = append(devs, device(id, edge.KindSpotSensor, a, "ultrasonic-spot", "unit", "1", "offset", strconv.Itoa(i)))
		spots[id] = fmt.Sprintf("P%03d", i)
	}
	s := startSim(b, devs, spots)
	for i, id := range []string{"us-007", "us-123", "us-124", "us-499"} {
		s.Devices().Spots[id].SetOccupied(i%2 == 0)
	}
	drv, err := modbus.New(modbus.Config{Devices: devs, Spots: spots, Sink: discard{}})
	if err != nil {
		b.Fatal(err)
	}
	defer drv.Close()
	ctx := context.Background()
	if err := drv.PollOnce(ctx); err != nil { // connects
		b.Fatal(err)
	}
	before := s.Requests()
	cycles := 0
	for b.Loop() {
		if err := drv.PollOnce(ctx); err != nil {
			b.Fatal(err)
		}
		cycles++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(cycles)/1e6, "cycle-ms")
	perCycle := float64(s.Requests()-before) / float64(cycles)
	b.ReportMetric(perCycle, "requests/op")
	if perCycle != 4 {
		b.Errorf("%.2f requests per cycle; want 4", perCycle)
	}
	for _, st := range drv.Status() {
		if !st.Healthy {
			b.Fatalf("Status(%s) = %+v", st.ID, st)
		}
	}
}
