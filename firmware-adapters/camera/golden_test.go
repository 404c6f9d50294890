package camera

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the tests name zones; CI images may lack the system's

	"github.com/gatehouse-parking/gatehouse/edge"
)

// outcome is what a golden file records of one push: the answer, the normalized
// read, what the garage was given and the camera's counters.
type outcome struct {
	Status    int               `json:"status"`
	Response  json.RawMessage   `json:"response"`
	Read      *Read             `json:"read"`
	Delivered *delivered        `json:"delivered"`
	Counters  map[string]uint64 `json:"counters"`
}

// delivered is the edge.DeviceEvent a push became.
type delivered struct {
	Device     string    `json:"device"`
	Kind       string    `json:"kind"`
	At         time.Time `json:"at"`
	Text       string    `json:"text"`
	Confidence float64   `json:"confidence"`
	ReadAt     time.Time `json:"read_at"`
	Source     string    `json:"source"`
}

// TestGolden posts every testdata/<vendor>/<name>.http (its content type in
// <name>.content-type) to a fresh receiver and compares the outcome with
// <name>.golden.json. go test -update rewrites the golden files.
func TestGolden(t *testing.T) {
	devices := map[string]string{ProfileHikvision: "hik-1", ProfileAxis: "axis-1", ProfileJSON: "json-1"}
	for _, vendor := range []string{ProfileHikvision, ProfileAxis, ProfileJSON} {
		files, err := filepath.Glob(filepath.Join("testdata", vendor, "*.http"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no testdata for %s: %v", vendor, err)
		}
		for _, f := range files {
			name := strings.TrimSuffix(filepath.Base(f), ".http")
			t.Run(vendor+"/"+name, func(t *testing.T) {
				g := newRig(t, nil)
				body, ct := fixture(t, vendor, name)
				status, _, resp := g.do(t, "POST", "/camera/"+vendor+"/"+devices[vendor], ct, body)
				o := outcome{Status: status, Response: resp}
				if reads := g.Reads(); len(reads) > 0 {
					if len(reads) > 1 {
						t.Fatalf("one push made %d reads", len(reads))
					}
					o.Read = &reads[0]
				}
				for _, ev := range g.sink.Events() {
					if ev.Kind != edge.PlateRead {
						t.Errorf("delivered %v; want only plate reads", ev.Kind)
						continue
					}
					o.Delivered = &delivered{ev.Device, ev.Kind.String(), ev.At, ev.Read.Text, ev.Read.Confidence, ev.Read.At, ev.Read.Source}
				}
				o.Counters = statusOf(t, g.r, devices[vendor]).Counters
				got, err := json.MarshalIndent(o, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, '\n')
				golden := filepath.Join("testdata", vendor, name+".golden.json")
				if *update {
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("push %s/%s:\n got %s\nwant %s", vendor, name, got, want)
				}
				// Every image a read names is on disk and served back.
				if o.Read != nil {
					for _, p := range o.Read.Images {
						st, h, img := g.do(t, "GET", "/camera/images/"+p, "", nil)
						if st != 200 || h.Get("Content-Type") != "image/jpeg" || !hasJPEGMarker(img) {
							t.Errorf("GET /camera/images/%s = %d %s (%d bytes); want 200 image/jpeg", p, st, h.Get("Content-Type"), len(img))
						}
					}
					if got := g.r.ImagePath(o.Read.EventID); len(got) != len(o.Read.Images) {
						t.Errorf("ImagePath(%q) = %v; want %v", o.Read.EventID, got, o.Read.Images)
					}
				}
			})
		}
	}
}
