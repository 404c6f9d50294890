package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Garage is what the API needs of a garage. *edge.Garage implements it.
type Garage interface {
	// Facility returns the garage's configuration.
	Facility() *edge.Facility
	// Occupancy returns every zone's live count.
	Occupancy() []edge.ZoneView
	// Lanes returns every lane's live status.
	Lanes() []edge.LaneView
	// OpenSessions returns the sessions of the vehicles inside.
	OpenSessions() []edge.Session
	// Alerts returns the active alerts.
	Alerts() []edge.Alert
	// Seq returns the seq of the newest event.
	Seq() uint64
	// Events returns up to limit events with seq > after, in seq order.
	Events(after uint64, limit int) ([]*gh.Envelope, error)
	// OpenLane raises a lane's barrier by an operator's hand.
	OpenLane(ctx context.Context, lane, operator, reason string) error
	// PayAtLane records a payment for the fee a lane displays.
	PayAtLane(ctx context.Context, lane string, amount int64, method, reference string) error
	// PaySession records a payment for an open session.
	PaySession(ctx context.Context, session string, amount int64, method, reference string) error
	// ResetCount sets a zone's count after a physical count.
	ResetCount(ctx context.Context, zone string, occupied int, operator, reason string) error
	// Stats returns the garage's counters.
	Stats() *edge.Stats
}

// Store is what the API needs of the garage's store. *boltstore.Store implements it.
type Store interface {
	// Backup writes a consistent copy of the whole database to w.
	Backup(w io.Writer) (int64, error)
	// ClosedSessions returns up to limit ended sessions as JSON edge.Session, newest first.
	ClosedSessions(limit int) ([][]byte, error)
}

// Config is what New builds the app from. cmd/gatehouse-edge wires it.
type Config struct {
	// Garage answers every read and performs every action. Required.
	Garage Garage
	// Store serves closed sessions and backups. Required.
	Store Store
	// Logger receives one line per failed request; nil discards.
	Logger *slog.Logger
	// OperatorTokens maps bearer tokens to the operator names recorded in audit events.
	// Operator routes answer 401 to any other token; with no tokens they are closed.
	OperatorTokens map[string]string
	// Registry receives the API's and the garage's metrics and is served at /metrics.
	// Nil means a private registry with the Go and process collectors added.
	Registry *prometheus.Registry
	// Ready reports whether the controller is ready for traffic (/readyz); nil means
	// always ready.
	Ready func() error
	// Devices reports every device's health for GET /v1/devices; nil reports none.
	Devices func() []edge.DeviceStatus
	// PlateReads returns the edge's plate reader's recent reads, oldest first,
	// for GET /v1/lpr/reads; nil reports none.
	PlateReads func() []edge.ReaderRead
	// Mount, if set, adds routes of device adapters (camera pushes) to the app. Those
	// routes may take bodies up to MaxPushBody; /v1 keeps BodyLimit.
	Mount func(app *fiber.App)
	// Simulator, if set, adds routes that drive simulated (in-memory) devices, under
	// /v1/sim and behind an operator token: the demo and end-to-end tests.
	Simulator func(r fiber.Router)
}

// Limits and timeouts of the app.
const (
	// BodyLimit is the largest request body the API accepts; larger bodies get 413.
	BodyLimit = 64 << 10
	// MaxPushBody is the largest body any route accepts: camera pushes with images.
	MaxPushBody = 8 << 20
	// DefaultLimit and MaxLimit bound the list endpoints (?limit=).
	DefaultLimit = 100
	MaxLimit     = 1000

	opTimeout       = 10 * time.Second // an action waits this long for the store
	shutdownTimeout = 10 * time.Second // Serve waits this long for requests in flight
)

// api holds the handlers' dependencies.
type api struct {
	g       Garage
	store   Store
	log     *slog.Logger
	tokens  map[string]string
	ready   func() error
	metrics *metrics
	kiosk   *kiosk
	devices func() []edge.DeviceStatus
	reads   func() []edge.ReaderRead
}

// limitBody keeps API bodies to BodyLimit although the app takes camera pushes.
func (a *api) limitBody(c *fiber.Ctx) error {
	if len(c.Request().Body()) > BodyLimit { // the raw body: c.Body() would inflate a gzip bomb first
		return fiber.ErrRequestEntityTooLarge
	}
	return c.Next()
}

// DevicesResponse is the body of GET /v1/devices.
type DevicesResponse struct {
	Devices []edge.DeviceStatus `json:"devices"`
}

// PlateReadsResponse is the body of GET /v1/lpr/reads.
type PlateReadsResponse struct {
	Reads []edge.ReaderRead `json:"reads"`
}

