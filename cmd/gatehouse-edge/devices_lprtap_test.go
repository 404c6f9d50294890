package main

import (
	"context"
	"reflect"
	"testing"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// fakeReader records the loop changes it is told of.
type fakeReader struct{ loops []string }

func (r *fakeReader) Run(context.Context) error   { return nil }
func (r *fakeReader) Status() []edge.DeviceStatus { return nil }
func (r *fakeReader) Close() error                { return nil }
func (r *fakeReader) Reads() []edge.ReaderRead    { return nil }
func (r *fakeReader) LoopChanged(loop string, on bool) {
	r.loops = append(r.loops, loop+map[bool]string{true: "+", false: "-"}[on])
}

type countSink struct{ n int }

func (s *countSink) Deliver(edge.DeviceEvent) { s.n++ }

func TestLoopTap(t *testing.T) {
	r, next := &fakeReader{}, &countSink{}
	tap := loopTap{next: next, reader: r}
	tap.Deliver(edge.DeviceEvent{Device: "e1-loop", Kind: edge.LoopChanged, Occupied: true})
	tap.Deliver(edge.DeviceEvent{Device: "e1-bar", Kind: edge.ArmPosition})
	tap.Deliver(edge.DeviceEvent{Device: "e1-loop", Kind: edge.LoopChanged})
	if want := []string{"e1-loop+", "e1-loop-"}; !reflect.DeepEqual(r.loops, want) || next.n != 3 {
		t.Errorf("reader saw %v, garage %d events; want %v and 3", r.loops, next.n, want)
	}
	f := &edge.Facility{Lanes: []edge.Lane{
		{ID: "e1", ArmingLoop: "e1-loop", Cameras: []string{"e1-cam", "e1-push"}},
		{ID: "x1", ArmingLoop: "x1-loop", Cameras: []string{"x1-push"}},
	}}
	got := lprTriggers(f, []edge.Device{{ID: "e1-cam", Protocol: "lpr"}})
	if want := map[string][]string{"e1-loop": {"e1-cam"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("lprTriggers = %v; want %v", got, want)
	}
}
