package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/firmware-adapters/sim"
)

func build(t *testing.T, pkg, name string, flags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	args := append(append([]string{"build"}, flags...), "-o", bin, pkg)
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// logTail keeps the last lines a process wrote, for failure messages, and the whole
// log in a file that a failing test names.
type logTail struct {
	mu    sync.Mutex
	lines []string
	file  *os.File
}

func newLogTail(t *testing.T, name string) *logTail {
	f, err := os.CreateTemp("", "gatehouse-e2e-"+name+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		if !t.Failed() {
			os.Remove(f.Name())
		}
	})
	return &logTail{file: f}
}

func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.file.Write(p)
	sc := bufio.NewScanner(bytes.NewReader(p))
	for sc.Scan() {
		l.lines = append(l.lines, sc.Text())
		if len(l.lines) > 60 {
			l.lines = l.lines[1:]
		}
	}
	return len(p), nil
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b bytes.Buffer
	b.WriteString("(whole log: " + l.file.Name() + ")\n")
	for _, s := range l.lines {
		b.WriteString(s + "\n")
	}
	return b.String()
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s %s", url, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

type occupancy struct {
	Zones []struct {
		ID       string `json:"id"`
		Occupied int    `json:"occupied"`
	} `json:"zones"`
}

// TestEndToEnd runs the real gatehouse-edge against gatehouse-sim over Modbus TCP,
// serial lines on pseudo-terminals, MQTT (the edge's own listener) and Hikvision and
// Axis camera pushes, sends two hundred cars in and out, and checks that the edge's
// counts equal the simulator's ground truth while cars are parked and after all left,
// and that it recorded exactly one session per car.
func TestEndToEnd(t *testing.T) {
	cars := 200
	if testing.Short() {
		cars = 40
	}
	endToEnd(t, e2eRun{cars: cars, rate: 2000, dwell: "40s"})
}

// e2eRun is one end-to-end run's variant.
type e2eRun struct {
	cars int
	// rate is the arrivals per hour at each entry lane, dwell the median stay.
	rate  int
	dwell string
	// edgeFlags are the edge's go build flags (-tags gocv for a plate reader).
	edgeFlags []string
	// env is added to both processes' environment.
	env []string
}

