//go:build gocv

package lpr

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/lpr/synth"
	"gocv.io/x/gocv"
)

// sink collects device events; a real small implementation of edge.Sink.
type sink struct {
	mu  sync.Mutex
	evs []edge.DeviceEvent
	got chan edge.DeviceEvent
}

func newSink() *sink { return &sink{got: make(chan edge.DeviceEvent, 64)} }

func (s *sink) Deliver(ev edge.DeviceEvent) {
	s.mu.Lock()
	s.evs = append(s.evs, ev)
	s.mu.Unlock()
	s.got <- ev
}

// next waits for the next event of kind k.
func (s *sink) next(tb testing.TB, k edge.EventKind) edge.DeviceEvent {
	tb.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-s.got:
			if ev.Kind == k {
				return ev
			}
		case <-timeout:
			tb.Fatalf("no %v event", k)
		}
	}
}

// startReader runs a Reader for one camera at addr, triggered by loop "e1-loop".
func startReader(tb testing.TB, addr string, opts map[string]string) (*Reader, *sink, string) {
	tb.Helper()
	dir := tb.TempDir()
	s := newSink()
	r, err := New(Config{
		Devices:  []edge.Device{{ID: "e1-cam", Kind: edge.KindCamera, Protocol: "lpr", Address: addr, Options: opts}},
		Triggers: map[string][]string{"e1-loop": {"e1-cam"}},
		Sink:     s, ImageDir: dir,
	})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	tb.Cleanup(func() { cancel(); <-done; r.Close() })
	return r, s, dir
}

// writeFrames renders plates into dir as numbered JPEG frames.
func writeFrames(tb testing.TB, dir string, texts ...string) {
	tb.Helper()
	font := testFont(tb)
	rng := rand.New(rand.NewPCG(5, 5))
	for i, text := range texts {
		data, _ := renderJPEG(tb, synth.Plate{Text: text, Style: synth.EU, Font: font, CharHeight: 28, Tilt: 2, Blur: 0.5, Noise: 3, Scene: image2(640, 480)}, rng)
		if err := os.WriteFile(filepath.Join(dir, "f"+string(rune('a'+i))+".jpg"), data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

func TestReaderArmingLoopReadsVehicle(t *testing.T) {
	frames := t.TempDir()
	writeFrames(t, frames, "GH42KLM", "GH42KLM", "GH42KLM")
	r, s, dir := startReader(t, frames, map[string]string{"country": "eu", "frames": "3", "interval": "10ms"})

	r.LoopChanged("other-loop", true) // not this camera's lane
	r.LoopChanged("e1-loop", false)   // a vehicle leaving triggers nothing
	r.LoopChanged("e1-loop", true)
	ev := s.next(t, edge.PlateRead)
	if ev.Device != "e1-cam" || ev.Read.Text != "GH42KLM" || ev.Read.Source != "lpr" || ev.Detail != "" {
		t.Fatalf("PlateRead = %+v; want GH42KLM from e1-cam, sure", ev)
	}
	if ev.Read.Confidence < 0.6 {
		t.Errorf("confidence = %.2f; want ≥ 0.6 for three agreeing clear frames", ev.Read.Confidence)
	}
	if len(ev.Read.Images) != 2 {
		t.Fatalf("images = %v; want the frame and the crop", ev.Read.Images)
	}
	for _, p := range ev.Read.Images {
		if !imagePath(p) {
			t.Errorf("image path %q is not <date>/<device>/<event>-<n>.jpg", p)
		}
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("image %s: %v", p, err)
		}
	}
	reads := r.Reads()
	if len(reads) != 1 || reads[0].Plate != "GH42KLM" || reads[0].Frames != 3 || reads[0].Votes != 3 {
		t.Errorf("Reads() = %+v; want one read of GH42KLM from 3 frames", reads)
	}
	st := r.Status()
	if len(st) != 1 || !st[0].Healthy || st[0].Counters["reads"] != 1 || st[0].Counters["triggers"] != 1 {
		t.Errorf("Status() = %+v", st)
	}
}

// imagePath reports whether p has the camera adapter's stored-image form.
func imagePath(p string) bool {
	parts := strings.Split(p, "/")
	return len(parts) == 3 && len(parts[0]) == 10 && parts[1] == "e1-cam" && strings.HasSuffix(parts[2], ".jpg")
}

func TestReaderReportsDisagreementUnsure(t *testing.T) {
	frames := t.TempDir()
	writeFrames(t, frames, "AB12CDE", "XY98ZWV")
	r, s, _ := startReader(t, frames, map[string]string{"country": "eu", "frames": "2", "interval": "0s"})
	if err := r.Trigger("e1-cam"); err != nil {
		t.Fatal(err)
	}
	ev := s.next(t, edge.PlateRead)
	if ev.Read.Confidence != 0 || !strings.HasPrefix(ev.Detail, "unsure: ") || ev.Read.Text == "" {
		t.Fatalf("PlateRead = %+v; want the likeliest text, confidence 0 and an unsure detail", ev)
	}
}

func TestReaderHTTPSnapshot(t *testing.T) {
	frames := t.TempDir()
	writeFrames(t, frames, "KL77MNP")
	jpeg, err := os.ReadFile(filepath.Join(frames, "fa.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	fail := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if u, p, ok := req.BasicAuth(); !ok || u != "admin" || p != "pw" {
			http.Error(w, "auth", http.StatusUnauthorized)
			return
		}
		if fail {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		w.Write(jpeg)
	}))
	defer srv.Close()
	addr := strings.Replace(srv.URL, "http://", "http://admin:pw@", 1) + "/ISAPI/Streaming/channels/101/picture"
	r, s, _ := startReader(t, addr, map[string]string{"country": "eu", "frames": "1"})

	r.Trigger("e1-cam")
	if ev := s.next(t, edge.DeviceHealth); ev.Healthy || !strings.Contains(ev.Detail, "503") {
		t.Fatalf("DeviceHealth = %+v; want unhealthy with the status", ev)
	}
	if st := r.Status(); st[0].Healthy || strings.Contains(st[0].Address, "pw") {
		t.Errorf("Status() = %+v; want unhealthy, password hidden", st[0])
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	r.Trigger("e1-cam")
	if ev := s.next(t, edge.DeviceHealth); !ev.Healthy {
		t.Fatalf("DeviceHealth = %+v; want healthy again", ev)
	}
	if ev := s.next(t, edge.PlateRead); ev.Read.Text != "KL77MNP" {
		t.Fatalf("PlateRead = %+v; want KL77MNP", ev)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		dev  edge.Device
		want string
	}{
		{"kind", edge.Device{ID: "c", Kind: edge.KindLoop, Protocol: "lpr", Address: dir}, "kind"},
		{"no address", edge.Device{ID: "c", Kind: edge.KindCamera, Protocol: "lpr"}, "address"},
		{"scheme", edge.Device{ID: "c", Kind: edge.KindCamera, Protocol: "lpr", Address: "ftp://cam/x.jpg"}, "scheme"},
		{"country", edge.Device{ID: "c", Kind: edge.KindCamera, Protocol: "lpr", Address: dir, Options: map[string]string{"country": "mars"}}, "country"},
		{"frames", edge.Device{ID: "c", Kind: edge.KindCamera, Protocol: "lpr", Address: dir, Options: map[string]string{"frames": "0"}}, "frames"},
		{"option", edge.Device{ID: "c", Kind: edge.KindCamera, Protocol: "lpr", Address: dir, Options: map[string]string{"fps": "3"}}, "unknown option"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Config{Devices: []edge.Device{tc.dev}, Sink: newSink()})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New(%s) = %v; want an error about %s", tc.name, err, tc.want)
			}
		})
	}
}

