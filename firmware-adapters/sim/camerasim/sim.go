// Package camerasim simulates ANPR cameras that push plate reads to the edge over
// HTTP, in the three formats package firmware-adapters/camera receives: Hikvision
// ISAPI (multipart XML and JPEGs), Axis License Plate Verifier (multipart JSON and
// JPEGs) and generic JSON. Every push carries a rendered plate image (about 40 KB)
// and, for the vendor formats, a wider scene, and a fresh event id. Cameras can be
// taken offline or made to send garbage now and then (sim.Faulty).
package camerasim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/sim"
)

// Profiles the simulator speaks (edge.Device.Profile), as package camera names them.
const (
	ProfileHikvision = "hikvision"
	ProfileAxis      = "axis"
	ProfileJSON      = "json"
)

// PushTimeout bounds one push when the caller's context sets no deadline.
const PushTimeout = 5 * time.Second

// garbageEvery: with garbage on, about one push in this many is replaced by a
// malformed body.
const garbageEvery = 3

// Sim is the simulated cameras of a facility.
type Sim struct {
	cams  map[string]*Camera
	order []string
}

// New builds a simulated camera for every device of kind camera and protocol
// http_push, pushing to edgeURL (the edge's base URL; pushes go to
// <edgeURL>/camera/<profile>/<device>). Other devices are not its business. A
// camera's "token" option is sent as the receiver expects it.
func New(devices []edge.Device, edgeURL string, logger *slog.Logger) (*Sim, error) {
	u, err := url.Parse(edgeURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("camerasim: edge URL %q is not an http(s) URL", edgeURL)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	base := strings.TrimRight(edgeURL, "/")
	client := &http.Client{Timeout: PushTimeout}
	s := &Sim{cams: map[string]*Camera{}}
	var errs []error
	for _, d := range devices {
		if d.Kind != edge.KindCamera || d.Protocol != "http_push" {
			continue
		}
		switch d.Profile {
		case ProfileHikvision, ProfileAxis, ProfileJSON:
		default:
			errs = append(errs, fmt.Errorf("camerasim: camera %s: profile %q is not hikvision, axis or json", d.ID, d.Profile))
			continue
		}
		h := fnv.New64a()
		h.Write([]byte(d.ID))
		seed := h.Sum64()
		c := &Camera{
			id: d.ID, profile: d.Profile, token: d.Options["token"],
			url:    base + "/camera/" + d.Profile + "/" + url.PathEscape(d.ID),
			client: client, log: logger.With("camera", d.ID),
			rng:  mrand.New(mrand.NewPCG(seed, seed>>1)),
			boot: randomHex(4),
		}
		s.cams[d.ID] = c
		s.order = append(s.order, d.ID)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// Devices returns the cameras for the traffic model. Nothing needs running: a
// camera pushes when Push is called.
func (s *Sim) Devices() sim.Devices {
	d := sim.Devices{Cameras: make(map[string]sim.Camera, len(s.cams))}
	for id, c := range s.cams {
		d.Cameras[id] = c
	}
	return d
}

// Faulty returns the cameras' fault injection, by device id.
func (s *Sim) Faulty() map[string]sim.Faulty {
	m := make(map[string]sim.Faulty, len(s.cams))
	for id, c := range s.cams {
		m[id] = c
	}
	return m
}

// Camera returns the simulated camera with the given id, nil if there is none.
func (s *Sim) Camera(id string) *Camera { return s.cams[id] }

// Camera is one simulated ANPR camera.
type Camera struct {
	id, profile, token, url string
	client                  *http.Client
	log                     *slog.Logger
	boot                    string // makes event ids unique across simulator runs

	offline, garbage atomic.Bool
	seq              atomic.Uint64

	mu  sync.Mutex // guards rng
	rng *mrand.Rand
}

var (
	_ sim.Camera = (*Camera)(nil)
	_ sim.Faulty = (*Camera)(nil)
)

// SetOffline makes Push send nothing (and report nothing): a camera without power
// or network.
func (c *Camera) SetOffline(off bool) { c.offline.Store(off) }

// SetGarbage makes about one push in three a malformed body (cut short, broken
// document, wrong framing) instead of the read.
func (c *Camera) SetGarbage(on bool) { c.garbage.Store(on) }

// Pushes returns how many pushes the camera has made (garbage included).
func (c *Camera) Pushes() uint64 { return c.seq.Load() }

// Push sends one plate read in the camera's format with a rendered plate image;
// direction is "entry" or "exit" (a white front plate for entry, a yellow rear plate
// for exit). It fails when the edge does not answer 200; offline it does nothing,
// and a garbage push is not an error.
func (c *Camera) Push(ctx context.Context, plate string, confidence float64, direction string) error {
	if c.offline.Load() {
		return nil
	}
	n := c.seq.Add(1)
	now := time.Now()
	c.mu.Lock()
	plateImg := renderPlate(plate, direction == "exit", c.rng)
	scene := renderScene(plateImg, c.rng)
	junk := c.garbage.Load() && c.rng.IntN(garbageEvery) == 0
	junkKind := c.rng.IntN(4)
	c.mu.Unlock()
	plateJPEG := encodeJPEG(plateImg, quality)

	var body []byte
	var ct string
	header := http.Header{}
	u := c.url
	switch c.profile {
	case ProfileHikvision:
		body, ct = c.hikvision(n, now, plate, confidence, direction, plateJPEG, encodeJPEG(scene, 75))
	case ProfileAxis:
		body, ct = c.axis(n, now, plate, confidence, direction, plateJPEG, encodeJPEG(scene, 75))
	default:
		body, ct = c.generic(n, now, plate, confidence, direction, plateJPEG)
	}
	if c.token != "" {
		// Hikvision and Axis cameras can only be given a URL; a generic integration
		// sets a header.
		if c.profile == ProfileJSON {
			header.Set("X-Camera-Token", c.token)
		} else {
			u += "?token=" + url.QueryEscape(c.token)
		}
	}
	if junk {
		body, ct = garble(body, ct, junkKind)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, PushTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("camerasim: %s: %w", c.id, err)
	}
	req.Header = header
	req.Header.Set("Content-Type", ct)
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("camerasim: %s: push: %w", c.id, err)
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if junk {
		c.log.Debug("camerasim: sent garbage", "status", resp.StatusCode)
		return nil
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("camerasim: %s: push answered %d: %s", c.id, resp.StatusCode, bytes.TrimSpace(reply))
	}
	return nil
}

// part is one part of a multipart push.
type part struct {
	name, ct string
	data     []byte
}

// multipartBody frames parts as a camera does: every part a named file.
func multipartBody(parts ...part) ([]byte, string) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, p.name, p.name))
		h.Set("Content-Type", p.ct)
		pw, _ := w.CreatePart(h) // writes to memory: cannot fail
		pw.Write(p.data)
	}
	w.Close()
	return b.Bytes(), w.FormDataContentType()
}