// endToEnd runs the end-to-end test (see TestEndToEnd) and returns the edge's
// API base URL, the edge still running until the test ends.
func endToEnd(t *testing.T, run e2eRun) string {
	cars := run.cars
	dir := t.TempDir()
	edgeBin := build(t, "../gatehouse-edge", "gatehouse-edge", run.edgeFlags...)
	simBin := build(t, ".", "gatehouse-sim")
	api, mqttPort, simPort := freePort(t), freePort(t), freePort(t)
	env := append(os.Environ(),
		"GATEHOUSE_SIM_MODBUS=127.0.0.1:"+freePort(t),
		"GATEHOUSE_SIM_DIR="+filepath.Join(dir, "tty"),
		"GATEHOUSE_SIM_TRAVEL=100ms",
		"GATEHOUSE_VOTE_WINDOW=200ms",
		"GATEHOUSE_SIM_ACQUIRER=http://127.0.0.1:"+simPort+"/acquirer",
		"GATEHOUSE_SIM_SNAPSHOTS=http://127.0.0.1:"+simPort+"/snapshot",
		"GATEHOUSE_X2_CAMERA=http_push") // whatever the caller's environment says
	env = append(env, run.env...) // later entries win
	os.MkdirAll(filepath.Join(dir, "tty"), 0o755)
	const token = "kiosk-terminal-token-0001"
	cfg := "../../deploy/garage-sim.yaml"

	edgeLog := newLogTail(t, "edge")
	edgeCmd := exec.Command(edgeBin, "run", "--config", cfg, "--data", filepath.Join(dir, "data"), "--listen", "127.0.0.1:"+api,
		"--operator-tokens", "kiosk:"+token, "--mqtt-port", mqttPort, "--log-format", "json")
	edgeCmd.Env, edgeCmd.Stdout, edgeCmd.Stderr = env, edgeLog, edgeLog
	if err := edgeCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { edgeCmd.Process.Signal(syscall.SIGTERM); edgeCmd.Wait() })
	base := "http://127.0.0.1:" + api
	for i := 0; ; i++ {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if i > 100 {
			t.Fatalf("edge did not start:\n%s", edgeLog)
		}
		time.Sleep(100 * time.Millisecond)
	}

	simLog := newLogTail(t, "sim")
	simCmd := exec.Command(simBin, "--config", cfg, "--edge", base, "--kiosk-token", token, "--mqtt", "tcp://127.0.0.1:"+mqttPort,
		"--listen", "127.0.0.1:"+simPort, "--rate", strconv.Itoa(run.rate), "--cars", strconv.Itoa(cars), "--dwell", run.dwell, "--dwell-spread", "0.3", "--pass", "400ms",
		"--misread", "0.05", "--wait-healthy", "60s", "--seed", "7")
	simCmd.Env, simCmd.Stdout, simCmd.Stderr = env, simLog, simLog
	if err := simCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { simCmd.Process.Signal(syscall.SIGTERM); simCmd.Wait() }()
	fail := func(format string, args ...any) {
		t.Helper()
		// Keep the edge's events for the post-mortem.
		if f, err := os.CreateTemp("", "gatehouse-e2e-events-*.json"); err == nil {
			if resp, err := http.Get(base + "/v1/events?after=0&limit=1000"); err == nil {
				io.Copy(f, resp.Body)
				resp.Body.Close()
			}
			for after := 1000; after < 100000; after += 1000 {
				resp, err := http.Get(fmt.Sprintf("%s/v1/events?after=%d&limit=1000", base, after))
				if err != nil {
					break
				}
				n, _ := io.Copy(f, resp.Body)
				resp.Body.Close()
				if n < 100 {
					break
				}
			}
			t.Logf("edge events: %s", f.Name())
			f.Close()
		}
		t.Fatalf(format+"\n--- edge:\n%s\n--- sim:\n%s", append(args, edgeLog, simLog)...)
	}

	truth := func() sim.Truth {
		var tr sim.Truth
		if err := getJSON("http://127.0.0.1:"+simPort+"/truth", &tr); err != nil {
			return sim.Truth{InLane: -1}
		}
		return tr
	}
	// settled returns the truth once it has not changed for 2.5 s with no car on a
	// lane: then every sensor has been polled and every passage recorded.
	settled := func(cond func(sim.Truth) bool, limit time.Duration) sim.Truth {
		t.Helper()
		deadline := time.Now().Add(limit)
		for time.Now().Before(deadline) {
			a := truth()
			if a.InLane == 0 && cond(a) {
				time.Sleep(2500 * time.Millisecond)
				b := truth()
				ja, _ := json.Marshal(a)
				jb, _ := json.Marshal(b)
				if bytes.Equal(ja, jb) {
					return b
				}
				continue
			}
			time.Sleep(200 * time.Millisecond)
		}
		fail("the simulated garage did not settle in %s: %+v", limit, truth())
		return sim.Truth{}
	}
	compare := func(tr sim.Truth) {
		t.Helper()
		var occ occupancy
		if err := getJSON(base+"/v1/occupancy", &occ); err != nil {
			fail("occupancy: %v", err)
		}
		for _, z := range occ.Zones {
			if z.Occupied != tr.Zones[z.ID] {
				fail("zone %s: edge counts %d, the simulator has %d (truth %+v)", z.ID, z.Occupied, tr.Zones[z.ID], tr)
			}
		}
		t.Logf("edge equals truth: %+v", tr.Zones)
	}

	// Halfway, with cars parked: pause the garage, let it settle, compare.
	for deadline := time.Now().Add(4 * time.Minute); truth().Arrived < cars/2; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			fail("half the cars did not arrive: %+v", truth())
		}
	}
	resp, err := http.Post("http://127.0.0.1:"+simPort+"/pause", "application/json", strings.NewReader(`{"seconds": 25}`))
	if err != nil || resp.StatusCode != http.StatusNoContent {
		fail("pause: %v %v", err, resp)
	}
	resp.Body.Close()
	mid := settled(func(tr sim.Truth) bool { return true }, 25*time.Second)
	if mid.Inside < cars/10 {
		fail("only %d cars inside at the midpoint: %+v", mid.Inside, mid)
	}
	compare(mid)
	// After all left.
	end := settled(func(tr sim.Truth) bool { return tr.Arrived == cars && tr.Inside == 0 }, 4*time.Minute)
	compare(end)

	started, ended := 0, 0
	for after := 0; ; {
		var page struct {
			Events []struct {
				Type string `json:"type"`
			} `json:"events"`
			NextAfter int `json:"next_after"`
		}
		if err := getJSON(fmt.Sprintf("%s/v1/events?after=%d&limit=1000", base, after), &page); err != nil {
			fail("events: %v", err)
		}
		for _, ev := range page.Events {
			switch ev.Type {
			case "session.started":
				started++
			case "session.ended":
				ended++
			}
		}
		if len(page.Events) == 0 {
			break
		}
		after = page.NextAfter
	}
	if started != end.Entered || ended != end.Exited {
		fail("edge sessions started %d, ended %d; the simulator had %d cars enter and %d leave", started, ended, end.Entered, end.Exited)
	}
	if end.Entered < cars*8/10 {
		fail("only %d of %d cars got in: %+v", end.Entered, cars, end)
	}
	t.Logf("%d cars: %d entered, %d balked, %d left, %d paid in cents (%d by card, %d of them offline; %d cards declined); edge recorded %d sessions",
		cars, end.Entered, end.Balked, end.Exited, end.Paid, end.CardPaid, end.CardOffline, end.CardDeclined, started)
	return base
}
