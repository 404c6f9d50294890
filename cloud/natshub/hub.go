package natshub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names shared with the edge.
const (
	// Domain is the hub's JetStream domain. Garages address the hub's JetStream
	// through their leaf with jetstream.NewWithDomain(nc, Domain).
	Domain = "hub"
	// EventsStream is the stream of uplink events, on gh.fac.*.evt.>.
	EventsStream = "GH_EVENTS"
	// DownStream is the stream of downlink documents, on gh.fac.*.down.>, holding the
	// latest message of each subject.
	DownStream = "GH_DOWN"
	// VersionHeader carries a downlink document's version.
	VersionHeader = "Gh-Version"
)

// Defaults.
const (
	// DefaultSyncInterval is how often the embedded hub's JetStream store is fsynced.
	// See Config.SyncInterval.
	DefaultSyncInterval = time.Second
	// DefaultEventsMaxAge is how long GH_EVENTS keeps events.
	DefaultEventsMaxAge = 30 * 24 * time.Hour
	// DefaultDuplicateWindow is GH_EVENTS' deduplication window on Nats-Msg-Id.
	DefaultDuplicateWindow = 10 * time.Minute
	// DefaultCommandTimeout bounds a command when the context has no deadline.
	DefaultCommandTimeout = 5 * time.Second
)

// startTimeout bounds how long Start waits for the listeners and JetStream.
const startTimeout = 10 * time.Second

// Config configures the hub.
type Config struct {
	// Dir is the hub's directory: the credential store (credentials.json, users.conf,
	// issued/) and, embedded, the JetStream store (Dir/jetstream). It must be stable
	// across restarts. Required when embedded; optional with ExternalURL.
	Dir string
	// Name is the embedded server's name, stable across restarts; empty means
	// "gatehouse-hub".
	Name string
	// Host is the client listener's address; empty means 127.0.0.1. Only cloud
	// processes connect there.
	Host string
	// Port is the client port: -1 picks a free port, 0 means 4222.
	Port int
	// LeafHost is the leafnode listener's address; empty means Host. Garages connect
	// there: in production "0.0.0.0" with LeafTLS.
	LeafHost string
	// LeafPort is the leafnode port: -1 picks a free port, 0 means 7422.
	LeafPort int
	// LeafTLS, when set, makes the leafnode listener require TLS. Required in
	// production: the garages' passwords travel in the CONNECT.
	LeafTLS *tls.Config
	// LeafAdvertise is the URL garages dial (e.g. "tls://hub.example.com:7422"),
	// written into issued credential files; empty means the listener's own URL.
	LeafAdvertise string
	// SyncAlways makes JetStream fsync every write before acknowledging it. It costs
	// about 35× the throughput of a periodic fsync on a single node (measured: 900
	// against 32,000 acknowledged events per second), which is why it is off.
	SyncAlways bool
	// SyncInterval is how often JetStream fsyncs when SyncAlways is off; zero means
	// DefaultSyncInterval (1 s; nats-server's own default is 2 minutes). An
	// acknowledgement always means the event reached the operating system, so a crash
	// of the hub process loses nothing; a crash of the machine can lose the events
	// acknowledged in the last interval, which the cloud recovers by asking the garage
	// to resend (see Consume).
	SyncInterval time.Duration
	// Replicas is the streams' replica count; zero means 1 embedded and 3 external.
	Replicas int
	// EventsMaxAge is how long GH_EVENTS keeps events; zero means 30 days.
	EventsMaxAge time.Duration
	// ExternalURL, when set, is an external NATS cluster to use instead of an embedded
	// server: Start connects, checks the JetStream domain is "hub" and sets up the
	// streams. Credentials and TLS go in ExternalOptions.
	ExternalURL string
	// ExternalOptions are the connection options for ExternalURL (nats.UserInfo,
	// nats.UserCredentials, nats.Secure, ...).
	ExternalOptions []nats.Option
	// CommandTimeout bounds Command when the context has no deadline; zero means 5 s.
	CommandTimeout time.Duration
	// Logger receives the hub's and the embedded server's logs; nil discards them.
	Logger *slog.Logger
}

