package httpapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gofiber/fiber/v2"
)

// Accounts is what the account routes need of the account service. cloud/auth's
// Service implements it. Errors carry cloud codes; a refresh token presented twice
// fails with EUNAUTHORIZED wrapping *cloud.RefreshReuseError.
type Accounts interface {
	Register(ctx context.Context, email, name, password string) (*cloud.User, error)
	Login(ctx context.Context, email, password, totpCode string) (*cloud.Tokens, error)
	Refresh(ctx context.Context, refreshToken string) (*cloud.Tokens, error)
	Logout(ctx context.Context, userID, refreshToken string, everywhere bool) error
	ChangePassword(ctx context.Context, userID, current, next string) (*cloud.Tokens, error)
	EnrollTOTP(ctx context.Context, userID string) (secret, uri string, err error)
	ConfirmTOTP(ctx context.Context, userID, code string) error
	CreateAPIKey(ctx context.Context, createdBy, name string, scopes, facilities []string) (key *cloud.APIKey, secret string, err error)
}

// Bounds of opaque credentials in requests.
const (
	maxTokenLen = 512
	maxListLen  = 100
)

// fields collects the field errors of a request.
type fields []FieldError

func (f *fields) add(name, msg string) { *f = append(*f, FieldError{name, msg}) }

// str checks a string member's length in characters: required when min > 0.
func (f *fields) str(name, v string, min, max int) {
	n := utf8.RuneCountInString(v)
	switch {
	case !utf8.ValidString(v):
		f.add(name, "must be valid UTF-8")
	case min > 0 && n == 0:
		f.add(name, "is required")
	case n < min:
		f.add(name, fmt.Sprintf("must be at least %d characters", min))
	case n > max:
		f.add(name, fmt.Sprintf("must be at most %d characters", max))
	}
}

func (f *fields) email(name string, v *string) {
	e, ok := cloud.NormalizeEmail(*v)
	switch {
	case *v == "":
		f.add(name, "is required")
	case !ok:
		f.add(name, "must be an email address")
	default:
		*v = e
	}
}

func (f *fields) newPassword(name, v string) {
	if p := cloud.PasswordProblem(v); p != "" {
		f.add(name, p)
	}
}

func (f *fields) facilities(name string, v []string) {
	if len(v) > maxListLen {
		f.add(name, fmt.Sprintf("must have at most %d entries", maxListLen))
		return
	}
	for i, id := range v {
		if !cloud.ValidFacilityID(id) {
			f.add(fmt.Sprintf("%s[%d]", name, i), "must be a facility id: lower-case letters, digits and dashes")
		}
	}
}

// RegisterRequest is the body of POST /v1/auth/register.
type RegisterRequest struct {
	Email    string `json:"email"`
	Name     string `json:"name,omitempty"`
	Password string `json:"password"`
}

func (r *RegisterRequest) validate() []FieldError {
	var f fields
	r.Name = strings.TrimSpace(r.Name)
	f.email("email", &r.Email)
	f.str("name", r.Name, 0, cloud.MaxNameLen)
	f.newPassword("password", r.Password)
	return f
}

// LoginRequest is the body of POST /v1/auth/login. TOTPCode is required of accounts
// with two-factor authentication enabled.
type LoginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	TOTPCode string `json:"totp_code,omitempty"`
}

func (r *LoginRequest) validate() []FieldError {
	var f fields
	// The email is not checked for shape beyond its length: a login reveals nothing
	// but "wrong email or password".
	r.Email = strings.TrimSpace(r.Email)
	f.str("email", r.Email, 1, cloud.MaxEmailLen)
	f.str("password", r.Password, 1, cloud.MaxPasswordLen)
	if r.TOTPCode != "" && !digits(r.TOTPCode, 6) {
		f.add("totp_code", "must be 6 digits")
	}
	return f
}

func digits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// RefreshRequest is the body of POST /v1/auth/refresh.
type RefreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

func (r *RefreshRequest) validate() []FieldError {
	var f fields
	f.str("refresh_token", r.RefreshToken, 1, maxTokenLen)
	return f
}

// LogoutRequest is the body of POST /v1/auth/logout: the session's refresh token,
// whose family is revoked; Everywhere revokes every session of the account and the
// access tokens issued to them.
type LogoutRequest struct {
	RefreshToken string `json:"refresh_token,omitempty"`
	Everywhere   bool   `json:"everywhere,omitempty"`
}

