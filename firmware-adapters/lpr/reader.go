//go:build gocv

package lpr

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/edge/plate"
	"gocv.io/x/gocv"
)

// Defaults of Config and of the device options.
const (
	DefaultFrames         = 4
	DefaultInterval       = 150 * time.Millisecond
	DefaultMinConfidence  = 0.3
	DefaultProbe          = time.Minute
	DefaultImageRetention = 7 * 24 * time.Hour
	DefaultMaxImageBytes  = 1 << 30
	// SweepInterval is how often Run removes old images.
	SweepInterval = time.Minute
)

// Device options (edge.Device.Options) the reader takes.
const (
	// OptionCountry is the plates' country: "eu" or "us" (default: none).
	OptionCountry = "country"
	// OptionFrames is how many frames are read per vehicle.
	OptionFrames = "frames"
	// OptionInterval is the time between those frames, as a Go duration.
	OptionInterval = "interval"
	// OptionMinConfidence drops frame reads below it from the vote (0..1).
	OptionMinConfidence = "min_confidence"
	// OptionProbe is how often an idle camera is asked for a frame to check it
	// is alive; "0" never.
	OptionProbe = "probe"
)

// Config is what New builds a Reader from. cmd/gatehouse-edge wires it.
type Config struct {
	// Devices are the cameras: kind camera, protocol lpr, the address a frame
	// source (see the package doc), options as the Option constants say.
	Devices []edge.Device
	// Triggers maps an arming loop's device id to the cameras that read the
	// vehicle it detects.
	Triggers map[string][]string
	// Sink receives a PlateRead per vehicle and a DeviceHealth for every change
	// of a camera's health. Required.
	Sink edge.Sink
	// Logger; nil discards.
	Logger *slog.Logger
	// ImageDir is where the frame and the plate crop of each read are stored, as
	// the camera-push adapter stores its images; "" stores none.
	ImageDir       string
	ImageRetention time.Duration
	MaxImageBytes  int64
	// HTTPClient fetches snapshots; nil means a client with a 5 s timeout.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Read is one vehicle's plate as the reader made it, for the operator's view
// (GET /v1/lpr/reads on the edge).
type Read = edge.ReaderRead

// Reader is the plate reader of cameras without ANPR of their own: on a
// trigger it reads several frames, votes over their plates, stores the best
// frame and crop, and delivers one PlateRead. It is an edge.Driver.
type Reader struct {
	sink   edge.Sink
	log    *slog.Logger
	now    func() time.Time
	images *imageStore

	devices  map[string]*camera
	order    []*camera
	triggers map[string][]*camera

	mu     sync.Mutex
	recent []Read // the last recentReads reads, newest last
}

var _ edge.Driver = (*Reader)(nil)

const recentReads = 100

// camera is one device and its state.
type camera struct {
	cfg      edge.Device
	rec      *Recognizer
	src      source
	frames   int
	interval time.Duration
	minConf  float64
	probe    time.Duration
	trigger  chan struct{}

	last                                            atomic.Int64
	down                                            atomic.Bool
	detail                                          atomic.Pointer[string]
	triggers, reads, unsure, noPlate, frameErrors   atomic.Uint64
	imagesStored, imageErrors, framesRead, rejected atomic.Uint64
}

// New checks the cameras' config and returns a Reader.
func New(cfg Config) (*Reader, error) {
	if cfg.Sink == nil {
		return nil, errors.New("lpr: New needs a Sink")
	}
	r := &Reader{sink: cfg.Sink, log: cfg.Logger, now: cfg.Now, devices: map[string]*camera{}, triggers: map[string][]*camera{}}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	var errs []error
	var ids []string
	for _, dc := range cfg.Devices {
		c, err := newCamera(dc, client)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if r.devices[dc.ID] != nil {
			errs = append(errs, fmt.Errorf("lpr %s: configured twice", dc.ID))
			continue
		}
		r.devices[dc.ID] = c
		r.order = append(r.order, c)
		ids = append(ids, dc.ID)
	}
	for loop, cams := range cfg.Triggers {
		for _, id := range cams {
			if c := r.devices[id]; c != nil {
				r.triggers[loop] = append(r.triggers[loop], c)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		r.Close()
		return nil, err
	}
	if cfg.ImageDir != "" {
		s, err := openImageStore(cfg.ImageDir, ids, orDefault(cfg.ImageRetention, DefaultImageRetention), orDefault(cfg.MaxImageBytes, DefaultMaxImageBytes))
		if err != nil {
			r.Close()
			return nil, err
		}
		r.images = s
	}
	return r, nil
}

func orDefault[T int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

func newCamera(dc edge.Device, client *http.Client) (*camera, error) {
	switch {
	case dc.ID == "":
		return nil, errors.New("lpr: a device has no id")
	case dc.Kind != edge.KindCamera:
		return nil, fmt.Errorf("lpr %s: kind %q is not %q", dc.ID, dc.Kind, edge.KindCamera)
	case dc.Protocol != "lpr":
		return nil, fmt.Errorf("lpr %s: protocol %q is not lpr", dc.ID, dc.Protocol)
	}
	c := &camera{cfg: dc, frames: DefaultFrames, interval: DefaultInterval, minConf: DefaultMinConfidence, probe: DefaultProbe,
		trigger: make(chan struct{}, 1)}
	var country Country
	for k, v := range dc.Options {
		var err error
		switch k {
		case OptionCountry:
			country = Country(v)
		case OptionFrames:
			c.frames, err = strconv.Atoi(v)
			if err == nil && (c.frames < 1 || c.frames > 20) {
				err = errors.New("must be 1 to 20")
			}
		case OptionInterval:
			c.interval, err = time.ParseDuration(v)
			if err == nil && (c.interval < 0 || c.interval > 5*time.Second) {
				err = errors.New("must be 0 to 5s")
			}
		case OptionMinConfidence:
			c.minConf, err = strconv.ParseFloat(v, 64)
			if err == nil && !(c.minConf >= 0 && c.minConf <= 1) {
				err = errors.New("must be 0 to 1")
			}
		case OptionProbe:
			c.probe, err = time.ParseDuration(v)
			if err == nil && c.probe < 0 {
				err = errors.New("must not be negative")
			}
		default:
			err = errors.New("unknown option")
		}
		if err != nil {
			return nil, fmt.Errorf("lpr %s: option %s=%q: %v", dc.ID, k, v, err)
		}
	}
	rec, err := NewRecognizer(Options{Country: country})
	if err != nil {
		return nil, fmt.Errorf("lpr %s: %w", dc.ID, err)
	}
	c.rec = rec
	src, err := newSource(dc.Address, client)
	if err != nil {
		return nil, fmt.Errorf("lpr %s: %w", dc.ID, err)
	}
	c.src = src
	return c, nil
}

// LoopChanged tells the reader that a loop became occupied or clear. A vehicle
// arriving on the arming loop of a lane triggers that lane's cameras; the
// reading runs on the camera's own goroutine, so LoopChanged never blocks. A
// trigger while a camera is still reading the previous one is merged into it.
func (r *Reader) LoopChanged(loop string, occupied bool) {
	if !occupied {
		return
	}
	for _, c := range r.triggers[loop] {
		c.triggers.Add(1)
		select {
		case c.trigger <- struct{}{}:
		default:
		}
	}
}

// Trigger reads the vehicle in front of camera device now, as a loop would.
func (r *Reader) Trigger(device string) error {
	c := r.devices[device]
	if c == nil {
		return fmt.Errorf("lpr: no camera %q", device)
	}
	c.triggers.Add(1)
	select {
	case c.trigger <- struct{}{}:
	default:
	}
	return nil
}

// Run serves the triggers of every camera, probes idle cameras and sweeps old
// images until ctx is done.
func (r *Reader) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, c := range r.order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.serve(ctx, c)
		}()
	}
	t := time.NewTicker(SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
			if r.images != nil {
				r.images.sweep(r.now())
			}
		}
	}
}

