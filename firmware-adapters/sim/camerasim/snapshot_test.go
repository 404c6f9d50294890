package camerasim_test

import (
	"bytes"
	"context"
	"image/jpeg"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/sim"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/sim/camerasim"
)

// snapshotRig serves the snapshot cameras of devs as gatehouse-sim does.
func snapshotRig(t *testing.T, devs []edge.Device) (*camerasim.Snapshots, string) {
	t.Helper()
	s := camerasim.NewSnapshots(devs)
	mux := http.NewServeMux()
	mux.Handle("GET /snapshot/{device}", s)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

// fetch GETs url and returns the status and body; err is a failed exchange.
func fetch(url string) (int, []byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// TestSnapshots checks the plain IP cameras: only lpr cameras with an http
// address are simulated; a camera serves a JPEG of the empty lane, then of the
// car shown (a larger picture: the car and its plate), then the empty lane
// again; an unknown camera is 404.
func TestSnapshots(t *testing.T) {
	s, base := snapshotRig(t, []edge.Device{
		{ID: "x2-cam", Kind: edge.KindCamera, Protocol: "lpr", Address: "http://sim.invalid:8090/snapshot/x2-cam"},
		{ID: "rtsp-cam", Kind: edge.KindCamera, Protocol: "lpr", Address: "rtsp://10.0.0.9/stream"},
		{ID: "file-cam", Kind: edge.KindCamera, Protocol: "lpr", Address: "/var/frames"},
		{ID: "e1-cam", Kind: edge.KindCamera, Protocol: "http_push", Profile: "axis"},
		{ID: "x2-loop", Kind: edge.KindLoop, Protocol: "lpr", Address: "http://sim.invalid/"},
	})
	if s.Len() != 1 || s.Camera("x2-cam") == nil {
		t.Fatalf("NewSnapshots made %d cameras; want only x2-cam", s.Len())
	}
	cam := s.Camera("x2-cam")
	var _ sim.Viewer = cam
	if _, ok := s.Devices().Cameras["x2-cam"].(sim.Viewer); !ok {
		t.Fatal("the traffic model does not see x2-cam as a Viewer")
	}
	if s.Devices().Faulty["x2-cam"] == nil {
		t.Fatal("x2-cam takes no faults")
	}
	picture := func() []byte {
		t.Helper()
		code, b, err := fetch(base + "/snapshot/x2-cam")
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET /snapshot/x2-cam: %d %v", code, err)
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
		if err != nil || cfg.Width != 960 || cfg.Height != 540 {
			t.Fatalf("snapshot is not a 960x540 JPEG: %+v %v", cfg, err)
		}
		return b
	}
	empty := picture()
	cam.Show("KL467RT", "exit")
	if cam.Showing() != "KL467RT" {
		t.Fatalf("Showing() = %q after Show", cam.Showing())
	}
	withCar := picture()
	// The car, its plate and their edges weigh more than the bare road.
	if len(withCar) < len(empty)*11/10 {
		t.Errorf("picture with a car %d bytes, empty lane %d: the car is not in it", len(withCar), len(empty))
	}
	if err := cam.Push(context.Background(), "", 0.9, "entry"); err == nil {
		t.Error("Push with no plate is not an error")
	}
	if err := cam.Push(context.Background(), "AB123CD", 0.9, "entry"); err != nil || cam.Showing() != "AB123CD" {
		t.Errorf("Push: %v, showing %q", err, cam.Showing())
	}
	cam.Show("", "exit")
	if again := picture(); cam.Showing() != "" || len(again) > len(empty)*11/10 {
		t.Errorf("after the car left: showing %q, %d bytes (empty lane %d)", cam.Showing(), len(again), len(empty))
	}
	if code, _, err := fetch(base + "/snapshot/rtsp-cam"); err != nil || code != http.StatusNotFound {
		t.Errorf("GET /snapshot/rtsp-cam: %d %v; want 404", code, err)
	}
	if cam.Fetches() != 3 {
		t.Errorf("Fetches() = %d; want 3", cam.Fetches())
	}
}

// TestSnapshotFaults: an offline camera answers nothing; one sending garbage
// cuts some pictures short (and serves whole ones in between).
func TestSnapshotFaults(t *testing.T) {
	s, base := snapshotRig(t, []edge.Device{{ID: "c", Kind: edge.KindCamera, Protocol: "lpr", Address: "https://cam.invalid/snap.jpg"}})
	cam := s.Camera("c")
	cam.Show("KL467RT", "entry")
	cam.SetOffline(true)
	if code, _, err := fetch(base + "/snapshot/c"); err == nil {
		t.Errorf("offline camera answered %d", code)
	}
	cam.SetOffline(false)
	cam.SetGarbage(true)
	whole, cut := 0, 0
	for range 30 {
		code, b, err := fetch(base + "/snapshot/c")
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET: %d %v", code, err)
		}
		if _, err := jpeg.Decode(bytes.NewReader(b)); err != nil {
			cut++
		} else {
			whole++
		}
	}
	if cut == 0 || whole == 0 {
		t.Errorf("with garbage on, %d whole and %d cut pictures of 30; want both", whole, cut)
	}
	cam.SetGarbage(false)
	for range 5 {
		_, b, err := fetch(base + "/snapshot/c")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jpeg.Decode(bytes.NewReader(b)); err != nil {
			t.Fatalf("garbage off, picture broken: %v", err)
		}
	}
}
