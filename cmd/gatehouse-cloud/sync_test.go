package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud/httpapi"
	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/edge/boltstore"
	"github.com/gatehouse-parking/gatehouse/edge/config"
)

// TestTwoGaragesSyncIntoOneCloud runs the real binaries: gatehouse-cloud with its
// defaults (embedded hub, throwaway PostgreSQL; random ports), two garages issued
// credentials with `facility add`, each a gatehouse-edge under simulated traffic
// syncing through its leaf connection. A live command from the cloud reaches a garage;
// once the garages have stopped, the cloud holds exactly each garage's outbox and its
// zone counts, and a command is refused as "garage offline".
func TestTwoGaragesSyncIntoOneCloud(t *testing.T) {
	start := time.Now()
	cloudBin, edgeBin := buildBinaries(t)
	// The cloud runs in its own working directory with no --data-dir, as `make demo`
	// will: ./gatehouse-cloud-data holds the hub, PostgreSQL is a temporary cluster.
	work := t.TempDir()
	cloud := startCloud(t, cloudBin, work)
	t.Logf("cloud up at %s after %v", cloud.api, time.Since(start).Round(time.Millisecond))

	garages := []string{"garage-a", "garage-b"}
	var edges []*edgeProc
	for _, id := range garages {
		out, err := cloudCommand(cloudBin, work, "facility", "add", id)
		if err != nil {
			t.Fatalf("facility add %s: %v\n%s", id, err, out)
		}
		m := regexp.MustCompile(`(?m)^credentials: (\S+)$`).FindStringSubmatch(out)
		if m == nil || !strings.Contains(out, "hub reloaded") {
			t.Fatalf("facility add %s: no credentials path or no reload:\n%s", id, out)
		}
		edges = append(edges, startEdge(t, edgeBin, id, m[1]))
	}
	for _, e := range edges {
		waitFor(t, 20*time.Second, e.id+"'s leaf connection to the hub", func() bool { return metric(e.api, "gatehouse_hub_connected") == 1 })
	}
	trafficFrom := time.Now()

	// A live command from the cloud, answered by the garage. The lane may be busy with
	// a simulated car (answered, but refused as already open): try again.
	var answer string
	waitFor(t, 10*time.Second, "garage-a to open entry-1 on the cloud's command", func() bool {
		out, err := cloudCommand(cloudBin, work, "command", "garage-a", "open", `{"operator":"ops","reason":"test","lane":"entry-1"}`)
		answer = out
		return err == nil && strings.Contains(out, `"ok":true`)
	})
	t.Logf("command answered: %s", strings.TrimSpace(answer))

	time.Sleep(10*time.Second - time.Since(trafficFrom))
	for _, e := range edges {
		e.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, e := range edges {
		if err := e.wait(20 * time.Second); err != nil {
			t.Fatalf("%s: %v\n%s", e.id, err, e.log)
		}
	}

	total := 0
	for _, e := range edges {
		want := e.outbox(t)
		if want.events < 200 {
			t.Fatalf("%s: only %d events in 10 s: the traffic did not run\n%s", e.id, want.events, e.log)
		}
		var got statusJSON
		ok := poll(20*time.Second, func() bool {
			got = cloud.status(t, e.id)
			return got.Events == int64(want.events) && got.AppliedSeq == want.maxSeq
		})
		if !ok {
			t.Fatalf("%s: cloud holds %d events, applied to seq %d, last received %d, gap %v; the garage's outbox holds %d events up to seq %d\ncloud log:\n%s\nedge log:\n%s",
				e.id, got.Events, got.AppliedSeq, got.LastSeqReceived, got.Gap, want.events, want.maxSeq, cloud.log, e.log)
		}
		cloudZones := map[string]int{}
		for _, z := range got.Zones {
			cloudZones[z.Zone] = z.Occupied
		}
		for zone, n := range want.zones {
			if cloudZones[zone] != n {
				t.Errorf("%s: zone %s: cloud counts %d; the garage %d", e.id, zone, cloudZones[zone], n)
			}
		}
		total += want.events
		t.Logf("%s: garage outbox %d events (max seq %d), cloud %d events (applied seq %d); zones garage %v, cloud %v",
			e.id, want.events, want.maxSeq, got.Events, got.AppliedSeq, want.zones, cloudZones)
	}

	out, err := cloudCommand(cloudBin, work, "command", "garage-a", "open", `{"operator":"ops","reason":"test","lane":"entry-1"}`)
	if err == nil || !strings.Contains(out, "garage offline") {
		t.Errorf("command to a stopped garage: err %v, output %q; want a failure saying \"garage offline\"", err, out)
	}

	if n := metric(cloud.api, "gatehouse_cloud_events_ingested_total"); n != float64(total) {
		t.Errorf("gatehouse_cloud_events_ingested_total = %v; want %d", n, total)
	}
	if n := metric(cloud.api, "gatehouse_cloud_events_forged_total"); n != 0 {
		t.Errorf("gatehouse_cloud_events_forged_total = %v; want 0", n)
	}
	cloud.stop(t)
	if _, err := os.Stat(filepath.Join(work, defaultDataDir, runInfoFile)); !os.IsNotExist(err) {
		t.Errorf("run.json left behind after a clean stop: %v", err)
	}
	t.Logf("%d events from 2 garages in one cloud; whole test %v", total, time.Since(start).Round(time.Millisecond))
}

// buildBinaries compiles gatehouse-cloud and gatehouse-edge.
func buildBinaries(t *testing.T) (cloud, edge string) {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("go", "build", "-o", dir+string(filepath.Separator), ".", "../gatehouse-edge").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "gatehouse-cloud"), filepath.Join(dir, "gatehouse-edge")
}

