package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/auth"
	"github.com/gatehouse-parking/gatehouse/cloud/httpapi"
	"github.com/gatehouse-parking/gatehouse/cloud/pgtest"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
)

// FuzzRequestBodies sends arbitrary bodies to every route that takes one, as an admin
// (who passes every access check, so the body reaches the decoder and the handler):
// the answer is never a 5xx other than 503, and every refusal is a problem document.
func FuzzRequestBodies(f *testing.F) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgtest.ForTest(f), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(db.Close)
	if err := db.Migrate(ctx); err != nil {
		f.Fatal(err)
	}
	seedGarage(f, db, "lot-a", false)
	svc, err := auth.New(ctx, db, auth.Options{Params: cheapHashing})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := svc.CreateUser(ctx, "fuzz-admin@example.com", "", testPassword, cloud.RoleAdmin, nil); err != nil {
		f.Fatal(err)
	}
	toks, err := svc.Login(ctx, "fuzz-admin@example.com", testPassword, "")
	if err != nil {
		f.Fatal(err)
	}
	app := httpapi.New(httpapi.Config{DB: db, Auth: svc, Hub: &fakeHub{online: map[string]bool{}}, Limits: noLimits})

	// The routes that take a body, from the OpenAPI document.
	req := httptest.NewRequest("GET", "/v1/openapi.json", nil)
	res, err := app.Test(req, -1)
	if err != nil {
		f.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			RequestBody any `json:"requestBody"`
		} `json:"paths"`
	}
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		f.Fatal(err)
	}
	var targets []string
	for path, ops := range doc.Paths {
		for method, o := range ops {
			if o.RequestBody != nil {
				targets = append(targets, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(targets) // the fuzzer's index must name the same route every run
	if len(targets) < 10 {
		f.Fatalf("found only %d routes with bodies: %v", len(targets), targets)
	}
	fill := strings.NewReplacer("{facility}", "lot-a", "{lane}", "entry-1", "{zone}", "L1", "{level}", "L1", "{spot}", "s1",
		"{id}", "00000000-0000-0000-0000-000000000000")

	for i, seed := range []string{`{}`, `{"name":"x"}`, `{"email":"a@b.c","password":"0123456789abc"}`, `[]`, `null`,
		`{"reason":"'; DROP TABLE users;--"}`, `{"occupied":-1,"reason":"x"}`, `{"capacity":1e400}`, "\xff\xfe", `{"a":`} {
		f.Add(uint8(i), []byte(seed))
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		target := targets[int(which)%len(targets)]
		method, path, _ := strings.Cut(target, " ")
		req := httptest.NewRequest(method, fill.Replace(path), bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+toks.AccessToken)
		res, err := app.Test(req, -1)
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode >= 500 && res.StatusCode != 503 {
			t.Fatalf("%s with %q: %d %s", target, body, res.StatusCode, b)
		}
		if res.StatusCode >= 400 && res.Header.Get("Content-Type") != httpapi.ProblemContentType {
			t.Fatalf("%s with %q: %d without a problem document: %s", target, body, res.StatusCode, b)
		}
	})
}