// Hub is a running hub, embedded or external, and the cloud's connection to it.
type Hub struct {
	cfg       Config
	log       *slog.Logger
	srv       *server.Server // nil with an external cluster
	slog      *serverLog
	nc        *nats.Conn
	js        jetstream.JetStream
	events    jetstream.Stream
	down      jetstream.Stream
	clientURL string
	leafURL   string
	cloudPW   string
	cloudHash string // bcrypt of cloudPW, computed once: a new salt would read as a change

	reloadMu sync.Mutex
	creds    *Credentials // as last applied, embedded only
	stopOnce sync.Once
	stopped  chan struct{} // closed by Shutdown
	stats    counters

	presenceOnce sync.Once
	presence     *presenceTracker // embedded only, from the first Presence call
}

// Start starts an embedded hub, or connects to the external cluster of
// cfg.ExternalURL, and creates or updates the streams GH_EVENTS and GH_DOWN.
func Start(cfg Config) (*Hub, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = DefaultCommandTimeout
	}
	if cfg.EventsMaxAge <= 0 {
		cfg.EventsMaxAge = DefaultEventsMaxAge
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
		if cfg.ExternalURL != "" {
			cfg.Replicas = 3
		}
	}
	h := &Hub{cfg: cfg, log: cfg.Logger.With("component", "natshub"), stopped: make(chan struct{})}
	var err error
	if cfg.ExternalURL != "" {
		err = h.connectExternal()
	} else {
		err = h.startEmbedded()
	}
	if err == nil {
		err = h.setupStreams()
	}
	if err != nil {
		h.Shutdown()
		return nil, err
	}
	return h, nil
}

func (h *Hub) startEmbedded() error {
	cfg := h.cfg
	if cfg.Dir == "" {
		return errors.New("natshub: no hub directory")
	}
	if cfg.Port < -1 || cfg.LeafPort < -1 {
		return fmt.Errorf("natshub: bad port (client %d, leaf %d)", cfg.Port, cfg.LeafPort)
	}
	if cfg.Name == "" {
		h.cfg.Name = "gatehouse-hub"
	}
	if strings.ContainsAny(h.cfg.Name, " \t\n") {
		return fmt.Errorf("natshub: server name %q has spaces", h.cfg.Name)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("natshub: %w", err)
	}
	creds, err := LoadCredentials(cfg.Dir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, CredentialsFile)); err != nil {
		// First start: persist the cloud password before anything uses it.
		if err := creds.Save(cfg.Dir); err != nil {
			return err
		}
	}
	h.cloudPW = creds.CloudPassword
	if h.cloudHash, err = creds.hashCloudPassword(); err != nil {
		return err
	}
	opts := h.serverOptions(creds)
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("natshub: %w", err)
	}
	h.slog = &serverLog{log: h.cfg.Logger.With("component", "nats-hub")}
	srv.SetLoggerV2(h.slog, h.cfg.Logger.Enabled(context.Background(), slog.LevelDebug), false, false)
	srv.Start()
	h.srv = srv
	if !srv.ReadyForConnections(startTimeout) || !srv.JetStreamEnabled() {
		if msg := h.slog.fatal(); msg != "" {
			return fmt.Errorf("natshub: server did not start: %s", msg)
		}
		return errors.New("natshub: server did not become ready")
	}
	h.clientURL = srv.ClientURL()
	// The server wrote the chosen leaf port back into opts before publishing the
	// listener, which ReadyForConnections waited for.
	h.leafURL = "nats-leaf://" + net.JoinHostPort(hostForURL(opts.LeafNode.Host), strconv.Itoa(opts.LeafNode.Port))
	if cfg.LeafTLS != nil {
		h.leafURL = "tls://" + net.JoinHostPort(hostForURL(opts.LeafNode.Host), strconv.Itoa(opts.LeafNode.Port))
	}
	if cfg.LeafAdvertise != "" {
		h.leafURL = cfg.LeafAdvertise
	}
	if creds.LeafURL != h.leafURL {
		creds.LeafURL = h.leafURL
		if err := creds.Save(cfg.Dir); err != nil {
			return err
		}
	}
	if !isLoopback(opts.LeafNode.Host) && cfg.LeafTLS == nil {
		h.log.Warn("leafnode listener is not on loopback and has no TLS: garage passwords travel in clear", "addr", opts.LeafNode.Host)
	}
	h.creds = creds
	nc, err := h.Connect(nats.Name("gatehouse-hub"))
	if err != nil {
		return err
	}
	h.nc = nc
	h.log.Info("hub started", "client", h.clientURL, "leaf", h.leafURL, "facilities", len(creds.Facilities),
		"sync_always", cfg.SyncAlways, "sync_interval", opts.SyncInterval)
	return nil
}