// TestStreamSource reads a video the test writes (MJPEG in AVI: OpenCV opens a
// file as it opens an rtsp:// stream) and checks that each frame asked for is
// one of the video's, whole, and that only the frames asked for are encoded
// (the stream is read continuously, 25 frames a second on a real camera).
func TestStreamSource(t *testing.T) {
	font := testFont(t)
	rng := rand.New(rand.NewPCG(6, 6))
	r, err := synth.Render(synth.Plate{Text: "KRX4926", Style: synth.US, Font: font, CharHeight: 30, Scene: image2(640, 480)}, rng)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Image.Close()
	path := filepath.Join(t.TempDir(), "lane.avi")
	w, err := gocv.VideoWriterFile(path, "MJPG", 25, 640, 480, true)
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if err := w.Write(r.Image); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()

	s := &streamSource{url: path}
	defer s.close()
	rec := usRecognizer(t)
	for i := range 3 {
		b, err := s.frame(context.Background())
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		plates, err := rec.RecognizeJPEG(b)
		if err != nil || len(plates) == 0 || plates[0].Text != "KRX4926" {
			t.Fatalf("frame %d: read %s, %v; want KRX4926", i, readsOf(plates), err)
		}
	}
	// The video is read to its end and reopened, a hundred frames and
	// more; three were asked for.
	time.Sleep(1500 * time.Millisecond)
	if n := s.encodes.Load(); n != 3 {
		t.Errorf("%d frames encoded; want the 3 asked for", n)
	}

	bad := &streamSource{url: filepath.Join(t.TempDir(), "none.avi"), wait: 300 * time.Millisecond}
	defer bad.close()
	if _, err := bad.frame(context.Background()); err == nil {
		t.Error("frame of a stream that does not open: no error")
	}
}
