// Package acquirersim is the card acquirer of gatehouse-sim: the bank behind the exit
// kiosks' card terminals (firmware-adapters/terminal), served over HTTP. It approves
// and captures payments, idempotently by reference, and can be taken offline (fault
// injection) so that the terminals fall back to offline approval within the garage's
// floor limit, and capture when it is back.
package acquirersim

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
)

// Acquirer is a simulated acquirer. The zero value is not ready; use New.
type Acquirer struct {
	mu      sync.Mutex
	offline bool
	// decline refuses authorizations and captures of references with this prefix.
	decline string
	results map[string]Result // by reference
	// Collected is the money moved, by currency.
	collected map[string]int64
	counts    Counts
}

// Result is the acquirer's answer to one payment.
type Result struct {
	Approved bool   `json:"approved"`
	Code     string `json:"code,omitempty"`
	Message  string `json:"message,omitempty"`
}

// Counts are what the acquirer has done.
type Counts struct {
	Authorized int   `json:"authorized"`
	Captured   int   `json:"captured"`
	Declined   int   `json:"declined"`
	Repeats    int   `json:"repeats"` // requests for a reference already answered
	Refused    int   `json:"refused"` // requests turned away while offline
	Collected  int64 `json:"collected"`
}

// New returns an acquirer that approves every payment.
func New() *Acquirer {
	return &Acquirer{results: map[string]Result{}, collected: map[string]int64{}}
}

// SetOffline makes the acquirer unreachable (every request answered 503) or reachable.
func (a *Acquirer) SetOffline(off bool) {
	a.mu.Lock()
	a.offline = off
	a.mu.Unlock()
}

// SetGarbage implements the simulator's Faulty: an acquirer sending garbage is
// offline to its terminals.
func (a *Acquirer) SetGarbage(on bool) { a.SetOffline(on) }

// DeclinePrefix makes the acquirer decline payments whose reference starts with p
// ("" declines nothing).
func (a *Acquirer) DeclinePrefix(p string) {
	a.mu.Lock()
	a.decline = p
	a.mu.Unlock()
}

// Counts returns what the acquirer has done so far.
func (a *Acquirer) Counts() Counts {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.counts
}

type request struct {
	Terminal  string `json:"terminal"`
	Reference string `json:"reference"`
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
}

// ServeHTTP serves POST /authorize and POST /capture (under any prefix).
func (a *Acquirer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	verb := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	if r.Method != http.MethodPost || (verb != "authorize" && verb != "capture") {
		http.NotFound(w, r)
		return
	}
	var req request
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil || req.Reference == "" || req.Amount <= 0 {
		http.Error(w, "want {terminal, reference, amount > 0, currency}", http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	if a.offline {
		a.counts.Refused++
		a.mu.Unlock()
		http.Error(w, "acquirer offline", http.StatusServiceUnavailable)
		return
	}
	res, seen := a.results[req.Reference]
	switch {
	case seen:
		a.counts.Repeats++
	case a.decline != "" && strings.HasPrefix(req.Reference, a.decline):
		res = Result{Code: "05", Message: "do not honour"}
		a.counts.Declined++
	default:
		res = Result{Approved: true, Code: "00"}
		a.collected[req.Currency] += req.Amount
		a.counts.Collected += req.Amount
		if verb == "capture" {
			a.counts.Captured++
		} else {
			a.counts.Authorized++
		}
	}
	a.results[req.Reference] = res
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(res)
}