// serverOptions are the embedded server's options for the credentials creds. They are
// built afresh for every reload, so that only the users differ.
func (h *Hub) serverOptions(creds *Credentials) *server.Options {
	cfg := h.cfg
	host := cfg.Host
	if host == "" {
		host = "127.0.0.1"
	}
	leafHost := cfg.LeafHost
	if leafHost == "" {
		leafHost = host
	}
	leafPort := cfg.LeafPort
	if leafPort == 0 {
		leafPort = server.DEFAULT_LEAFNODE_PORT
	}
	sync := cfg.SyncInterval
	if sync <= 0 {
		sync = DefaultSyncInterval
	}
	opts := &server.Options{
		ServerName:      h.cfg.Name,
		Host:            host,
		Port:            cfg.Port,
		JetStream:       true,
		JetStreamDomain: Domain,
		StoreDir:        filepath.Join(cfg.Dir, "jetstream"),
		SyncInterval:    sync,
		SyncAlways:      cfg.SyncAlways,
		Users:           creds.users(h.cloudHash),
		LeafNode: server.LeafNodeOpts{
			Host:      leafHost,
			Port:      leafPort,
			TLSConfig: cfg.LeafTLS,
			// Garages never talk to each other: do not propagate one garage's
			// subscriptions to the others.
			IsolateLeafnodeInterest: true,
			// Garages dial the URL in their credentials only: the hub's own view of its
			// address (behind NAT or a load balancer) must not reach them in INFO.
			NoAdvertise: true,
		},
		// The cloud binary owns the process's signals.
		NoSigs: true,
	}
	if cfg.LeafTLS != nil {
		opts.LeafNode.TLSTimeout = 5
	}
	return opts
}

func (h *Hub) connectExternal() error {
	opts := append([]nats.Option{nats.Name("gatehouse-cloud"), nats.MaxReconnects(-1)}, h.cfg.ExternalOptions...)
	nc, err := nats.Connect(h.cfg.ExternalURL, opts...)
	if err != nil {
		return fmt.Errorf("natshub: connect %s: %w", h.cfg.ExternalURL, err)
	}
	h.nc = nc
	h.clientURL = h.cfg.ExternalURL
	h.leafURL = h.cfg.LeafAdvertise
	h.log.Info("using external hub", "url", h.cfg.ExternalURL)
	return nil
}

// setupStreams checks the JetStream domain and creates or updates the streams.
func (h *Hub) setupStreams() error {
	js, err := jetstream.New(h.nc)
	if err != nil {
		return fmt.Errorf("natshub: %w", err)
	}
	h.js = js
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ai, err := js.AccountInfo(ctx)
	if err != nil {
		return fmt.Errorf("natshub: JetStream account info: %w", err)
	}
	if ai.Domain != Domain {
		return fmt.Errorf("natshub: hub JetStream domain is %q; want %q", ai.Domain, Domain)
	}
	h.events, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        EventsStream,
		Description: "Gatehouse uplink: every garage's events, deduplicated on Nats-Msg-Id <facility>:<seq>",
		Subjects:    []string{"gh.fac.*.evt.>"},
		Storage:     jetstream.FileStorage,
		Replicas:    h.cfg.Replicas,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      h.cfg.EventsMaxAge,
		Duplicates:  DefaultDuplicateWindow,
		DenyDelete:  true,
	})
	if err != nil {
		return fmt.Errorf("natshub: stream %s: %w", EventsStream, err)
	}
	h.down, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              DownStream,
		Description:       "Gatehouse downlink: the latest version of each document of each garage",
		Subjects:          []string{"gh.fac.*.down.>"},
		Storage:           jetstream.FileStorage,
		Replicas:          h.cfg.Replicas,
		Retention:         jetstream.LimitsPolicy,
		MaxMsgsPerSubject: 1,
		Discard:           jetstream.DiscardOld,
		Duplicates:        DefaultDuplicateWindow,
		AllowDirect:       true,
		DenyDelete:        true,
	})
	if err != nil {
		return fmt.Errorf("natshub: stream %s: %w", DownStream, err)
	}
	return nil
}

