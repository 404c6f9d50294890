package camera

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gofiber/fiber/v2"
)

// TestRefused covers every push the receiver turns away: each gets its problem, and
// nothing reaches the garage.
func TestRefused(t *testing.T) {
	hik, hikCT := fixture(t, "hikvision", "isapi-namespace")
	axis, axisCT := fixture(t, "axis", "new")
	tests := []struct {
		name       string
		path, ct   string
		body       []byte
		header     []string
		status     int
		problem    string // type suffix
		counter    string // of device, or of the receiver if device is ""
		device     string
		wantDetail string
	}{
		{name: "unknown device", path: "/camera/hikvision/nope", ct: hikCT, body: hik, status: 404, problem: "not-found", counter: "unknown_device"},
		{name: "device of another profile", path: "/camera/axis/hik-1", ct: hikCT, body: hik, status: 404, problem: "not-found", counter: "unknown_device"},
		{name: "generic naming an unknown camera", path: "/camera/json", ct: "application/json", body: []byte(`{"camera":"nope","plate":"A1","confidence":1}`), status: 404, problem: "not-found", counter: "unknown_device"},
		{name: "no token", path: "/camera/hikvision/hik-sec", ct: hikCT, body: hik, status: 401, problem: "unauthorized", device: "hik-sec", counter: "unauthorized"},
		{name: "wrong token in the query", path: "/camera/hikvision/hik-sec?token=guess", ct: hikCT, body: hik, status: 401, problem: "unauthorized", device: "hik-sec", counter: "unauthorized"},
		{name: "wrong token in the header", path: "/camera/hikvision/hik-sec", ct: hikCT, body: hik, header: []string{HeaderToken, "s3cre"}, status: 401, problem: "unauthorized", device: "hik-sec", counter: "unauthorized"},
		{name: "token of another scheme", path: "/camera/hikvision/hik-sec", ct: hikCT, body: hik, header: []string{"Authorization", "Basic s3cret"}, status: 401, problem: "unauthorized", device: "hik-sec", counter: "unauthorized"},
		{name: "broken XML", path: "/camera/hikvision/hik-1", ct: "application/xml", body: []byte("<EventNotificationAlert><ANPR><licensePlate>AB1</ANPR>"), status: 400, problem: "malformed", device: "hik-1", counter: "malformed"},
		{name: "XML of another root", path: "/camera/hikvision/hik-1", ct: "text/xml", body: []byte("<ResponseStatus><statusCode>1</statusCode></ResponseStatus>"), status: 400, problem: "malformed", device: "hik-1", counter: "malformed"},
		{name: "multipart without boundary", path: "/camera/hikvision/hik-1", ct: "multipart/form-data", body: hik, status: 400, problem: "malformed", device: "hik-1", counter: "malformed"},
		{name: "multipart with the wrong boundary", path: "/camera/hikvision/hik-1", ct: "multipart/form-data; boundary=other", body: hik, status: 400, problem: "malformed", device: "hik-1", counter: "malformed"},
		{name: "multipart cut short", path: "/camera/hikvision/hik-1", ct: hikCT, body: hik[:len(hik)/3], status: 400, problem: "malformed", device: "hik-1", counter: "malformed"},
		{name: "multipart without XML", path: "/camera/hikvision/hik-1", ct: axisCT, body: axis, status: 400, problem: "malformed", device: "hik-1", counter: "malformed"},
		{name: "Hikvision confidence out of range", path: "/camera/hikvision/hik-1", ct: "application/xml", body: []byte("<EventNotificationAlert><ANPR><licensePlate>AB1</licensePlate><confidenceLevel>101</confidenceLevel></ANPR></EventNotificationAlert>"), status: 400, problem: "malformed", device: "hik-1", counter: "malformed"},
		{name: "Hikvision bad time", path: "/camera/hikvision/hik-1", ct: "application/xml", body: []byte("<EventNotificationAlert><dateTime>yesterday</dateTime><ANPR><licensePlate>AB1</licensePlate></ANPR></EventNotificationAlert>"), status: 400, problem: "malformed", device: "hik-1", counter: "malformed"},
		{name: "Hikvision as JSON", path: "/camera/hikvision/hik-1", ct: "application/json", body: []byte(`{}`), status: 400, problem: "malformed", device: "hik-1", counter: "malformed"},
		{name: "broken Axis JSON", path: "/camera/axis/axis-1", ct: "application/json", body: []byte(`{"plateText":"AB1",`), status: 400, problem: "malformed", device: "axis-1", counter: "malformed"},
		{name: "Axis carID an object", path: "/camera/axis/axis-1", ct: "application/json", body: []byte(`{"plateText":"AB1","carID":{}}`), status: 400, problem: "malformed", device: "axis-1", counter: "malformed"},
		{name: "Axis bad datetime", path: "/camera/axis/axis-1", ct: "application/json", body: []byte(`{"plateText":"AB1","datetime":"20260314 0926"}`), status: 400, problem: "malformed", device: "axis-1", counter: "malformed"},
		{name: "Axis multipart without JSON", path: "/camera/axis/axis-1", ct: hikCT, body: bytes.ReplaceAll(hik, []byte("<"), []byte("[")), status: 400, problem: "malformed", device: "axis-1", counter: "malformed"},
		{name: "generic not JSON", path: "/camera/json/json-1", ct: "application/json", body: []byte(`plate=AB1`), status: 400, problem: "malformed", device: "json-1", counter: "malformed"},
		{name: "generic without plate", path: "/camera/json/json-1", ct: "application/json", body: []byte(`{"confidence":0.9}`), status: 400, problem: "malformed", device: "json-1", counter: "malformed"},
		{name: "generic confidence as percent", path: "/camera/json/json-1", ct: "application/json", body: []byte(`{"plate":"AB1","confidence":93}`), status: 400, problem: "malformed", device: "json-1", counter: "malformed"},
		{name: "generic bad direction", path: "/camera/json/json-1", ct: "application/json", body: []byte(`{"plate":"AB1","confidence":0.9,"direction":"up"}`), status: 400, problem: "malformed", device: "json-1", counter: "malformed"},
		{name: "generic bad time", path: "/camera/json/json-1", ct: "application/json", body: []byte(`{"plate":"AB1","confidence":0.9,"time":"14/03/2026"}`), status: 400, problem: "malformed", device: "json-1", counter: "malformed"},
		{name: "generic trailing data", path: "/camera/json/json-1", ct: "application/json", body: []byte(`{"plate":"AB1","confidence":0.9}{}`), status: 400, problem: "malformed", device: "json-1", counter: "malformed"},
		{name: "generic camera not the URL's", path: "/camera/json/json-1", ct: "application/json", body: []byte(`{"camera":"json-2","plate":"AB1","confidence":0.9}`), status: 400, problem: "malformed", device: "json-1", counter: "malformed"},
		{name: "generic naming no camera", path: "/camera/json", ct: "application/json", body: []byte(`{"plate":"AB1","confidence":0.9}`), status: 400, problem: "malformed", counter: "unrouted"},
		{name: "generic as XML", path: "/camera/json/json-1", ct: "application/xml", body: []byte(`<a/>`), status: 400, problem: "malformed", device: "json-1", counter: "malformed"},
		{name: "compressed", path: "/camera/json/json-1", ct: "application/json", body: []byte{0x1f, 0x8b, 0}, header: []string{"Content-Encoding", "gzip"}, status: 415, problem: "unsupported-media-type", device: "json-1", counter: "malformed"},
		{name: "GET on a push route", path: "/camera/json/json-1", status: 405, problem: ""},
		{name: "no such route", path: "/camera/dahua/cam", ct: "application/json", body: []byte(`{}`), status: 404, problem: "not-found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newRig(t, func(c *Config) { c.MaxPushBytes = 64 << 10 })
			method := "POST"
			if tt.body == nil {
				method = "GET"
			}
			status, h, body := g.do(t, method, tt.path, tt.ct, tt.body, tt.header...)
			if status != tt.status {
				t.Fatalf("%s %s = %d %s; want %d", method, tt.path, status, body, tt.status)
			}
			if tt.problem != "" {
				p := problemOf(t, h, body)
				if p.Type != "urn:gatehouse:problem:"+tt.problem || p.Status != tt.status || p.Detail == "" {
					t.Errorf("problem = %+v; want type %s, status %d and a detail", p, tt.problem, tt.status)
				}
			}
			if n := len(g.sink.Events()); n != 0 {
				t.Errorf("delivered %d events; want none", n)
			}
			if tt.counter == "" {
				return
			}
			counters := g.r.Counters()
			if tt.device != "" {
				counters = statusOf(t, g.r, tt.device).Counters
			}
			if counters[tt.counter] != 1 {
				t.Errorf("counter %s = %d; want 1 (counters %v)", tt.counter, counters[tt.counter], counters)
			}
		})
	}
}

