// Package stripemock starts Stripe's own API mock, stripe-mock, for tests: a real
// server answering Stripe's API from its OpenAPI specification. It is stateless:
// every request is validated and answered from fixtures, nothing is remembered.
//
// The binary is installed by .ci/install-deps (go install
// github.com/stripe/stripe-mock@v0.203.0); a test that needs it fails, never skips,
// when it is missing.
package stripemock

import (
	"bufio"
	"context"
	"go/build"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Version is the stripe-mock release the tests are written against.
const Version = "v0.203.0"

// Binary returns the path of stripe-mock: $STRIPE_MOCK, else on $PATH, else in
// $GOBIN or $GOPATH/bin, where go install puts it.
func Binary() (string, error) {
	if p := os.Getenv("STRIPE_MOCK"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("stripe-mock"); err == nil {
		return p, nil
	}
	dirs := []string{os.Getenv("GOBIN")}
	for _, gp := range filepath.SplitList(build.Default.GOPATH) {
		dirs = append(dirs, filepath.Join(gp, "bin"))
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		p := filepath.Join(d, "stripe-mock")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

var listening = regexp.MustCompile(`Listening for HTTP at address: (\S+)`)

// Start starts stripe-mock on free ports of the loopback interface, stops it when
// the test ends, and returns its base URL (http://127.0.0.1:<port>). It fails the
// test when the binary is missing or does not start.
func Start(tb testing.TB) string {
	tb.Helper()
	bin, err := Binary()
	if err != nil {
		tb.Fatalf("stripe-mock not found (install it: go install github.com/stripe/stripe-mock@%s, or make deps): %v", Version, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// Both listeners on port 0: the HTTPS one defaults to a fixed port, which
	// parallel test binaries would fight over.
	cmd := exec.CommandContext(ctx, bin, "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		cancel()
		tb.Fatalf("start stripe-mock: %v", err)
	}
	tb.Cleanup(func() { cancel(); cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		var sent bool
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil && !sent {
				addr <- m[1]
				sent = true
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case a := <-addr:
		if err := waitDial(a, 10*time.Second); err != nil {
			tb.Fatalf("stripe-mock at %s: %v", a, err)
		}
		return "http://" + strings.TrimPrefix(a, "http://")
	case <-time.After(30 * time.Second):
		tb.Fatal("stripe-mock did not start listening within 30s")
	}
	return ""
}

func waitDial(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