// syncBuffer is a log buffer written by a child process and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type cloudProc struct {
	cmd  *exec.Cmd
	api  string
	log  *syncBuffer
	done chan error
	// adminFile is the initial admin's credentials, from the banner; token is an
	// access token of that admin, got by the first status call.
	adminFile string
	token     string
}

var (
	apiLine   = regexp.MustCompile(`^\s+api\s+(http://\S+)`)
	adminLine = regexp.MustCompile(`^\s+admin\s+.*?(/\S+/` + InitialAdminFile + `)`)
)

func startCloud(t *testing.T, bin, dir string) *cloudProc {
	t.Helper()
	return startCloudArgs(t, bin, dir, "run", "--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--leaf-listen", "127.0.0.1:0")
}

func (c *cloudProc) stop(t *testing.T) {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		if err != nil {
			t.Errorf("gatehouse-cloud after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("gatehouse-cloud did not stop within 30 s of SIGTERM")
	}
}

type statusJSON = httpapi.FacilityStatus

// login returns an access token of the cloud's initial admin.
func (c *cloudProc) login(t testing.TB) string {
	t.Helper()
	if c.token != "" {
		return c.token
	}
	b, err := os.ReadFile(c.adminFile)
	if err != nil {
		t.Fatalf("the initial admin's credentials (banner said %q): %v", c.adminFile, err)
	}
	resp, err := http.Post(c.api+"/v1/auth/login", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("login as the initial admin: %s, %v", resp.Status, err)
	}
	c.token = tok.AccessToken
	return c.token
}

// get sends an authenticated GET to the cloud's API.
func (c *cloudProc) get(t testing.TB, path string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, c.api+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.login(t))
	return http.DefaultClient.Do(req)
}

func (c *cloudProc) status(t *testing.T, id string) statusJSON {
	t.Helper()
	var st statusJSON
	resp, err := c.get(t, "/v1/facilities/"+id+"/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return st
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status of %s: %s: %s", id, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// cloudCommand runs a gatehouse-cloud command in the cloud's working directory.
func cloudCommand(bin, dir string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// cleanEnv is the test's environment without the variables the binaries read, so that
// a developer's settings do not leak in.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GATEHOUSE_") {
			out = append(out, kv)
		}
	}
	return out
}

