//go:build gocv

package camerasim_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/lpr"
)

// readSink passes device events to a channel.
type readSink chan edge.DeviceEvent

func (s readSink) Deliver(ev edge.DeviceEvent) { s <- ev }

// TestSnapshotsReadByLPR is the simulated plain IP camera against the edge's
// plate reader over HTTP: the reader, triggered by the arming loop, fetches the
// pictures and reads the plate of the car in view (a white front plate at an
// entry, a yellow rear plate at an exit), and finds none in the empty lane.
func TestSnapshotsReadByLPR(t *testing.T) {
	// The simulator serves a camera whatever host its address names (it only
	// needs http); the edge's reader is given the test server's.
	dev := edge.Device{ID: "x2-cam", Kind: edge.KindCamera, Protocol: "lpr", Address: "http://sim.invalid/snapshot/x2-cam",
		Options: map[string]string{"frames": "3", "interval": "10ms", "probe": "0"}}
	s, base := snapshotRig(t, []edge.Device{dev})
	dev.Address = base + "/snapshot/x2-cam"
	sink := make(readSink, 16)
	r, err := lpr.New(lpr.Config{Devices: []edge.Device{dev}, Triggers: map[string][]string{"x2-loop": {"x2-cam"}}, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done; r.Close() }()

	cam := s.Camera("x2-cam")
	read := func(want string) {
		t.Helper()
		before := cam.Fetches()
		r.LoopChanged("x2-loop", true)
		r.LoopChanged("x2-loop", false)
		timeout := time.After(20 * time.Second)
		for {
			select {
			case ev := <-sink:
				if ev.Kind != edge.PlateRead {
					continue
				}
				if ev.Read.Text != want || ev.Read.Confidence < 0.3 {
					t.Fatalf("read %q at %.2f (%s); want %s", ev.Read.Text, ev.Read.Confidence, ev.Detail, want)
				}
				if n := cam.Fetches() - before; n != 3 {
					t.Errorf("the reader fetched %d pictures; want 3", n)
				}
				return
			case <-timeout:
				t.Fatalf("no plate read of %s", want)
			}
		}
	}
	cam.Show("KL467RT", "entry")
	read("KL467RT")
	cam.Show("VX39NF", "exit")
	read("VX39NF")

	cam.Show("", "")
	noPlate := func() uint64 { return r.Status()[0].Counters["no_plate"] }
	before := noPlate()
	r.LoopChanged("x2-loop", true)
	// The reading is over when the reader counts it as one without a plate, or
	// delivers a read, which is wrong here.
	deadline := time.After(20 * time.Second)
	for noPlate() == before {
		select {
		case ev := <-sink:
			if ev.Kind == edge.PlateRead {
				t.Fatalf("read %q in the empty lane", ev.Read.Text)
			}
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("the reader did not finish reading the empty lane: %v", r.Status()[0].Counters)
		}
	}
}