// ClientURL is the URL cloud processes connect to: the embedded client listener or
// the external cluster. Connections need the cloud user's credentials: see Connect.
func (h *Hub) ClientURL() string { return h.clientURL }

// LeafURL is the URL garages' leaf remotes dial (nats-leaf://host:port, or tls://
// with LeafTLS, or Config.LeafAdvertise); empty for an external cluster without
// LeafAdvertise.
func (h *Hub) LeafURL() string { return h.leafURL }

// Conn is the hub's own connection, as the cloud user. Do not close it.
func (h *Hub) Conn() *nats.Conn { return h.nc }

// JetStream is the hub's JetStream context on Conn.
func (h *Hub) JetStream() jetstream.JetStream { return h.js }

// Connect opens a new connection for a cloud process in this binary: in-process and
// authenticated as CloudUser for the embedded hub, or to the external cluster with
// Config.ExternalOptions.
func (h *Hub) Connect(opts ...nats.Option) (*nats.Conn, error) {
	if h.srv == nil {
		all := append([]nats.Option{nats.MaxReconnects(-1)}, h.cfg.ExternalOptions...)
		return nats.Connect(h.cfg.ExternalURL, append(all, opts...)...)
	}
	all := append([]nats.Option{nats.InProcessServer(h.srv), nats.UserInfo(CloudUser, h.cloudPW)}, opts...)
	nc, err := nats.Connect("", all...)
	if err != nil {
		return nil, fmt.Errorf("natshub: connect: %w", err)
	}
	return nc, nil
}

// ErrExternal reports an operation that only an embedded hub supports.
var ErrExternal = errors.New("natshub: not supported with an external cluster")

// ReloadCredentials reads the credential store again and applies it to the running
// embedded server without a restart: new garages can connect, and the leaf
// connections of garages whose credentials were rotated or removed are closed (a
// configuration reload alone re-checks clients, not leaf connections). With an
// external cluster it returns ErrExternal: copy users.conf to the nodes and reload
// them (nats-server --signal reload), then kick the changed garages' leaf connections.
func (h *Hub) ReloadCredentials() error {
	if h.srv == nil {
		return ErrExternal
	}
	h.reloadMu.Lock()
	defer h.reloadMu.Unlock()
	creds, err := LoadCredentials(h.cfg.Dir)
	if err != nil {
		return err
	}
	if creds.CloudPassword != h.cloudPW {
		return errors.New("natshub: the cloud password changed in the store; restart the hub")
	}
	if err := h.srv.ReloadOptions(h.serverOptions(creds)); err != nil {
		return fmt.Errorf("natshub: reload: %w", err)
	}
	changed := map[string]bool{}
	for id, old := range h.creds.Facilities {
		if cur, ok := creds.Facilities[id]; !ok || cur.PasswordHash != old.PasswordHash {
			changed[old.User] = true
		}
	}
	h.creds = creds
	kicked := h.kickLeafs(changed)
	h.log.Info("credentials reloaded", "facilities", len(creds.Facilities), "revoked", len(changed), "leafs_closed", kicked)
	return nil
}