func (r *LogoutRequest) validate() []FieldError {
	var f fields
	f.str("refresh_token", r.RefreshToken, 0, maxTokenLen)
	if r.RefreshToken == "" && !r.Everywhere {
		f.add("refresh_token", "is required unless everywhere is true")
	}
	return f
}

// PasswordRequest is the body of POST /v1/auth/password.
type PasswordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

func (r *PasswordRequest) validate() []FieldError {
	var f fields
	f.str("current_password", r.CurrentPassword, 1, cloud.MaxPasswordLen)
	f.newPassword("new_password", r.NewPassword)
	return f
}

// TOTPConfirmRequest is the body of POST /v1/auth/totp/confirm.
type TOTPConfirmRequest struct {
	Code string `json:"code"`
}

func (r *TOTPConfirmRequest) validate() []FieldError {
	var f fields
	if !digits(r.Code, 6) {
		f.add("code", "must be 6 digits")
	}
	return f
}

// TOTPEnrollment is the body of POST /v1/auth/totp: the secret to give an
// authenticator app, as text and as an otpauth:// URI (for a QR code).
type TOTPEnrollment struct {
	Secret string `json:"secret"`
	URI    string `json:"otpauth_uri"`
}

func (a *api) authRoutes() []*route {
	public := access{public: true, limit: limitAuth}
	account := access{roles: anyRole}
	return []*route{
		{method: fiber.MethodPost, path: "/auth/register", tag: "auth", summary: "Create a driver's account",
			access: public, request: RegisterRequest{}, response: cloud.User{}, status: fiber.StatusCreated, handler: a.registerAccount},
		{method: fiber.MethodPost, path: "/auth/login", tag: "auth",
			summary: "Log in with email and password (and totp_code when two-factor is enabled): an access and a refresh token",
			access:  public, request: LoginRequest{}, response: cloud.Tokens{}, handler: a.login},
		{method: fiber.MethodPost, path: "/auth/refresh", tag: "auth",
			summary: "Spend a refresh token for new tokens; a spent token presented again revokes its session",
			access:  public, request: RefreshRequest{}, response: cloud.Tokens{}, handler: a.refresh},
		{method: fiber.MethodPost, path: "/auth/logout", tag: "auth", summary: "Revoke the session of a refresh token, or every session",
			access: account, request: LogoutRequest{}, status: fiber.StatusNoContent, handler: a.logout},
		{method: fiber.MethodPost, path: "/auth/password", tag: "auth",
			summary: "Change the password: revokes every session and returns new tokens",
			access:  access{roles: anyRole, limit: limitAuth}, request: PasswordRequest{}, response: cloud.Tokens{}, handler: a.changePassword},
		{method: fiber.MethodPost, path: "/auth/totp", tag: "auth", summary: "Enrol a TOTP second factor: a secret to confirm",
			access: account, response: TOTPEnrollment{}, handler: a.enrollTOTP},
		{method: fiber.MethodPost, path: "/auth/totp/confirm", tag: "auth",
			summary: "Confirm the enrolled TOTP secret with a code: logins need a code from then on",
			access:  access{roles: anyRole, limit: limitAuth}, request: TOTPConfirmRequest{}, status: fiber.StatusNoContent, handler: a.confirmTOTP},
		{method: fiber.MethodGet, path: "/me", tag: "auth", summary: "The caller's account",
			access: account, response: cloud.User{}, handler: a.me},
	}
}

var errNoAccounts = cloud.Errorf(cloud.EUNAVAILABLE, "accounts are not configured on this server")

// acct returns the account service, or an error answering 503.
func (a *api) acct() (Accounts, error) {
	if a.accounts == nil {
		return nil, errNoAccounts
	}
	return a.accounts, nil
}

func (a *api) registerAccount(c *fiber.Ctx) error {
	var req RegisterRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	acct, err := a.acct()
	if err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	u, err := acct.Register(ctx, req.Email, req.Name, req.Password)
	if err != nil {
		return err
	}
	a.audit(c, cloud.AuditEntry{Actor: "user:" + u.ID, Action: "user.register", Target: "user:" + u.ID})
	return c.Status(fiber.StatusCreated).JSON(u)
}

