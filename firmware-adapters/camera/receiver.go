package camera

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/edge/plate"
	"github.com/gofiber/fiber/v2"
)

// Defaults of Config and of the device options.
const (
	DefaultImageRetention = 7 * 24 * time.Hour
	DefaultMaxImageBytes  = 1 << 30
	DefaultMaxPushBytes   = 8 << 20
	DefaultDedupeWindow   = 10 * time.Minute
	DefaultDedupeSize     = 10000
	DefaultSilence        = 10 * time.Minute

	// SweepInterval is how often Run removes old images and checks for silent
	// cameras.
	SweepInterval = time.Minute
	// ReadTimeout is how long App waits for a whole request.
	ReadTimeout = 10 * time.Second

	// HeaderToken carries a camera's token when it can set a header; Authorization:
	// Bearer <token> and the query parameter "token" work as well.
	HeaderToken = "X-Camera-Token"
)

// Device options (edge.Device.Options) the receiver reads.
const (
	// OptionToken is the camera's shared secret; without it the camera's pushes
	// are accepted from anyone who can reach the edge.
	OptionToken = "token"
	// OptionSilence is how long a camera may push nothing before it is reported
	// unhealthy, as a Go duration ("10m", "2h"); "0" never.
	OptionSilence = "silence"
	// OptionInvertDirection, "true", swaps entry and exit: for a camera that sees
	// entering vehicles from behind (Hikvision "reverse", Axis "out").
	OptionInvertDirection = "invert_direction"
	// OptionTimezone is the IANA zone of camera times that carry no offset;
	// default the edge's local zone.
	OptionTimezone = "timezone"
)

// Config is what New builds a Receiver from. cmd/gatehouse-edge wires it.
type Config struct {
	// Devices are the cameras: kind camera, protocol http_push, profile hikvision,
	// axis or json, options as the Option constants say.
	Devices []edge.Device
	// Sink receives a PlateRead for every read and a DeviceHealth for every change
	// of a camera's health. Required.
	Sink edge.Sink
	// Logger receives malformed pushes, refused requests and storage faults; nil
	// discards.
	Logger *slog.Logger
	// ImageDir is where images are stored; "" stores none (they are still checked).
	ImageDir string
	// ImageRetention is how long images are kept; 0 means DefaultImageRetention.
	ImageRetention time.Duration
	// MaxImageBytes caps the bytes of all stored images, oldest removed first; 0
	// means DefaultMaxImageBytes.
	MaxImageBytes int64
	// MaxPushBytes is the largest push accepted (413 beyond); 0 means
	// DefaultMaxPushBytes. The app the handlers are mounted on must accept bodies
	// this large (fiber.Config.BodyLimit), or it answers 413 first.
	MaxPushBytes int
	// DedupeWindow and DedupeSize bound the event ids remembered to recognise a
	// retried push: the last DedupeSize ids of the last DedupeWindow; 0 means
	// DefaultDedupeWindow and DefaultDedupeSize.
	DedupeWindow time.Duration
	DedupeSize   int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnRead, if set, is called with every read after it was delivered: the
	// normalized read with its image paths, for whoever links images to sessions.
	// It runs on the request's goroutine before the camera is answered: keep it quick.
	OnRead func(Read)
	// ImageGuard, if set, runs before every GET /images/* (an operator check): plate
	// images are personal data. Nil serves them to anyone who can reach the edge.
	ImageGuard fiber.Handler
}

// Receiver serves the camera push endpoints. It is an edge.Driver.
type Receiver struct {
	sink    edge.Sink
	log     *slog.Logger
	now     func() time.Time
	onRead  func(Read)
	guard   fiber.Handler
	maxPush int

	devices map[string]*device
	order   []*device
	dedupe  *dedupe
	images  *imageStore // nil: images are not stored

	lastLog   atomic.Int64  // unix nanoseconds of the last log line about no camera in particular
	unknown   atomic.Uint64 // pushes to a device that does not exist (or not with this profile)
	unrouted  atomic.Uint64 // generic pushes naming no camera, or unreadable before one was known
	tooLarge  atomic.Uint64 // bodies refused by the app's body limit
	imagesHit atomic.Uint64 // images served
}

