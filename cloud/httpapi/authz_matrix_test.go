package httpapi_test

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/httpapi"
)

// The authorization matrix: every route of the OpenAPI document (which
// TestOpenAPIMatchesRoutes holds equal to the served routes) × every kind of caller.
// The expectations are written here by hand, per route, from what each route is for;
// they do not come from the routes' own declarations, so a wrong declaration fails.

// who is a kind of caller.
type who string

const (
	nobody  who = "no credentials"
	driver  who = "driver"
	opA     who = "operator of A"
	opB     who = "operator of B"
	mgrA    who = "manager of A"
	mgrB    who = "manager of B"
	admin   who = "admin"
	keyA    who = "API key for A, every scope"
	expired who = "expired admin token"
	foreign who = "admin token signed with another key"
	refresh who = "a refresh token as bearer"
)

var everyone = []who{nobody, driver, opA, opB, mgrA, mgrB, admin, keyA, expired, foreign, refresh}

// class is who may call a route; everyone else is refused.
type class struct {
	allow []who
	// hide: callers who may not see the (private) facility get 404, not 403, so that
	// its existence does not leak.
	hide bool
}

var (
	public     = class{allow: []who{nobody, driver, opA, opB, mgrA, mgrB, admin, keyA}}
	accounts   = class{allow: []who{driver, opA, opB, mgrA, mgrB, admin}}
	driversOnl = class{allow: []who{driver}}
	staffOfA   = class{allow: []who{opA, mgrA, admin, keyA}}
	staffOfANK = class{allow: []who{opA, mgrA, admin}} // no API keys
	mgrsOfA    = class{allow: []who{mgrA, admin}}
	allStaff   = class{allow: []who{opA, opB, mgrA, mgrB, admin}}
	allMgrs    = class{allow: []who{mgrA, mgrB, admin}}
	admins     = class{allow: []who{admin}}
	visibleA   = class{allow: []who{opA, mgrA, admin, keyA}, hide: true}
)

// matrix is every route's class. A route missing here fails the test: classify it.
var matrix = map[string]class{
	"GET /v1/api-keys":         allMgrs,
	"POST /v1/api-keys":        allMgrs,
	"DELETE /v1/api-keys/{id}": allMgrs,
	"GET /v1/audit":            allMgrs,

	"POST /v1/auth/login":        public,
	"POST /v1/auth/register":     public,
	"POST /v1/auth/refresh":      public,
	"POST /v1/auth/logout":       accounts,
	"POST /v1/auth/password":     accounts,
	"POST /v1/auth/totp":         accounts,
	"POST /v1/auth/totp/confirm": accounts,
	"GET /v1/me":                 accounts,

	"GET /v1/exports/datex2/parking":               public,
	"GET /v1/exports/fiware/facilities/{facility}": public, // of the public facility P

	"GET /v1/facilities":                                public,
	"POST /v1/facilities":                               admins,
	"GET /v1/facilities/{facility}":                     visibleA,
	"PATCH /v1/facilities/{facility}":                   mgrsOfA,
	"GET /v1/facilities/{facility}/availability":        visibleA,
	"GET /v1/facilities/{facility}/levels":              visibleA,
	"GET /v1/facilities/{facility}/zones":               visibleA,
	"GET /v1/facilities/{facility}/spots":               visibleA,
	"POST /v1/facilities/{facility}/levels":             mgrsOfA,
	"PATCH /v1/facilities/{facility}/levels/{level}":    mgrsOfA,
	"DELETE /v1/facilities/{facility}/levels/{level}":   mgrsOfA,
	"POST /v1/facilities/{facility}/zones":              mgrsOfA,
	"PATCH /v1/facilities/{facility}/zones/{zone}":      mgrsOfA,
	"DELETE /v1/facilities/{facility}/zones/{zone}":     mgrsOfA,
	"POST /v1/facilities/{facility}/spots":              mgrsOfA,
	"PATCH /v1/facilities/{facility}/spots/{spot}":      mgrsOfA,
	"DELETE /v1/facilities/{facility}/spots/{spot}":     mgrsOfA,
	"GET /v1/facilities/{facility}/status":              staffOfA,
	"GET /v1/facilities/{facility}/alerts":              staffOfA,
	"GET /v1/facilities/{facility}/lanes":               staffOfA,
	"GET /v1/facilities/{facility}/events":              staffOfA,
	"GET /v1/facilities/{facility}/sessions":            staffOfA,
	"GET /v1/facilities/{facility}/sessions/history":    staffOfA,
	"POST /v1/facilities/{facility}/lanes/{lane}/open":  staffOfANK,
	"POST /v1/facilities/{facility}/zones/{zone}/count": staffOfANK,
	"GET /v1/fleet": allStaff,

	"GET /v1/me/sessions":         driversOnl,
	"GET /v1/me/vehicles":         driversOnl,
	"POST /v1/me/vehicles":        driversOnl,
	"DELETE /v1/me/vehicles/{id}": driversOnl,
	"GET /v1/users":               admins,
	"GET /v1/users/{id}":          admins,
	"PUT /v1/users/{id}/role":     admins,
}

