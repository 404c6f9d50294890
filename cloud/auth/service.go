package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
)

// Options configure a Service. Zero fields take the defaults given.
type Options struct {
	// Issuer is the access tokens' iss; "gatehouse-cloud".
	Issuer string
	// Audience is their aud; "gatehouse-api".
	Audience string
	// AccessTTL is an access token's lifetime; 15 minutes.
	AccessTTL time.Duration
	// RefreshTTL is a refresh token's lifetime from its issue; 30 days.
	RefreshTTL time.Duration
	// Params are argon2id's costs for new hashes; DefaultParams.
	Params Params
	// TOTPIssuer names the service in authenticator apps; "Gatehouse".
	TOTPIssuer string
	// MaxHashing bounds the password hashes computed at once (each takes
	// Params.Memory); 2 × GOMAXPROCS.
	MaxHashing int
	// Now is the clock; time.Now.
	Now func() time.Time
	// Logger receives what goes wrong in the background; nil discards.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Issuer == "" {
		o.Issuer = "gatehouse-cloud"
	}
	if o.Audience == "" {
		o.Audience = "gatehouse-api"
	}
	if o.AccessTTL == 0 {
		o.AccessTTL = 15 * time.Minute
	}
	if o.RefreshTTL == 0 {
		o.RefreshTTL = 30 * 24 * time.Hour
	}
	if o.Params == (Params{}) {
		o.Params = DefaultParams
	}
	if o.TOTPIssuer == "" {
		o.TOTPIssuer = "Gatehouse"
	}
	if o.MaxHashing <= 0 {
		o.MaxHashing = 2 * runtime.GOMAXPROCS(0)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Service is the account service. It is safe for concurrent use.
type Service struct {
	db      *postgres.DB
	opts    Options
	keys    *keyring
	hashing chan struct{}
	// dummy is a hash that logins of unknown emails are checked against, so that
	// they take as long as those of known ones.
	dummy string
}

// New returns the service on db, which must be migrated. It loads the token signing
// keys, creating the first one when the database has none.
func New(ctx context.Context, db *postgres.DB, opts Options) (*Service, error) {
	opts = opts.withDefaults()
	s := &Service{db: db, opts: opts, hashing: make(chan struct{}, opts.MaxHashing)}
	s.keys = &keyring{db: db, now: opts.Now, keep: opts.AccessTTL + time.Minute}
	if err := s.keys.load(ctx, true); err != nil {
		return nil, fmt.Errorf("auth: signing keys: %w", err)
	}
	dummy, err := HashPassword("not a password of anyone", opts.Params)
	if err != nil {
		return nil, err
	}
	s.dummy = dummy
	return s, nil
}

func (s *Service) now() time.Time { return s.opts.Now() }

// RotateSigningKey makes a new key sign access tokens from now on; tokens signed with
// the old one stay valid until they expire. Other instances pick the new key up when
// they first see a token signed with it.
func (s *Service) RotateSigningKey(ctx context.Context) error {
	if err := s.db.RotateSigningKey(ctx, newSigningKey()); err != nil {
		return err
	}
	return s.keys.load(ctx, false)
}

// hash and verify bound the concurrent argon2id computations: each holds
// Params.Memory.
func (s *Service) hash(ctx context.Context, pw string) (string, error) {
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer func() { <-s.hashing }()
	return HashPassword(pw, s.opts.Params)
}

func (s *Service) verify(ctx context.Context, pw, phc string) bool {
	if err := s.acquire(ctx); err != nil {
		return false
	}
	defer func() { <-s.hashing }()
	ok, err := VerifyPassword(pw, phc)
	if err != nil {
		s.opts.Logger.Error("stored password hash is malformed", "err", err)
	}
	return ok
}

func (s *Service) acquire(ctx context.Context) error {
	select {
	case s.hashing <- struct{}{}:
		return nil
	case <-ctx.Done():
		return &cloud.Error{Code: cloud.EUNAVAILABLE, Message: "the service is busy; retry", Err: ctx.Err()}
	}
}

// CreateUser creates an account with the role and facilities (for operators and
// managers). The email is normalised; the password must meet PasswordProblem.
func (s *Service) CreateUser(ctx context.Context, email, name, password string, role cloud.Role, facilities []string) (*cloud.User, error) {
	email, ok := cloud.NormalizeEmail(email)
	if !ok {
		return nil, cloud.Errorf(cloud.EINVALID, "email: not an email address")
	}
	if p := cloud.PasswordProblem(password); p != "" {
		return nil, cloud.Errorf(cloud.EINVALID, "password: %s", p)
	}
	if !role.Valid() {
		return nil, cloud.Errorf(cloud.EINVALID, "role: not a role")
	}
	if err := checkFacilities(role, facilities); err != nil {
		return nil, err
	}
	h, err := s.hash(ctx, password)
	if err != nil {
		return nil, err
	}
	return s.db.CreateUser(ctx, postgres.NewAccount{Email: email, Name: name, PasswordHash: h, Role: role, Facilities: facilities})
}

// checkFacilities: operators and managers are assigned to facilities; the others to
// none.
func checkFacilities(role cloud.Role, facilities []string) error {
	for _, f := range facilities {
		if !cloud.ValidFacilityID(f) {
			return cloud.Errorf(cloud.EINVALID, "facilities: %q is not a facility id", f)
		}
	}
	if (role == cloud.RoleOperator || role == cloud.RoleManager) != (len(facilities) > 0) {
		return cloud.Errorf(cloud.EINVALID, "facilities: operators and facility managers are assigned to at least one facility; other roles to none")
	}
	return nil
}

// Register creates a driver's account.
func (s *Service) Register(ctx context.Context, email, name, password string) (*cloud.User, error) {
	return s.CreateUser(ctx, email, name, password, cloud.RoleDriver, nil)
}

var (
	errBadLogin     = cloud.Errorf(cloud.EUNAUTHORIZED, "wrong email or password")
	errNeedTOTP     = cloud.Errorf(cloud.EUNAUTHORIZED, "this account needs a one-time code: send totp_code")
	errBadTOTP      = cloud.Errorf(cloud.EUNAUTHORIZED, "the one-time code is wrong")
	errReplayedTOTP = cloud.Errorf(cloud.EUNAUTHORIZED, "the one-time code was already used; wait for the next one")
)

// Login checks an email and password, and the one-time code of an account with TOTP
// enabled, and issues tokens. A wrong email and a wrong password fail alike and take
// as long.
func (s *Service) Login(ctx context.Context, email, password, totpCode string) (*cloud.Tokens, error) {
	email, _ = cloud.NormalizeEmail(email)
	a, err := s.db.AccountByEmail(ctx, email)
	switch {
	case cloud.ErrorCode(err) == cloud.ENOTFOUND:
		s.verify(ctx, password, s.dummy)
		return nil, errBadLogin
	case err != nil:
		return nil, err
	}
	if !s.verify(ctx, password, a.PasswordHash) || a.Disabled {
		return nil, errBadLogin
	}
	// Every account that enrolled a second factor gives it; the role decides only
	// whether enrolment is expected (staff).
	if a.TOTPEnabled {
		if err := s.checkTOTP(ctx, a, totpCode, false); err != nil {
			return nil, err
		}
	}
	return s.issue(ctx, a, "")
}

func (s *Service) checkTOTP(ctx context.Context, a *postgres.Account, code string, enable bool) error {
	if code == "" {
		return errNeedTOTP
	}
	step, ok := matchTOTP(a.TOTPSecret, code, s.now())
	if !ok {
		return errBadTOTP
	}
	fresh, err := s.db.UseTOTPStep(ctx, a.ID, step, enable)
	if err != nil {
		return err
	}
	if !fresh {
		return errReplayedTOTP
	}
	return nil
}

// issue returns a new access token and a new refresh token in family ("" starts one).
func (s *Service) issue(ctx context.Context, a *postgres.Account, family string) (*cloud.Tokens, error) {
	rt := newRefreshToken()
	now := s.now()
	if err := s.db.AddRefreshToken(ctx, postgres.RefreshToken{Hash: hashSecret(rt), Family: family, UserID: a.ID,
		IssuedAt: now, ExpiresAt: now.Add(s.opts.RefreshTTL)}); err != nil {
		return nil, err
	}
	return s.tokens(a, rt)
}

func (s *Service) tokens(a *postgres.Account, refresh string) (*cloud.Tokens, error) {
	at, err := s.signAccess(a)
	if err != nil {
		return nil, fmt.Errorf("auth: sign: %w", err)
	}
	return &cloud.Tokens{AccessToken: at, RefreshToken: refresh, TokenType: "Bearer",
		ExpiresIn: int(s.opts.AccessTTL / time.Second), UserID: a.ID}, nil
}

// refreshLen is the length of a refresh token: 32 random bytes, base64url.
const refreshLen = 43

func newRefreshToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

var errRefreshInvalid = cloud.Errorf(cloud.EUNAUTHORIZED, "the refresh token is not valid; log in again")

// Refresh spends a refresh token and issues the next one of its family with a new
// access token. A token spent before revokes the family: the error then wraps
// *cloud.RefreshReuseError.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (*cloud.Tokens, error) {
	if len(refreshToken) != refreshLen {
		return nil, errRefreshInvalid
	}
	if _, err := base64.RawURLEncoding.DecodeString(refreshToken); err != nil {
		return nil, errRefreshInvalid
	}
	next := newRefreshToken()
	now := s.now()
	a, err := s.db.RotateRefreshToken(ctx, hashSecret(refreshToken), postgres.RefreshToken{Hash: hashSecret(next),
		IssuedAt: now, ExpiresAt: now.Add(s.opts.RefreshTTL)})
	if err != nil {
		return nil, err
	}
	return s.tokens(a, next)
}