// hikvision renders an ISAPI ANPR EventNotificationAlert with its pictures.
func (c *Camera) hikvision(n uint64, now time.Time, plate string, conf float64, dir string, plateJPEG, scene []byte) ([]byte, string) {
	hikDir := "forward"
	if dir == "exit" {
		hikDir = "reverse"
	}
	var x bytes.Buffer
	fmt.Fprintf(&x, `<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">
<ipAddress>127.0.0.1</ipAddress>
<portNo>80</portNo>
<protocol>HTTP</protocol>
<channelID>1</channelID>
<dateTime>%s</dateTime>
<activePostCount>1</activePostCount>
<eventType>ANPR</eventType>
<eventState>active</eventState>
<eventDescription>ANPR</eventDescription>
<channelName>%s</channelName>
<ANPR>
<country>NL</country>
<licensePlate>%s</licensePlate>
<line>1</line>
<direction>%s</direction>
<confidenceLevel>%d</confidenceLevel>
<plateType>unknown</plateType>
<vehicleType>vehicle</vehicleType>
<pictureInfoList>
<pictureInfo><fileName>licensePlatePicture.jpg</fileName><type>licensePlatePicture</type></pictureInfo>
<pictureInfo><fileName>detectionPicture.jpg</fileName><type>detectionPicture</type></pictureInfo>
</pictureInfoList>
</ANPR>
<UUID>%s</UUID>
<picNum>2</picNum>
</EventNotificationAlert>
`, now.Format("2006-01-02T15:04:05.000Z07:00"), xmlEscape(c.id), xmlEscape(plate), hikDir, int(conf*100+0.5), uuidFor(c.boot, n))
	return multipartBody(
		part{"anpr.xml", "text/xml", x.Bytes()},
		part{"licensePlatePicture.jpg", "image/jpeg", plateJPEG},
		part{"detectionPicture.jpg", "image/jpeg", scene},
	)
}

