package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/httpapi"
	"github.com/gatehouse-parking/gatehouse/cloud/pgtest"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	"github.com/gofiber/fiber/v2"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// env is an API on a fresh database.
type env struct {
	t   *testing.T
	db  *postgres.DB
	app *fiber.App
}

// newEnv starts the API on a fresh, migrated database with cfg's other fields; Auth
// defaults to fakeAuth.
func newEnv(t *testing.T, cfg httpapi.Config) *env {
	t.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgtest.ForTest(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	cfg.DB = db
	if cfg.Auth == nil {
		cfg.Auth = fakeAuth{}
	}
	return &env{t: t, db: db, app: httpapi.New(cfg)}
}

// fakeAuth accepts tokens "role:facility,facility" and keys "key:scope,scope:facility".
type fakeAuth struct{}

func (fakeAuth) AuthenticateToken(ctx context.Context, tok string) (*cloud.Principal, error) {
	role, facs, _ := strings.Cut(tok, ":")
	if !cloud.Role(role).Valid() {
		return nil, cloud.Errorf(cloud.EUNAUTHORIZED, "the access token is not valid")
	}
	p := &cloud.Principal{UserID: "u-" + role, Name: role + "@example.com", Role: cloud.Role(role)}
	if facs != "" {
		p.Facilities = strings.Split(facs, ",")
	}
	return p, nil
}

func (fakeAuth) AuthenticateKey(ctx context.Context, key string) (*cloud.Principal, error) {
	parts := strings.Split(key, ":")
	if len(parts) != 3 || parts[0] != "key" {
		return nil, cloud.Errorf(cloud.EUNAUTHORIZED, "the API key is not valid")
	}
	return &cloud.Principal{APIKeyID: "k1", Name: "integrator", Role: cloud.RoleIntegrator,
		Scopes: strings.Split(parts[1], ","), Facilities: strings.Split(parts[2], ",")}, nil
}

// response is what do returns.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test when it cannot.
func (r *response) JSON(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Problem decodes a problem body, failing the test when the response is not one.
func (r *response) Problem(t *testing.T) httpapi.Problem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != httpapi.ProblemContentType {
		t.Fatalf("status %d, content type %q, body %s: want a problem", r.Status, ct, r.Body)
	}
	var p httpapi.Problem
	r.JSON(t, &p)
	return p
}

// do sends a request to the app. body is sent as is when it is a string or []byte,
// else as JSON; headers are name, value pairs.
func (e *env) do(method, path string, body any, headers ...string) *response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req := httptest.NewRequest(method, path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := e.app.Test(req, -1)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return &response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// bearer returns the Authorization header pair for tok.
func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// httpapiConfig is the config most tests use: the fake authenticator, no hub.
func httpapiConfig() httpapi.Config { return httpapi.Config{} }
