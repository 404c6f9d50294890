package httpapi_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/auth"
	"github.com/gatehouse-parking/gatehouse/cloud/httpapi"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
)

// wantStatus fails the test unless res has the status.
func wantStatus(t *testing.T, what string, res *response, status int) {
	t.Helper()
	if res.Status != status {
		t.Fatalf("%s: status %d, body %s; want %d", what, res.Status, res.Body, status)
	}
}

// hasActions reports whether the audit log holds every one of want.
func hasActions(t *testing.T, e *authEnv, want ...string) {
	t.Helper()
	got := e.auditActions()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("audit log %v lacks %s", got, w)
		}
	}
}

// TestAuthFlow walks a driver through register, login, /me, refresh and the reuse of
// a spent refresh token, which kills the session.
func TestAuthFlow(t *testing.T) {
	e := newAuthEnv(t, httpapi.Config{})
	res := e.do(http.MethodPost, "/v1/auth/register", map[string]any{"email": " Dana@Example.com ", "name": "Dana", "password": testPassword})
	wantStatus(t, "register", res, http.StatusCreated)
	var u cloud.User
	res.JSON(t, &u)
	if u.Email != "dana@example.com" || u.Role != cloud.RoleDriver || u.ID == "" {
		t.Fatalf("registered %+v; want a driver with the normalised email", u)
	}
	if strings.Contains(string(res.Body), "argon2") || strings.Contains(string(res.Body), "password") {
		t.Errorf("register answers %s: it shows the password hash", res.Body)
	}
	res = e.do(http.MethodPost, "/v1/auth/register", map[string]any{"email": "DANA@example.com", "password": testPassword})
	wantStatus(t, "register twice", res, http.StatusConflict)

	res = e.do(http.MethodPost, "/v1/auth/login", map[string]any{"email": "dana@EXAMPLE.com", "password": testPassword})
	wantStatus(t, "login", res, http.StatusOK)
	var toks cloud.Tokens
	res.JSON(t, &toks)
	if toks.AccessToken == "" || toks.RefreshToken == "" || toks.ExpiresIn != 900 || toks.TokenType != "Bearer" {
		t.Fatalf("login = %s", res.Body)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("login Cache-Control = %q; want no-store", cc)
	}

	res = e.do(http.MethodGet, "/v1/me", nil, bearer(toks.AccessToken)...)
	wantStatus(t, "me", res, http.StatusOK)
	var me cloud.User
	res.JSON(t, &me)
	if me.ID != u.ID || me.Name != "Dana" {
		t.Errorf("me = %+v; want %+v", me, u)
	}

	res = e.do(http.MethodPost, "/v1/auth/refresh", map[string]any{"refresh_token": toks.RefreshToken})
	wantStatus(t, "refresh", res, http.StatusOK)
	var next cloud.Tokens
	res.JSON(t, &next)
	if next.RefreshToken == toks.RefreshToken || next.AccessToken == "" {
		t.Fatalf("refresh did not rotate: %s", res.Body)
	}
	wantStatus(t, "me with the refreshed token", e.do(http.MethodGet, "/v1/me", nil, bearer(next.AccessToken)...), http.StatusOK)

	// The spent token again: 401, and the family (with the newest token) is dead.
	res = e.do(http.MethodPost, "/v1/auth/refresh", map[string]any{"refresh_token": toks.RefreshToken})
	wantStatus(t, "reuse of a spent refresh token", res, http.StatusUnauthorized)
	if p := res.Problem(t); !strings.Contains(p.Detail, "not valid") {
		t.Errorf("reuse detail = %q", p.Detail)
	}
	res = e.do(http.MethodPost, "/v1/auth/refresh", map[string]any{"refresh_token": next.RefreshToken})
	wantStatus(t, "the newest token after the reuse", res, http.StatusUnauthorized)
	hasActions(t, e, "user.register/ok", "auth.login/ok", "auth.refresh_reuse/denied")
	es, _ := e.db.AuditLog(context.Background(), postgres.AuditFilter{})
	for _, en := range es {
		if en.Action == "auth.refresh_reuse" && en.Target != "user:"+u.ID {
			t.Errorf("refresh_reuse target = %q; want user:%s", en.Target, u.ID)
		}
		if en.Action == "auth.login" && (en.IP == "" || en.RequestID == "" || en.At.IsZero()) {
			t.Errorf("login entry %+v lacks ip, request id or time", en)
		}
	}
}

