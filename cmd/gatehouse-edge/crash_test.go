package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge/boltstore"
)

// buildEdge compiles gatehouse-edge once per test binary run.
func buildEdge(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gatehouse-edge")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

const testToken = "test-operator-token-0001"

var apiLine = regexp.MustCompile(`API (http://[0-9.:]+)`)

// startEdge starts a child gatehouse-edge with fast simulated traffic and returns it
// with its API base URL.
func startEdge(t *testing.T, bin, cfg, data string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, "run", "--config", cfg, "--data", data,
		"--listen", "127.0.0.1:0", "--traffic", "900", "--dwell", "1s", "--travel", "10ms", "--pass", "30ms", "--log-format", "json")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), "GATEHOUSE_OPERATOR_TOKENS=ops:"+testToken)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := apiLine.FindStringSubmatch(sc.Text()); m != nil {
				urlc <- m[1]
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case u := <-urlc:
		return cmd, u
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("gatehouse-edge did not start:\n%s", stderr.String())
	}
	return nil, ""
}

// fastConfig is the example garage deciding on the first plate read, so that
// simulated cars flow fast.
func fastConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../deploy/garage-example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := regexp.MustCompile(`plate_vote_window: *[0-9a-z]+`).ReplaceAllString(string(b), "plate_vote_window: 0s")
	if s == string(b) {
		t.Fatal("example config has no plate_vote_window to override")
	}
	p := filepath.Join(t.TempDir(), "garage.yaml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type seenEvent struct {
	id, typ string
}

// pollEvents reads events after *after from the API into seen.
func pollEvents(base string, after *uint64, seen map[uint64]seenEvent) error {
	resp, err := http.Get(fmt.Sprintf("%s/v1/events?after=%d&limit=1000", base, *after))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Events []struct {
			Seq     string `json:"seq"`
			EventID string `json:"event_id"`
			Type    string `json:"type"`
		} `json:"events"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return err
	}
	for _, ev := range body.Events {
		seq, err := strconv.ParseUint(ev.Seq, 10, 64)
		if err != nil {
			return err
		}
		seen[seq] = seenEvent{ev.EventID, ev.Type}
		*after = max(*after, seq)
	}
	return nil
}

// TestCrashUnderTraffic kills a garage with SIGKILL at random moments while simulated
// cars go in and out, restarts it, and checks each time that the stored state equals
// the replayed outbox and that every event the garage had served is still there, the
// same.
func TestCrashUnderTraffic(t *testing.T) {
	kills := 8
	if testing.Short() {
		kills = 3
	}
	bin := buildEdge(t)
	data := t.TempDir()
	cfg := fastConfig(t)
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	seen := map[uint64]seenEvent{}
	var after uint64
	sessions, ended := 0, 0
	for i := range kills {
		cmd, base := startEdge(t, bin, cfg, data)
		deadline := time.Now().Add(time.Duration(1000+r.IntN(2500)) * time.Millisecond)
		for time.Now().Before(deadline) {
			if err := pollEvents(base, &after, seen); err != nil {
				t.Logf("poll: %v", err)
			}
			time.Sleep(time.Duration(r.IntN(60)) * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("run %d: gatehouse-edge ended by itself before the kill: %v", i, err)
		}

		var out bytes.Buffer
		if err := run(context.Background(), []string{"verify", "--config", cfg, "--data", data}, os.Getenv, &out, &out); err != nil {
			t.Fatalf("run %d: verify after SIGKILL: %v", i, err)
		}
		t.Logf("kill %d: %s", i+1, strings.TrimSpace(out.String()))

		store, err := boltstore.Open(filepath.Join(data, "garage.db"), "", &boltstore.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		evs, err := store.Events(0, 0)
		store.Close()
		if err != nil {
			t.Fatal(err)
		}
		stored := map[uint64]string{}
		sessions, ended = 0, 0
		for _, ev := range evs {
			stored[ev.Seq] = ev.EventId
			switch ev.Type {
			case "session.started":
				sessions++
			case "session.ended":
				ended++
			}
		}
		for seq, s := range seen {
			if stored[seq] != s.id {
				t.Fatalf("run %d: event %d (%s) was served as %s but the store holds %q after the crash", i, seq, s.typ, s.id, stored[seq])
			}
		}
	}
	if len(seen) < 200 || sessions < 20 || ended < 5 {
		t.Fatalf("only %d events, %d sessions started and %d ended over %d runs: the traffic did not run", len(seen), sessions, ended, kills)
	}
	t.Logf("%d kills, %d events served and all kept, %d sessions started, %d ended", kills, len(seen), sessions, ended)
}

// TestBackup takes a backup of a running garage (through its API, as the file is locked)
// and of a stopped one (from the file), and opens both copies.
func TestBackup(t *testing.T) {
	bin := buildEdge(t)
	data, dir := t.TempDir(), t.TempDir()
	cmd, base := startEdge(t, bin, fastConfig(t), data)
	time.Sleep(1500 * time.Millisecond)
	ctx := context.Background()
	var out bytes.Buffer
	live := filepath.Join(dir, "live.db")
	if err := run(ctx, []string{"backup", "--data", data, "--api", base, "--token", "wrong-token-000000000", live}, os.Getenv, &out, &out); err == nil {
		t.Fatal("backup with a wrong token succeeded")
	}
	if err := run(ctx, []string{"backup", "--data", data, "--api", base, "--token", testToken, live}, os.Getenv, &out, &out); err != nil {
		t.Fatalf("backup of a running garage: %v", err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	stopped := filepath.Join(dir, "stopped.db")
	if err := run(ctx, []string{"backup", "--data", data, "--api", "http://127.0.0.1:1", stopped}, os.Getenv, &out, &out); err != nil {
		t.Fatalf("backup of a stopped garage: %v", err)
	}
	for _, p := range []string{live, stopped} {
		s, err := boltstore.Open(p, "", &boltstore.Options{ReadOnly: true})
		if err != nil {
			t.Fatalf("open backup %s: %v", p, err)
		}
		evs, err := s.Events(0, 0)
		s.Close()
		if err != nil || len(evs) == 0 {
			t.Fatalf("backup %s: %d events, %v; want some", p, len(evs), err)
		}
		for i, ev := range evs {
			if ev.Seq != uint64(i+1) {
				t.Fatalf("backup %s: position %d holds seq %d", p, i, ev.Seq)
			}
		}
		t.Logf("%s: %d events", filepath.Base(p), len(evs))
	}
	t.Log(strings.TrimSpace(out.String()))
}
