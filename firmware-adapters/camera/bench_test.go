package camera

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// countingSink decides at once: it counts.
type countingSink struct{ reads atomic.Int64 }

func (s *countingSink) Deliver(ev edge.DeviceEvent) {
	if ev.Kind == edge.PlateRead {
		s.reads.Add(1)
	}
}

// noiseJPEG returns a JPEG of about size bytes: grey noise compresses poorly, like a
// real scene.
func noiseJPEG(tb testing.TB, size int) []byte {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	for w := 64; ; w += 16 {
		img := image.NewGray(image.Rect(0, 0, w, w*3/4))
		for i := range img.Pix {
			img.Pix[i] = uint8(rng.IntN(256))
		}
		var b bytes.Buffer
		if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 75}); err != nil {
			tb.Fatal(err)
		}
		if b.Len() >= size {
			return b.Bytes()
		}
	}
}

// BenchmarkPushAccepted pushes Hikvision events, each with a 40 KB JPEG, through
// the receiver's Fiber app on a loopback listener from several client goroutines
// (net/http), to a sink that decides at once. Every push is new, so every one is
// parsed, its image checked and its read delivered. It reports pushes/s accepted:
// with the image stored (the real case), and with no ImageDir, which shows what the
// disk costs.
func BenchmarkPushAccepted(b *testing.B) {
	b.Run("store", func(b *testing.B) { benchmarkPush(b, b.TempDir()) })
	b.Run("nostore", func(b *testing.B) { benchmarkPush(b, "") })
}

func benchmarkPush(b *testing.B, dir string) {
	sink := &countingSink{}
	r, err := New(Config{
		Devices:       []edge.Device{{ID: "hik-1", Kind: edge.KindCamera, Protocol: "http_push", Profile: ProfileHikvision}},
		Sink:          sink,
		ImageDir:      dir,
		MaxImageBytes: 256 << 20, // the cap's removals are part of the cost
	})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	url := serve(b, r.App()) + "/camera/hikvision/hik-1"

	xmlDoc, _ := fixture(b, "hikvision", "xml-alone")
	xmlDoc = bytes.Replace(xmlDoc, []byte("</EventNotificationAlert>"), []byte("<UUID>"+uuidOf(0)+"</UUID>\n</EventNotificationAlert>"), 1)
	img := noiseJPEG(b, 40<<10)
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for _, p := range []struct {
		name, ct string
		data     []byte
	}{{"anpr.xml", "text/xml", xmlDoc}, {"licensePlatePicture.jpg", "image/jpeg", img}} {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, p.name, p.name))
		h.Set("Content-Type", p.ct)
		pw, _ := w.CreatePart(h)
		pw.Write(p.data)
	}
	w.Close()
	template, ct := body.Bytes(), w.FormDataContentType()
	at := bytes.Index(template, []byte(uuidOf(0)))

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	defer client.CloseIdleConnections()
	var seq atomic.Int64
	b.SetBytes(int64(len(template)))
	b.SetParallelism(4) // 4 × GOMAXPROCS cameras pushing at once
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := bytes.Clone(template)
		for pb.Next() {
			copy(buf[at:], uuidOf(int(seq.Add(1))))
			resp, err := client.Post(url, ct, bytes.NewReader(buf))
			if err != nil {
				b.Error(err)
				return
			}
			reply, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(reply), `"accepted"`) {
				b.Errorf("push = %d %s", resp.StatusCode, reply)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(sink.reads.Load())/b.Elapsed().Seconds(), "pushes/s")
	if got := sink.reads.Load(); got != int64(b.N) {
		b.Errorf("sink got %d reads; want %d", got, b.N)
	}
}