// plateReads lists the plate reader's recent reads, newest first, those of one
// camera with ?device=.
func (a *api) plateReads(c *fiber.Ctx) error {
	out := []edge.ReaderRead{}
	if a.reads != nil {
		dev := c.Query("device")
		rs := a.reads()
		for i := len(rs) - 1; i >= 0; i-- {
			if dev == "" || rs[i].Device == dev {
				out = append(out, rs[i])
			}
		}
	}
	return c.JSON(PlateReadsResponse{Reads: out})
}

func (a *api) deviceList(c *fiber.Ctx) error {
	ds := a.devices()
	if ds == nil {
		ds = []edge.DeviceStatus{}
	}
	slices.SortFunc(ds, func(x, y edge.DeviceStatus) int { return strings.Compare(x.ID, y.ID) })
	return c.JSON(DevicesResponse{Devices: ds})
}

// New returns the Fiber app serving the edge API, the kiosk pages, the metrics and the
// probes. It registers the metrics collectors on cfg.Registry, so call it once per
// registry. It panics if cfg.Garage or cfg.Store is nil: that is a wiring mistake.
func New(cfg Config) *fiber.App {
	if cfg.Garage == nil || cfg.Store == nil {
		panic("httpapi: New needs a Garage and a Store")
	}
	a := &api{g: cfg.Garage, store: cfg.Store, log: cfg.Logger, ready: cfg.Ready, devices: cfg.Devices, reads: cfg.PlateReads, tokens: map[string]string{}}
	if a.devices == nil {
		a.devices = func() []edge.DeviceStatus { return nil }
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.ready == nil {
		a.ready = func() error { return nil }
	}
	for tok, name := range cfg.OperatorTokens {
		if tok != "" && name != "" { // an empty token would let an empty header through
			a.tokens[tok] = name
		}
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	a.metrics = newMetrics(reg, a.g, a.log)
	a.kiosk = newKiosk()

	app := fiber.New(fiber.Config{
		AppName:   "gatehouse-edge",
		BodyLimit: MaxPushBody, // /v1 checks BodyLimit itself

		Immutable:             true, // params and bodies reach the garage, which keeps them
		DisableStartupMessage: true,
		ErrorHandler:          a.errorHandler,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          5 * time.Minute, // a backup of a large file on a slow link
		IdleTimeout:           2 * time.Minute,
	})
	app.Use(a.observe)

	app.Get("/healthz", func(c *fiber.Ctx) error { return c.SendString("ok") })
	app.Get("/readyz", a.readyz)
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))

	v1 := app.Group("/v1")
	v1.Get("/occupancy", a.occupancy)
	v1.Get("/devices", a.deviceList)
	v1.Get("/lpr/reads", a.plateReads)
	v1.Get("/lanes", a.lanes)
	v1.Get("/lanes/:id", a.lane)
	v1.Get("/lanes/:id/display", a.display)
	v1.Get("/sessions", a.sessions)
	v1.Get("/events", a.events)
	v1.Get("/alerts", a.alerts)
	v1.Post("/lanes/:id/open", a.limitBody, a.operator, a.openLane)
	v1.Post("/lanes/:id/pay", a.limitBody, a.operator, a.payAtLane)
	v1.Post("/lanes/:id/card", a.limitBody, a.operator, a.payByCard)
	v1.Post("/sessions/:id/payments", a.limitBody, a.operator, a.paySession)
	v1.Post("/zones/:id/count", a.limitBody, a.operator, a.resetCount)
	v1.Get("/backup", a.operator, a.backup)

	app.Get("/kiosk", a.kioskIndex) // also /kiosk/: routing is not strict
	app.Get("/kiosk/:lane", a.kioskLane)
	if cfg.Simulator != nil {
		cfg.Simulator(v1.Group("/sim", a.limitBody, a.operator))
	}
	if cfg.Mount != nil {
		cfg.Mount(app)
	}
	return app
}

// Serve serves app on ln until ctx ends, then shuts down gracefully: it stops
// accepting connections and waits up to 10 s for requests in flight.
func Serve(ctx context.Context, app *fiber.App, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- app.Listener(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	serr := app.ShutdownWithContext(sctx)
	if err := <-errc; err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return serr
}

func (a *api) readyz(c *fiber.Ctx) error {
	if err := a.ready(); err != nil {
		// The cause may be internal: it goes to the log with the 503, not to the client.
		return fmt.Errorf("%w: %w", edge.Errorf(edge.EUNAVAILABLE, "not ready"), err)
	}
	return c.SendString("ready")
}