type edgeProc struct {
	id, cfg, data, api string
	cmd                *exec.Cmd
	log                *syncBuffer
	done               chan error
}

var edgeAPILine = regexp.MustCompile(`API (http://[0-9.:]+)`)

// startEdge starts a gatehouse-edge for facility id with fast simulated traffic,
// syncing with the hub through the credentials file creds.
func startEdge(t *testing.T, bin, id, creds string) *edgeProc {
	t.Helper()
	e := &edgeProc{id: id, cfg: garageConfig(t, id), data: t.TempDir(), log: &syncBuffer{}, done: make(chan error, 1)}
	e.cmd = exec.Command(bin, "run", "--config", e.cfg, "--data", e.data, "--listen", "127.0.0.1:0",
		"--traffic", "900", "--dwell", "1s", "--travel", "10ms", "--pass", "30ms",
		"--hub-credentials", creds, "--hub-drain", "10s")
	e.cmd.Env = cleanEnv()
	e.cmd.Stderr = e.log
	stdout, err := e.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	apic := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := edgeAPILine.FindStringSubmatch(sc.Text()); m != nil {
				apic <- m[1]
			}
		}
		io.Copy(io.Discard, stdout)
		e.done <- e.cmd.Wait()
	}()
	t.Cleanup(func() {
		e.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("gatehouse-edge %s log:\n%s", id, e.log)
		}
	})
	select {
	case e.api = <-apic:
	case err := <-e.done:
		t.Fatalf("gatehouse-edge %s exited at start: %v\n%s", id, err, e.log)
	case <-time.After(20 * time.Second):
		t.Fatalf("gatehouse-edge %s did not start:\n%s", id, e.log)
	}
	return e
}

func (e *edgeProc) wait(timeout time.Duration) error {
	select {
	case err := <-e.done:
		if err != nil {
			return fmt.Errorf("exit after SIGTERM: %w", err)
		}
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("did not stop within %v of SIGTERM", timeout)
	}
}

type outbox struct {
	events int
	maxSeq uint64
	zones  map[string]int
}

// outbox reads the stopped garage's outbox and stored zone counts from its BoltDB file.
func (e *edgeProc) outbox(t *testing.T) outbox {
	t.Helper()
	fac, err := config.Load(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	store, err := boltstore.Open(filepath.Join(e.data, "garage.db"), "", &boltstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	evs, err := store.Events(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	st, err := edge.Restore(fac, snap)
	if err != nil {
		t.Fatal(err)
	}
	o := outbox{events: len(evs), zones: map[string]int{}}
	if len(evs) > 0 {
		o.maxSeq = evs[len(evs)-1].Seq
	}
	for id, z := range st.Zones {
		o.zones[id] = z.Occupied
	}
	return o
}

// garageConfig is the example garage as facility id, deciding on the first plate read
// so that simulated cars flow fast.
func garageConfig(t *testing.T, id string) string {
	t.Helper()
	b, err := os.ReadFile("../../deploy/garage-example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, r := range []struct{ re, with string }{
		{`(?m)^id: *demo-garage\b`, "id: " + id},
		{`plate_vote_window: *[0-9a-z]+`, "plate_vote_window: 0s"},
	} {
		next := regexp.MustCompile(r.re).ReplaceAllString(s, r.with)
		if next == s {
			t.Fatalf("example config: nothing matches %s", r.re)
		}
		s = next
	}
	p := filepath.Join(t.TempDir(), id+".yaml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// metric reads an unlabelled metric from a /metrics endpoint; -1 when absent.
func metric(base, name string) float64 {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

func poll(timeout time.Duration, cond func() bool) bool {
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}