// Logout revokes the family of the refresh token, when it is the user's; everywhere
// revokes all the user's refresh tokens and invalidates the access tokens issued. An
// access token of a plain logout stays valid until it expires (15 minutes at most).
func (s *Service) Logout(ctx context.Context, userID, refreshToken string, everywhere bool) error {
	if everywhere {
		return s.db.RevokeSessions(ctx, userID)
	}
	if refreshToken == "" {
		return nil
	}
	_, err := s.db.RevokeRefreshFamily(ctx, userID, hashSecret(refreshToken))
	return err
}

// ChangePassword checks the current password, stores the new one, revokes all the
// user's refresh tokens, invalidates the access tokens issued, and returns new tokens
// for the caller's session.
func (s *Service) ChangePassword(ctx context.Context, userID, current, next string) (*cloud.Tokens, error) {
	if p := cloud.PasswordProblem(next); p != "" {
		return nil, cloud.Errorf(cloud.EINVALID, "new_password: %s", p)
	}
	a, err := s.db.Account(ctx, userID)
	if err != nil {
		return nil, err
	}
	if !s.verify(ctx, current, a.PasswordHash) {
		return nil, cloud.Errorf(cloud.EFORBIDDEN, "the current password is wrong")
	}
	h, err := s.hash(ctx, next)
	if err != nil {
		return nil, err
	}
	if err := s.db.SetPassword(ctx, userID, h); err != nil {
		return nil, err
	}
	if a, err = s.db.Account(ctx, userID); err != nil {
		return nil, err
	}
	return s.issue(ctx, a, "")
}

