package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud/auth"
	"github.com/gatehouse-parking/gatehouse/cloud/httpapi"
	"github.com/gatehouse-parking/gatehouse/cloud/natshub"
	"github.com/gatehouse-parking/gatehouse/cloud/payment"
	"github.com/gatehouse-parking/gatehouse/cloud/payment/inproc"
	"github.com/gatehouse-parking/gatehouse/cloud/payment/stripe"
	"github.com/gatehouse-parking/gatehouse/cloud/pgtest"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

type runFlags struct {
	dataDir       string
	dataDirGiven  bool
	databaseURL   string
	listen        string
	natsURL       string
	natsCA        string
	natsListen    string
	natsReplicas  int
	leafListen    string
	leafAdvertise string
	leafCert      string
	leafKey       string
	logFormat     string
	trustProxy    bool
	stripeKey     string
	stripeHook    string
	stripeURL     string
}

func parseRunFlags(args []string, getenv func(string) string, stderr io.Writer) (*runFlags, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f runFlags
	dir, given := dataDirFlag(fs, getenv)
	fs.StringVar(&f.databaseURL, "database-url", getenv("GATEHOUSE_DATABASE_URL"), "PostgreSQL DSN; empty: a throwaway PostgreSQL from the system's binaries, kept in <data-dir>/pg when --data-dir is given, else in a temporary directory removed on exit (GATEHOUSE_DATABASE_URL)")
	fs.StringVar(&f.listen, "listen", env(getenv, "GATEHOUSE_CLOUD_LISTEN", "127.0.0.1:8070"), "HTTP address: probes, metrics, facility status; port 0 picks one (GATEHOUSE_CLOUD_LISTEN)")
	fs.StringVar(&f.natsURL, "nats-url", getenv("GATEHOUSE_NATS_URL"), "external NATS cluster (JetStream domain \"hub\"), authenticated as gh-cloud with the password of <data-dir>/hub/credentials.json; empty: an embedded hub in <data-dir>/hub (GATEHOUSE_NATS_URL)")
	fs.StringVar(&f.natsCA, "nats-ca", getenv("GATEHOUSE_NATS_CA"), "CA certificate file for a tls:// --nats-url (GATEHOUSE_NATS_CA)")
	fs.IntVar(&f.natsReplicas, "nats-replicas", 0, "stream replicas; 0: 1 embedded, 3 with --nats-url")
	fs.StringVar(&f.natsListen, "nats-listen", env(getenv, "GATEHOUSE_NATS_LISTEN", "127.0.0.1:4222"), "embedded hub: client listener for cloud processes; port 0 picks one (GATEHOUSE_NATS_LISTEN)")
	fs.StringVar(&f.leafListen, "leaf-listen", env(getenv, "GATEHOUSE_LEAF_LISTEN", "127.0.0.1:7422"), "embedded hub: leafnode listener garages connect to; 0.0.0.0:7422 with --leaf-tls-* in production; port 0 picks one (GATEHOUSE_LEAF_LISTEN)")
	fs.StringVar(&f.leafAdvertise, "leaf-advertise", getenv("GATEHOUSE_LEAF_ADVERTISE"), "URL garages dial, written into issued credentials, e.g. tls://hub.example.com:7422; empty: the leaf listener's own URL (GATEHOUSE_LEAF_ADVERTISE)")
	fs.StringVar(&f.leafCert, "leaf-tls-cert", getenv("GATEHOUSE_LEAF_TLS_CERT"), "embedded hub: TLS certificate of the leafnode listener (GATEHOUSE_LEAF_TLS_CERT)")
	fs.StringVar(&f.leafKey, "leaf-tls-key", getenv("GATEHOUSE_LEAF_TLS_KEY"), "embedded hub: TLS key of the leafnode listener (GATEHOUSE_LEAF_TLS_KEY)")
	fs.StringVar(&f.stripeKey, "stripe-key", getenv("GATEHOUSE_STRIPE_KEY"), "Stripe secret key: payments through Stripe; empty: the built-in test provider (no money moves) (GATEHOUSE_STRIPE_KEY)")
	fs.StringVar(&f.stripeHook, "stripe-webhook-secret", getenv("GATEHOUSE_STRIPE_WEBHOOK_SECRET"), "signing secret of the Stripe webhook endpoint /v1/webhooks/stripe (GATEHOUSE_STRIPE_WEBHOOK_SECRET)")
	fs.StringVar(&f.stripeURL, "stripe-url", getenv("GATEHOUSE_STRIPE_URL"), "Stripe API base URL; empty: Stripe's (tests: stripe-mock) (GATEHOUSE_STRIPE_URL)")
	fs.BoolVar(&f.trustProxy, "trust-proxy", getenv("GATEHOUSE_TRUST_PROXY") == "1", "take clients' addresses (rate limits, audit) from X-Forwarded-For: only behind a proxy that sets it (GATEHOUSE_TRUST_PROXY=1)")
	fs.StringVar(&f.logFormat, "log-format", env(getenv, "GATEHOUSE_LOG_FORMAT", "text"), "log format: text or json")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("run: unexpected arguments %q", fs.Args())
	}
	f.dataDir, f.dataDirGiven = *dir, given()
	if (f.leafCert == "") != (f.leafKey == "") {
		return nil, errors.New("run: --leaf-tls-cert and --leaf-tls-key go together")
	}
	return &f, nil
}