// serve reads a vehicle per trigger, and probes the camera when it is idle.
func (r *Reader) serve(ctx context.Context, c *camera) {
	var probe <-chan time.Time
	if c.probe > 0 {
		t := time.NewTicker(c.probe)
		defer t.Stop()
		probe = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.trigger:
			r.readVehicle(ctx, c)
		case <-probe:
			if time.Since(time.Unix(0, c.last.Load())) >= c.probe {
				b, err := c.src.frame(ctx)
				if err == nil {
					_, err = imageSizeOK(b)
				}
				r.health(c, err)
			}
		}
	}
}

// imageSizeOK checks a frame's header without decoding it.
func imageSizeOK(b []byte) (image.Point, error) {
	w, h, err := imageSize(b)
	return image.Pt(w, h), err
}

// frameRead is one frame's best plate.
type frameRead struct {
	plate Plate
	frame []byte
}

// readVehicle reads c.frames frames, votes and delivers.
func (r *Reader) readVehicle(ctx context.Context, c *camera) {
	start := r.now()
	var reads []plate.Read
	var best *frameRead
	frames := 0
	for i := 0; i < c.frames; i++ {
		if i > 0 && c.interval > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(c.interval):
			}
		}
		b, err := c.src.frame(ctx)
		if err != nil {
			c.frameErrors.Add(1)
			r.health(c, err)
			continue
		}
		plates, err := c.rec.RecognizeJPEG(b)
		if err != nil {
			c.rejected.Add(1)
			r.health(c, err)
			continue
		}
		r.health(c, nil)
		frames++
		c.framesRead.Add(1)
		if len(plates) == 0 {
			continue
		}
		p := plates[0]
		reads = append(reads, plate.Read{Text: p.Text, Confidence: p.Confidence, Source: "lpr"})
		if best == nil || p.Confidence > best.plate.Confidence {
			best = &frameRead{plate: p, frame: b}
		}
	}
	if best == nil {
		c.noPlate.Add(1)
		r.log.Debug("lpr: no plate", "device", c.cfg.ID, "frames", frames)
		return
	}
	res := plate.Vote(reads, c.minConf)
	rd := Read{Device: c.cfg.ID, EventID: newEventID(start), Plate: res.Plate, Confidence: res.Confidence,
		Unsure: res.Unsure, Reason: res.Reason, Frames: frames, Votes: res.Votes, At: start}
	if !res.Unsure && len(reads) > 1 && 2*res.Votes <= len(reads) {
		// Vote is content with the biggest group; a vehicle's frames must agree
		// by a strict majority.
		res.Unsure = true
		res.Reason = fmt.Sprintf("%q read in only %d of %d frames with a plate", res.Plate, res.Votes, len(reads))
		rd.Unsure, rd.Reason = true, res.Reason
	}
	if res.Unsure {
		// Never guess: the lane gets the likeliest text with confidence zero,
		// which no threshold accepts, so it reports the plate unsure.
		c.unsure.Add(1)
		rd.Confidence = 0
		if rd.Plate == "" {
			rd.Plate = plate.Normalize(best.plate.Text)
		}
		r.log.Info("lpr: plate unsure", "device", c.cfg.ID, "plate", rd.Plate, "reason", res.Reason)
	}
	c.reads.Add(1)
	rd.Images = r.store(c, rd.EventID, best, start)
	r.remember(rd)
	detail := ""
	if rd.Unsure {
		detail = "unsure: " + rd.Reason
	}
	r.sink.Deliver(edge.DeviceEvent{Device: c.cfg.ID, Kind: edge.PlateRead, At: start, Detail: detail,
		Read: plate.Read{Text: rd.Plate, Confidence: rd.Confidence, At: start, Source: "lpr", Images: rd.Images}})
}