// EnrollTOTP gives the user a new TOTP secret, which ConfirmTOTP enables. It returns
// the secret and the otpauth:// URI of it.
func (s *Service) EnrollTOTP(ctx context.Context, userID string) (secret, uri string, err error) {
	a, err := s.db.Account(ctx, userID)
	if err != nil {
		return "", "", err
	}
	secret = NewTOTPSecret()
	if err := s.db.SetTOTPSecret(ctx, userID, secret); err != nil {
		return "", "", err
	}
	return secret, TOTPURI(s.opts.TOTPIssuer, a.Email, secret), nil
}

// ConfirmTOTP enables the enrolled secret when code is its current code; from then on
// logins need a code.
func (s *Service) ConfirmTOTP(ctx context.Context, userID, code string) error {
	a, err := s.db.Account(ctx, userID)
	switch {
	case err != nil:
		return err
	case a.TOTPEnabled:
		return cloud.Errorf(cloud.ECONFLICT, "two-factor authentication is already enabled")
	case a.TOTPSecret == "":
		return cloud.Errorf(cloud.ECONFLICT, "enrol first: POST /v1/auth/totp")
	}
	err = s.checkTOTP(ctx, a, code, true)
	if cloud.ErrorCode(err) == cloud.EUNAUTHORIZED {
		// The caller is authenticated: a wrong code is invalid input, not a 401.
		return cloud.Errorf(cloud.EINVALID, "code: %s", cloud.ErrorMessage(err))
	}
	return err
}

