// Command gatehouse-edge runs one garage: its lanes, devices, occupancy, sessions and
// fees, from a facility file and a BoltDB data directory, with no network needed.
//
//	gatehouse-edge run --config garage.yaml --data /var/lib/gatehouse [--hub-credentials garage.json]
//	gatehouse-edge check-config garage.yaml
//	gatehouse-edge verify --config garage.yaml --data /var/lib/gatehouse
//	gatehouse-edge backup [--data DIR | --api URL] FILE
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/edge/boltstore"
	"github.com/gatehouse-parking/gatehouse/edge/config"
	"github.com/gatehouse-parking/gatehouse/edge/httpapi"
	"github.com/gatehouse-parking/gatehouse/edge/inmem"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse-edge:", err)
		os.Exit(1)
	}
}

const usage = `usage: gatehouse-edge <command> [flags]

commands:
  run            run the garage (default)
  check-config   validate a facility file and list every problem
  verify         check that the stored state equals the replayed outbox
  backup FILE    write a consistent copy of the database to FILE
  version        print the version
`

// version is set by the linker.
var version = "dev"

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return runGarage(ctx, args, getenv, stdout, stderr)
	case "check-config":
		return checkConfig(args, stdout)
	case "verify":
		return verify(args, getenv, stdout)
	case "backup":
		return backup(ctx, args, getenv, stdout)
	case "version":
		fmt.Fprintln(stdout, "gatehouse-edge", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

// env returns getenv(key) or def.
func env(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

type runFlags struct {
	config, data, listen, tokens, logFormat string
	mqttBroker, profiles                    string
	mqttPort                                int
	traffic                                 float64
	dwell, travel, pass                     time.Duration
	noSync                                  bool
	hubCredentials, hubCA                   string
	hubDrain                                time.Duration
}

func parseRunFlags(args []string, getenv func(string) string, stderr io.Writer) (*runFlags, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f runFlags
	fs.StringVar(&f.config, "config", env(getenv, "GATEHOUSE_CONFIG", "/etc/gatehouse/garage.yaml"), "facility file (GATEHOUSE_CONFIG)")
	fs.StringVar(&f.data, "data", env(getenv, "GATEHOUSE_DATA", "/var/lib/gatehouse"), "data directory (GATEHOUSE_DATA)")
	fs.StringVar(&f.listen, "listen", env(getenv, "GATEHOUSE_LISTEN", "127.0.0.1:8080"), "local API address (GATEHOUSE_LISTEN)")
	fs.StringVar(&f.tokens, "operator-tokens", getenv("GATEHOUSE_OPERATOR_TOKENS"), "operator tokens as name:token,name:token (GATEHOUSE_OPERATOR_TOKENS)")
	fs.StringVar(&f.logFormat, "log-format", env(getenv, "GATEHOUSE_LOG_FORMAT", "text"), "log format: text or json")
	fs.Float64Var(&f.traffic, "traffic", 0, "drive simulated cars through in-memory devices at this many arrivals per minute per entry lane (demo and tests)")
	fs.DurationVar(&f.dwell, "dwell", 2*time.Minute, "mean stay of simulated cars")
	fs.DurationVar(&f.travel, "travel", time.Second, "arm travel time of in-memory barriers")
	fs.DurationVar(&f.pass, "pass", 300*time.Millisecond, "how long a simulated car takes to cross the safety loop")
	fs.BoolVar(&f.noSync, "unsafe-no-fsync", false, "skip fsync (benchmarks only: a power cut loses data)")
	fs.StringVar(&f.mqttBroker, "mqtt-broker", getenv("GATEHOUSE_MQTT_BROKER"), "external MQTT broker for wireless sensors, e.g. tcp://127.0.0.1:1883; empty: the edge's own listener (GATEHOUSE_MQTT_BROKER)")
	fs.IntVar(&f.mqttPort, "mqtt-port", 1883, "port of the edge's own MQTT listener on 127.0.0.1 when no broker is given (-1: any)")
	fs.StringVar(&f.profiles, "profiles", getenv("GATEHOUSE_PROFILES"), "directory of extra Modbus device profiles (GATEHOUSE_PROFILES)")
	fs.StringVar(&f.hubCredentials, "hub-credentials", getenv("GATEHOUSE_HUB_CREDENTIALS"), "credentials file issued by `gatehouse-cloud facility add`: sync with the cloud hub; empty: the garage runs alone (GATEHOUSE_HUB_CREDENTIALS)")
	fs.StringVar(&f.hubCA, "hub-ca", getenv("GATEHOUSE_HUB_CA"), "PEM file of the CA that signed the hub's TLS certificate (a private CA); empty: the system's roots (GATEHOUSE_HUB_CA)")
	fs.DurationVar(&f.hubDrain, "hub-drain", 5*time.Second, "on shutdown, wait up to this long for the uplink to ship what is left while the hub is connected")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return &f, nil
}

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

func runGarage(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fl, err := parseRunFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(fl.logFormat, stderr)
	fac, err := config.Load(fl.config)
	if err != nil {
		return err
	}
	tokens, err := parseTokens(fl.tokens)
	if err != nil {
		return err
	}
	var hub *hubCredentials
	if fl.hubCredentials != "" {
		if hub, err = loadHubCredentials(fl.hubCredentials, fac.ID, log); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(fl.data, 0o700); err != nil {
		return err
	}
	store, err := boltstore.Open(filepath.Join(fl.data, "garage.db"), fac.ID, &boltstore.Options{NoSync: fl.noSync})
	if err != nil {
		return err
	}
	defer store.Close()

	bus, err := startBus(fac, fl, hub, log)
	if err != nil {
		return err
	}
	if bus != nil {
		defer bus.Shutdown()
	}
	sink := &lateSink{}
	devs, err := buildDevices(fac, sink, deviceOptions{data: fl.data, mqttBroker: fl.mqttBroker, profiles: fl.profiles, travel: fl.travel, bus: bus}, log)
	if err != nil {
		return err
	}
	defer devs.close()
	g, err := edge.Open(edge.Config{Facility: fac, Store: store, Barriers: devs.barriers, Terminals: devs.terminals, Logger: log})
	if err != nil {
		return err
	}
	sink.g.Store(g)
	var link *hubLink
	if hub != nil {
		if link, err = newHubLink(bus, hub, g, store, log); err != nil {
			return err
		}
		defer link.close()
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if link != nil {
		link.register(reg)
	}
	hc := httpapi.Config{Garage: g, Store: store, Logger: log, OperatorTokens: tokens, Registry: reg, Ready: g.Err,
		Devices: devs.status, PlateReads: devs.plateReads, Mount: devs.mount}
	if devs.simulated {
		hc.Simulator = simulator(g, fl.pass)
	}
	app := httpapi.New(hc)
	ln, err := net.Listen("tcp", fl.listen)
	if err != nil {
		return err
	}
	log.Info("gatehouse-edge started", "facility", fac.ID, "api", "http://"+ln.Addr().String(), "seq", g.Seq(), "version", version)
	if hub != nil {
		log.Info("syncing with the cloud hub", "hub", hub.URL, "user", hub.User)
	}
	fmt.Fprintf(stdout, "gatehouse-edge %s: facility %s, API http://%s\n", version, fac.ID, ln.Addr())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 4)
	go func() { errc <- g.Run(ctx) }()
	go func() { errc <- httpapi.Serve(ctx, app, ln) }()
	go func() {
		if err := devs.run(ctx); err != nil {
			errc <- fmt.Errorf("devices: %w", err)
		}
	}()
	if fl.traffic > 0 {
		tr := &inmem.Traffic{Garage: g, PerMinute: fl.traffic, Dwell: fl.dwell, Pass: fl.pass, Logger: log}
		go func() { tr.Run(ctx); errc <- nil }()
	}
	// The link outlives ctx by the drain below.
	linkCtx, stopLink := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLink()
	linkDone := make(chan struct{})
	if link != nil {
		go func() { link.run(linkCtx); close(linkDone) }()
	} else {
		close(linkDone)
	}
	err = <-errc
	cancel()
	if link != nil {
		if err == nil || errors.Is(err, context.Canceled) {
			if g.Sync() == nil {
				link.drain(fl.hubDrain)
			}
		}
		stopLink()
		<-linkDone
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return g.Sync()
}

func parseTokens(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		name, tok, ok := strings.Cut(pair, ":")
		if !ok || name == "" || len(tok) < 16 {
			return nil, fmt.Errorf("operator token %q: want name:token with a token of at least 16 characters", name)
		}
		out[tok] = name
	}
	return out, nil
}

func checkConfig(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: gatehouse-edge check-config FILE")
	}
	f, err := config.Load(args[0])
	if err != nil {
		return err
	}
	spots := 0
	for _, z := range f.Zones {
		spots += len(z.Spots)
	}
	fmt.Fprintf(stdout, "%s: ok: facility %s, %d levels, %d zones, %d spots, %d lanes, %d devices\n",
		args[0], f.ID, len(f.Levels), len(f.Zones), spots, len(f.Lanes), len(f.Devices))
	return nil
}

func verify(args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	cfgPath := fs.String("config", env(getenv, "GATEHOUSE_CONFIG", "/etc/gatehouse/garage.yaml"), "facility file")
	data := fs.String("data", env(getenv, "GATEHOUSE_DATA", "/var/lib/gatehouse"), "data directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	fac, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	store, err := boltstore.Open(filepath.Join(*data, "garage.db"), fac.ID, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	events, err := store.Events(0, 0)
	if err != nil {
		return err
	}
	for i, ev := range events {
		if ev.Seq != uint64(i+1) {
			return fmt.Errorf("outbox gap: position %d holds seq %d", i+1, ev.Seq)
		}
	}
	replayed, err := edge.Replay(fac, events)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	snap, err := store.Load()
	if err != nil {
		return err
	}
	stored, err := edge.Restore(fac, snap)
	if err != nil {
		return err
	}
	if d := edge.Diff(stored, replayed); len(d) > 0 {
		return fmt.Errorf("stored state and outbox disagree:\n  %s", strings.Join(d, "\n  "))
	}
	occ := 0
	for _, z := range stored.Zones {
		occ += z.Occupied
	}
	fmt.Fprintf(stdout, "ok: %d events, gapless; %d open sessions; %d vehicles counted; state equals replayed outbox\n",
		len(events), len(stored.Sessions), occ)
	return nil
}

func backup(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	data := fs.String("data", env(getenv, "GATEHOUSE_DATA", "/var/lib/gatehouse"), "data directory (used when the garage is not running)")
	api := fs.String("api", env(getenv, "GATEHOUSE_API", "http://127.0.0.1:8080"), "API of the running garage")
	token := fs.String("token", getenv("GATEHOUSE_OPERATOR_TOKEN"), "operator token for the API (GATEHOUSE_OPERATOR_TOKEN)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: gatehouse-edge backup [--data DIR] [--api URL --token T] FILE")
	}
	dst := fs.Arg(0)
	// A running garage holds the file's lock: then ask it for the copy.
	store, err := boltstore.Open(filepath.Join(*data, "garage.db"), "", &boltstore.Options{Timeout: 200 * time.Millisecond, ReadOnly: true})
	if err == nil {
		defer store.Close()
		n, err := store.BackupFile(dst)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "backup: %d bytes from %s to %s\n", n, *data, dst)
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimRight(*api, "/")+"/v1/backup", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+*token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("database busy and API unreachable: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("backup via API: %s: %s", resp.Status, b)
	}
	n, err := boltstore.WriteFileAtomic(dst, func(w io.Writer) (int64, error) { return io.Copy(w, resp.Body) })
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup: %d bytes from %s to %s\n", n, *api, dst)
	return nil
}
