// Command gatehouse-sim is a garage in software: it reads the same facility file as
// gatehouse-edge and plays every device in it over its real protocol (Modbus TCP
// servers, serial lines on pseudo-terminals, MQTT sensors, cameras pushing to the
// edge, plain IP cameras whose snapshots the edge reads itself), with cars
// arriving, parking and leaving, and faults injected on demand.
//
//	gatehouse-sim --config deploy/garage-sim.yaml --edge http://127.0.0.1:8080 --kiosk-token T
//
// Its status API (--listen) serves the ground truth at GET /truth, the pictures of
// the cameras with protocol lpr and an http address at GET /snapshot/<device>
// (whatever host the address names; point it here), and injects faults
// at POST /faults {"device": "...", "fault": "offline|garbage|stuck|flapping", "seconds": 30};
// POST /pause {"seconds": 20} stops cars arriving and leaving for a while. It is also
// the acquirer of the exit kiosks' card terminals (POST /acquirer/authorize and
// /acquirer/capture; GET /acquirer for its counts): a fault "offline" on a
// card_terminal device takes the acquirer offline, and the kiosks approve offline
// within the garage's floor limit.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/edge/config"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/sim"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/sim/acquirersim"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/sim/camerasim"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/sim/modbussim"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/sim/mqttsim"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/sim/serialsim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse-sim:", err)
		os.Exit(1)
	}
}

func env(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gatehouse-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", env(getenv, "GATEHOUSE_CONFIG", "deploy/garage-sim.yaml"), "facility file, the same as the edge's")
	edgeURL := fs.String("edge", env(getenv, "GATEHOUSE_EDGE_URL", "http://127.0.0.1:8080"), "the edge's API: cameras push there, drivers read the lane displays there")
	token := fs.String("kiosk-token", getenv("GATEHOUSE_KIOSK_TOKEN"), "operator token of the exit kiosks' card terminals (GATEHOUSE_KIOSK_TOKEN)")
	broker := fs.String("mqtt", env(getenv, "GATEHOUSE_MQTT_BROKER", "tcp://127.0.0.1:1883"), "MQTT broker the wireless sensors publish to (the edge's own listener by default)")
	listen := fs.String("listen", "127.0.0.1:8090", "status API: GET /truth, POST /faults")
	perHour := fs.String("rate", "", "arrivals per hour per entry lane: one number, or 24 comma-separated (default: a city-centre weekday)")
	speedup := fs.Float64("speedup", 1, "multiply rates and divide stays by this (60: an hour a minute)")
	dwell := fs.Duration("dwell", 2*time.Hour, "median stay")
	spread := fs.Float64("dwell-spread", 0.8, "sigma of the log-normal stay: 0 makes every stay the median")
	maxCars := fs.Int("cars", 0, "stop arrivals after this many cars (0: no limit) and wait for them to leave")
	pass := fs.Duration("pass", 800*time.Millisecond, "how long a car takes to cross the safety loop")
	misread := fs.Float64("misread", 0.05, "fraction of first camera reads with one character wrong")
	faultEvery := fs.Duration("fault-every", 0, "inject a random fault this often (0: never)")
	faultFor := fs.Duration("fault-for", 20*time.Second, "how long each random fault lasts")
	seed := fs.Uint64("seed", 0, "random seed (0: random)")
	waitHealthy := fs.Duration("wait-healthy", 0, "before sending cars, wait up to this long until the edge reports every loop, barrier and sensor in contact and healthy")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	fac, err := config.LoadEnv(*cfgPath, getenv)
	if err != nil {
		return err
	}
	model := sim.DefaultModel()
	model.Speedup, model.DwellMedian, model.DwellSpread, model.MaxCars, model.Pass, model.MisreadRate = *speedup, *dwell, *spread, *maxCars, *pass, *misread
	if *perHour != "" {
		model.PerHour = nil
		for _, f := range strings.Split(*perHour, ",") {
			v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil {
				return fmt.Errorf("--rate: %w", err)
			}
			model.PerHour = append(model.PerHour, v)
		}
	}
	if *seed == 0 {
		*seed = rand.Uint64()
	}

	devs, snaps, err := simulate(fac, *edgeURL, *broker, log)
	if err != nil {
		return err
	}
	// One acquirer behind every kiosk's card terminal; a fault on any terminal
	// (POST /faults {"device":"x1-terminal","fault":"offline"}) takes it offline.
	acq := acquirersim.New()
	for _, d := range fac.Devices {
		if d.Kind == edge.KindCardTerminal {
			devs.Faulty[d.ID] = acq
		}
	}
	g := sim.NewGarage(sim.Config{Facility: fac, Devices: devs, EdgeURL: strings.TrimRight(*edgeURL, "/"), KioskToken: *token, Model: model, Logger: log, Seed: *seed})

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: statusAPI(ctx, g, acq, snaps), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	fmt.Fprintf(stdout, "gatehouse-sim: facility %s, %d devices, status http://%s/truth\n", fac.ID, len(fac.Devices), ln.Addr())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	devErr := make(chan error, 1)
	go func() { devErr <- devs.Run(ctx) }()
	if *faultEvery > 0 {
		go randomFaults(ctx, g, fac, devs, *faultEvery, *faultFor, rand.New(rand.NewPCG(*seed, 99)), log)
	}
	if *waitHealthy > 0 {
		if err := awaitHealthy(ctx, strings.TrimRight(*edgeURL, "/"), fac, *waitHealthy); err != nil {
			return err
		}
		log.Info("edge reports every device healthy; traffic starts")
	}
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-devErr:
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("devices: %w", err)
			}
		case err := <-done:
			t := g.Truth()
			b, _ := json.Marshal(t)
			fmt.Fprintf(stdout, "gatehouse-sim: done: %s\n", b)
			if *maxCars > 0 && ctx.Err() == nil {
				// Keep the devices up so the edge sees a quiet garage; wait to be stopped.
				<-ctx.Done()
			}
			return err
		case <-tick.C:
			t := g.Truth()
			log.Info("truth", "entered", t.Entered, "exited", t.Exited, "balked", t.Balked, "inside", t.Inside)
		}
	}
}