// reloadSubject is where a running embedded hub takes requests to reload its
// credential store, from `gatehouse-cloud facility add` in another process. Only the
// cloud user may publish there.
const reloadSubject = "gh.cloud.credentials.reload"

func runCloud(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fl, err := parseRunFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(fl.logFormat, stderr)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dataDir, err := filepath.Abs(fl.dataDir)
	if err != nil {
		return err
	}
	// Searchable, not readable, by others: a throwaway PostgreSQL kept in it runs as
	// the postgres user when we are root.
	if err := os.MkdirAll(dataDir, 0o711); err != nil {
		return err
	}
	hubDir := filepath.Join(dataDir, "hub")

	dsn, pgNote, stopPG, err := openDatabase(ctx, fl.databaseURL, dataDir, fl.dataDirGiven, log)
	if err != nil {
		return err
	}
	defer stopPG()
	db, err := postgres.Open(ctx, dsn, log.With("component", "postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	var empty bool
	if err := db.Pool().QueryRow(ctx, "SELECT NOT EXISTS (SELECT 1 FROM facilities)").Scan(&empty); err != nil {
		return fmt.Errorf("check the database: %w", err)
	}

	hub, err := startHub(fl, hubDir, log)
	if err != nil {
		return err
	}
	defer hub.Shutdown()
	if empty {
		// A new database (or a throwaway one) holds none of what the hub's consumer
		// already acknowledged: read the stream again from its start (30 days kept).
		if err := hub.JetStream().DeleteConsumer(ctx, natshub.EventsStream, ingestDurable); err == nil {
			log.Info("the database holds no events: the ingest reads the hub's stream again from its start")
		} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("reset the ingest consumer: %w", err)
		}
	}
	embedded := fl.natsURL == ""
	if embedded {
		reload := func(why string) error {
			err := hub.ReloadCredentials()
			if err != nil {
				log.Error("reload of the hub's credentials failed", "why", why, "err", err)
			}
			return err
		}
		sub, err := hub.Conn().Subscribe(reloadSubject, func(m *nats.Msg) {
			if err := reload("facility add"); err != nil {
				m.Respond([]byte("error: " + err.Error()))
				return
			}
			m.Respond([]byte("ok"))
		})
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", reloadSubject, err)
		}
		defer sub.Unsubscribe()
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-hup:
					reload("SIGHUP")
				}
			}
		}()
	}

	accounts, err := auth.New(ctx, db, auth.Options{Logger: log.With("component", "auth")})
	if err != nil {
		return err
	}
	adminNote, err := ensureAdmin(ctx, db, accounts, dataDir)
	if err != nil {
		return err
	}

	ing := &ingester{db: db, log: log.With("component", "ingest")}
	ln, err := net.Listen("tcp", fl.listen)
	if err != nil {
		return err
	}
	api := "http://" + ln.Addr().String()
	hapi := hubAPI{hub}
	hub.Presence("") // track the garages' leaf connections from the start
	provider, payNote, err := paymentProvider(fl, log)
	if err != nil {
		return err
	}
	app := newAPI(db, hub, ing, accounts, provider, fl.trustProxy, log)

	info := runInfo{PID: os.Getpid(), API: api, NATS: hub.ClientURL(), Leaf: hub.LeafURL(), Embedded: embedded}
	if fl.databaseURL == "" {
		info.DatabaseURL = dsn // the throwaway server's, for `user add` and friends
	}
	if err := writeRunInfo(dataDir, info); err != nil {
		return err
	}
	defer removeRunInfo(dataDir)

	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Go(func() {
		if err := hub.Consume(ctx, ing, natshub.ConsumeOptions{Durable: ingestDurable}); err != nil {
			errc <- fmt.Errorf("ingest: %w", err)
		}
	})
	wg.Go(func() {
		if err := httpapi.Serve(ctx, app, ln); err != nil {
			errc <- fmt.Errorf("http: %w", err)
		}
	})
	wg.Go(func() { httpapi.RepublishLayouts(ctx, db, hapi, 30*time.Second, log.With("component", "layout")) })
	wg.Go(func() {
		httpapi.RunReservationSweeper(ctx, db, hapi, 15*time.Second, log.With("component", "reservations"))
	})
	wg.Go(func() { httpapi.RepublishPrepaid(ctx, db, hapi, 0, 10*time.Second, log.With("component", "prepaid")) })
	wg.Go(func() {
		httpapi.RetryConfirmations(ctx, db, func(ctx context.Context, p postgres.Payment) error {
			_, err := db.ConfirmReservation(ctx, p.ReservationID, p.ID)
			return err
		}, 30*time.Second, log.With("component", "payments"))
	})
	wg.Go(func() { httpapi.RunRefunds(ctx, db, provider, time.Minute, log.With("component", "refunds")) })

	log.Info("gatehouse-cloud started", "api", api, "nats", hub.ClientURL(), "leaf", hub.LeafURL(), "embedded_hub", embedded,
		"data", dataDir, "version", version)
	hubNote := "embedded hub, " + hubDir
	if !embedded {
		hubNote = "external cluster"
	}
	fmt.Fprintf(stdout, `gatehouse-cloud %s
  api       %s   (/v1, OpenAPI at /v1/openapi.json; /healthz /readyz /metrics)
  admin     %s
  payments  %s
  leaf      %s   (garages connect here; written into issued credentials)
  nats      %s   (%s; user %s)
  postgres  %s
  data      %s
issue a garage's credentials: gatehouse-cloud facility add ID --data-dir %s
`, version, api, adminNote, payNote, orNone(hub.LeafURL()), hub.ClientURL(), hubNote, natshub.CloudUser, pgNote, dataDir, dataDir)

	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	wg.Wait()
	log.Info("gatehouse-cloud stopped")
	return err
}