func TestAuthLoginDoesNotRevealEmails(t *testing.T) {
	e := newAuthEnv(t, httpapi.Config{})
	u := e.createUser(cloud.RoleDriver)
	wrongPw := e.do(http.MethodPost, "/v1/auth/login", map[string]any{"email": u.Email, "password": "not the password"})
	unknown := e.do(http.MethodPost, "/v1/auth/login", map[string]any{"email": "nobody@example.com", "password": "not the password"})
	sqlish := e.do(http.MethodPost, "/v1/auth/login", map[string]any{"email": "' OR '1'='1' --", "password": "' OR '1'='1' --"})
	for name, res := range map[string]*response{"wrong password": wrongPw, "unknown email": unknown, "sql": sqlish} {
		wantStatus(t, name, res, http.StatusUnauthorized)
	}
	if a, b := wrongPw.Problem(t).Detail, unknown.Problem(t).Detail; a != b {
		t.Errorf("wrong password says %q, unknown email %q", a, b)
	}
	hasActions(t, e, "auth.login/denied")
	es, _ := e.db.AuditLog(context.Background(), postgres.AuditFilter{})
	if len(es) != 3 || es[0].Actor != "anonymous" || !strings.HasPrefix(es[0].Target, "email:") {
		t.Errorf("audit = %+v; want three denied logins by anonymous", es)
	}
}

func TestAuthLogout(t *testing.T) {
	e := newAuthEnv(t, httpapi.Config{})
	a := e.session(cloud.RoleDriver)
	wantStatus(t, "logout without a token", e.do(http.MethodPost, "/v1/auth/logout", map[string]any{"refresh_token": a.RefreshToken}), http.StatusUnauthorized)
	res := e.do(http.MethodPost, "/v1/auth/logout", map[string]any{"refresh_token": a.RefreshToken}, bearer(a.AccessToken)...)
	wantStatus(t, "logout", res, http.StatusNoContent)
	wantStatus(t, "refresh after logout", e.do(http.MethodPost, "/v1/auth/refresh", map[string]any{"refresh_token": a.RefreshToken}), http.StatusUnauthorized)
	hasActions(t, e, "auth.logout/ok")

	// Everywhere: the access token dies too.
	b := e.session(cloud.RoleOperator, "lot-1")
	res = e.do(http.MethodPost, "/v1/auth/logout", map[string]any{"everywhere": true}, bearer(b.AccessToken)...)
	wantStatus(t, "logout everywhere", res, http.StatusNoContent)
	wantStatus(t, "me after logout everywhere", e.do(http.MethodGet, "/v1/me", nil, bearer(b.AccessToken)...), http.StatusUnauthorized)
	wantStatus(t, "refresh after logout everywhere", e.do(http.MethodPost, "/v1/auth/refresh", map[string]any{"refresh_token": b.RefreshToken}), http.StatusUnauthorized)
}

func TestAuthPasswordChangeRevokes(t *testing.T) {
	e := newAuthEnv(t, httpapi.Config{})
	u := e.createUser(cloud.RoleManager, "lot-1")
	ctx := context.Background()
	phone, _ := e.svc.Login(ctx, u.Email, testPassword, "")
	laptop, _ := e.svc.Login(ctx, u.Email, testPassword, "")

	res := e.do(http.MethodPost, "/v1/auth/password", map[string]any{"current_password": "wrong password!", "new_password": "a brand new password"}, bearer(laptop.AccessToken)...)
	wantStatus(t, "wrong current password", res, http.StatusForbidden)
	res = e.do(http.MethodPost, "/v1/auth/password", map[string]any{"current_password": testPassword, "new_password": "short"}, bearer(laptop.AccessToken)...)
	wantStatus(t, "short new password", res, http.StatusUnprocessableEntity)
	if p := res.Problem(t); len(p.Errors) != 1 || p.Errors[0].Field != "new_password" {
		t.Errorf("errors = %+v; want new_password", p.Errors)
	}
	res = e.do(http.MethodPost, "/v1/auth/password", map[string]any{"current_password": testPassword, "new_password": "a brand new password"}, bearer(laptop.AccessToken)...)
	wantStatus(t, "change", res, http.StatusOK)
	var fresh cloud.Tokens
	res.JSON(t, &fresh)

	for name, tok := range map[string]string{"phone": phone.AccessToken, "laptop": laptop.AccessToken} {
		wantStatus(t, name+"'s old access token", e.do(http.MethodGet, "/v1/me", nil, bearer(tok)...), http.StatusUnauthorized)
	}
	for name, tok := range map[string]string{"phone": phone.RefreshToken, "laptop": laptop.RefreshToken} {
		wantStatus(t, name+"'s old refresh token", e.do(http.MethodPost, "/v1/auth/refresh", map[string]any{"refresh_token": tok}), http.StatusUnauthorized)
	}
	wantStatus(t, "the new tokens", e.do(http.MethodGet, "/v1/me", nil, bearer(fresh.AccessToken)...), http.StatusOK)
	wantStatus(t, "login with the old password", e.do(http.MethodPost, "/v1/auth/login", map[string]any{"email": u.Email, "password": testPassword}), http.StatusUnauthorized)
	wantStatus(t, "login with the new password", e.do(http.MethodPost, "/v1/auth/login", map[string]any{"email": u.Email, "password": "a brand new password"}), http.StatusOK)
	hasActions(t, e, "auth.password_change/denied", "auth.password_change/ok")
}