var _ edge.Driver = (*Receiver)(nil)

// device is one camera and its counters.
type device struct {
	cfg     edge.Device
	token   [sha256.Size]byte
	secured bool
	silence time.Duration
	invert  bool
	loc     *time.Location

	last    atomic.Int64 // unix nanoseconds of the last push; 0 never
	down    atomic.Bool  // reported unhealthy to the sink
	lastLog atomic.Int64 // unix nanoseconds of the last malformed-push log line

	pushes, reads, duplicates, ignored, malformed, unauthorized, tooLarge, imagesStored, imageErrors atomic.Uint64
}

// New checks the cameras' config and returns a Receiver. It indexes the images
// already in cfg.ImageDir, so that retention also covers an earlier run's.
func New(cfg Config) (*Receiver, error) {
	if cfg.Sink == nil {
		return nil, errors.New("camera: New needs a Sink")
	}
	r := &Receiver{sink: cfg.Sink, log: cfg.Logger, now: cfg.Now, onRead: cfg.OnRead, guard: cfg.ImageGuard,
		maxPush: orDefault(cfg.MaxPushBytes, DefaultMaxPushBytes), devices: map[string]*device{}}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	var errs []error
	for _, dc := range cfg.Devices {
		d, err := newDevice(dc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if r.devices[dc.ID] != nil {
			errs = append(errs, fmt.Errorf("camera %s: configured twice", dc.ID))
			continue
		}
		r.devices[dc.ID] = d
		r.order = append(r.order, d)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	r.dedupe = newDedupe(orDefault(cfg.DedupeWindow, DefaultDedupeWindow), orDefault(cfg.DedupeSize, DefaultDedupeSize))
	if cfg.ImageDir != "" {
		s, err := openImageStore(cfg.ImageDir, orDefault(cfg.ImageRetention, DefaultImageRetention), orDefault(cfg.MaxImageBytes, DefaultMaxImageBytes), r.log)
		if err != nil {
			return nil, err
		}
		r.images = s
	}
	return r, nil
}

// orDefault returns v, or def when v is not positive.
func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

func newDevice(dc edge.Device) (*device, error) {
	switch {
	case dc.ID == "":
		return nil, errors.New("camera: a device has no id")
	case dc.Kind != edge.KindCamera:
		return nil, fmt.Errorf("camera %s: kind %q is not %q", dc.ID, dc.Kind, edge.KindCamera)
	case dc.Protocol != "http_push":
		return nil, fmt.Errorf("camera %s: protocol %q is not http_push", dc.ID, dc.Protocol)
	case dc.Profile != ProfileHikvision && dc.Profile != ProfileAxis && dc.Profile != ProfileJSON:
		return nil, fmt.Errorf("camera %s: profile %q is not hikvision, axis or json", dc.ID, dc.Profile)
	}
	d := &device{cfg: dc, silence: DefaultSilence, loc: time.Local}
	for k, v := range dc.Options {
		switch k {
		case OptionToken:
			d.token, d.secured = sha256.Sum256([]byte(v)), v != ""
		case OptionSilence:
			s, err := time.ParseDuration(v)
			if err != nil || s < 0 {
				return nil, fmt.Errorf("camera %s: option silence %q is not a duration such as 10m", dc.ID, v)
			}
			d.silence = s
		case OptionInvertDirection:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("camera %s: option invert_direction %q is not true or false", dc.ID, v)
			}
			d.invert = b
		case OptionTimezone:
			loc, err := time.LoadLocation(v)
			if err != nil {
				return nil, fmt.Errorf("camera %s: option timezone: %w", dc.ID, err)
			}
			d.loc = loc
		default:
			return nil, fmt.Errorf("camera %s: unknown option %q (token, silence, invert_direction, timezone)", dc.ID, k)
		}
	}
	return d, nil
}

// Mount registers the endpoints on rt, which the edge mounts at /camera:
//
//	POST /hikvision/:device   Hikvision ISAPI push
//	POST /axis/:device        Axis LPV push
//	POST /json/:device        generic JSON push
//	POST /json                generic JSON push naming its camera in the body
//	GET  /images/*            a stored image, by the path a Read names
func (r *Receiver) Mount(rt fiber.Router) {
	rt.Post("/hikvision/:device", func(c *fiber.Ctx) error { return r.handle(c, ProfileHikvision) })
	rt.Post("/axis/:device", func(c *fiber.Ctx) error { return r.handle(c, ProfileAxis) })
	rt.Post("/json/:device", func(c *fiber.Ctx) error { return r.handle(c, ProfileJSON) })
	rt.Post("/json", func(c *fiber.Ctx) error { return r.handle(c, ProfileJSON) })
	if r.guard != nil {
		rt.Get("/images/*", r.guard, r.serveImage)
	} else {
		rt.Get("/images/*", r.serveImage)
	}
}

// App returns a Fiber app serving only the camera endpoints under /camera, with the
// body limit, read timeout and multipart handling they need: for a listener of its
// own (a camera VLAN) and for tests. An app the edge mounts the handlers on needs
// the same: BodyLimit of at least MaxPushBytes and DisablePreParseMultipartForm.
func (r *Receiver) App() *fiber.App {
	app := fiber.New(fiber.Config{
		AppName:               "gatehouse-camera",
		BodyLimit:             r.maxPush,
		ReadTimeout:           ReadTimeout,
		WriteTimeout:          ReadTimeout,
		IdleTimeout:           2 * time.Minute,
		DisableStartupMessage: true,
		// The handlers read multipart bodies themselves; fasthttp's own pre-parse
		// would refuse a broken one before it is counted, and parse a good one twice.
		DisablePreParseMultipartForm: true,
		ErrorHandler:                 r.errorHandler,
	})
	r.Mount(app.Group("/camera"))
	return app
}

// pushResponse is the body of a 200 answer to a push.
type pushResponse struct {
	Status  string `json:"status"` // accepted, duplicate or ignored
	EventID string `json:"event_id,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// handle serves one push in a vendor's format.
func (r *Receiver) handle(c *fiber.Ctx, profile string) error {
	now := r.now()
	var d *device
	if id := c.Params("device"); id != "" {
		if d = r.devices[id]; d == nil || d.cfg.Profile != profile {
			r.unknown.Add(1)
			if r.logNow(now) {
				r.log.Info("camera: push from an unknown camera", "profile", profile, "device", strings.Clone(id), "remote", c.IP())
			}
			return writeProblem(c, http.StatusNotFound, fmt.Sprintf("no %s camera with this id is configured", profile))
		}
		if !d.authorized(c) {
			d.unauthorized.Add(1)
			if d.logNow(now) {
				r.log.Info("camera: push with a wrong token", "device", d.cfg.ID, "remote", c.IP())
			}
			return writeProblem(c, http.StatusUnauthorized, "the camera token is missing or wrong")
		}
	}
	body := c.Request().Body() // raw: Body() would inflate a compressed bomb
	if len(body) > r.maxPush {
		if d != nil {
			d.tooLarge.Add(1)
		} else {
			r.tooLarge.Add(1)
		}
		return writeProblem(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("a push may be at most %d bytes", r.maxPush))
	}
	if enc := strings.TrimSpace(c.Get(fiber.HeaderContentEncoding)); enc != "" && !strings.EqualFold(enc, "identity") {
		if d != nil {
			d.malformed.Add(1)
		} else {
			r.unrouted.Add(1)
		}
		return writeProblem(c, http.StatusUnsupportedMediaType, "compressed pushes are not accepted")
	}
	ct := c.Get(fiber.HeaderContentType)
	loc := time.UTC
	if d != nil {
		loc = d.loc
	}
	var p *push
	var err error
	switch profile {
	case ProfileHikvision:
		p, err = parseHikvision(ct, body, loc)
	case ProfileAxis:
		p, err = parseAxis(ct, body, loc)
	default:
		p, err = parseGeneric(ct, body)
	}
	if d == nil { // generic push on /json: the body names the camera
		if err != nil {
			r.unrouted.Add(1)
			if r.logNow(now) {
				r.log.Info("camera: malformed push", "profile", profile, "remote", c.IP(), "detail", err.Error())
			}
			return writeProblem(c, http.StatusBadRequest, err.Error())
		}
		if p.camera == "" {
			r.unrouted.Add(1)
			return writeProblem(c, http.StatusBadRequest, `"camera" is required when the URL names no camera`)
		}
		if d = r.devices[p.camera]; d == nil || d.cfg.Profile != profile {
			r.unknown.Add(1)
			if r.logNow(now) {
				r.log.Info("camera: push from an unknown camera", "profile", profile, "device", p.camera, "remote", c.IP())
			}
			return writeProblem(c, http.StatusNotFound, "no json camera with this id is configured")
		}
		if !d.authorized(c) {
			d.unauthorized.Add(1)
			if d.logNow(now) {
				r.log.Info("camera: push with a wrong token", "device", d.cfg.ID, "remote", c.IP())
			}
			return writeProblem(c, http.StatusUnauthorized, "the camera token is missing or wrong")
		}
	} else if err == nil && p.camera != "" && p.camera != d.cfg.ID {
		err = malformed(`"camera" in the body is not the camera the URL names`)
	}
	r.contact(d, now)
	d.pushes.Add(1)
	if err != nil {
		d.malformed.Add(1)
		if d.logNow(now) {
			r.log.Info("camera: malformed push", "device", d.cfg.ID, "profile", profile, "remote", c.IP(), "bytes", len(body), "detail", err.Error())
		}
		return writeProblem(c, http.StatusBadRequest, err.Error())
	}
	return c.JSON(r.accept(d, p, now))
}

// accept turns a parsed push into a read: dedupe, store the images, deliver.
func (r *Receiver) accept(d *device, p *push, now time.Time) pushResponse {
	rd := p.read
	rd.Device, rd.Vendor, rd.Received = d.cfg.ID, d.cfg.Profile, now
	if rd.At.IsZero() {
		rd.At = now
	}
	if d.cfg.Profile != ProfileJSON {
		rd.Direction = d.direction(p.towards)
	}
	rd.Plate = plate.Normalize(rd.RawPlate)
	if p.badImages > 0 {
		d.malformed.Add(uint64(p.badImages))
	}
	if p.unterminated {
		d.malformed.Add(1)
		if d.logNow(now) {
			r.log.Info("camera: multipart push without its closing boundary; read kept", "device", d.cfg.ID)
		}
	}
	if p.isRead && rd.Plate == "" {
		p.isRead, p.why = false, "the plate text holds no letters or digits"
	}
	if !p.isRead {
		d.ignored.Add(1)
		return pushResponse{Status: "ignored", EventID: rd.EventID, Detail: p.why}
	}
	if rd.EventID == "" {
		rd.EventID = randomID()
	}
	if !r.dedupe.first(d.cfg.ID+"\x00"+rd.EventID, now) {
		d.duplicates.Add(1)
		return pushResponse{Status: "duplicate", EventID: rd.EventID}
	}
	n := 0
	for _, img := range p.images {
		if !hasJPEGMarker(img) {
			d.malformed.Add(1)
			if d.logNow(now) {
				r.log.Info("camera: image is not a JPEG; read kept without it", "device", d.cfg.ID, "event", rd.EventID, "bytes", len(img))
			}
			continue
		}
		n++
		if r.images == nil {
			continue
		}
		rel, err := r.images.save(d.cfg.ID, rd.EventID, n, img, now)
		if err != nil {
			d.imageErrors.Add(1)
			r.log.Warn("camera: cannot store an image", "device", d.cfg.ID, "event", rd.EventID, "err", err)
			continue
		}
		d.imagesStored.Add(1)
		rd.Images = append(rd.Images, rel)
	}
	r.sink.Deliver(edge.DeviceEvent{
		Device: d.cfg.ID,
		Kind:   edge.PlateRead,
		At:     now, // the garage steps its lanes on this: the edge's clock, not the camera's
		Read:   plate.Read{Text: rd.RawPlate, Confidence: rd.Confidence, At: rd.At, Source: rd.Vendor, Images: rd.Images},
	})
	d.reads.Add(1)
	if r.onRead != nil {
		r.onRead(rd)
	}
	return pushResponse{Status: "accepted", EventID: rd.EventID}
}

// randomID names a read that came without an id of its own.
func randomID() string {
	var b [12]byte
	rand.Read(b[:])
	return "r" + hex.EncodeToString(b[:])
}

// authorized reports whether c carries the device's token (or the device has none).
func (d *device) authorized(c *fiber.Ctx) bool {
	if !d.secured {
		return true
	}
	tok := c.Get(HeaderToken)
	if tok == "" {
		if scheme, t, ok := strings.Cut(strings.TrimSpace(c.Get(fiber.HeaderAuthorization)), " "); ok && strings.EqualFold(scheme, "Bearer") {
			tok = strings.TrimSpace(t)
		}
	}
	if tok == "" {
		tok = c.Query("token")
	}
	sum := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(sum[:], d.token[:]) == 1
}

// direction maps a folded vendor direction to entry or exit.
func (d *device) direction(towards int) string {
	if d.invert {
		towards = -towards
	}
	switch towards {
	case 1:
		return DirectionEntry
	case -1:
		return DirectionExit
	}
	return ""
}

// logNow rate-limits a device's log lines about bad pushes to one a second, so that
// a camera spewing garbage cannot flood the log; the counters still count every one.
func (d *device) logNow(now time.Time) bool { return everySecond(&d.lastLog, now) }

// logNow rate-limits the log lines about pushes from no known camera.
func (r *Receiver) logNow(now time.Time) bool { return everySecond(&r.lastLog, now) }

func everySecond(last *atomic.Int64, now time.Time) bool {
	l := last.Load()
	return now.UnixNano()-l >= int64(time.Second) && last.CompareAndSwap(l, now.UnixNano())
}

// contact records a push from d; a camera that was reported silent is reported back.
func (r *Receiver) contact(d *device, now time.Time) {
	d.last.Store(now.UnixNano())
	if d.down.CompareAndSwap(true, false) {
		r.log.Info("camera: pushing again", "device", d.cfg.ID)
		r.sink.Deliver(edge.DeviceEvent{Device: d.cfg.ID, Kind: edge.DeviceHealth, At: now, Healthy: true})
	}
}

// silent says why d counts as unhealthy at now, or "" if it does not: it pushed
// nothing for longer than its silence option. A camera that never pushed is healthy
// (a lane at night).
func (d *device) silent(now time.Time) string {
	last := d.last.Load()
	if d.silence <= 0 || last == 0 {
		return ""
	}
	if quiet := now.Sub(time.Unix(0, last)); quiet > d.silence {
		return fmt.Sprintf("no push for %s (silence %s)", quiet.Truncate(time.Second), d.silence)
	}
	return ""
}

// checkHealth reports every camera that fell silent since the last check.
func (r *Receiver) checkHealth(now time.Time) {
	for _, d := range r.order {
		if why := d.silent(now); why != "" && d.down.CompareAndSwap(false, true) {
			r.log.Warn("camera: silent", "device", d.cfg.ID, "detail", why)
			r.sink.Deliver(edge.DeviceEvent{Device: d.cfg.ID, Kind: edge.DeviceHealth, At: now, Healthy: false, Detail: why})
		}
	}
}

// Run sweeps old images and reports silent cameras every SweepInterval until ctx is
// done. The endpoints work without it; images are then only capped, not aged out.
func (r *Receiver) Run(ctx context.Context) error {
	t := time.NewTicker(SweepInterval)
	defer t.Stop()
	for {
		now := r.now()
		if r.images != nil {
			if n := r.images.sweep(now); n > 0 {
				r.log.Debug("camera: old images removed", "count", n)
			}
		}
		r.checkHealth(now)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Status reports each camera's health and counters, in config order.
func (r *Receiver) Status() []edge.DeviceStatus {
	now := r.now()
	out := make([]edge.DeviceStatus, 0, len(r.order))
	for _, d := range r.order {
		st := edge.DeviceStatus{ID: d.cfg.ID, Kind: string(d.cfg.Kind), Protocol: d.cfg.Protocol, Address: d.cfg.Address, Healthy: true}
		if last := d.last.Load(); last != 0 {
			st.LastContact = time.Unix(0, last)
		}
		if why := d.silent(now); why != "" {
			st.Healthy, st.Detail = false, why
		}
		st.Counters = map[string]uint64{
			"pushes":        d.pushes.Load(),
			"reads":         d.reads.Load(),
			"duplicates":    d.duplicates.Load(),
			"ignored":       d.ignored.Load(),
			"malformed":     d.malformed.Load(),
			"unauthorized":  d.unauthorized.Load(),
			"too_large":     d.tooLarge.Load(),
			"images_stored": d.imagesStored.Load(),
			"image_errors":  d.imageErrors.Load(),
		}
		out = append(out, st)
	}
	return out
}

// Counters returns the receiver's own counters, which belong to no configured
// camera: unknown_device (pushes naming a camera that is not configured, or not
// with that profile), unrouted (generic pushes on /json that named no camera or did
// not parse), too_large (bodies refused before a camera was known), images and
// image_bytes (stored now), images_served.
func (r *Receiver) Counters() map[string]uint64 {
	m := map[string]uint64{
		"unknown_device": r.unknown.Load(),
		"unrouted":       r.unrouted.Load(),
		"too_large":      r.tooLarge.Load(),
		"images_served":  r.imagesHit.Load(),
	}
	if r.images != nil {
		n, b := r.images.usage()
		m["images"], m["image_bytes"] = uint64(n), uint64(b)
	}
	return m
}

// ImagePath returns the stored images of a read by its event id (Read.EventID), as
// paths relative to Config.ImageDir and to /camera/images/; nil when there are none
// (never stored, or removed by retention).
func (r *Receiver) ImagePath(eventID string) []string {
	if r.images == nil {
		return nil
	}
	ps := r.images.paths(eventID)
	slices.Sort(ps)
	return ps
}

// Close releases the image directory.
func (r *Receiver) Close() error {
	if r.images == nil {
		return nil
	}
	return r.images.close()
}

// serveImage answers GET /images/<date>/<device>/<file>.jpg.
func (r *Receiver) serveImage(c *fiber.Ctx) error {
	if r.images == nil {
		return writeProblem(c, http.StatusNotFound, "images are not stored")
	}
	data, err := r.images.read(c.Params("*"))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			r.log.Warn("camera: cannot read an image", "path", strings.Clone(c.Params("*")), "err", err)
		}
		return writeProblem(c, http.StatusNotFound, "no such image")
	}
	r.imagesHit.Add(1)
	c.Set(fiber.HeaderContentType, "image/jpeg")
	c.Set(fiber.HeaderCacheControl, "private, max-age=86400, immutable")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	return c.Send(data)
}