func orNone(s string) string {
	if s == "" {
		return "(none: set --leaf-advertise)"
	}
	return s
}

// paymentProvider is Stripe with --stripe-key, else the built-in test provider.
func paymentProvider(fl *runFlags, log *slog.Logger) (payment.Provider, string, error) {
	if fl.stripeKey == "" {
		return inproc.New(), "built-in test provider (no money moves; --stripe-key for Stripe)", nil
	}
	p, err := stripe.New(stripe.Config{Key: fl.stripeKey, WebhookSecret: fl.stripeHook, URL: fl.stripeURL, Logger: log.With("component", "stripe")})
	if err != nil {
		return nil, "", err
	}
	note := "Stripe"
	if fl.stripeHook == "" {
		note += " (no --stripe-webhook-secret: webhooks are refused)"
	}
	return p, note, nil
}

// ingestDurable is the hub's durable consumer that feeds PostgreSQL.
const ingestDurable = "gh-ingest"

// openDatabase returns the DSN to use, a line describing it, and a function that
// stops the throwaway server it may have started.
func openDatabase(ctx context.Context, dsn, dataDir string, keep bool, log *slog.Logger) (string, string, func(), error) {
	if dsn != "" {
		note := "(DSN not shown)"
		if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
			note = u.Redacted()
		}
		return dsn, note, func() {}, nil
	}
	opts := pgtest.Options{Logger: log.With("component", "pgtest")}
	where := "throwaway, removed on exit"
	if keep {
		opts.DataDir = filepath.Join(dataDir, "pg")
		where = "throwaway, kept in " + opts.DataDir
	} else {
		opts.NoFsync = true // removed on exit anyway
	}
	c, err := pgtest.Start(ctx, opts)
	if err != nil {
		return "", "", nil, fmt.Errorf("no --database-url, and a throwaway PostgreSQL did not start: %w", err)
	}
	return c.URL(), c.URL() + "   (" + where + ")", func() { c.Stop() }, nil
}

