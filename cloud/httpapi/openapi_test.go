package httpapi_test

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestOpenAPIMatchesRoutes checks the OpenAPI document against the app's real
// routes: every /v1 route is documented with its method, and every documented
// operation is served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t, httpapiConfig())
	res := e.do(http.MethodGet, "/v1/openapi.json", nil)
	if res.Status != http.StatusOK {
		t.Fatalf("openapi.json: status %d", res.Status)
	}
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	res.JSON(t, &doc)
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for m, op := range ops {
			documented[strings.ToUpper(m)+" "+p] = true
			if _, ok := op["responses"]; !ok {
				t.Errorf("%s %s: no responses", m, p)
			}
		}
	}
	param := regexp.MustCompile(`:([A-Za-z_][A-Za-z0-9_]*)`)
	served := map[string]bool{}
	for _, r := range e.app.GetRoutes(true) {
		if !strings.HasPrefix(r.Path, "/v1/") || r.Path == "/v1/openapi.json" || r.Method == http.MethodHead {
			continue
		}
		served[r.Method+" "+param.ReplaceAllString(r.Path, "{$1}")] = true
	}
	if len(served) == 0 {
		t.Fatal("no /v1 routes served")
	}
	for k := range served {
		if !documented[k] {
			t.Errorf("served but not documented: %s", k)
		}
	}
	for k := range documented {
		if !served[k] {
			t.Errorf("documented but not served: %s", k)
		}
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range served {
			if !yield(k) {
				return
			}
		}
	})
	t.Logf("%d operations documented and served: %v", len(keys), keys)
}
