package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/gatehouse-parking/gatehouse/cloud/httpapi"
)

// TestRateLimits: a principal (here an API key) over its limit gets 429 with
// Retry-After while another principal from the same address goes on; an address over
// its limit is refused whoever it is.
func TestRateLimits(t *testing.T) {
	e := newEnv(t, httpapi.Config{Auth: keyAuth{}, Hub: &fakeHub{online: map[string]bool{}},
		Limits: httpapi.Limits{PerIP: httpapi.Limit{Rate: 0.001, Burst: 8}, PerPrincipal: httpapi.Limit{Rate: 0.001, Burst: 3}}})
	seedGarage(t, e.db, "lot-a", false)
	path := "/v1/facilities/lot-a/availability"
	key1 := []string{httpapi.HeaderAPIKey, "key|availability:read|lot-a"}
	for i := range 3 {
		if res := e.do(http.MethodGet, path, nil, key1...); res.Status != http.StatusOK {
			t.Fatalf("request %d of key 1: %d %s", i+1, res.Status, res.Body)
		}
	}
	res := e.do(http.MethodGet, path, nil, key1...)
	if res.Status != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Fatalf("4th request of key 1: %d (Retry-After %q), want 429 with Retry-After", res.Status, res.Header.Get("Retry-After"))
	}
	if p := res.Problem(t); p.Type != "urn:gatehouse:problem:too-many-requests" {
		t.Errorf("problem type %q", p.Type)
	}
	// The fake authenticator names every key "k1": the limit is per principal, so a
	// token of another principal still passes.
	if res := e.do(http.MethodGet, path, nil, bearer("admin")...); res.Status != http.StatusOK {
		t.Fatalf("another principal: %d %s", res.Status, res.Body)
	}
	// 5 requests so far from this address; its burst of 8 ends at the 9th.
	for i := 0; i < 3; i++ {
		e.do(http.MethodGet, "/v1/facilities", nil)
	}
	if res := e.do(http.MethodGet, "/v1/facilities", nil); res.Status != http.StatusTooManyRequests {
		t.Fatalf("9th request from one address: %d, want 429", res.Status)
	}
}

// TestRateLimitBehindProxy: behind a trusted proxy the client's address is the last
// entry of X-Forwarded-For, the one the proxy appended; addresses a client writes
// before it do not buy it a fresh bucket.
func TestRateLimitBehindProxy(t *testing.T) {
	e := newEnv(t, httpapi.Config{TrustProxy: true, Limits: httpapi.Limits{PerIP: httpapi.Limit{Rate: 0.001, Burst: 2}}})
	get := func(xff string) int {
		return e.do(http.MethodGet, "/v1/facilities", nil, "X-Forwarded-For", xff).Status
	}
	for i, xff := range []string{"10.0.0.1, 203.0.113.7", "10.0.0.2, 203.0.113.7"} {
		if s := get(xff); s != http.StatusOK {
			t.Fatalf("request %d: %d", i+1, s)
		}
	}
	if s := get("10.9.9.9, 203.0.113.7"); s != http.StatusTooManyRequests {
		t.Fatalf("a forged first entry: %d, want 429 (the proxy saw the same client)", s)
	}
	if s := get("10.0.0.1, 203.0.113.8"); s != http.StatusOK {
		t.Fatalf("another client behind the proxy: %d, want 200", s)
	}
}