// TestTooLarge announces a body over the app's limit on a real connection:
// fasthttp refuses it from its Content-Length before any handler runs, and the
// receiver's error handler answers. The test sends the headers only and reads
// the answer: a client still writing the body when the server closes gets a
// reset instead of the answer, whichever comes first.
func TestTooLarge(t *testing.T) {
	g := newRig(t, func(c *Config) { c.MaxPushBytes = 64 << 10 })
	url := serve(t, g.app)
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(conn, "POST /camera/hikvision/hik-1 HTTP/1.1\r\nHost: camera\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n", 100<<10); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 413 {
		t.Fatalf("status = %d %s; want 413", resp.StatusCode, body)
	}
	if p := problemOf(t, resp.Header, body); p.Type != "urn:gatehouse:problem:too-large" {
		t.Errorf("problem = %+v", p)
	}
	if n := g.r.Counters()["too_large"]; n != 1 {
		t.Errorf("too_large = %d; want 1", n)
	}
	if n := len(g.sink.Events()); n != 0 {
		t.Errorf("delivered %d events; want none", n)
	}
}

// TestTooLargeBehindABiggerLimit mounts the handlers on an app that takes larger
// bodies than MaxPushBytes: the handler's own check answers 413.
func TestTooLargeBehindABiggerLimit(t *testing.T) {
	g := newRig(t, func(c *Config) { c.MaxPushBytes = 1 << 10 })
	app := fiber.New(fiber.Config{BodyLimit: 1 << 20})
	g.r.Mount(app.Group("/camera"))
	g.app = app
	status, h, body := g.do(t, "POST", "/camera/json/json-1", "application/json", bytes.Repeat([]byte(" "), 2<<10))
	if status != 413 {
		t.Fatalf("status = %d %s; want 413", status, body)
	}
	if p := problemOf(t, h, body); p.Type != "urn:gatehouse:problem:too-large" {
		t.Errorf("problem = %+v", p)
	}
	if n := statusOf(t, g.r, "json-1").Counters["too_large"]; n != 1 {
		t.Errorf("too_large = %d; want 1", n)
	}
}

