package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud/pgtest"
	"github.com/jackc/pgx/v5"
)

// TestPartition runs one garage under simulated traffic whose leaf connection to the
// cloud's embedded hub goes through a TCP proxy, and for about 45 s cuts that link
// several times, SIGKILLs the garage once and the cloud once (both restarted on their
// data), and restarts PostgreSQL once. Once the garage has stopped (and drained), the
// cloud's events must equal the garage's outbox (same count, no gap, no duplicate) and
// its zone counts the garage's.
func TestPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("partition test: about a minute of real processes")
	}
	start := time.Now()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("seed %d", seed)
	cloudBin, edgeBin := buildBinaries(t)

	ctx := context.Background()
	pg, err := pgtest.Start(ctx, pgtest.Options{NoFsync: true})
	if err != nil {
		t.Fatalf("PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("postgres log:\n%s", pg.Log())
		}
		pg.Stop()
	})

	// Fixed ports, so that the restarted cloud listens where the proxy forwards.
	work := t.TempDir()
	leafAddr := "127.0.0.1:" + strconv.Itoa(freeTCPPort(t))
	cloudArgs := []string{"run", "--data-dir", work, "--database-url", pg.URL(),
		"--listen", "127.0.0.1:" + strconv.Itoa(freeTCPPort(t)),
		"--nats-listen", "127.0.0.1:" + strconv.Itoa(freeTCPPort(t)),
		"--leaf-listen", leafAddr}
	cloud := startCloudArgs(t, cloudBin, work, cloudArgs...)
	t.Logf("cloud up at %s after %v", cloud.api, time.Since(start).Round(time.Millisecond))

	proxy := startProxy(t, leafAddr)
	const id = "garage-p"
	creds := issueCredentials(t, cloudBin, work, id, proxy.Addr())

	e := &edgeProc{id: id, cfg: garageConfig(t, id), data: t.TempDir(), log: &syncBuffer{}}
	edgeArgs := []string{"--traffic", "900", "--dwell", "1s", "--travel", "10ms", "--pass", "30ms",
		"--hub-credentials", creds, "--hub-drain", "30s"}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gatehouse-edge %s log (all runs):\n%s", id, e.log)
		}
	})
	runEdge(t, edgeBin, e, edgeArgs...)
	connected := func() bool { return metric(e.api, "gatehouse_hub_connected") == 1 }
	waitFor(t, 20*time.Second, "the garage's leaf connection through the proxy", connected)

	// The disruptions, in order, with random lengths and spacing.
	var cuts, cutsSeen, edgeKills, cloudKills, pgRestarts int
	var cutTotal time.Duration
	sleep := func(lo, hi time.Duration) {
		time.Sleep(lo + time.Duration(rng.Int64N(int64(hi-lo)+1)))
	}
	cut := func() {
		d := 2*time.Second + time.Duration(rng.Int64N(int64(3*time.Second)))
		proxy.Cut()
		cuts++
		cutTotal += d
		t.Logf("%5.1fs cut the link for %v", time.Since(start).Seconds(), d.Round(time.Millisecond))
		// The garage must see the cut: its leaf connection down (not around the proxy).
		down := false
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			if metric(e.api, "gatehouse_hub_connected") == 0 {
				down = true
			}
		}
		if down {
			cutsSeen++
		}
		proxy.Restore()
	}
	killEdge := func() {
		e.cmd.Process.Kill()
		<-e.done
		edgeKills++
		t.Logf("%5.1fs SIGKILL of the garage", time.Since(start).Seconds())
		sleep(500*time.Millisecond, 2*time.Second)
		runEdge(t, edgeBin, e, edgeArgs...)
		t.Logf("%5.1fs garage restarted", time.Since(start).Seconds())
	}
	killCloud := func() {
		cloud.cmd.Process.Kill()
		<-cloud.done
		cloudKills++
		t.Logf("%5.1fs SIGKILL of the cloud", time.Since(start).Seconds())
		sleep(500*time.Millisecond, 2*time.Second)
		cloud = startCloudArgs(t, cloudBin, work, cloudArgs...)
		t.Logf("%5.1fs cloud restarted", time.Since(start).Seconds())
	}
	restartPG := func() {
		t.Logf("%5.1fs restart of PostgreSQL", time.Since(start).Seconds())
		if err := pg.Restart(ctx); err != nil {
			t.Fatalf("restart of PostgreSQL: %v", err)
		}
		pgRestarts++
		t.Logf("%5.1fs PostgreSQL back", time.Since(start).Seconds())
	}
	steps := []func(){cut, killEdge, cut, killCloud, restartPG, cut}
	if rng.IntN(2) == 0 { // either order of the kills
		steps[1], steps[3] = steps[3], steps[1]
	}
	steps = append(steps, cut)
	for _, step := range steps {
		sleep(2*time.Second, 4*time.Second)
		step()
	}
	// A last period of traffic with the link up, then stop the garage: it drains what
	// is left while connected.
	waitFor(t, 30*time.Second, "the garage's leaf connection after the disruptions", connected)
	time.Sleep(3 * time.Second)
	waitFor(t, 30*time.Second, "the garage's leaf connection before its stop", connected)
	chaos := time.Since(start)
	e.cmd.Process.Signal(syscall.SIGTERM)
	if err := e.wait(45 * time.Second); err != nil {
		t.Fatalf("garage: %v\n%s", err, e.log)
	}
	want := e.outbox(t)
	if want.events < 300 {
		t.Fatalf("only %d events in the garage's outbox: the traffic did not run\n%s", want.events, e.log)
	}
	if want.maxSeq != uint64(want.events) {
		t.Fatalf("the garage's outbox holds %d events up to seq %d: not contiguous from 1", want.events, want.maxSeq)
	}

	// The cloud catches up from the hub's stream (and asks for resends if it must).
	var got statusJSON
	caughtUp := poll(60*time.Second, func() bool {
		select {
		case err := <-cloud.done:
			t.Fatalf("the cloud exited: %v\n%s", err, cloud.log)
		default:
		}
		got = cloud.status(t, id)
		return got.Events == int64(want.events) && got.AppliedSeq == want.maxSeq
	})
	catchUp := time.Since(start) - chaos

	// PostgreSQL directly: count, distinct ids, seq range.
	conn, err := pgx.Connect(ctx, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n, distinct, distinctSeq int64
	var minSeq, maxSeq int64
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT event_id), count(DISTINCT seq),
			coalesce(min(seq), 0), coalesce(max(seq), 0) FROM events WHERE facility_id = $1`, id).
		Scan(&n, &distinct, &distinctSeq, &minSeq, &maxSeq); err != nil {
		t.Fatal(err)
	}
	cloudZones := map[string]int{}
	for _, z := range got.Zones {
		cloudZones[z.Zone] = z.Occupied
	}

	t.Logf("disruptions: %d link cuts (%v in all; the garage saw %d of them), %d SIGKILL of the garage, %d SIGKILL of the cloud, %d PostgreSQL restart; %d leaf connections through the proxy (%d hub INFOs stripped of leafnode_urls)",
		cuts, cutTotal.Round(time.Millisecond), cutsSeen, edgeKills, cloudKills, pgRestarts, proxy.Accepted(), proxy.Stripped())
	t.Logf("garage outbox: %d events, max seq %d; zones %v", want.events, want.maxSeq, want.zones)
	t.Logf("cloud (PostgreSQL): %d events, %d distinct event ids, %d distinct seqs, seq %d..%d; applied seq %d, gap %v; zones %v",
		n, distinct, distinctSeq, minSeq, maxSeq, got.AppliedSeq, got.Gap, cloudZones)
	t.Logf("chaos phase %v, cloud catch-up after the garage's stop %v, whole test %v",
		chaos.Round(time.Millisecond), catchUp.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	if !caughtUp {
		t.Fatalf("the cloud did not catch up within 60 s: %d events, applied to seq %d, last received %d, gap %v; the garage's outbox %d events up to seq %d",
			got.Events, got.AppliedSeq, got.LastSeqReceived, got.Gap, want.events, want.maxSeq)
	}
	if t.Failed() || cutsSeen != cuts {
		t.Logf("proxy:\n%s", strings.Join(proxy.log, "\n"))
	}
	if cutsSeen != cuts {
		t.Errorf("the garage stayed connected through %d of %d cuts: its leaf connection went around the proxy", cuts-cutsSeen, cuts)
	}
	if min := 1 + cuts + edgeKills + cloudKills; proxy.Accepted() < min {
		t.Errorf("%d leaf connections through the proxy; want at least %d (one at start and after each cut and kill)", proxy.Accepted(), min)
	}
	if n != int64(want.events) || maxSeq != int64(want.maxSeq) || minSeq != 1 {
		t.Errorf("cloud events: %d, seq %d..%d; want %d, seq 1..%d", n, minSeq, maxSeq, want.events, want.maxSeq)
	}
	if n != maxSeq {
		t.Errorf("gap: %d events up to seq %d", n, maxSeq)
	}
	if distinct != n || distinctSeq != n {
		t.Errorf("duplicates: %d rows, %d distinct event ids, %d distinct seqs", n, distinct, distinctSeq)
	}
	for zone, occ := range want.zones {
		if cloudZones[zone] != occ {
			t.Errorf("zone %s: cloud counts %d; the garage %d", zone, cloudZones[zone], occ)
		}
	}
	for zone := range cloudZones {
		if _, ok := want.zones[zone]; !ok {
			t.Errorf("zone %s in the cloud, not in the garage", zone)
		}
	}
	if f := metric(cloud.api, "gatehouse_cloud_events_forged_total"); f > 0 {
		t.Errorf("gatehouse_cloud_events_forged_total = %v; want 0", f)
	}
	cloud.stop(t)
}

// freeTCPPort returns a port of 127.0.0.1 that was free a moment ago.
func freeTCPPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// issueCredentials runs `facility add id` against the running cloud in dir and, when
// via is not empty, rewrites the issued file's hub URL to dial via (host:port) instead.
func issueCredentials(t testing.TB, bin, dir, id, via string) string {
	t.Helper()
	out, err := cloudCommand(bin, dir, "facility", "add", id, "--data-dir", dir)
	if err != nil {
		t.Fatalf("facility add %s: %v\n%s", id, err, out)
	}
	m := regexp.MustCompile(`(?m)^credentials: (\S+)$`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "hub reloaded") {
		t.Fatalf("facility add %s: no credentials path or no reload:\n%s", id, out)
	}
	if via == "" {
		return m[1]
	}
	b, err := os.ReadFile(m[1])
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	s, _ := doc["url"].(string)
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		t.Fatalf("issued credentials: url %q: %v", s, err)
	}
	u.Host = via
	doc["url"] = u.String()
	if b, err = json.MarshalIndent(doc, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m[1], b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("credentials of %s dial %s (the hub's leaf listener is %s)", id, u, s)
	return m[1]
}

// startCloudArgs starts gatehouse-cloud with args in dir and waits for its API line.
// Its log goes on across restarts only through the returned process.
func startCloudArgs(t testing.TB, bin, dir string, args ...string) *cloudProc {
	t.Helper()
	c := &cloudProc{log: &syncBuffer{}, done: make(chan error, 1)}
	c.cmd = exec.Command(bin, args...)
	c.cmd.Dir = dir
	c.cmd.Env = cleanEnv()
	c.cmd.Stderr = c.log
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	apic := make(chan string, 1)
	go func() {
		var api string
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.log.Write([]byte(sc.Text() + "\n"))
			// The banner names the API, then the initial admin's file.
			if m := apiLine.FindStringSubmatch(sc.Text()); m != nil {
				api = m[1]
			}
			if m := adminLine.FindStringSubmatch(sc.Text()); m != nil && api != "" {
				c.adminFile = m[1]
				apic <- api
			}
		}
		io.Copy(io.Discard, stdout)
		c.done <- c.cmd.Wait()
	}()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("gatehouse-cloud (pid %d) log:\n%s", c.cmd.Process.Pid, c.log)
		}
	})
	select {
	case c.api = <-apic:
	case err := <-c.done:
		t.Fatalf("gatehouse-cloud exited at start: %v\n%s", err, c.log)
	case <-time.After(60 * time.Second):
		t.Fatalf("gatehouse-cloud did not start:\n%s", c.log)
	}
	return c
}

// runEdge starts (or restarts) the garage e on its config and data directory with
// extra flags; its log accumulates in e.log across restarts.
func runEdge(t testing.TB, bin string, e *edgeProc, extra ...string) {
	t.Helper()
	e.done = make(chan error, 1)
	e.log.Write([]byte("=== gatehouse-edge start " + time.Now().Format(time.RFC3339Nano) + "\n"))
	args := append([]string{"run", "--config", e.cfg, "--data", e.data, "--listen", "127.0.0.1:0", "--mqtt-port", "-1"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv()
	cmd.Stderr = e.log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e.cmd = cmd
	apic := make(chan string, 1)
	done := e.done
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			e.log.Write([]byte(sc.Text() + "\n"))
			if m := edgeAPILine.FindStringSubmatch(sc.Text()); m != nil {
				apic <- m[1]
			}
		}
		io.Copy(io.Discard, stdout)
		done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
	})
	select {
	case e.api = <-apic:
	case err := <-done:
		t.Fatalf("gatehouse-edge %s exited at start: %v\n%s", e.id, err, e.log)
	case <-time.After(20 * time.Second):
		t.Fatalf("gatehouse-edge %s did not start:\n%s", e.id, e.log)
	}
}