// pathValues fill the path parameters: facility A (private) for facility routes,
// the public facility P for the open-data export.
var pathValues = map[string]string{
	"facility": "lot-a", "lane": "entry-1", "zone": "L1", "level": "no-level", "spot": "no-spot",
	"id": "00000000-0000-0000-0000-000000000000",
}

func TestAuthorizationMatrix(t *testing.T) {
	hub := &fakeHub{online: map[string]bool{}}
	e := newAuthEnv(t, httpapi.Config{Hub: hub})
	seedGarage(t, e.db, "lot-a", false)
	seedGarage(t, e.db, "lot-b", false)
	seedGarage(t, e.db, "lot-p", true)

	creds := map[who][]string{
		driver:  bearer(loginAs(t, e, cloud.RoleDriver)),
		opA:     bearer(loginAs(t, e, cloud.RoleOperator, "lot-a")),
		opB:     bearer(loginAs(t, e, cloud.RoleOperator, "lot-b")),
		mgrA:    bearer(loginAs(t, e, cloud.RoleManager, "lot-a")),
		mgrB:    bearer(loginAs(t, e, cloud.RoleManager, "lot-b")),
		admin:   bearer(loginAs(t, e, cloud.RoleAdmin)),
		keyA:    {httpapi.HeaderAPIKey, e.apiKey(allScopes, "lot-a")},
		expired: bearer(e.expiredToken(cloud.RoleAdmin)),
		foreign: bearer(e.foreignToken(cloud.RoleAdmin)),
		refresh: bearer(e.session(cloud.RoleAdmin).RefreshToken),
	}

	res := e.do(http.MethodGet, "/v1/openapi.json", nil)
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	res.JSON(t, &doc)
	param := regexp.MustCompile(`\{([a-z_]+)\}`)
	n := 0
	for path, ops := range doc.Paths {
		for method := range ops {
			op := strings.ToUpper(method) + " " + path
			cl, ok := matrix[op]
			if !ok {
				t.Errorf("%s: not in the authorization matrix; classify it", op)
				continue
			}
			url := param.ReplaceAllStringFunc(path, func(m string) string { return pathValues[m[1:len(m)-1]] })
			if strings.HasPrefix(path, "/v1/exports/fiware/") {
				url = strings.Replace(url, "lot-a", "lot-p", 1)
			}
			// Identifiers in the path other than the facility name nothing that exists:
			// an allowed caller may get 404 there, never 401 or 403.
			subIDs := len(param.FindAllString(path, -1)) > strings.Count(path, "{facility}")
			var body any
			if method != "get" && method != "delete" {
				body = "{}"
			}
			for _, w := range everyone {
				got := e.do(strings.ToUpper(method), url, body, creds[w]...)
				n++
				allowed := slices.Contains(cl.allow, w)
				switch {
				case got.Status >= 500 && got.Status != http.StatusServiceUnavailable:
					t.Errorf("%s as %s: %d %s", op, w, got.Status, got.Body)
				case allowed && (got.Status == 401 || got.Status == 403 || (got.Status == 404 && !subIDs)):
					t.Errorf("%s as %s: %d, want it allowed: %s", op, w, got.Status, got.Body)
				case !allowed && (w == expired || w == foreign || w == refresh):
					if got.Status != http.StatusUnauthorized {
						t.Errorf("%s as %s: %d, want 401: %s", op, w, got.Status, got.Body)
					}
				case !allowed && cl.hide:
					if got.Status != http.StatusNotFound {
						t.Errorf("%s as %s: %d, want 404 (facility hidden): %s", op, w, got.Status, got.Body)
					}
				case !allowed && w == nobody:
					if got.Status != http.StatusUnauthorized {
						t.Errorf("%s as %s: %d, want 401: %s", op, w, got.Status, got.Body)
					}
				case !allowed && got.Status != http.StatusForbidden:
					t.Errorf("%s as %s: %d, want 403: %s", op, w, got.Status, got.Body)
				}
				if got.Status == http.StatusUnauthorized && got.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("%s as %s: 401 without a WWW-Authenticate challenge", op, w)
				}
			}
		}
	}
	for op := range matrix {
		method, path, _ := strings.Cut(op, " ")
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("%s: in the matrix but not served", op)
		}
	}
	t.Logf("%d requests: %d routes × %d callers", n, n/len(everyone), len(everyone))

	// A refresh token spent once and presented again is refused, and kills its
	// family: the token that replaced it stops working too.
	toks := e.session(cloud.RoleDriver)
	first := e.do(http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": toks.RefreshToken})
	if first.Status != http.StatusOK {
		t.Fatalf("refresh: %d %s", first.Status, first.Body)
	}
	var next cloud.Tokens
	first.JSON(t, &next)
	if again := e.do(http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": toks.RefreshToken}); again.Status != http.StatusUnauthorized {
		t.Errorf("reused refresh token: %d, want 401: %s", again.Status, again.Body)
	}
	if after := e.do(http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": next.RefreshToken}); after.Status != http.StatusUnauthorized {
		t.Errorf("the successor of a reused refresh token: %d, want 401 (family revoked): %s", after.Status, after.Body)
	}
}

// allScopes are every scope the route table uses.
var allScopes = []string{"availability:read", "facilities:read", "status:read", "sessions:read", "events:read"}
