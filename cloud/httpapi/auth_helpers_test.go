package httpapi_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/auth"
	"github.com/gatehouse-parking/gatehouse/cloud/httpapi"
	"github.com/gatehouse-parking/gatehouse/cloud/pgtest"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	"github.com/golang-jwt/jwt/v5"
)

// testPassword is the password of the accounts the helpers create.
const testPassword = "correct horse battery staple"

// cheapHashing keeps argon2id fast in tests; its parameters are tested in cloud/auth.
var cheapHashing = auth.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// authEnv is an API with the real account service (cloud/auth) on a fresh database.
type authEnv struct {
	*env
	svc *auth.Service
	n   atomic.Int64
}

// noLimits lifts the rate limits so that tests can log in as often as they like.
var noLimits = httpapi.Limits{
	PerIP:        httpapi.Limit{Rate: math.Inf(1)},
	PerPrincipal: httpapi.Limit{Rate: math.Inf(1)},
	Auth:         httpapi.Limit{Rate: math.Inf(1)},
}

// newAuthEnv starts the API with cfg's other fields and the real account service as
// its Authenticator and Accounts; zero Limits mean none.
func newAuthEnv(t *testing.T, cfg httpapi.Config) *authEnv {
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
	svc, err := auth.New(ctx, db, auth.Options{Params: cheapHashing})
	if err != nil {
		t.Fatal(err)
	}
	cfg.DB, cfg.Auth = db, svc
	if cfg.Limits == (httpapi.Limits{}) {
		cfg.Limits = noLimits
	}
	return &authEnv{env: &env{t: t, db: db, app: httpapi.New(cfg)}, svc: svc}
}

// createUser creates an account directly through the service, with testPassword.
func (e *authEnv) createUser(role cloud.Role, facilities ...string) *cloud.User {
	e.t.Helper()
	email := fmt.Sprintf("%s-%d@example.com", strings.ReplaceAll(string(role), "_", "-"), e.n.Add(1))
	u, err := e.svc.CreateUser(context.Background(), email, "", testPassword, role, facilities)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// loginAs creates an account of the role (operators and managers assigned to the
// facilities) and returns a real access token of it, for authorization tests.
func loginAs(t *testing.T, e *authEnv, role cloud.Role, facilities ...string) string {
	t.Helper()
	return e.session(role, facilities...).AccessToken
}

// session creates an account of the role and logs it in.
func (e *authEnv) session(role cloud.Role, facilities ...string) *cloud.Tokens {
	e.t.Helper()
	u := e.createUser(role, facilities...)
	toks, err := e.svc.Login(context.Background(), u.Email, testPassword, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return toks
}

// apiKey issues a real API key with the scopes for the facilities.
func (e *authEnv) apiKey(scopes []string, facilities ...string) string {
	e.t.Helper()
	_, key, err := e.svc.CreateAPIKey(context.Background(), "", "test integrator", scopes, facilities)
	if err != nil {
		e.t.Fatal(err)
	}
	return key
}

// expiredToken returns an access token of a new account of the role, validly signed
// but expired: issued by an instance whose clock is an hour behind.
func (e *authEnv) expiredToken(role cloud.Role, facilities ...string) string {
	e.t.Helper()
	ctx := context.Background()
	u := e.createUser(role, facilities...)
	past, err := auth.New(ctx, e.db, auth.Options{Params: cheapHashing, Now: func() time.Time { return time.Now().Add(-time.Hour) }})
	if err != nil {
		e.t.Fatal(err)
	}
	toks, err := past.Login(ctx, u.Email, testPassword, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return toks.AccessToken
}

// foreignToken returns a token with the claims and kid of a real token of the role,
// signed with another key.
func (e *authEnv) foreignToken(role cloud.Role, facilities ...string) string {
	e.t.Helper()
	real := loginAs(e.t, e, role, facilities...)
	var claims jwt.MapClaims
	tok, _, err := jwt.NewParser().ParseUnverified(real, &claims)
	if err != nil {
		e.t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	forged := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	forged.Header["kid"] = tok.Header["kid"]
	s, err := forged.SignedString(key)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// reusedRefresh returns a refresh token of a new account of the role that has been
// spent once already: presenting it is a reuse.
func (e *authEnv) reusedRefresh(role cloud.Role, facilities ...string) string {
	e.t.Helper()
	toks := e.session(role, facilities...)
	if _, err := e.svc.Refresh(context.Background(), toks.RefreshToken); err != nil {
		e.t.Fatal(err)
	}
	return toks.RefreshToken
}

// auditActions returns the actions and outcomes of the audit log, oldest first, as
// "action/outcome".
func (e *authEnv) auditActions() []string {
	e.t.Helper()
	es, err := e.db.AuditLog(context.Background(), postgres.AuditFilter{Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for i := len(es) - 1; i >= 0; i-- {
		out = append(out, es[i].Action+"/"+es[i].Outcome)
	}
	return out
}

// count returns the number of rows of a table, to show that a refused request changed
// nothing.
func (e *authEnv) count(table string) int {
	e.t.Helper()
	var n int
	if err := e.db.Pool().QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// overTCP sends a request to the app served on a real listener: unlike app.Test, it
// sees the server's own refusals (a body over the limit gets 413 before any handler).
func (e *env) overTCP(method, path, body string, headers ...string) *response {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { httpapi.Serve(ctx, e.app, ln); close(done) }()
	defer func() { cancel(); <-done }()
	// Write the request and read the answer at once: a server refusing a body too
	// large answers before reading it and closes, and a client that waits to finish
	// writing first (as net/http's does) may see only the reset.
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	var head strings.Builder
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n", method, path, len(body))
	for i := 0; i+1 < len(headers); i += 2 {
		fmt.Fprintf(&head, "%s: %s\r\n", headers[i], headers[i+1])
	}
	head.WriteString("\r\n")
	go func() {
		conn.Write([]byte(head.String()))
		conn.Write([]byte(body)) // may fail once the server has answered and closed
	}()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return &response{Status: res.StatusCode, Header: res.Header, Body: b}
}