// kickLeafs closes the leaf connections authenticated as one of users.
func (h *Hub) kickLeafs(users map[string]bool) int {
	if len(users) == 0 {
		return 0
	}
	lz, err := h.srv.Leafz(nil)
	if err != nil {
		h.log.Warn("listing leaf connections", "err", err)
		return 0
	}
	n := 0
	for _, l := range lz.Leafs {
		c := h.srv.GetLeafNode(l.ID)
		if c == nil || !users[c.GetOpts().Username] {
			continue
		}
		if err := h.srv.DisconnectClientByID(l.ID); err == nil {
			n++
			h.log.Info("closed the leaf connection of revoked credentials", "user", c.GetOpts().Username, "remote", l.Name)
		}
	}
	return n
}

// AddFacility issues (or rotates) facility id's credentials in the hub's store and
// applies them; see the function AddFacility.
func (h *Hub) AddFacility(id string) (user, secret string, err error) {
	if h.cfg.Dir == "" {
		return "", "", errors.New("natshub: no hub directory")
	}
	user, secret, err = AddFacility(h.cfg.Dir, id)
	if err != nil {
		return "", "", err
	}
	if h.srv != nil {
		err = h.ReloadCredentials()
	}
	return user, secret, err
}

// Shutdown closes the hub's connection and, embedded, stops the server and waits
// until its store is released.
func (h *Hub) Shutdown() {
	h.stopOnce.Do(func() {
		close(h.stopped)
		if h.nc != nil {
			_ = h.nc.FlushTimeout(time.Second) // acknowledgements still buffered
			h.nc.Close()
		}
		if h.srv != nil {
			h.srv.Shutdown()
			h.srv.WaitForShutdown()
		}
	})
}

// Stats are the hub's counters since Start.
type Stats struct {
	// Batches is how many batches Consume passed to Ingest successfully.
	Batches uint64
	// Applied and Duplicates sum what Ingest reported.
	Applied, Duplicates uint64
	// Invalid counts messages dropped by Consume: undecodable, or forged (their
	// envelope's facility is not the subject's).
	Invalid uint64
	// IngestErrors counts failed Ingest calls (their messages are redelivered).
	IngestErrors uint64
	// ResendRequests counts resend requests a garage answered; ResendFailures those
	// that failed (garage offline, timeout, error), to be retried.
	ResendRequests, ResendFailures uint64
}

type counters struct {
	batches, applied, duplicates, invalid, ingestErrors, resendOK, resendFail atomic.Uint64
}

// Stats reports the hub's counters.
func (h *Hub) Stats() Stats {
	c := &h.stats
	return Stats{
		Batches: c.batches.Load(), Applied: c.applied.Load(), Duplicates: c.duplicates.Load(),
		Invalid: c.invalid.Load(), IngestErrors: c.ingestErrors.Load(),
		ResendRequests: c.resendOK.Load(), ResendFailures: c.resendFail.Load(),
	}
}

func hostForURL(h string) string {
	if h == "" || h == "0.0.0.0" || h == "::" {
		return "127.0.0.1"
	}
	return h
}

func isLoopback(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// serverLog adapts slog to nats-server's Logger. A server "fatal" is logged as an
// error and remembered for Start's error: the library must never exit the process.
type serverLog struct {
	log *slog.Logger

	mu       sync.Mutex
	firstErr string
}

var _ server.Logger = (*serverLog)(nil)

func (l *serverLog) fatal() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.firstErr
}

// Noticef implements server.Logger.
func (l *serverLog) Noticef(format string, v ...any) { l.log.Info(fmt.Sprintf(format, v...)) }

// Warnf implements server.Logger.
func (l *serverLog) Warnf(format string, v ...any) { l.log.Warn(fmt.Sprintf(format, v...)) }

// Fatalf implements server.Logger.
func (l *serverLog) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.mu.Lock()
	if l.firstErr == "" {
		l.firstErr = msg
	}
	l.mu.Unlock()
	l.log.Error(msg, "fatal", true)
}

// Errorf implements server.Logger.
func (l *serverLog) Errorf(format string, v ...any) { l.log.Error(fmt.Sprintf(format, v...)) }

// Debugf implements server.Logger.
func (l *serverLog) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }

// Tracef implements server.Logger.
func (l *serverLog) Tracef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