// TestToken accepts the camera's token wherever a camera can put it.
func TestToken(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		header []string
	}{
		{"query", "/camera/hikvision/hik-sec?token=s3cret", nil},
		{"header", "/camera/hikvision/hik-sec", []string{HeaderToken, "s3cret"}},
		{"bearer", "/camera/hikvision/hik-sec", []string{"Authorization", "Bearer s3cret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newRig(t, nil)
			body, ct := fixture(t, "hikvision", "isapi-namespace")
			status, _, resp := g.do(t, "POST", tt.path, ct, body, tt.header...)
			if status != 200 {
				t.Fatalf("status = %d %s; want 200", status, resp)
			}
			reads := g.Reads()
			if len(reads) != 1 || reads[0].Direction != DirectionExit {
				t.Errorf("reads = %+v; want one, direction exit (invert_direction)", reads)
			}
		})
	}
}

// TestDuplicates answers a retried push 200 and delivers it once, within the window
// only.
func TestDuplicates(t *testing.T) {
	tests := []struct {
		name   string
		vendor string
		device string
		push   string
	}{
		{"hikvision UUID", ProfileHikvision, "hik-1", "isapi-namespace"},
		{"hikvision without UUID", ProfileHikvision, "hik-1", "no-namespace"},
		{"axis carID and state", ProfileAxis, "axis-1", "new"},
		{"axis GUID", ProfileAxis, "axis-1", "json-alone"},
		{"generic event_id", ProfileJSON, "json-1", "full"},
		{"generic plate and time", ProfileJSON, "json-1", "minimal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newRig(t, nil)
			body, ct := fixture(t, tt.vendor, tt.push)
			path := "/camera/" + tt.vendor + "/" + tt.device
			want := []string{"accepted", "duplicate", "duplicate"}
			for i, w := range want {
				status, _, resp := g.do(t, "POST", path, ct, body)
				var pr pushResponse
				json.Unmarshal(resp, &pr)
				if status != 200 || pr.Status != w {
					t.Fatalf("push %d = %d %s; want 200 %s", i+1, status, resp, w)
				}
				g.clock.Advance(time.Minute)
			}
			if n := g.sink.count(edge.PlateRead); n != 1 {
				t.Errorf("delivered %d reads; want 1", n)
			}
			if c := statusOf(t, g.r, tt.device).Counters; c["duplicates"] != 2 || c["reads"] != 1 || c["pushes"] != 3 {
				t.Errorf("counters = %v; want 2 duplicates, 1 read, 3 pushes", c)
			}
			g.clock.Advance(DefaultDedupeWindow)
			if status, _, resp := g.do(t, "POST", path, ct, body); status != 200 || !bytes.Contains(resp, []byte(`"accepted"`)) {
				t.Errorf("push after the window = %d %s; want accepted", status, resp)
			}
		})
	}
}