// startHub starts the embedded hub in hubDir, or connects to the external cluster.
func startHub(fl *runFlags, hubDir string, log *slog.Logger) (*natshub.Hub, error) {
	cfg := natshub.Config{Dir: hubDir, LeafAdvertise: fl.leafAdvertise, Replicas: fl.natsReplicas, Logger: log}
	if fl.natsURL != "" {
		creds, err := cloudStore(hubDir, true)
		if err != nil {
			return nil, err
		}
		if fl.leafAdvertise != "" && creds.LeafURL != fl.leafAdvertise {
			creds.LeafURL = fl.leafAdvertise
			if err := creds.Save(hubDir); err != nil {
				return nil, err
			}
		}
		if creds.LeafURL == "" {
			log.Warn("no --leaf-advertise: credentials issued for garages will have no hub URL")
		}
		cfg.ExternalURL = fl.natsURL
		cfg.ExternalOptions = cloudAuth(creds, fl.natsCA)
		h, err := natshub.Start(cfg)
		if err != nil {
			return nil, fmt.Errorf("%w (the cluster must include %s, generated from the credential store)", err, filepath.Join(hubDir, natshub.UsersConfFile))
		}
		return h, nil
	}
	var err error
	if cfg.Host, cfg.Port, err = listenAddr(fl.natsListen); err != nil {
		return nil, fmt.Errorf("--nats-listen: %w", err)
	}
	if cfg.LeafHost, cfg.LeafPort, err = listenAddr(fl.leafListen); err != nil {
		return nil, fmt.Errorf("--leaf-listen: %w", err)
	}
	if fl.leafCert != "" {
		cert, err := tls.LoadX509KeyPair(fl.leafCert, fl.leafKey)
		if err != nil {
			return nil, fmt.Errorf("leaf TLS: %w", err)
		}
		cfg.LeafTLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return natshub.Start(cfg)
}

// listenAddr splits host:port for natshub, where port -1 picks a free one.
func listenAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	if port == 0 {
		port = -1
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// cloudStore loads the hub's credential store in hubDir. With create it saves a new
// store (a fresh cloud password, and users.conf for an external cluster) when there is
// none.
func cloudStore(hubDir string, create bool) (*natshub.Credentials, error) {
	_, err := os.Stat(filepath.Join(hubDir, natshub.CredentialsFile))
	missing := errors.Is(err, os.ErrNotExist)
	switch {
	case missing && !create:
		return nil, fmt.Errorf("no credential store in %s: is this gatehouse-cloud's data directory (--data-dir)?", hubDir)
	case err != nil && !missing:
		return nil, err
	}
	creds, err := natshub.LoadCredentials(hubDir)
	if err != nil {
		return nil, err
	}
	if missing {
		if err := creds.Save(hubDir); err != nil {
			return nil, err
		}
	}
	return creds, nil
}

// cloudAuth are the connection options of a cloud process for an external hub.
func cloudAuth(creds *natshub.Credentials, ca string) []nats.Option {
	opts := []nats.Option{nats.UserInfo(natshub.CloudUser, creds.CloudPassword)}
	if ca != "" {
		opts = append(opts, nats.RootCAs(ca))
	}
	return opts
}

// ingester applies the hub's batches to PostgreSQL.
type ingester struct {
	db   *postgres.DB
	log  *slog.Logger
	gaps atomic.Uint64
}

var _ natshub.Ingester = (*ingester)(nil)

// Ingest implements natshub.Ingester with postgres.DB.Ingest.
func (i *ingester) Ingest(ctx context.Context, envs []*gh.Envelope) (applied, duplicates int, gaps []natshub.Gap, err error) {
	res, err := i.db.Ingest(ctx, envs)
	if err != nil {
		return 0, 0, nil, err
	}
	for _, r := range res.Rejected {
		i.log.Warn("invalid event dropped", "facility", r.Facility, "seq", r.Seq, "err", r.Err)
	}
	if res.Conflicts > 0 {
		i.log.Warn("events reusing stored seqs with other event ids; the stored ones win", "conflicts", res.Conflicts)
	}
	for _, g := range res.Gaps {
		gaps = append(gaps, natshub.Gap{Facility: g.Facility, From: g.From, To: g.To})
	}
	i.gaps.Add(uint64(len(gaps)))
	return res.Applied, res.Duplicates, gaps, nil
}
