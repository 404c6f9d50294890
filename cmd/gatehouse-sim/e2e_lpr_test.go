//go:build gocv

package main

import (
	"testing"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// TestEndToEndLPR is the end-to-end run with the Kerkweg exit's camera a plain
// IP camera (GATEHOUSE_X2_CAMERA=lpr): an edge built with -tags gocv fetches the
// simulator's snapshots over HTTP when the exit's arming loop triggers it and
// reads the plates itself. Besides what TestEndToEnd checks (every count equals
// the simulator's truth, one session per car), its plate reader must have read
// plates at that exit, each car that left there needing one.
func TestEndToEndLPR(t *testing.T) {
	base := endToEnd(t, e2eRun{cars: 24, rate: 4000, dwell: "15s", edgeFlags: []string{"-tags", "gocv"}, env: []string{"GATEHOUSE_X2_CAMERA=lpr"}})
	var body struct {
		Devices []edge.DeviceStatus `json:"devices"`
	}
	if err := getJSON(base+"/v1/devices", &body); err != nil {
		t.Fatal(err)
	}
	for _, d := range body.Devices {
		if d.ID != "x2-cam" {
			continue
		}
		if d.Protocol != "lpr" {
			t.Fatalf("x2-cam has protocol %q; want lpr", d.Protocol)
		}
		c := d.Counters
		t.Logf("x2-cam: %v", c)
		if c["triggers"] == 0 || c["reads"] == 0 || c["frames"] < c["reads"] {
			t.Fatalf("the exit's plate reader read nothing: %v", c)
		}
		if c["unsure"]*2 > c["reads"] {
			t.Errorf("the exit's plate reader was unsure of %d of %d reads", c["unsure"], c["reads"])
		}
		return
	}
	t.Fatalf("the edge lists no x2-cam: %+v", body.Devices)
}
