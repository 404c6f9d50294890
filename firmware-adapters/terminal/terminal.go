// Package terminal drives the card terminals of exit kiosks that reach their acquirer
// over HTTP with JSON (protocol "acquirer_http"): the terminal reads the card, and
// each payment is authorized and captured by the acquirer, or captured later when it
// was approved offline. It implements edge.CardTerminal; the floor limit and the
// store-and-forward of offline approvals are the garage's (package edge), so that
// they live in its BoltDB and survive restarts.
//
// The acquirer's API, as gatehouse-sim serves it (firmware-adapters/sim/acquirersim):
//
//	POST {address}/authorize  {"terminal","reference","amount","currency"} -> {"approved","code","message"}
//	POST {address}/capture    the same, for a payment approved offline
//
// Both are idempotent by reference: asked again, the acquirer answers what it
// answered first and moves no money twice.
package terminal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// Protocol is the device protocol this package drives.
const Protocol = "acquirer_http"

// Terminal is one kiosk card terminal.
type Terminal struct {
	id, address, terminalID string
	client                  *http.Client

	mu       sync.Mutex
	healthy  bool
	contact  time.Time
	detail   string
	counters map[string]uint64
}

var (
	_ edge.CardTerminal = (*Terminal)(nil)
	_ edge.Driver       = (*Terminal)(nil)
)

// New returns the terminal of device dev: its Address is the acquirer's base URL;
// option terminal_id names the terminal to the acquirer (default: the device id),
// option timeout bounds each request (default 10s).
func New(dev edge.Device) (*Terminal, error) {
	if dev.Protocol != Protocol {
		return nil, fmt.Errorf("terminal %s: protocol %q, want %q", dev.ID, dev.Protocol, Protocol)
	}
	if !strings.HasPrefix(dev.Address, "http://") && !strings.HasPrefix(dev.Address, "https://") {
		return nil, fmt.Errorf("terminal %s: address %q is not an http(s) URL of the acquirer", dev.ID, dev.Address)
	}
	timeout := 10 * time.Second
	if s := dev.Options["timeout"]; s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("terminal %s: option timeout %q: want a duration such as 10s", dev.ID, s)
		}
		timeout = d
	}
	tid := dev.Options["terminal_id"]
	if tid == "" {
		tid = dev.ID
	}
	return &Terminal{id: dev.ID, address: strings.TrimRight(dev.Address, "/"), terminalID: tid,
		client: &http.Client{Timeout: timeout}, healthy: true, counters: map[string]uint64{}}, nil
}

// request is the body of both acquirer calls.
type request struct {
	Terminal  string `json:"terminal"`
	Reference string `json:"reference"`
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
}

// response is the acquirer's answer.
type response struct {
	Approved bool   `json:"approved"`
	Code     string `json:"code"`
	Message  string `json:"message"`
}

// Authorize implements edge.CardTerminal.
func (t *Terminal) Authorize(ctx context.Context, req edge.CardRequest) (edge.CardResult, error) {
	return t.call(ctx, "authorize", req)
}

// Capture implements edge.CardTerminal.
func (t *Terminal) Capture(ctx context.Context, req edge.CardRequest) (edge.CardResult, error) {
	return t.call(ctx, "capture", req)
}

func (t *Terminal) call(ctx context.Context, verb string, req edge.CardRequest) (edge.CardResult, error) {
	body, _ := json.Marshal(request{Terminal: t.terminalID, Reference: req.Reference, Amount: req.Amount, Currency: req.Currency})
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, t.address+"/"+verb, bytes.NewReader(body))
	if err != nil {
		return edge.CardResult{}, err
	}
	hr.Header.Set("Content-Type", "application/json")
	t.count(verb)
	resp, err := t.client.Do(hr)
	if err != nil {
		// No answer: the acquirer is unreachable, and for an authorization the garage
		// may approve offline. An answer lost in flight is safe: the later capture uses
		// the same reference, which the acquirer does not charge twice.
		return edge.CardResult{}, t.unreachable(fmt.Errorf("%s: %w", verb, err))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return edge.CardResult{}, t.unreachable(fmt.Errorf("%s: acquirer answered %s", verb, resp.Status))
	case resp.StatusCode != http.StatusOK:
		t.count("rejected")
		return edge.CardResult{}, fmt.Errorf("terminal %s: %s: acquirer answered %s: %s", t.id, verb, resp.Status, bytes.TrimSpace(b))
	}
	var r response
	if err := json.Unmarshal(b, &r); err != nil {
		t.count("malformed")
		return edge.CardResult{}, t.unreachable(errors.New(verb + ": malformed answer from the acquirer"))
	}
	t.mu.Lock()
	t.healthy, t.contact, t.detail = true, time.Now(), ""
	t.mu.Unlock()
	return edge.CardResult{Approved: r.Approved, Code: r.Code, Message: r.Message}, nil
}

// unreachable records the failure and returns it as EUNAVAILABLE.
func (t *Terminal) unreachable(err error) error {
	t.mu.Lock()
	t.healthy, t.detail = false, "acquirer unreachable: "+err.Error()
	t.counters["unreachable"]++
	t.mu.Unlock()
	return &unavailable{edge.Errorf(edge.EUNAVAILABLE, "acquirer unreachable"), err}
}

// unavailable is an EUNAVAILABLE edge error that keeps its cause for the log.
type unavailable struct {
	e     *edge.Error
	cause error
}

func (u *unavailable) Error() string { return u.e.Error() + ": " + u.cause.Error() }
func (u *unavailable) Unwrap() error { return u.e }

func (t *Terminal) count(what string) {
	t.mu.Lock()
	t.counters[what]++
	t.mu.Unlock()
}

// Run implements edge.Driver: the terminal has nothing to serve; it reports its
// health from the payments it makes.
func (t *Terminal) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// Status implements edge.Driver.
func (t *Terminal) Status() []edge.DeviceStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := make(map[string]uint64, len(t.counters))
	for k, v := range t.counters {
		c[k] = v
	}
	return []edge.DeviceStatus{{ID: t.id, Kind: string(edge.KindCardTerminal), Protocol: Protocol, Address: t.address,
		Healthy: t.healthy, LastContact: t.contact, Detail: t.detail, Counters: c}}
}