func TestAuthTOTPRequiredForStaff(t *testing.T) {
	e := newAuthEnv(t, httpapi.Config{})
	u := e.createUser(cloud.RoleOperator, "lot-1")
	toks, _ := e.svc.Login(context.Background(), u.Email, testPassword, "")
	res := e.do(http.MethodPost, "/v1/auth/totp", nil, bearer(toks.AccessToken)...)
	wantStatus(t, "enrol", res, http.StatusOK)
	var en httpapi.TOTPEnrollment
	res.JSON(t, &en)
	if en.Secret == "" || !strings.HasPrefix(en.URI, "otpauth://totp/") {
		t.Fatalf("enrolment = %s", res.Body)
	}
	res = e.do(http.MethodPost, "/v1/auth/totp/confirm", map[string]any{"code": "12345"}, bearer(toks.AccessToken)...)
	wantStatus(t, "confirm with 5 digits", res, http.StatusUnprocessableEntity)
	code, _ := auth.TOTPCode(en.Secret, time.Now())
	res = e.do(http.MethodPost, "/v1/auth/totp/confirm", map[string]any{"code": code}, bearer(toks.AccessToken)...)
	wantStatus(t, "confirm", res, http.StatusNoContent)
	hasActions(t, e, "totp.enable/ok")

	login := func(code string) *response {
		return e.do(http.MethodPost, "/v1/auth/login", map[string]any{"email": u.Email, "password": testPassword, "totp_code": code})
	}
	res = login("")
	wantStatus(t, "login without a code", res, http.StatusUnauthorized)
	if p := res.Problem(t); !strings.Contains(p.Detail, "totp_code") {
		t.Errorf("detail %q does not say a code is needed", p.Detail)
	}
	wantStatus(t, "login replaying the confirmation's code", login(code), http.StatusUnauthorized)
	next, _ := auth.TOTPCode(en.Secret, time.Now().Add(30*time.Second))
	wantStatus(t, "login with the next code", login(next), http.StatusOK)
	wantStatus(t, "the same code again", login(next), http.StatusUnauthorized)
}

