//go:build gocv

package main

import (
	"context"
	"image"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/lpr/synth"
	"gocv.io/x/gocv"
)

// eventSink passes device events to a channel.
type eventSink chan edge.DeviceEvent

func (s eventSink) Deliver(ev edge.DeviceEvent) { s <- ev }

// TestBuildDevicesLPR builds the devices of a lane with an lpr camera (frames
// from a folder) the way the edge does and checks that the lane's arming loop,
// delivered to the sink buildDevices gives the drivers (the in-memory
// barrier's here, as a loop driver's would be), makes the camera read the
// plate and deliver it as the lane's plate read, which the operator's list of
// reads then holds.
func TestBuildDevicesLPR(t *testing.T) {
	font, err := synth.TestFont()
	if err != nil {
		t.Fatal(err)
	}
	frames := t.TempDir()
	r, err := synth.Render(synth.Plate{Text: "GH42KLM", Style: synth.EU, Font: font, CharHeight: 28, Scene: image.Pt(640, 480)}, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	ok := gocv.IMWrite(filepath.Join(frames, "a.jpg"), r.Image)
	r.Image.Close()
	if !ok {
		t.Fatal("cannot write the frame")
	}
	f := &edge.Facility{ID: "f",
		Devices: []edge.Device{{ID: "e1-cam", Kind: edge.KindCamera, Protocol: "lpr", Address: frames,
			Options: map[string]string{"country": "eu", "frames": "2", "interval": "10ms", "probe": "0"}},
			{ID: "e1-bar", Kind: edge.KindBarrier, Protocol: "inmem"}},
		Lanes: []edge.Lane{{ID: "e1", ArmingLoop: "e1-loop", Cameras: []string{"e1-cam"}}},
	}
	sink := make(eventSink, 16)
	d, err := buildDevices(f, sink, deviceOptions{data: t.TempDir()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.run(ctx); close(done) }()
	defer func() { cancel(); <-done; d.close() }()

	bar := d.inmem["e1-bar"]
	if bar == nil {
		t.Fatal("no in-memory barrier e1-bar")
	}
	bar.Sink.Deliver(edge.DeviceEvent{Device: "e1-loop", Kind: edge.LoopChanged, Occupied: true})
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-sink:
			if ev.Kind != edge.PlateRead {
				continue
			}
			if ev.Device != "e1-cam" || ev.Read.Text != "GH42KLM" || ev.Read.Source != "lpr" {
				t.Fatalf("PlateRead = %+v; want GH42KLM from e1-cam", ev)
			}
			// The operator's list (GET /v1/lpr/reads) has the read with its frame and crop.
			rs := d.plateReads()
			if len(rs) != 1 || rs[0].Plate != "GH42KLM" || rs[0].Device != "e1-cam" || len(rs[0].Images) != 2 {
				t.Fatalf("plateReads() = %+v; want the GH42KLM read with two images", rs)
			}
			return
		case <-timeout:
			t.Fatal("no plate read after the arming loop")
		}
	}
}
