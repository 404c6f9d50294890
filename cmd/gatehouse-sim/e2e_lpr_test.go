//go:build gocv

package main

import (
	"io"
	"net/http"
	"testing"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// TestEndToEndLPR is the end-to-end run with the Kerkweg exit's camera a plain
// IP camera (GATEHOUSE_X2_CAMERA=lpr): an edge built with -tags gocv fetches the
// simulator's snapshots over HTTP when the exit's arming loop triggers it and
// reads the plates itself. Besides what TestEndToEnd checks (every count equals
// the simulator's truth, one session per car), its plate reader must have read
// plates at that exit, each car that left there needing one, and list them for
// the operator with their crops.
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
		checkReads(t, base, int(c["reads"]))
		return
	}
	t.Fatalf("the edge lists no x2-cam: %+v", body.Devices)
}

// checkReads checks the operator's view of the plate reader: as many reads as
// the camera counted, each with its confidence (0 when unsure), and the plate
// crop of the newest served as a JPEG.
func checkReads(t *testing.T, base string, n int) {
	t.Helper()
	var rs struct {
		Reads []edge.ReaderRead `json:"reads"`
	}
	if err := getJSON(base+"/v1/lpr/reads?device=x2-cam", &rs); err != nil {
		t.Fatal(err)
	}
	if len(rs.Reads) != n {
		t.Fatalf("GET /v1/lpr/reads lists %d reads of x2-cam; its counters say %d", len(rs.Reads), n)
	}
	for _, r := range rs.Reads {
		if r.Plate == "" || r.Frames == 0 || (r.Unsure != (r.Confidence == 0)) {
			t.Fatalf("read %+v: want a plate, its frames, confidence 0 exactly when unsure", r)
		}
	}
	newest := rs.Reads[0]
	if len(newest.Images) != 2 {
		t.Fatalf("newest read %+v: want its frame and crop", newest)
	}
	resp, err := http.Get(base + "/camera/images/" + newest.Images[1])
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(b) < 3 || b[0] != 0xff || b[1] != 0xd8 {
		t.Fatalf("crop %s: %d, %d bytes; want a JPEG", newest.Images[1], resp.StatusCode, len(b))
	}
}