// TestDedupeSize forgets the oldest ids beyond the size of the window.
func TestDedupeSize(t *testing.T) {
	d := newDedupe(time.Hour, 3)
	for i, k := range []string{"a", "b", "c", "d"} {
		if !d.first(k, t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("first(%s) = false; want true", k)
		}
	}
	for _, tt := range []struct {
		key  string
		want bool
	}{{"b", false}, {"d", false}, {"a", true}} {
		if got := d.first(tt.key, t0.Add(10*time.Second)); got != tt.want {
			t.Errorf("first(%s) = %v; want %v", tt.key, got, tt.want)
		}
	}
}

// TestAxisCarStates follows one vehicle through an Axis camera: new and update are
// reads, lost is not, and a repeat of any is a duplicate.
func TestAxisCarStates(t *testing.T) {
	g := newRig(t, nil)
	const base = `{"datetime":"20260314 0926%s","plateText":"GB123X","plateConfidence":"0.9","carState":"%s","carMoveDirection":"%s","carID":"42"}`
	steps := []struct {
		ms, state, dir string
		want           string
		direction      string
	}{
		{"51100", "new", "unk", "accepted", ""},
		{"51400", "update", "in", "accepted", DirectionEntry},
		{"51400", "update", "in", "duplicate", ""},
		{"51900", "updated", "in", "accepted", DirectionEntry},
		{"59900", "lost", "in", "ignored", ""},
		{"59900", "lost", "in", "ignored", ""},
	}
	for i, s := range steps {
		body := []byte(strings.ReplaceAll(
			strings.Replace(strings.Replace(strings.Replace(base, "%s", s.ms, 1), "%s", s.state, 1), "%s", s.dir, 1), "\n", ""))
		status, _, resp := g.do(t, "POST", "/camera/axis/axis-1", "application/json", body)
		var pr pushResponse
		json.Unmarshal(resp, &pr)
		if status != 200 || pr.Status != s.want {
			t.Fatalf("step %d (%s) = %d %s; want %s", i, s.state, status, resp, s.want)
		}
	}
	reads := g.Reads()
	if len(reads) != 3 {
		t.Fatalf("reads = %d; want 3", len(reads))
	}
	for i, want := range []string{"", DirectionEntry, DirectionEntry} {
		if reads[i].Direction != want {
			t.Errorf("read %d direction = %q; want %q", i, reads[i].Direction, want)
		}
	}
}

// TestGenericCameraInBody routes a generic push on /camera/json by its "camera".
func TestGenericCameraInBody(t *testing.T) {
	g := newRig(t, nil)
	body, ct := fixture(t, ProfileJSON, "full")
	if status, _, resp := g.do(t, "POST", "/camera/json", ct, body); status != 200 {
		t.Fatalf("status = %d %s; want 200", status, resp)
	}
	if reads := g.Reads(); len(reads) != 1 || reads[0].Device != "json-1" || reads[0].Plate != "AB123CD" {
		t.Errorf("reads = %+v; want AB123CD from json-1", reads)
	}
}