func (a *api) login(c *fiber.Ctx) error {
	var req LoginRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	acct, err := a.acct()
	if err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	toks, err := acct.Login(ctx, req.Email, req.Password, req.TOTPCode)
	email, _ := cloud.NormalizeEmail(req.Email)
	if err != nil {
		if cloud.ErrorCode(err) == cloud.EUNAUTHORIZED {
			a.audit(c, cloud.AuditEntry{Actor: "anonymous", Action: "auth.login", Target: "email:" + email,
				Outcome: cloud.OutcomeDenied, Detail: map[string]any{"reason": cloud.ErrorMessage(err)}})
			return unauthorized(cloud.ErrorMessage(err), "")
		}
		return err
	}
	a.audit(c, cloud.AuditEntry{Actor: "user:" + toks.UserID, Action: "auth.login", Target: "user:" + toks.UserID,
		Detail: map[string]any{"email": email}})
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(toks)
}

func (a *api) refresh(c *fiber.Ctx) error {
	var req RefreshRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	acct, err := a.acct()
	if err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	toks, err := acct.Refresh(ctx, req.RefreshToken)
	if err != nil {
		var reuse *cloud.RefreshReuseError
		if errors.As(err, &reuse) {
			a.audit(c, cloud.AuditEntry{Actor: "anonymous", Action: "auth.refresh_reuse", Target: "user:" + reuse.UserID,
				Outcome: cloud.OutcomeDenied, Detail: map[string]any{"reason": "a spent refresh token was presented; its session is revoked"}})
		}
		if cloud.ErrorCode(err) == cloud.EUNAUTHORIZED {
			return unauthorized(cloud.ErrorMessage(err), "invalid_grant")
		}
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(toks)
}

func (a *api) logout(c *fiber.Ctx) error {
	var req LogoutRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	acct, err := a.acct()
	if err != nil {
		return err
	}
	p := principal(c)
	ctx, cancel := opContext(c)
	defer cancel()
	if err := acct.Logout(ctx, p.UserID, req.RefreshToken, req.Everywhere); err != nil {
		return err
	}
	a.audit(c, cloud.AuditEntry{Action: "auth.logout", Target: "user:" + p.UserID, Detail: map[string]any{"everywhere": req.Everywhere}})
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *api) changePassword(c *fiber.Ctx) error {
	var req PasswordRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	acct, err := a.acct()
	if err != nil {
		return err
	}
	p := principal(c)
	ctx, cancel := opContext(c)
	defer cancel()
	toks, err := acct.ChangePassword(ctx, p.UserID, req.CurrentPassword, req.NewPassword)
	if err != nil {
		if cloud.ErrorCode(err) == cloud.EFORBIDDEN {
			a.audit(c, cloud.AuditEntry{Action: "auth.password_change", Target: "user:" + p.UserID, Outcome: cloud.OutcomeDenied,
				Detail: map[string]any{"reason": cloud.ErrorMessage(err)}})
		}
		return err
	}
	a.audit(c, cloud.AuditEntry{Action: "auth.password_change", Target: "user:" + p.UserID})
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(toks)
}

func (a *api) enrollTOTP(c *fiber.Ctx) error {
	acct, err := a.acct()
	if err != nil {
		return err
	}
	if len(c.Body()) > 0 {
		return malformed("this request takes no body")
	}
	ctx, cancel := opContext(c)
	defer cancel()
	secret, uri, err := acct.EnrollTOTP(ctx, principal(c).UserID)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(TOTPEnrollment{Secret: secret, URI: uri})
}

func (a *api) confirmTOTP(c *fiber.Ctx) error {
	var req TOTPConfirmRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	acct, err := a.acct()
	if err != nil {
		return err
	}
	p := principal(c)
	ctx, cancel := opContext(c)
	defer cancel()
	if err := acct.ConfirmTOTP(ctx, p.UserID, req.Code); err != nil {
		if cloud.ErrorCode(err) == cloud.EINVALID {
			return invalid("the code does not confirm the secret", FieldError{"code", strings.TrimPrefix(cloud.ErrorMessage(err), "code: ")})
		}
		return err
	}
	a.audit(c, cloud.AuditEntry{Action: "totp.enable", Target: "user:" + p.UserID})
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *api) me(c *fiber.Ctx) error {
	ctx, cancel := opContext(c)
	defer cancel()
	u, err := a.db.User(ctx, principal(c).UserID)
	if err != nil {
		return err
	}
	return c.JSON(u)
}