func TestAuthAPIKeys(t *testing.T) {
	e := newAuthEnv(t, httpapi.Config{})
	admin := loginAs(t, e, cloud.RoleAdmin)
	mgr := loginAs(t, e, cloud.RoleManager, "lot-1")
	op := loginAs(t, e, cloud.RoleOperator, "lot-1")
	create := func(tok string, body map[string]any) *response {
		return e.do(http.MethodPost, "/v1/api-keys", body, bearer(tok)...)
	}
	body := func(scopes []string, facs ...string) map[string]any {
		return map[string]any{"name": "parkopedia", "scopes": scopes, "facilities": facs}
	}
	wantStatus(t, "operator creates a key", create(op, body([]string{"status:read"}, "lot-1")), http.StatusForbidden)
	wantStatus(t, "manager, another facility", create(mgr, body([]string{"status:read"}, "lot-1", "lot-2")), http.StatusForbidden)
	res := create(mgr, body([]string{"no:such"}, "lot-1"))
	wantStatus(t, "unknown scope", res, http.StatusUnprocessableEntity)
	if p := res.Problem(t); len(p.Errors) != 1 || p.Errors[0].Field != "scopes[0]" {
		t.Errorf("errors = %+v; want scopes[0]", p.Errors)
	}
	res = create(mgr, body([]string{"status:read"}, "lot-1"))
	wantStatus(t, "manager, own facility", res, http.StatusCreated)
	var mine httpapi.NewAPIKey
	res.JSON(t, &mine)
	if !strings.HasPrefix(mine.Key, "gh_"+mine.Prefix+"_") {
		t.Fatalf("key = %s", res.Body)
	}
	res = create(admin, body([]string{"status:read"}, "lot-2"))
	wantStatus(t, "admin, any facility", res, http.StatusCreated)
	var other httpapi.NewAPIKey
	res.JSON(t, &other)

	key := []string{httpapi.HeaderAPIKey, mine.Key}
	if res := e.do(http.MethodGet, "/v1/facilities/lot-1/status", nil, key...); res.Status == http.StatusUnauthorized || res.Status == http.StatusForbidden {
		t.Errorf("key on its facility: status %d %s", res.Status, res.Body)
	}
	wantStatus(t, "key on another facility", e.do(http.MethodGet, "/v1/facilities/lot-2/status", nil, key...), http.StatusForbidden)
	wantStatus(t, "key on an account route", e.do(http.MethodGet, "/v1/me", nil, key...), http.StatusForbidden)
	wantStatus(t, "key managing keys", e.do(http.MethodGet, "/v1/api-keys", nil, key...), http.StatusForbidden)
	noScope := e.apiKey([]string{"other:read"}, "lot-1")
	wantStatus(t, "key without the route's scope", e.do(http.MethodGet, "/v1/facilities/lot-1/status", nil, httpapi.HeaderAPIKey, noScope), http.StatusForbidden)

	var page httpapi.Page[cloud.APIKey]
	res = e.do(http.MethodGet, "/v1/api-keys", nil, bearer(mgr)...)
	wantStatus(t, "manager lists keys", res, http.StatusOK)
	res.JSON(t, &page)
	if len(page.Items) != 2 || slices.ContainsFunc(page.Items, func(k cloud.APIKey) bool { return k.ID == other.ID }) {
		t.Errorf("manager sees %+v; want the two keys of lot-1 only", page.Items)
	}
	if strings.Contains(string(res.Body), mine.Key) {
		t.Error("the list shows a key's secret")
	}
	res = e.do(http.MethodGet, "/v1/api-keys", nil, bearer(admin)...)
	res.JSON(t, &page)
	if len(page.Items) != 3 {
		t.Errorf("admin sees %d keys; want 3", len(page.Items))
	}

	wantStatus(t, "manager revokes another facility's key", e.do(http.MethodDelete, "/v1/api-keys/"+other.ID, nil, bearer(mgr)...), http.StatusNotFound)
	wantStatus(t, "manager revokes own key", e.do(http.MethodDelete, "/v1/api-keys/"+mine.ID, nil, bearer(mgr)...), http.StatusNoContent)
	wantStatus(t, "revoked key", e.do(http.MethodGet, "/v1/facilities/lot-1/status", nil, key...), http.StatusUnauthorized)
	wantStatus(t, "revoke a malformed id", e.do(http.MethodDelete, "/v1/api-keys/'%20OR%201=1", nil, bearer(admin)...), http.StatusNotFound)
	wantStatus(t, "the other key survives", e.do(http.MethodDelete, "/v1/api-keys/"+other.ID, nil, bearer(admin)...), http.StatusNoContent)
	hasActions(t, e, "apikey.create/ok", "apikey.revoke/ok")
}