// simulate builds every protocol's simulated devices. The cameras the edge
// fetches pictures from are returned too: the status API serves them.
func simulate(f *edge.Facility, edgeURL, broker string, log *slog.Logger) (sim.Devices, *camerasim.Snapshots, error) {
	byProto := f.DevicesByProtocol()
	var all []sim.Devices
	if d := byProto["modbus_tcp"]; len(d) > 0 {
		s, err := modbussim.New(d, f.SpotOfSensor(), nil)
		if err != nil {
			return sim.Devices{}, nil, err
		}
		s.SetLogger(log.With("sim", "modbus"))
		devs := s.Devices()
		devs.Faulty = map[string]sim.Faulty{}
		for _, dev := range d {
			if fd, ok := s.Faulty(dev.ID); ok {
				devs.Faulty[dev.ID] = fd
			}
		}
		all = append(all, devs)
	}
	if d := byProto["serial"]; len(d) > 0 {
		s, err := serialsim.New(d)
		if err != nil {
			return sim.Devices{}, nil, err
		}
		all = append(all, s.Devices())
	}
	if d := byProto["mqtt"]; len(d) > 0 {
		s, err := mqttsim.New(d, broker, log.With("sim", "mqtt"))
		if err != nil {
			return sim.Devices{}, nil, err
		}
		all = append(all, s.Devices())
	}
	if d := byProto["http_push"]; len(d) > 0 {
		s, err := camerasim.New(d, edgeURL, log.With("sim", "camera"))
		if err != nil {
			return sim.Devices{}, nil, err
		}
		devs := s.Devices()
		devs.Faulty = s.Faulty()
		all = append(all, devs)
	}
	snaps := camerasim.NewSnapshots(f.Devices)
	if snaps.Len() > 0 {
		all = append(all, snaps.Devices())
	}
	if len(all) == 0 {
		return sim.Devices{}, nil, errors.New("the facility has no devices the simulator speaks (modbus_tcp, serial, mqtt, http_push, lpr over http)")
	}
	return sim.Merge(all...), snaps, nil
}

func statusAPI(ctx context.Context, g *sim.Garage, acq *acquirersim.Acquirer, snaps *camerasim.Snapshots) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /snapshot/{device}", snaps)
	// The acquirer of the kiosks' card terminals (protocol acquirer_http).
	mux.Handle("POST /acquirer/", acq)
	mux.HandleFunc("GET /acquirer", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(acq.Counts())
	})
	mux.HandleFunc("GET /truth", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(g.Truth())
	})
	mux.HandleFunc("POST /pause", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Seconds float64 `json:"seconds"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil || req.Seconds <= 0 {
			http.Error(w, "want {seconds > 0}", http.StatusBadRequest)
			return
		}
		g.Pause(time.Duration(req.Seconds * float64(time.Second)))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /faults", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Device  string  `json:"device"`
			Fault   string  `json:"fault"`
			Seconds float64 `json:"seconds"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil || req.Seconds <= 0 {
			http.Error(w, "want {device, fault, seconds > 0}", http.StatusBadRequest)
			return
		}
		if err := g.Inject(ctx, req.Device, sim.Fault(req.Fault), time.Duration(req.Seconds*float64(time.Second))); err != nil {
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// randomFaults injects a fault on a random device now and then.
func randomFaults(ctx context.Context, g *sim.Garage, f *edge.Facility, d sim.Devices, every, dur time.Duration, r *rand.Rand, log *slog.Logger) {
	type choice struct {
		id    string
		fault sim.Fault
	}
	var choices []choice
	for id := range d.Faulty {
		choices = append(choices, choice{id, sim.FaultOffline}, choice{id, sim.FaultGarbage})
	}
	for id := range d.Barriers {
		choices = append(choices, choice{id, sim.FaultStuck})
	}
	for id := range d.Spots {
		choices = append(choices, choice{id, sim.FaultFlapping})
	}
	if len(choices) == 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c := choices[r.IntN(len(choices))]
			if err := g.Inject(ctx, c.id, c.fault, dur); err != nil {
				log.Warn("fault", "err", err)
			}
		}
	}
}

// awaitHealthy polls the edge's device list until every loop, barrier and spot sensor
// that the simulator plays has been in contact and is healthy.
func awaitHealthy(ctx context.Context, edgeURL string, f *edge.Facility, limit time.Duration) error {
	want := map[string]bool{}
	for _, d := range f.Devices {
		// Card terminals report contact only once they have taken a payment,
		// cameras once they have read (or, protocol lpr, been probed).
		if d.Protocol != "inmem" && d.Protocol != "http_push" && d.Protocol != "lpr" && d.Kind != edge.KindTicketReader && d.Kind != edge.KindCardTerminal {
			want[d.ID] = true
		}
	}
	deadline := time.Now().Add(limit)
	var missing []string
	for time.Now().Before(deadline) {
		missing = missing[:0]
		var body struct {
			Devices []edge.DeviceStatus `json:"devices"`
		}
		resp, err := http.Get(edgeURL + "/v1/devices")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
		}
		ok := map[string]bool{}
		for _, d := range body.Devices {
			ok[d.ID] = d.Healthy && !d.LastContact.IsZero()
		}
		for id := range want {
			if !ok[id] {
				missing = append(missing, id)
			}
		}
		if err == nil && len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("edge devices not healthy after %s: %v", limit, missing)
}