// CreateAPIKey issues an integrator's key. The caller has checked that the creator
// may issue it for the facilities. The key is returned once; only its hash is kept.
func (s *Service) CreateAPIKey(ctx context.Context, createdBy, name string, scopes, facilities []string) (*cloud.APIKey, string, error) {
	if len(facilities) == 0 {
		return nil, "", cloud.Errorf(cloud.EINVALID, "facilities: a key is issued for at least one facility")
	}
	if err := checkFacilities(cloud.RoleOperator, facilities); err != nil {
		return nil, "", err
	}
	for range 3 { // a prefix collision (40 bits) is rare; try again
		key, prefix := newAPIKey()
		k, err := s.db.CreateAPIKey(ctx, cloud.APIKey{Prefix: prefix, Name: name, Scopes: scopes,
			Facilities: facilities, CreatedBy: createdBy}, hashSecret(key))
		if cloud.ErrorCode(err) == cloud.ECONFLICT {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		return k, key, nil
	}
	return nil, "", cloud.Errorf(cloud.EUNAVAILABLE, "could not issue a key; retry")
}

var errKeyInvalid = cloud.Errorf(cloud.EUNAUTHORIZED, "the API key is not valid")

// AuthenticateKey checks an integrator's API key.
func (s *Service) AuthenticateKey(ctx context.Context, key string) (*cloud.Principal, error) {
	prefix, ok := parseAPIKey(key)
	if !ok {
		return nil, errKeyInvalid
	}
	k, hash, err := s.db.APIKeyByPrefix(ctx, prefix)
	switch {
	case cloud.ErrorCode(err) == cloud.ENOTFOUND:
		return nil, errKeyInvalid
	case err != nil:
		return nil, err
	case subtle.ConstantTimeCompare(hash, hashSecret(key)) != 1, !k.RevokedAt.IsZero():
		return nil, errKeyInvalid
	}
	if err := s.db.TouchAPIKey(ctx, k.ID); err != nil {
		s.opts.Logger.Warn("api key last use not recorded", "key", k.ID, "err", err)
	}
	return &cloud.Principal{APIKeyID: k.ID, Name: k.Name, Role: cloud.RoleIntegrator,
		Facilities: slices.Clone(k.Facilities), Scopes: slices.Clone(k.Scopes)}, nil
}

// AuthenticateToken checks a bearer access token: its signature and claims, and that
// the account still exists, is not disabled, and has not changed its token version
// (password or role change, log out everywhere) since the token was issued. The
// principal's role and facilities are the account's now.
func (s *Service) AuthenticateToken(ctx context.Context, token string) (*cloud.Principal, error) {
	c, err := s.parseAccess(ctx, token)
	if err != nil {
		return nil, err
	}
	a, err := s.db.Account(ctx, c.Subject)
	switch {
	case cloud.ErrorCode(err) == cloud.ENOTFOUND:
		return nil, errTokenStale
	case err != nil:
		return nil, err
	case a.Disabled, a.TokenVersion != c.Version:
		return nil, errTokenStale
	}
	p := &cloud.Principal{UserID: a.ID, Name: a.Email, Role: a.Role}
	if a.Role == cloud.RoleOperator || a.Role == cloud.RoleManager {
		p.Facilities = slices.Clone(a.Facilities)
	}
	return p, nil
}
