package camerasim_test

import (
	"bytes"
	"context"
	"image/jpeg"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/camera"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/sim/camerasim"
)

// edgeRig is a camera.Receiver on a loopback listener and what it received.
type edgeRig struct {
	r   *camera.Receiver
	url string
	dir string

	mu     sync.Mutex
	reads  []camera.Read
	events []edge.DeviceEvent
}

func (e *edgeRig) Deliver(ev edge.DeviceEvent) {
	e.mu.Lock()
	e.events = append(e.events, ev)
	e.mu.Unlock()
}

func (e *edgeRig) Reads() []camera.Read {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]camera.Read(nil), e.reads...)
}

func devices() []edge.Device {
	return []edge.Device{
		{ID: "e1-cam", Kind: edge.KindCamera, Protocol: "http_push", Profile: "hikvision", Options: map[string]string{"token": "hik-secret"}},
		{ID: "x1-cam", Kind: edge.KindCamera, Protocol: "http_push", Profile: "axis", Options: map[string]string{"token": "axis secret&="}},
		{ID: "e2-cam", Kind: edge.KindCamera, Protocol: "http_push", Profile: "json", Options: map[string]string{"token": "json-secret"}},
		{ID: "e1-arm", Kind: edge.KindLoop, Protocol: "modbus_tcp"}, // not a camera: ignored
	}
}

// startEdge serves a receiver for devices() on a loopback listener.
func startEdge(tb testing.TB) *edgeRig {
	tb.Helper()
	e := &edgeRig{dir: tb.TempDir()}
	var cams []edge.Device
	for _, d := range devices() {
		if d.Kind == edge.KindCamera {
			cams = append(cams, d)
		}
	}
	r, err := camera.New(camera.Config{
		Devices: cams, Sink: e, ImageDir: e.dir,
		OnRead: func(rd camera.Read) { e.mu.Lock(); e.reads = append(e.reads, rd); e.mu.Unlock() },
	})
	if err != nil {
		tb.Fatal(err)
	}
	e.r = r
	app := r.App()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { app.Listener(ln); close(done) }()
	tb.Cleanup(func() {
		app.ShutdownWithTimeout(5 * time.Second)
		<-done
		r.Close()
	})
	e.url = "http://" + ln.Addr().String()
	return e
}

func counters(tb testing.TB, r *camera.Receiver, id string) map[string]uint64 {
	tb.Helper()
	for _, st := range r.Status() {
		if st.ID == id {
			return st.Counters
		}
	}
	tb.Fatalf("no status for %s", id)
	return nil
}

// TestPushesReachTheReceiver pushes reads from a camera of each format to a real
// receiver and checks what it made of them: the plate, confidence, direction and
// images.
func TestPushesReachTheReceiver(t *testing.T) {
	e := startEdge(t)
	s, err := camerasim.New(devices(), e.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s.Devices().Cameras); n != 3 {
		t.Fatalf("Devices().Cameras has %d cameras; want 3", n)
	}
	tests := []struct {
		camera     string
		vendor     string
		plate      string
		confidence float64
		direction  string
		images     int
	}{
		{"e1-cam", "hikvision", "GB-123-X", 0.97, "entry", 2},
		{"e1-cam", "hikvision", "HH AB 1234", 0.81, "exit", 2},
		{"x1-cam", "axis", "AB 123 CD", 0.9124, "entry", 2},
		{"x1-cam", "axis", "Ö-TK 483", 0.66, "exit", 2},
		{"e2-cam", "json", "XYZ-987", 0.5, "entry", 1},
		{"e2-cam", "json", "KL 55 NM", 1, "exit", 1},
	}
	for _, tt := range tests {
		t.Run(tt.camera+"/"+tt.plate, func(t *testing.T) {
			before := len(e.Reads())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := s.Devices().Cameras[tt.camera].Push(ctx, tt.plate, tt.confidence, tt.direction); err != nil {
				t.Fatalf("Push: %v", err)
			}
			reads := e.Reads()[before:]
			if len(reads) != 1 {
				t.Fatalf("the push made %d reads; want 1", len(reads))
			}
			rd := reads[0]
			wantPlate := map[string]string{"GB-123-X": "GB123X", "HH AB 1234": "HHAB1234", "AB 123 CD": "AB123CD", "Ö-TK 483": "OTK483", "XYZ-987": "XYZ987", "KL 55 NM": "KL55NM"}[tt.plate]
			if rd.Device != tt.camera || rd.Vendor != tt.vendor || rd.Plate != wantPlate || rd.RawPlate != tt.plate {
				t.Errorf("read = %+v; want %s from %s (%s)", rd, wantPlate, tt.camera, tt.vendor)
			}
			if d := rd.Confidence - tt.confidence; d > 0.006 || d < -0.006 {
				t.Errorf("confidence = %v; want %v", rd.Confidence, tt.confidence)
			}
			if rd.Direction != tt.direction {
				t.Errorf("direction = %q; want %q", rd.Direction, tt.direction)
			}
			if rd.EventID == "" || time.Since(rd.At) > time.Minute || time.Since(rd.At) < -time.Minute {
				t.Errorf("event id %q, at %v: want an id and about now", rd.EventID, rd.At)
			}
			if len(rd.Images) != tt.images {
				t.Fatalf("images = %v; want %d", rd.Images, tt.images)
			}
			// The first image is the plate: a real JPEG of about 40 KB, wider than tall.
			b, err := os.ReadFile(filepath.Join(e.dir, filepath.FromSlash(rd.Images[0])))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("plate image: %v", err)
			}
			if len(b) < 25<<10 || len(b) > 60<<10 || cfg.Width < 3*cfg.Height {
				t.Errorf("plate image %d bytes, %dx%d; want about 40 KB and plate-shaped", len(b), cfg.Width, cfg.Height)
			}
			if tt.images == 2 {
				s, err := os.ReadFile(filepath.Join(e.dir, filepath.FromSlash(rd.Images[1])))
				if err != nil {
					t.Fatal(err)
				}
				if sc, err := jpeg.DecodeConfig(bytes.NewReader(s)); err != nil || sc.Width <= cfg.Width {
					t.Errorf("scene image %+v (%v); want a JPEG wider than the plate", sc, err)
				}
			}
		})
	}
	for _, id := range []string{"e1-cam", "x1-cam", "e2-cam"} {
		if c := counters(t, e.r, id); c["reads"] != 2 || c["malformed"] != 0 || c["duplicates"] != 0 || c["unauthorized"] != 0 {
			t.Errorf("%s counters = %v; want 2 reads and nothing wrong", id, c)
		}
	}
}