// TestNewRefusesBadConfig names the device and the problem.
func TestNewRefusesBadConfig(t *testing.T) {
	cam := func(mod func(*edge.Device)) []edge.Device {
		d := edge.Device{ID: "c1", Kind: edge.KindCamera, Protocol: "http_push", Profile: ProfileAxis}
		mod(&d)
		return []edge.Device{d}
	}
	tests := []struct {
		name    string
		devices []edge.Device
		want    string
	}{
		{"kind", cam(func(d *edge.Device) { d.Kind = edge.KindLoop }), "kind"},
		{"protocol", cam(func(d *edge.Device) { d.Protocol = "mqtt" }), "protocol"},
		{"profile", cam(func(d *edge.Device) { d.Profile = "dahua" }), "profile"},
		{"no id", cam(func(d *edge.Device) { d.ID = "" }), "no id"},
		{"silence", cam(func(d *edge.Device) { d.Options = map[string]string{"silence": "ten"} }), "silence"},
		{"negative silence", cam(func(d *edge.Device) { d.Options = map[string]string{"silence": "-1m"} }), "silence"},
		{"invert", cam(func(d *edge.Device) { d.Options = map[string]string{"invert_direction": "yes please"} }), "invert_direction"},
		{"timezone", cam(func(d *edge.Device) { d.Options = map[string]string{"timezone": "Mars/Olympus"} }), "timezone"},
		{"unknown option", cam(func(d *edge.Device) { d.Options = map[string]string{"tokn": "x"} }), "tokn"},
		{"twice", append(cam(func(*edge.Device) {}), cam(func(*edge.Device) {})...), "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{Devices: tt.devices, Sink: &recSink{}})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "c1") && tt.name != "no id" {
				t.Errorf("New = %v; want an error naming c1 and %q", err, tt.want)
			}
		})
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New without a Sink succeeded")
	}
}

// TestHealth reports a camera unhealthy after its silence and healthy again on its
// next push, to Status and to the sink.
func TestHealth(t *testing.T) {
	g := newRig(t, nil)
	if st := statusOf(t, g.r, "axis-1"); !st.Healthy || !st.LastContact.IsZero() {
		t.Fatalf("before any push: %+v; want healthy, no contact", st)
	}
	g.clock.Advance(time.Hour)
	g.r.checkHealth(g.clock.Now())
	if st := statusOf(t, g.r, "axis-1"); !st.Healthy {
		t.Fatalf("never pushed, an hour on: %+v; want healthy", st)
	}
	body, ct := fixture(t, ProfileAxis, "lost") // not a read, but contact
	g.do(t, "POST", "/camera/axis/axis-1", ct, body)
	g.clock.Advance(4 * time.Minute)
	g.r.checkHealth(g.clock.Now())
	if st := statusOf(t, g.r, "axis-1"); !st.Healthy || !st.LastContact.Equal(t0.Add(time.Hour)) {
		t.Fatalf("4m after a push: %+v; want healthy, last contact %v", st, t0.Add(time.Hour))
	}
	g.clock.Advance(2 * time.Minute)
	g.r.checkHealth(g.clock.Now())
	g.r.checkHealth(g.clock.Now()) // reported once
	st := statusOf(t, g.r, "axis-1")
	if st.Healthy || !strings.Contains(st.Detail, "no push for 6m0s") {
		t.Fatalf("6m after a push (silence 5m): %+v; want unhealthy", st)
	}
	if hik := statusOf(t, g.r, "hik-1"); !hik.Healthy {
		t.Errorf("hik-1 never pushed: %+v; want healthy", hik)
	}
	g.clock.Advance(time.Minute)
	g.do(t, "POST", "/camera/axis/axis-1", ct, body)
	var health []edge.DeviceEvent
	for _, ev := range g.sink.Events() {
		if ev.Kind == edge.DeviceHealth {
			health = append(health, ev)
		}
	}
	if len(health) != 2 || health[0].Device != "axis-1" || health[0].Healthy || health[0].Detail == "" || !health[1].Healthy {
		t.Errorf("health events = %+v; want axis-1 unhealthy then healthy", health)
	}
	if st := statusOf(t, g.r, "axis-1"); !st.Healthy || st.Counters["pushes"] != 2 || st.Counters["ignored"] != 2 {
		t.Errorf("after the push: %+v; want healthy, 2 pushes, 2 ignored", st)
	}
}