// store saves the best frame and its plate crop.
func (r *Reader) store(c *camera, event string, best *frameRead, now time.Time) []string {
	if r.images == nil {
		return nil
	}
	var out []string
	imgs := [][]byte{best.frame}
	if crop, err := cropJPEG(best.frame, best.plate.Box); err == nil {
		imgs = append(imgs, crop)
	}
	for n, b := range imgs {
		rel, err := r.images.save(c.cfg.ID, event, n+1, b, now)
		if err != nil {
			c.imageErrors.Add(1)
			r.log.Warn("lpr: cannot store an image", "device", c.cfg.ID, "err", err)
			continue
		}
		c.imagesStored.Add(1)
		out = append(out, rel)
	}
	return out
}

// cropJPEG cuts box out of an encoded image and encodes it as JPEG.
func cropJPEG(frame []byte, box image.Rectangle) ([]byte, error) {
	m, err := DecodeImage(frame)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	box = box.Intersect(image.Rect(0, 0, m.Cols(), m.Rows()))
	if box.Dx() < 2 || box.Dy() < 2 {
		return nil, errors.New("empty crop")
	}
	sub := m.Region(box)
	defer sub.Close()
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, sub, []int{gocv.IMWriteJpegQuality, 90})
	if err != nil {
		return nil, err
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...), nil
}

