// Package natsbus runs the edge controller's local bus: an embedded nats-server with
// JetStream and, optionally, an MQTT listener. Wireless spot sensors and LoRaWAN
// network servers publish MQTT to it directly, so a garage needs no separate broker;
// an MQTT publish to topic sensors/L1/S042 is seen by NATS clients as subject
// sensors.L1.S042.
//
// The server's JetStream store (StoreDir) holds the MQTT listener's session state
// (persistent sessions, QoS 1 messages awaiting an offline subscriber) and must stay
// the same across restarts, as must the server name.
package natsbus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config configures the embedded server.
type Config struct {
	// Name is the server name, e.g. "gatehouse-<facility>". It must be stable across
	// restarts: JetStream state is kept under it. Required; no spaces.
	Name string
	// StoreDir is the JetStream store directory, stable across restarts. Required.
	StoreDir string
	// Host is the address both listeners bind to; empty means 127.0.0.1.
	Host string
	// Port is the NATS client port: -1 picks a free port, 0 means the default 4222.
	Port int
	// MQTTPort is the MQTT listener's port: 0 means no MQTT listener, -1 picks a free
	// port. The listener has no authentication yet, so keep Host on loopback or a
	// trusted sensor network.
	MQTTPort int
	// JetStreamDomain is this server's JetStream domain (e.g. the facility id), so
	// that clients can address it apart from the hub's once the bus is a leaf node.
	JetStreamDomain string
	// Logger receives the server's log; nil discards it.
	Logger *slog.Logger
	// HubURL, if set, makes the server a leaf node of the cloud hub: a nats-leaf:// or
	// tls:// URL with the garage's user and password in it, as issued by
	// `gatehouse-cloud facility add` (docs/nats-hub.md). The leaf reconnects by itself.
	HubURL string
	// HubCA, if set, is a PEM file of the CA certificates the hub's TLS certificate
	// must chain to, instead of the system's roots (a private CA). It makes the leaf
	// connection use TLS whatever the URL's scheme; a hub whose certificate does not
	// chain to it, or does not name the URL's host, is refused.
	HubCA string
}

// Bus is a running embedded NATS server.
type Bus struct {
	srv      *server.Server
	mqttAddr string
	log      *serverLog
}

// startTimeout bounds how long Start waits for the listeners and JetStream.
const startTimeout = 10 * time.Second

// Start starts the server and waits until it accepts clients on every listener and
// JetStream is enabled.
func Start(cfg Config) (*Bus, error) {
	if cfg.Name == "" || strings.ContainsAny(cfg.Name, " \t\n") {
		return nil, fmt.Errorf("natsbus: server name %q: want a non-empty name without spaces", cfg.Name)
	}
	if cfg.StoreDir == "" {
		return nil, errors.New("natsbus: no JetStream store directory")
	}
	if cfg.MQTTPort < -1 || cfg.Port < -1 {
		return nil, fmt.Errorf("natsbus: bad port (nats %d, mqtt %d)", cfg.Port, cfg.MQTTPort)
	}
	host := cfg.Host
	if host == "" {
		host = "127.0.0.1"
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts := &server.Options{
		ServerName:      cfg.Name,
		Host:            host,
		Port:            cfg.Port,
		JetStream:       true,
		StoreDir:        cfg.StoreDir,
		JetStreamDomain: cfg.JetStreamDomain,
		// The edge binary owns the process's signals.
		NoSigs: true,
	}
	if cfg.MQTTPort != 0 {
		opts.MQTT.Host = host
		opts.MQTT.Port = cfg.MQTTPort
	}
	if cfg.HubURL != "" {
		u, err := url.Parse(cfg.HubURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("natsbus: hub URL %q: want nats-leaf://user:password@host:port", redact(cfg.HubURL))
		}
		remote := &server.RemoteLeafOpts{URLs: []*url.URL{u}}
		if u.Scheme == "tls" || cfg.HubCA != "" {
			tc, err := hubTLS(cfg.HubCA)
			if err != nil {
				return nil, err
			}
			remote.TLS, remote.TLSConfig = true, tc
		}
		opts.LeafNode.ReconnectInterval = 2 * time.Second
		opts.LeafNode.Remotes = []*server.RemoteLeafOpts{remote}
	} else if cfg.HubCA != "" {
		return nil, errors.New("natsbus: a hub CA without a hub URL")
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsbus: %w", err)
	}
	sl := &serverLog{log: logger.With("component", "nats-server"), hubCA: cfg.HubCA}
	srv.SetLoggerV2(sl, logger.Enabled(context.Background(), slog.LevelDebug), false, false)
	srv.Start()
	if !srv.ReadyForConnections(startTimeout) || !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		if msg := sl.fatal(); msg != "" {
			return nil, fmt.Errorf("natsbus: server did not start: %s", msg)
		}
		return nil, errors.New("natsbus: server did not become ready")
	}
	b := &Bus{srv: srv, log: sl}
	if cfg.MQTTPort != 0 {
		// startMQTT writes the chosen port back into the options before the listener
		// is published, which ReadyForConnections has waited for.
		b.mqttAddr = net.JoinHostPort(host, strconv.Itoa(opts.MQTT.Port))
	}
	return b, nil
}

