package terminal_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/sim/acquirersim"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/terminal"
)

// TestTerminalAgainstTheSimulatedAcquirer drives the terminal against gatehouse-sim's
// acquirer: approvals, declines, an acquirer offline reported as EUNAVAILABLE, and
// captures that move money once however often they are repeated.
func TestTerminalAgainstTheSimulatedAcquirer(t *testing.T) {
	ctx := context.Background()
	acq := acquirersim.New()
	srv := httptest.NewServer(acq)
	defer srv.Close()
	term, err := terminal.New(edge.Device{ID: "x1-terminal", Kind: edge.KindCardTerminal, Protocol: terminal.Protocol,
		Address: srv.URL + "/acquirer", Options: map[string]string{"timeout": "2s"}})
	if err != nil {
		t.Fatal(err)
	}
	req := func(ref string, amount int64) edge.CardRequest {
		return edge.CardRequest{Reference: ref, Amount: amount, Currency: "EUR", Lane: "exit-1"}
	}

	if r, err := term.Authorize(ctx, req("gh-1", 450)); err != nil || !r.Approved {
		t.Fatalf("Authorize(gh-1) = %+v, %v; want approved", r, err)
	}
	acq.DeclinePrefix("gh-bad")
	if r, err := term.Authorize(ctx, req("gh-bad-2", 300)); err != nil || r.Approved || r.Message == "" {
		t.Fatalf("Authorize(gh-bad-2) = %+v, %v; want declined with a reason", r, err)
	}
	acq.SetOffline(true)
	if _, err := term.Authorize(ctx, req("gh-3", 300)); edge.ErrorCode(err) != edge.EUNAVAILABLE {
		t.Fatalf("Authorize with the acquirer offline: err %v; want unavailable", err)
	}
	if st := term.Status(); st[0].Healthy {
		t.Errorf("status with the acquirer offline: %+v; want unhealthy", st[0])
	}
	if _, err := term.Capture(ctx, req("gh-3", 300)); edge.ErrorCode(err) != edge.EUNAVAILABLE {
		t.Fatalf("Capture with the acquirer offline: err %v; want unavailable", err)
	}
	acq.SetOffline(false)
	for range 3 {
		if r, err := term.Capture(ctx, req("gh-3", 300)); err != nil || !r.Approved {
			t.Fatalf("Capture(gh-3) = %+v, %v; want approved", r, err)
		}
	}
	c := acq.Counts()
	if c.Collected != 750 || c.Captured != 1 || c.Repeats != 2 {
		t.Fatalf("acquirer %+v; want 750 collected, one capture, two repeats", c)
	}
	if st := term.Status(); !st[0].Healthy || st[0].LastContact.IsZero() {
		t.Errorf("status after the acquirer returned: %+v; want healthy", st[0])
	}

	// A dead address is unreachable too.
	dead, _ := terminal.New(edge.Device{ID: "t2", Protocol: terminal.Protocol, Address: "http://127.0.0.1:1/acquirer", Options: map[string]string{"timeout": "1s"}})
	if _, err := dead.Authorize(ctx, req("gh-4", 100)); edge.ErrorCode(err) != edge.EUNAVAILABLE {
		t.Fatalf("Authorize against a dead address: %v; want unavailable", err)
	}
	if _, err := terminal.New(edge.Device{ID: "t3", Protocol: terminal.Protocol, Address: "10.0.0.1:80"}); err == nil {
		t.Error("New with an address that is not a URL: no error")
	}
}
