package camera

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/edge/boltstore"
	"github.com/gatehouse-parking/gatehouse/edge/inmem"
	"github.com/gatehouse-parking/gatehouse/edge/tariff"
)

// laneCycler is a sink that turns every plate read into a whole car at the camera's
// entry lane: arming loop, the read (the garage decides and raises the arm), safety
// loop, arm down. So every push accepted is also decided and recorded.
type laneCycler struct {
	g       *edge.Garage
	allowed atomic.Int64
}

func (s *laneCycler) Deliver(ev edge.DeviceEvent) {
	if ev.Kind != edge.PlateRead {
		s.g.Deliver(ev)
		return
	}
	lane := strings.TrimPrefix(ev.Device, "cam-")
	s.g.Deliver(edge.DeviceEvent{Device: lane + "-arm", Kind: edge.LoopChanged, Occupied: true})
	s.g.Deliver(ev)
	for _, v := range s.g.Lanes() {
		if v.ID == lane && v.Decision != nil && v.Decision.Allowed {
			s.allowed.Add(1)
		}
	}
	s.g.Deliver(edge.DeviceEvent{Device: lane + "-safe", Kind: edge.LoopChanged, Occupied: true})
	s.g.Deliver(edge.DeviceEvent{Device: lane + "-arm", Kind: edge.LoopChanged, Occupied: false})
	s.g.Deliver(edge.DeviceEvent{Device: lane + "-safe", Kind: edge.LoopChanged, Occupied: false})
}

// BenchmarkPushDecided measures Hikvision pushes (40 KB JPEG, images stored) accepted
// and decided by a real garage: 8 entry lanes, one camera each, every push a car that
// the garage lets in and records, on a store with fsync.
func BenchmarkPushDecided(b *testing.B) {
	const lanes = 8
	f := &edge.Facility{ID: "bench", Currency: "EUR",
		Zones:    []edge.Zone{{ID: "Z", Capacity: 10_000_000, Rate: "r", CountSource: edge.CountLanes}},
		Tariffs:  []tariff.Rate{{ID: "r", Currency: "EUR", Increment: tariff.Duration(time.Hour), Tiers: []tariff.Tier{{PerIncrement: 100}}}},
		Policies: edge.Policies{AntiPassback: edge.PassbackNone, PlateConfidence: 0.5, BarrierTimeout: edge.Duration(3 * time.Second), PassTimeout: edge.Duration(30 * time.Second)}}
	var cams []edge.Device
	for i := range lanes {
		id := fmt.Sprint("l", i)
		f.Lanes = append(f.Lanes, edge.Lane{ID: id, Direction: edge.Entry, Zone: "Z", ArmingLoop: id + "-arm", SafetyLoop: id + "-safe", Barrier: id + "-bar", Cameras: []string{"cam-" + id}})
		f.Devices = append(f.Devices, edge.Device{ID: id + "-arm", Kind: edge.KindLoop, Protocol: "inmem"}, edge.Device{ID: id + "-safe", Kind: edge.KindLoop, Protocol: "inmem"},
			edge.Device{ID: id + "-bar", Kind: edge.KindBarrier, Protocol: "inmem"})
		cams = append(cams, edge.Device{ID: "cam-" + id, Kind: edge.KindCamera, Protocol: "http_push", Profile: ProfileHikvision})
	}
	st, err := boltstore.Open(filepath.Join(b.TempDir(), "g.db"), f.ID, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	bars := inmem.Barriers(f, 0)
	g, err := edge.Open(edge.Config{Facility: f, Store: st, Barriers: inmem.Connect(bars, nil)})
	if err != nil {
		b.Fatal(err)
	}
	for _, bar := range bars {
		bar.Sink = g
	}
	sink := &laneCycler{g: g}
	r, err := New(Config{Devices: cams, Sink: sink, ImageDir: b.TempDir(), MaxImageBytes: 256 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	base := serve(b, r.App()) + "/camera/hikvision/cam-l"

	xmlDoc, _ := fixture(b, "hikvision", "xml-alone")
	xmlDoc = bytes.Replace(xmlDoc, []byte("</EventNotificationAlert>"), []byte("<UUID>"+uuidOf(0)+"</UUID>\n</EventNotificationAlert>"), 1)
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for _, p := range []struct {
		name, ct string
		data     []byte
	}{{"anpr.xml", "text/xml", xmlDoc}, {"licensePlatePicture.jpg", "image/jpeg", noiseJPEG(b, 40<<10)}} {
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
	var seq, worker atomic.Int64
	b.SetParallelism(lanes / 2) // with 2 cores: one pushing camera per lane
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		url := fmt.Sprint(base, worker.Add(1)-1)
		buf := bytes.Clone(template)
		for pb.Next() {
			copy(buf[at:], uuidOf(int(seq.Add(1))))
			resp, err := client.Post(url, ct, bytes.NewReader(buf))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("push = %d", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	if err := g.Sync(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(sink.allowed.Load())/b.Elapsed().Seconds(), "decided/s")
	if got := sink.allowed.Load(); got != int64(b.N) {
		b.Errorf("decisions allowing a car = %d; want %d", got, b.N)
	}
}