func TestUsersRoleChange(t *testing.T) {
	e := newAuthEnv(t, httpapi.Config{})
	adminU := e.createUser(cloud.RoleAdmin)
	admin, _ := e.svc.Login(context.Background(), adminU.Email, testPassword, "")
	target := e.createUser(cloud.RoleDriver)
	targetToks, _ := e.svc.Login(context.Background(), target.Email, testPassword, "")
	mgr := loginAs(t, e, cloud.RoleManager, "lot-1")

	path := "/v1/users/" + target.ID + "/role"
	wantStatus(t, "manager changes a role", e.do(http.MethodPut, path, map[string]any{"role": "admin"}, bearer(mgr)...), http.StatusForbidden)
	wantStatus(t, "driver changes own role", e.do(http.MethodPut, path, map[string]any{"role": "admin"}, bearer(targetToks.AccessToken)...), http.StatusForbidden)
	res := e.do(http.MethodPut, path, map[string]any{"role": "root"}, bearer(admin.AccessToken)...)
	wantStatus(t, "unknown role", res, http.StatusUnprocessableEntity)
	if p := res.Problem(t); p.Errors[0].Field != "role" {
		t.Errorf("errors = %+v", p.Errors)
	}
	wantStatus(t, "operator without facilities", e.do(http.MethodPut, path, map[string]any{"role": "operator"}, bearer(admin.AccessToken)...), http.StatusUnprocessableEntity)
	wantStatus(t, "own role", e.do(http.MethodPut, "/v1/users/"+adminU.ID+"/role", map[string]any{"role": "driver"}, bearer(admin.AccessToken)...), http.StatusForbidden)
	wantStatus(t, "unknown user", e.do(http.MethodPut, "/v1/users/00000000-0000-0000-0000-000000000000/role", map[string]any{"role": "driver"}, bearer(admin.AccessToken)...), http.StatusNotFound)

	res = e.do(http.MethodPut, path, map[string]any{"role": "operator", "facilities": []string{"lot-2", "lot-1", "lot-2"}}, bearer(admin.AccessToken)...)
	wantStatus(t, "role change", res, http.StatusOK)
	var u cloud.User
	res.JSON(t, &u)
	if u.Role != cloud.RoleOperator || strings.Join(u.Facilities, ",") != "lot-1,lot-2" {
		t.Errorf("after = %+v", u)
	}
	wantStatus(t, "the target's old access token", e.do(http.MethodGet, "/v1/me", nil, bearer(targetToks.AccessToken)...), http.StatusUnauthorized)
	hasActions(t, e, "user.role_change/ok")

	wantStatus(t, "get user", e.do(http.MethodGet, "/v1/users/"+target.ID, nil, bearer(admin.AccessToken)...), http.StatusOK)
	wantStatus(t, "get malformed id", e.do(http.MethodGet, "/v1/users/not-a-uuid", nil, bearer(admin.AccessToken)...), http.StatusNotFound)
	wantStatus(t, "manager gets a user", e.do(http.MethodGet, "/v1/users/"+target.ID, nil, bearer(mgr)...), http.StatusForbidden)

	// Pagination: every account once, by email.
	var seen []string
	cursor := ""
	for range 10 {
		res := e.do(http.MethodGet, "/v1/users?limit=1&cursor="+cursor, nil, bearer(admin.AccessToken)...)
		wantStatus(t, "list users", res, http.StatusOK)
		var page httpapi.Page[cloud.User]
		res.JSON(t, &page)
		for _, u := range page.Items {
			seen = append(seen, u.Email)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if len(seen) != 3 || !slices.IsSorted(seen) {
		t.Errorf("paged through %v; want 3 accounts by email", seen)
	}
}

func TestAuditLogView(t *testing.T) {
	e := newAuthEnv(t, httpapi.Config{})
	ctx := context.Background()
	for _, f := range []string{"lot-1", "lot-2", ""} {
		e.db.Audit(ctx, cloud.AuditEntry{Actor: "user:x", Action: "gate.open", Target: "lane:" + f + "/entry-1", Facility: f, Outcome: cloud.OutcomeOK})
	}
	admin := loginAs(t, e, cloud.RoleAdmin)
	mgr := loginAs(t, e, cloud.RoleManager, "lot-1")
	get := func(tok, q string) httpapi.Page[cloud.AuditEntry] {
		t.Helper()
		res := e.do(http.MethodGet, "/v1/audit"+q, nil, bearer(tok)...)
		wantStatus(t, "audit"+q, res, http.StatusOK)
		var p httpapi.Page[cloud.AuditEntry]
		res.JSON(t, &p)
		return p
	}
	if p := get(admin, ""); len(p.Items) != 3 {
		t.Errorf("admin sees %d entries; want 3", len(p.Items))
	}
	if p := get(admin, "?facility=lot-2"); len(p.Items) != 1 || p.Items[0].Facility != "lot-2" {
		t.Errorf("admin, lot-2: %+v", p.Items)
	}
	if p := get(mgr, ""); len(p.Items) != 1 || p.Items[0].Facility != "lot-1" {
		t.Errorf("manager sees %+v; want lot-1's entry only", p.Items)
	}
	wantStatus(t, "manager asks for another facility", e.do(http.MethodGet, "/v1/audit?facility=lot-2", nil, bearer(mgr)...), http.StatusForbidden)
	wantStatus(t, "operator", e.do(http.MethodGet, "/v1/audit", nil, bearer(loginAs(t, e, cloud.RoleOperator, "lot-1"))...), http.StatusForbidden)
	wantStatus(t, "driver", e.do(http.MethodGet, "/v1/audit", nil, bearer(loginAs(t, e, cloud.RoleDriver))...), http.StatusForbidden)
	wantStatus(t, "bad cursor", e.do(http.MethodGet, "/v1/audit?cursor=eyJhIjoieCJ9", nil, bearer(admin)...), http.StatusBadRequest)

	// Pages of one.
	p := get(admin, "?limit=1")
	q := get(admin, "?limit=1&cursor="+p.NextCursor)
	if p.NextCursor == "" || len(q.Items) != 1 || q.Items[0].ID >= p.Items[0].ID {
		t.Errorf("pages %+v then %+v; want newest first", p, q)
	}
}

// TestAuthCredentialFailures: no token, expired, signed with another key, malformed
// header, and a refresh token reused.
func TestAuthCredentialFailures(t *testing.T) {
	e := newAuthEnv(t, httpapi.Config{})
	for name, h := range map[string][]string{
		"no token":          nil,
		"expired":           bearer(e.expiredToken(cloud.RoleAdmin)),
		"another key":       bearer(e.foreignToken(cloud.RoleAdmin)),
		"basic auth":        {"Authorization", "Basic YTpi"},
		"garbage":           bearer("garbage"),
		"garbage key":       {httpapi.HeaderAPIKey, "gh_nope"},
		"token on key hdr":  {httpapi.HeaderAPIKey, loginAs(t, e, cloud.RoleAdmin)},
		"sql in the header": bearer("' OR 1=1 --"),
	} {
		res := e.do(http.MethodGet, "/v1/users", nil, h...)
		wantStatus(t, name, res, http.StatusUnauthorized)
		if res.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate", name)
		}
	}
	res := e.do(http.MethodPost, "/v1/auth/refresh", map[string]any{"refresh_token": e.reusedRefresh(cloud.RoleAdmin)})
	wantStatus(t, "reused refresh token", res, http.StatusUnauthorized)
}

func TestAuthRateLimited(t *testing.T) {
	e := newAuthEnv(t, httpapi.Config{Limits: httpapi.Limits{Auth: httpapi.Limit{Rate: 1.0 / 60, Burst: 3}}})
	for range 3 {
		wantStatus(t, "login", e.do(http.MethodPost, "/v1/auth/login", map[string]any{"email": "a@example.com", "password": "wrong password!"}), http.StatusUnauthorized)
	}
	res := e.do(http.MethodPost, "/v1/auth/login", map[string]any{"email": "a@example.com", "password": "wrong password!"})
	wantStatus(t, "fourth login", res, http.StatusTooManyRequests)
	if res.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
}

// TestAuthBadInput sends malformed, mistyped, oversized and SQL-looking bodies to the
// account routes: each gets its problem, and nothing changes.
func TestAuthBadInput(t *testing.T) {
	e := newAuthEnv(t, httpapi.Config{})
	admin := loginAs(t, e, cloud.RoleAdmin)
	driver := e.createUser(cloud.RoleDriver)
	tables := []string{"users", "refresh_tokens", "api_keys", "facility_managers"}
	before := map[string]int{}
	for _, tb := range tables {
		before[tb] = e.count(tb)
	}
	huge := `{"email":"a@example.com","password":"` + strings.Repeat("x", httpapi.BodyLimit) + `"}`
	type tc struct {
		name, method, path, body string
		status                   int
		field                    string // the field a 422 or 400 names, if any
	}
	var cases []tc
	for _, r := range []struct{ method, path string }{
		{http.MethodPost, "/v1/auth/register"}, {http.MethodPost, "/v1/auth/login"}, {http.MethodPost, "/v1/auth/refresh"},
		{http.MethodPost, "/v1/auth/logout"}, {http.MethodPost, "/v1/auth/password"}, {http.MethodPost, "/v1/auth/totp/confirm"},
		{http.MethodPut, "/v1/users/" + driver.ID + "/role"}, {http.MethodPost, "/v1/api-keys"},
	} {
		cases = append(cases,
			tc{"malformed", r.method, r.path, `{"email":`, http.StatusBadRequest, ""},
			tc{"not an object", r.method, r.path, `[1,2]`, http.StatusBadRequest, ""},
			tc{"empty", r.method, r.path, ``, http.StatusBadRequest, ""},
			tc{"two objects", r.method, r.path, `{} {}`, http.StatusBadRequest, ""},
			tc{"unknown field", r.method, r.path, `{"is_admin":true}`, http.StatusBadRequest, "is_admin"},
			tc{"huge", r.method, r.path, huge, http.StatusRequestEntityTooLarge, ""},
		)
	}
	cases = append(cases,
		tc{"email a number", http.MethodPost, "/v1/auth/register", `{"email":42,"password":"long enough password"}`, http.StatusUnprocessableEntity, "email"},
		tc{"password an object", http.MethodPost, "/v1/auth/login", `{"email":"a@example.com","password":{}}`, http.StatusUnprocessableEntity, "password"},
		tc{"role a number", http.MethodPut, "/v1/users/" + driver.ID + "/role", `{"role":1}`, http.StatusUnprocessableEntity, "role"},
		tc{"facilities a string", http.MethodPost, "/v1/api-keys", `{"name":"x","scopes":["status:read"],"facilities":"lot-1"}`, http.StatusUnprocessableEntity, "facilities"},
		tc{"sql in a facility", http.MethodPost, "/v1/api-keys", `{"name":"x","scopes":["status:read"],"facilities":["lot-1'; DROP TABLE api_keys;--"]}`, http.StatusUnprocessableEntity, "facilities[0]"},
		tc{"sql in a role", http.MethodPut, "/v1/users/" + driver.ID + "/role", `{"role":"admin' --"}`, http.StatusUnprocessableEntity, "role"},
		tc{"sql in an email", http.MethodPost, "/v1/auth/register", `{"email":"x' OR '1'='1","password":"long enough password"}`, http.StatusUnprocessableEntity, "email"},
		tc{"short password", http.MethodPost, "/v1/auth/register", `{"email":"new@example.com","password":"short"}`, http.StatusUnprocessableEntity, "password"},
		tc{"long password", http.MethodPost, "/v1/auth/register", `{"email":"new@example.com","password":"` + strings.Repeat("p", 129) + `"}`, http.StatusUnprocessableEntity, "password"},
		tc{"long name", http.MethodPost, "/v1/auth/register", `{"email":"new@example.com","name":"` + strings.Repeat("n", 101) + `","password":"long enough password"}`, http.StatusUnprocessableEntity, "name"},
		tc{"totp letters", http.MethodPost, "/v1/auth/login", `{"email":"a@example.com","password":"x","totp_code":"abcdef"}`, http.StatusUnprocessableEntity, "totp_code"},
		tc{"bad refresh token", http.MethodPost, "/v1/auth/refresh", `{"refresh_token":"' OR 1=1 --"}`, http.StatusUnauthorized, ""},
		tc{"sql in a user id", http.MethodPut, "/v1/users/1%20OR%201=1/role", `{"role":"admin"}`, http.StatusNotFound, ""},
	)
	for _, c := range cases {
		t.Run(c.name+" "+c.method+" "+c.path, func(t *testing.T) {
			do := e.do
			if c.status == http.StatusRequestEntityTooLarge {
				do = func(method, path string, body any, headers ...string) *response {
					return e.overTCP(method, path, body.(string), headers...)
				}
			}
			res := do(c.method, c.path, c.body, bearer(admin)...)
			wantStatus(t, c.name, res, c.status)
			p := res.Problem(t)
			if c.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != c.field) {
				t.Errorf("errors = %+v; want field %s", p.Errors, c.field)
			}
		})
	}
	for _, tb := range tables {
		if n := e.count(tb); n != before[tb] {
			t.Errorf("%s: %d rows after the bad requests; %d before", tb, n, before[tb])
		}
	}

	// SQL-looking strings that are valid are stored as they are.
	name := `Robert'); DROP TABLE users;--`
	res := e.do(http.MethodPost, "/v1/auth/register", map[string]any{"email": "o'brien@example.com", "name": name, "password": testPassword})
	wantStatus(t, "register with a SQL-looking name", res, http.StatusCreated)
	var u cloud.User
	res.JSON(t, &u)
	got, err := e.db.User(context.Background(), u.ID)
	if err != nil || got.Name != name || got.Email != "o'brien@example.com" {
		t.Errorf("stored %+v, %v; want the name and email as sent", got, err)
	}
}
