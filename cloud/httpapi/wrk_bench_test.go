package httpapi_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse-parking/gatehouse/cloud/httpapi"
	"github.com/gofiber/fiber/v2"
)

// BenchmarkAvailabilityWrk measures GET /v1/facilities/{id}/availability under wrk
// on loopback, authenticated, against PostgreSQL, next to a bare Fiber handler in
// the same run: paced at about 2,000 requests/s (the target: p99 <= 10 ms) and
// unpaced (the most it serves). Needs wrk (make bench installs it).
func BenchmarkAvailabilityWrk(b *testing.B) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		b.Fatal("wrk is not installed (apt-get install wrk; make bench installs it)")
	}
	e, header := benchEnv(b)
	api := serveApp(b, e.app)
	bare := fiber.New(fiber.Config{DisableStartupMessage: true})
	bare.Get("/ping", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"ok": true}) })
	bareURL := serveApp(b, bare)

	// 40 connections each waiting 19 ms after an answer: about 2,000 requests/s with
	// answers in about a millisecond (wrk's pacing is per connection, in whole ms).
	const conns, delay = 40, 19
	for _, run := range []struct {
		name, url string
		header    []string
		delayMS   int
	}{
		{"availability/paced-2000", api + "/v1/facilities/bench/availability", header, delay},
		{"bare-fiber/paced-2000", bareURL + "/ping", nil, delay},
		{"availability/unpaced", api + "/v1/facilities/bench/availability", header, 0},
		{"bare-fiber/unpaced", bareURL + "/ping", nil, 0},
	} {
		b.Run(run.name, func(b *testing.B) {
			for range b.N {
				rps, p50, p99, errs := runWrk(b, wrk, run.url, run.header, conns, run.delayMS)
				if errs > 0 {
					b.Fatalf("%d non-2xx or socket errors", errs)
				}
				b.ReportMetric(rps, "req/s")
				b.ReportMetric(p50, "p50-ms")
				b.ReportMetric(p99, "p99-ms")
			}
		})
	}
}

// serveApp serves app on a loopback port for the benchmark's life.
func serveApp(b *testing.B, app *fiber.App) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { httpapi.Serve(ctx, app, ln); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String()
}

var (
	wrkRPS     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkLatency = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkErrors  = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)|Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// runWrk runs wrk for 10 s with conns connections and returns requests/s, the p50
// and p99 latency in ms, and the number of failed requests.
func runWrk(b *testing.B, wrk, url string, header []string, conns, delayMS int) (rps, p50, p99 float64, errs int) {
	args := []string{"-t2", fmt.Sprintf("-c%d", conns), "-d10s", "--latency", "-s", "testdata/pace.lua"}
	for i := 0; i+1 < len(header); i += 2 {
		args = append(args, "-H", header[i]+": "+header[i+1])
	}
	cmd := exec.Command(wrk, append(args, url)...)
	cmd.Env = append(os.Environ(), "WRK_DELAY_MS="+strconv.Itoa(delayMS))
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("wrk: %v\n%s", err, out)
	}
	s := string(out)
	m := wrkRPS.FindStringSubmatch(s)
	if m == nil {
		b.Fatalf("wrk printed no rate:\n%s", s)
	}
	rps, _ = strconv.ParseFloat(m[1], 64)
	for _, l := range wrkLatency.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.ParseFloat(l[2], 64)
		switch l[3] {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		if l[1] == "50" {
			p50 = v
		} else {
			p99 = v
		}
	}
	for _, m := range wrkErrors.FindAllStringSubmatch(s, -1) {
		for _, g := range m[1:] {
			n, _ := strconv.Atoi(g)
			errs += n
		}
	}
	b.Logf("%s (delay %d ms): %s", url, delayMS, strings.Join(strings.Fields(s), " "))
	return rps, p50, p99, errs
}