// TestRunStops returns when its context ends.
func TestRunStops(t *testing.T) {
	g := newRig(t, nil)
	ctx, cancel := contextWithCancel()
	done := make(chan error, 1)
	go func() { done <- g.r.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v; want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// TestUnterminatedMultipart keeps the read of a multipart push that ends without
// its closing boundary, and counts the framing as malformed.
func TestUnterminatedMultipart(t *testing.T) {
	full, ct := fixture(t, ProfileHikvision, "isapi-namespace")
	end := bytes.LastIndex(full, []byte("\r\n--boundary--"))
	lastImage := bytes.LastIndex(full, []byte("\xff\xd8\xff"))
	tests := []struct {
		name      string
		body      []byte
		images    int
		malformed uint64
	}{
		{"no closing boundary", full[:end], 2, 1},
		{"cut inside the last image", full[:lastImage+40], 2, 1},
		// mime/multipart takes a delimiter followed by nothing as the end.
		{"cut after a delimiter", full[:bytes.Index(full, []byte("\r\n--boundary\r\n"))+len("\r\n--boundary\r\n")], 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newRig(t, nil)
			status, _, resp := g.do(t, "POST", "/camera/hikvision/hik-1", ct, tt.body)
			if status != 200 || !bytes.Contains(resp, []byte(`"accepted"`)) {
				t.Fatalf("status = %d %s; want 200 accepted", status, resp)
			}
			reads := g.Reads()
			if len(reads) != 1 || reads[0].Plate != "GB123X" || len(reads[0].Images) != tt.images {
				t.Errorf("reads = %+v; want GB123X with %d images", reads, tt.images)
			}
			if c := statusOf(t, g.r, "hik-1").Counters; c["malformed"] != tt.malformed || c["reads"] != 1 {
				t.Errorf("counters = %v; want %d malformed, 1 read", c, tt.malformed)
			}
		})
	}
}

// TestMountedOnAnotherApp serves the handlers from an app configured like the edge's
// (immutable contexts, the edge's own error handler, a group at /camera).
func TestMountedOnAnotherApp(t *testing.T) {
	g := newRig(t, nil)
	app := fiber.New(fiber.Config{BodyLimit: DefaultMaxPushBytes, Immutable: true, DisablePreParseMultipartForm: true,
		ErrorHandler: func(c *fiber.Ctx, err error) error { return c.Status(599).SendString(err.Error()) }})
	app.Use(func(c *fiber.Ctx) error { c.Set("X-Request-Id", "edge"); return c.Next() })
	g.r.Mount(app.Group("/camera"))
	g.app = app
	for _, tt := range []struct{ vendor, device, name string }{
		{ProfileHikvision, "hik-1", "isapi-namespace"},
		{ProfileAxis, "axis-1", "new"},
		{ProfileJSON, "json-1", "full"},
	} {
		body, ct := fixture(t, tt.vendor, tt.name)
		status, h, resp := g.do(t, "POST", "/camera/"+tt.vendor+"/"+tt.device, ct, body)
		if status != 200 || h.Get("X-Request-Id") != "edge" {
			t.Errorf("%s push = %d %s; want 200 through the app's middleware", tt.vendor, status, resp)
		}
	}
	// A refusal is the receiver's problem, not the app's error handler.
	if status, h, resp := g.do(t, "POST", "/camera/json/json-1", "application/json", []byte("{")); status != 400 {
		t.Errorf("broken push = %d %s; want 400", status, resp)
	} else {
		problemOf(t, h, resp)
	}
	for _, rd := range g.Reads() {
		if status, _, _ := g.do(t, "GET", "/camera/images/"+rd.Images[0], "", nil); status != 200 {
			t.Errorf("GET image of %s = %d; want 200", rd.Vendor, status)
		}
	}
}