// axis renders an LPV event push with its pictures.
func (c *Camera) axis(n uint64, now time.Time, plate string, conf float64, dir string, plateJPEG, scene []byte) ([]byte, string) {
	move := "in"
	if dir == "exit" {
		move = "out"
	}
	u := now.UTC()
	ev := map[string]any{
		"packetCounter":    strconv.FormatUint(n, 10),
		"datetime":         u.Format("20060102 150405") + fmt.Sprintf("%03d", u.Nanosecond()/1e6) + "+0000",
		"plateText":        plate,
		"plateUTF8":        plate,
		"plateCountry":     "NLD",
		"plateConfidence":  strconv.FormatFloat(conf, 'f', 6, 64),
		"carState":         "new",
		"carMoveDirection": move,
		"carID":            c.boot + strconv.FormatUint(n, 10),
		"imageType":        "plate",
		"plateImageType":   "jpeg",
		"plateImageSize":   strconv.Itoa(len(plateJPEG)),
		"sensorProviderID": c.id,
		"camera_info":      map[string]string{"SerialNumber": "SIM" + strings.ToUpper(c.boot), "ProdShortName": "gatehouse camerasim"},
	}
	doc, _ := json.Marshal(ev) // strings and maps: cannot fail
	return multipartBody(
		part{"event.json", "application/json", doc},
		part{"plate.jpg", "image/jpeg", plateJPEG},
		part{"frame.jpg", "image/jpeg", scene},
	)
}

// generic renders a generic JSON push, the plate image inlined.
func (c *Camera) generic(n uint64, now time.Time, plate string, conf float64, dir string, plateJPEG []byte) ([]byte, string) {
	doc, _ := json.Marshal(map[string]any{ // strings and numbers: cannot fail
		"camera":     c.id,
		"plate":      plate,
		"confidence": conf,
		"direction":  dir,
		"event_id":   "sim-" + c.boot + "-" + strconv.FormatUint(n, 10),
		"time":       now.UTC().Format(time.RFC3339Nano),
		"image":      base64.StdEncoding.EncodeToString(plateJPEG),
	})
	return doc, "application/json"
}

// garble spoils a push the ways real cameras and networks do.
func garble(body []byte, ct string, kind int) ([]byte, string) {
	switch kind {
	case 0: // the connection dropped mid-body
		return body[:len(body)/3], ct
	case 1: // firmware that frames the parts with another boundary
		if strings.HasPrefix(ct, "multipart/") {
			return body, "multipart/form-data; boundary=not-the-one"
		}
		return append([]byte("\x00\x01"), body...), ct
	case 2: // the document broken, the pictures intact
		if i := bytes.IndexAny(body, "<{"); i >= 0 {
			b := bytes.Clone(body)
			b[i] = '?'
			return b, ct
		}
		return body[:1], ct
	default: // line noise
		junk := make([]byte, 512)
		rand.Read(junk)
		return junk, ct
	}
}

// uuidFor makes an RFC 4122-shaped id from the camera's boot id and a counter.
func uuidFor(boot string, n uint64) string {
	return fmt.Sprintf("%s-%04x-4%03x-8%03x-%012x", boot, (n>>48)&0xffff, (n>>36)&0xfff, (n>>24)&0xfff, n&0xffffffffffff)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// xmlEscape escapes text for an XML element.
func xmlEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&quot;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
