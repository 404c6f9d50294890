package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Authenticator turns credentials into a principal. cloud/auth implements it. Both
// methods fail with code cloud.EUNAUTHORIZED for credentials that are not valid
// (unknown, expired, revoked, signed with another key).
type Authenticator interface {
	// AuthenticateToken checks a bearer access token.
	AuthenticateToken(ctx context.Context, token string) (*cloud.Principal, error)
	// AuthenticateKey checks an integrator's API key.
	AuthenticateKey(ctx context.Context, key string) (*cloud.Principal, error)
}

// Hub is what the API needs of the NATS hub: live commands to garages, versioned
// documents down to them, and whether each is connected. cmd/gatehouse-cloud adapts
// *natshub.Hub to it.
type Hub interface {
	// Command sends a live command to a garage and returns its reply; it fails with
	// cloud.EUNAVAILABLE when the garage is offline or does not answer.
	Command(ctx context.Context, facility, verb string, body []byte) ([]byte, error)
	// PublishDown publishes the next version of a document for a garage.
	PublishDown(ctx context.Context, facility, kind string, version uint64, body []byte) error
	// Presence reports whether the garage's leaf node is connected now and, when it is
	// not, since when it has been offline (zero when never seen since start).
	Presence(facility string) (online bool, offlineSince time.Time)
}

// Config is what New builds the API from.
type Config struct {
	// DB is the fleet's database. Required.
	DB *postgres.DB
	// Auth checks credentials. Required.
	Auth Authenticator
	// Accounts serves the account routes (/auth, /users, /api-keys); nil means Auth
	// when it implements Accounts (cloud/auth's Service does), else those routes
	// answer 503.
	Accounts Accounts
	// Hub reaches the garages; nil answers 503 to the routes that need it.
	Hub Hub
	// Logger receives one line per refused or failed request; nil discards.
	Logger *slog.Logger
	// Registry receives the API's metrics and is served at /metrics; nil means a
	// private registry with the Go and process collectors.
	Registry *prometheus.Registry
	// Ready reports whether the service is ready (/readyz); nil means always.
	Ready func() error
	// Limits are the rate limits; zero fields take DefaultLimits'.
	Limits Limits
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// TrustProxy takes the client's address from the last entry of X-Forwarded-For,
	// the one the proxy in front of the service appended (behind nginx or an
	// ingress); otherwise from the connection.
	TrustProxy bool
	// Payments configures the payment routes; without a Provider they answer 503.
	Payments Payments
}

// Bounds of requests.
const (
	// BodyLimit is the largest request body; larger bodies get 413.
	BodyLimit = 64 << 10
	// opTimeout bounds a handler's work against the database and the hub.
	opTimeout       = 10 * time.Second
	shutdownTimeout = 10 * time.Second
)

// api holds the handlers' dependencies.
type api struct {
	db       *postgres.DB
	auth     Authenticator
	accounts Accounts
	hub      Hub
	log      *slog.Logger
	ready    func() error
	now      func() time.Time
	metrics  *metrics
	limits   *limiter
	routes   []*route
	pay      *payments
	// trustProxy: clientIP reads X-Forwarded-For.
	trustProxy bool
}

// New returns the Fiber app serving /v1, the probes, /metrics and the OpenAPI
// document. It registers its metrics on cfg.Registry, so call it once per registry.
func New(cfg Config) *fiber.App {
	if cfg.DB == nil || cfg.Auth == nil {
		panic("httpapi: New needs a DB and an Authenticator")
	}
	a := &api{db: cfg.DB, auth: cfg.Auth, accounts: cfg.Accounts, hub: cfg.Hub, log: cfg.Logger, ready: cfg.Ready, now: cfg.Now,
		trustProxy: cfg.TrustProxy}
	if a.accounts == nil {
		a.accounts, _ = cfg.Auth.(Accounts)
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.ready == nil {
		a.ready = func() error { return nil }
	}
	if a.now == nil {
		a.now = time.Now
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	a.metrics = newMetrics(reg)
	a.pay = newPayments(cfg.Payments, cfg.DB, reg)
	a.limits = newLimiter(cfg.Limits.withDefaults())

	fc := fiber.Config{
		AppName:               "gatehouse-cloud",
		BodyLimit:             BodyLimit,
		Immutable:             true,
		DisableStartupMessage: true,
		ErrorHandler:          a.errorHandler,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          time.Minute,
		IdleTimeout:           2 * time.Minute,
	}
	app := fiber.New(fc)
	app.Use(a.observe)
	app.Get("/healthz", func(c *fiber.Ctx) error { return c.SendString("ok") })
	app.Get("/readyz", a.readyz)
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))

	v1 := app.Group("/v1", a.authenticate)
	for _, r := range a.routeTable() {
		a.register(v1, r)
	}
	openapi := a.openAPI()
	v1.Get("/openapi.json", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, "application/json")
		return c.Send(openapi)
	})
	return app
}

