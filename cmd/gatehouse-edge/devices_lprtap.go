package main

import (
	"slices"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// plateReader is what the edge needs of the plate reader (firmware-adapters/lpr,
// built with -tags gocv): a driver told when loops change.
type plateReader interface {
	edge.Driver
	LoopChanged(loop string, occupied bool)
	// Reads returns the recent reads, oldest first.
	Reads() []edge.ReaderRead
	Close() error
}

// loopTap passes every device event on, and tells the plate reader first when a
// loop changes, so that the arming loop of a lane triggers its cameras.
type loopTap struct {
	next   edge.Sink
	reader plateReader
}

func (t loopTap) Deliver(ev edge.DeviceEvent) {
	if ev.Kind == edge.LoopChanged {
		t.reader.LoopChanged(ev.Device, ev.Occupied)
	}
	t.next.Deliver(ev)
}

// lprTriggers maps each lane's arming loop to the lane's lpr cameras.
func lprTriggers(f *edge.Facility, devs []edge.Device) map[string][]string {
	out := map[string][]string{}
	for _, l := range f.Lanes {
		for _, cam := range l.Cameras {
			if l.ArmingLoop != "" && slices.ContainsFunc(devs, func(d edge.Device) bool { return d.ID == cam }) {
				out[l.ArmingLoop] = append(out[l.ArmingLoop], cam)
			}
		}
	}
	return out
}