// TestOffline sends nothing and reports nothing while a camera is offline.
func TestOffline(t *testing.T) {
	e := startEdge(t)
	s, err := camerasim.New(devices(), e.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	cam, fault := s.Devices().Cameras["x1-cam"], s.Faulty()["x1-cam"]
	fault.SetOffline(true)
	for i := 0; i < 3; i++ {
		if err := cam.Push(context.Background(), "AB123CD", 0.9, "entry"); err != nil {
			t.Errorf("offline Push = %v; want nil", err)
		}
	}
	if c := counters(t, e.r, "x1-cam"); c["pushes"] != 0 {
		t.Errorf("offline camera pushed: %v", c)
	}
	fault.SetOffline(false)
	if err := cam.Push(context.Background(), "AB123CD", 0.9, "entry"); err != nil {
		t.Fatal(err)
	}
	if c := counters(t, e.r, "x1-cam"); c["pushes"] != 1 || c["reads"] != 1 {
		t.Errorf("back online: %v; want 1 push, 1 read", c)
	}
}

// TestGarbage makes some pushes malformed: the receiver counts them, answers, and
// keeps taking the good ones.
func TestGarbage(t *testing.T) {
	e := startEdge(t)
	s, err := camerasim.New(devices(), e.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 24
	for _, id := range []string{"e1-cam", "x1-cam", "e2-cam"} {
		t.Run(id, func(t *testing.T) {
			s.Faulty()[id].SetGarbage(true)
			for i := 0; i < n; i++ {
				if err := s.Devices().Cameras[id].Push(context.Background(), "AB123CD", 0.9, "entry"); err != nil {
					t.Fatalf("push %d: %v", i, err)
				}
			}
			// A body cut short after its document still makes a read (and counts as
			// malformed): reads and malformed may overlap, but every push is one.
			c := counters(t, e.r, id)
			if c["pushes"] != n || c["malformed"] == 0 || c["reads"] == 0 || c["reads"] == n || c["reads"]+c["malformed"] < n {
				t.Errorf("counters = %v; want %d pushes, some malformed, the rest reads", c, n)
			}
		})
	}
}

// TestNewRefuses a camera of an unknown profile and an edge URL that is not one.
func TestNewRefuses(t *testing.T) {
	tests := []struct {
		name    string
		devices []edge.Device
		url     string
		want    string
	}{
		{"profile", []edge.Device{{ID: "c", Kind: edge.KindCamera, Protocol: "http_push", Profile: "dahua"}}, "http://127.0.0.1:1", "dahua"},
		{"url", devices(), "127.0.0.1:8080", "URL"},
		{"scheme", devices(), "ftp://edge", "URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := camerasim.New(tt.devices, tt.url, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v; want an error about %s", err, tt.want)
			}
		})
	}
}

// TestPushFailsWhenTheEdgeRefuses reports a refused push as an error: a wrong token.
func TestPushFailsWhenTheEdgeRefuses(t *testing.T) {
	e := startEdge(t)
	devs := devices()
	devs[0].Options = map[string]string{"token": "wrong"}
	s, err := camerasim.New(devs, e.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Camera("e1-cam").Push(context.Background(), "AB123CD", 0.9, "entry"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("Push with a wrong token = %v; want a 401 error", err)
	}
}