// Serve serves app on ln until ctx ends, then shuts down gracefully.
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
		return fmt.Errorf("%w: %w", cloud.Errorf(cloud.EUNAVAILABLE, "not ready"), err)
	}
	return c.SendString("ready")
}

// HeaderRequestID carries the request id, in requests and responses.
const HeaderRequestID = "X-Request-Id"

const localRequestID = "httpapi.request_id"

// observe runs around every request: it sets the request id, turns a returned error or
// a panic into a problem (so that the status is known here), and records the request's
// metrics under its route pattern.
func (a *api) observe(c *fiber.Ctx) (err error) {
	start := time.Now()
	id := c.Get(HeaderRequestID)
	if !saneRequestID(id) {
		id = newRequestID()
	}
	c.Locals(localRequestID, id)
	c.Set(HeaderRequestID, id)
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("panic in handler", "path", c.Path(), "request_id", id, "panic", p, "stack", string(debug.Stack()))
			err = a.errorHandler(c, fmt.Errorf("panic: %v", p))
		}
		route := c.Route().Path
		if route == "/" && c.Path() != "/" {
			route = "unmatched"
		}
		a.metrics.requests.WithLabelValues(c.Method(), route, strconv.Itoa(c.Response().StatusCode())).Inc()
		a.metrics.duration.WithLabelValues(c.Method(), route).Observe(time.Since(start).Seconds())
	}()
	if err = c.Next(); err != nil {
		err = a.errorHandler(c, err)
	}
	return err
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch ch := id[i]; {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9':
		case ch == '-', ch == '_', ch == '.', ch == ':':
		default:
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// requestID returns the request's id, "" before observe ran.
func requestID(c *fiber.Ctx) string {
	id, _ := c.Locals(localRequestID).(string)
	return id
}

// opContext bounds a handler's work.
func opContext(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), opTimeout)
}

// metrics are the API's Prometheus collectors.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	rejected *prometheus.CounterVec
	limited  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_cloud_http_requests_total",
			Help: "HTTP requests by method, route pattern and status."}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gatehouse_cloud_http_request_duration_seconds",
			Help:    "HTTP request latency by method and route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"method", "route"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_cloud_http_rejected_total",
			Help: "Requests answered with a 4xx problem, by kind (malformed, invalid, unauthorized, ...)."}, []string{"kind"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_cloud_http_rate_limited_total",
			Help: "Requests refused by a rate limit, by limit (ip, login, principal)."}, []string{"limit"}),
	}
	reg.MustRegister(m.requests, m.duration, m.rejected, m.limited)
	return m
}

// clientIP is the address rate limits and the audit log use: the connection's peer,
// or behind a trusted proxy the last address of X-Forwarded-For, the one that proxy
// appended. The entries before it are whatever the client wrote, so taking the first
// (as Fiber's ProxyHeader does) would let anyone pick a fresh address, and a fresh
// rate-limit bucket, per request.
func (a *api) clientIP(c *fiber.Ctx) string {
	if a.trustProxy {
		xff := c.Get(fiber.HeaderXForwardedFor)
		if i := strings.LastIndexByte(xff, ','); i >= 0 {
			xff = xff[i+1:]
		}
		if ip := net.ParseIP(strings.TrimSpace(xff)); ip != nil {
			return ip.String()
		}
	}
	return c.IP()
}