func newEventID(at time.Time) string {
	var b [4]byte
	rand.Read(b[:])
	return "lpr" + at.UTC().Format("20060102T150405.000") + "-" + hex.EncodeToString(b[:])
}

// health records a camera's contact or failure and reports changes to the sink.
func (r *Reader) health(c *camera, err error) {
	now := r.now()
	if err == nil {
		c.last.Store(now.UnixNano())
		if c.down.CompareAndSwap(true, false) {
			c.detail.Store(nil)
			r.sink.Deliver(edge.DeviceEvent{Device: c.cfg.ID, Kind: edge.DeviceHealth, At: now, Healthy: true})
		}
		return
	}
	why := err.Error()
	c.detail.Store(&why)
	if c.down.CompareAndSwap(false, true) {
		r.log.Warn("lpr: camera unhealthy", "device", c.cfg.ID, "err", err)
		r.sink.Deliver(edge.DeviceEvent{Device: c.cfg.ID, Kind: edge.DeviceHealth, At: now, Healthy: false, Detail: why})
	}
}

func (r *Reader) remember(rd Read) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recent = append(r.recent, rd)
	if len(r.recent) > recentReads {
		r.recent = append(r.recent[:0], r.recent[len(r.recent)-recentReads:]...)
	}
}

// Reads returns the latest reads, newest last: what the operator's view shows.
func (r *Reader) Reads() []Read {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Read(nil), r.recent...)
}

// Status reports each camera's health and counters.
func (r *Reader) Status() []edge.DeviceStatus {
	out := make([]edge.DeviceStatus, 0, len(r.order))
	for _, c := range r.order {
		st := edge.DeviceStatus{ID: c.cfg.ID, Kind: string(c.cfg.Kind), Protocol: c.cfg.Protocol, Address: redact(c.cfg.Address), Healthy: !c.down.Load()}
		if last := c.last.Load(); last != 0 {
			st.LastContact = time.Unix(0, last)
		}
		if d := c.detail.Load(); d != nil && !st.Healthy {
			st.Detail = *d
		}
		st.Counters = map[string]uint64{
			"triggers": c.triggers.Load(), "frames": c.framesRead.Load(), "frame_errors": c.frameErrors.Load(),
			"rejected_frames": c.rejected.Load(), "reads": c.reads.Load(), "unsure": c.unsure.Load(),
			"no_plate": c.noPlate.Load(), "images_stored": c.imagesStored.Load(), "image_errors": c.imageErrors.Load(),
		}
		out = append(out, st)
	}
	return out
}

// Close releases the frame sources and the image store.
func (r *Reader) Close() error {
	for _, c := range r.order {
		c.src.close()
	}
	if r.images != nil {
		return r.images.close()
	}
	return nil
}