// hubTLS is the leaf connection's TLS configuration: the hub's certificate is
// verified against the CA certificates in the PEM file caFile, or the system's roots
// when caFile is empty.
func hubTLS(caFile string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return tc, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("natsbus: hub CA: %w", err)
	}
	tc.RootCAs = x509.NewCertPool()
	if !tc.RootCAs.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("natsbus: hub CA %s: no PEM certificate in it", caFile)
	}
	return tc, nil
}

// redact hides the password of a URL for error messages.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(unparsable)"
}

// LeafConnected reports whether the leaf connection to the hub is up.
func (b *Bus) LeafConnected() bool { return b.srv.NumLeafNodes() > 0 }

// ClientURL is the URL NATS clients connect to, e.g. nats://127.0.0.1:4222.
func (b *Bus) ClientURL() string { return b.srv.ClientURL() }

// MQTTAddr is the MQTT listener's host:port, or "" when there is none.
func (b *Bus) MQTTAddr() string { return b.mqttAddr }

// Ready reports whether the server accepts clients on all its listeners and has
// JetStream, waiting up to timeout.
func (b *Bus) Ready(timeout time.Duration) bool {
	return b.srv.ReadyForConnections(timeout) && b.srv.JetStreamEnabled()
}

// Shutdown stops the server, closing every client connection, and returns once it is
// down and the store is released.
func (b *Bus) Shutdown() {
	b.srv.Shutdown()
	b.srv.WaitForShutdown()
}

// serverLog adapts slog to nats-server's Logger. A server "fatal" is logged as an
// error and remembered for Start's error: the library must never exit the process.
type serverLog struct {
	log   *slog.Logger
	hubCA string // for the message of a failed TLS handshake with the hub

	mu       sync.Mutex
	firstErr string
	lastTLS  time.Time // when a failed TLS handshake with the hub was last logged
}

// tlsLogEvery is how often a failing TLS handshake with the hub is logged: the leaf
// retries every two seconds.
const tlsLogEvery = time.Minute

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

// Errorf implements server.Logger. A failed TLS handshake of the leaf connection is
// said in the operator's terms, once a minute.
func (l *serverLog) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if !strings.Contains(msg, "TLS leafnode handshake error") {
		l.log.Error(msg)
		return
	}
	l.mu.Lock()
	quiet := time.Since(l.lastTLS) < tlsLogEvery
	if !quiet {
		l.lastTLS = time.Now()
	}
	l.mu.Unlock()
	if quiet {
		l.log.Debug(msg)
		return
	}
	why := "the TLS handshake failed (does the hub's leafnode listener have TLS?)"
	if strings.Contains(msg, "x509") || strings.Contains(msg, "certificate") {
		trust := "the system's root CAs"
		if l.hubCA != "" {
			trust = "the hub CA " + l.hubCA
		}
		why = "its TLS certificate is not trusted (not signed by " + trust + ", or not for the hub URL's host)"
	}
	l.log.Error("cannot connect to the cloud hub: "+why+"; retrying, repeats are logged once a minute", "err", msg)
}

// Debugf implements server.Logger.
func (l *serverLog) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }

// Tracef implements server.Logger.
func (l *serverLog) Tracef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
