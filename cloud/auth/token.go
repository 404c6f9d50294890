package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	"github.com/golang-jwt/jwt/v5"
)

// accessClaims are an access token's claims: the registered ones (iss, aud, sub =
// user id, exp, iat, jti), the account's role and facilities when it was issued, and
// its token version.
type accessClaims struct {
	jwt.RegisteredClaims
	Role       cloud.Role `json:"role"`
	Facilities []string   `json:"facilities,omitempty"`
	Version    int        `json:"ver"`
}

// keyring holds the Ed25519 keys that sign and verify access tokens, loaded from the
// database so that every instance signs with the same key and verifies the others'.
type keyring struct {
	db  *postgres.DB
	now func() time.Time
	// keep is how long a retired key still verifies: the tokens it signed live that
	// long.
	keep time.Duration

	mu       sync.RWMutex
	signer   string
	keys     map[string]ed25519.PrivateKey
	loadedAt time.Time
}

// reloadEvery bounds how often an unknown kid makes the keyring look in the database
// (another instance may have rotated), so that forged kids cannot hammer it.
const reloadEvery = 10 * time.Second

func newKID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func newSigningKey() postgres.SigningKey {
	seed := make([]byte, ed25519.SeedSize)
	rand.Read(seed)
	return postgres.SigningKey{KID: newKID(), Seed: seed}
}

// load reads the keys, creating the first when the database has none.
func (k *keyring) load(ctx context.Context, create bool) error {
	var keys []postgres.SigningKey
	var err error
	if create {
		keys, err = k.db.EnsureSigningKey(ctx, newSigningKey())
	} else {
		keys, err = k.db.SigningKeys(ctx)
	}
	if err != nil {
		return err
	}
	now := k.now()
	m := map[string]ed25519.PrivateKey{}
	signer := ""
	for _, sk := range keys {
		if len(sk.Seed) != ed25519.SeedSize {
			continue
		}
		if !sk.RetiredAt.IsZero() && now.Sub(sk.RetiredAt) > k.keep {
			continue
		}
		m[sk.KID] = ed25519.NewKeyFromSeed(sk.Seed)
		if signer == "" && sk.RetiredAt.IsZero() {
			signer = sk.KID // newest first
		}
	}
	if signer == "" {
		return errors.New("auth: no signing key")
	}
	k.mu.Lock()
	k.signer, k.keys, k.loadedAt = signer, m, now
	k.mu.Unlock()
	return nil
}

// signing returns the key that signs.
func (k *keyring) signing() (string, ed25519.PrivateKey) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.signer, k.keys[k.signer]
}

// public returns the public key of kid, reloading the keys at most every reloadEvery
// when it is unknown.
func (k *keyring) public(ctx context.Context, kid string) (ed25519.PublicKey, bool) {
	k.mu.RLock()
	key, ok := k.keys[kid]
	stale := k.now().Sub(k.loadedAt) > reloadEvery
	k.mu.RUnlock()
	if !ok && stale {
		if err := k.load(ctx, false); err == nil {
			k.mu.RLock()
			key, ok = k.keys[kid]
			k.mu.RUnlock()
		}
	}
	if !ok {
		return nil, false
	}
	return key.Public().(ed25519.PublicKey), true
}

var (
	errTokenInvalid = cloud.Errorf(cloud.EUNAUTHORIZED, "the access token is not valid")
	errTokenExpired = cloud.Errorf(cloud.EUNAUTHORIZED, "the access token has expired; refresh it")
	errTokenStale   = cloud.Errorf(cloud.EUNAUTHORIZED, "the access token is no longer valid; refresh it or log in again")
)

// signAccess returns an access token for the account.
func (s *Service) signAccess(a *postgres.Account) (string, error) {
	now := s.now()
	c := accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.opts.Issuer,
			Audience:  jwt.ClaimStrings{s.opts.Audience},
			Subject:   a.ID,
			ExpiresAt: jwt.NewNumericDate(now.Add(s.opts.AccessTTL)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        newKID() + newKID(),
		},
		Role:    a.Role,
		Version: a.TokenVersion,
	}
	if a.Role == cloud.RoleOperator || a.Role == cloud.RoleManager {
		c.Facilities = a.Facilities
	}
	kid, key := s.keys.signing()
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = kid
	return t.SignedString(key)
}

// parseAccess checks an access token's signature, algorithm, issuer, audience and
// times, and returns its claims.
func (s *Service) parseAccess(ctx context.Context, token string) (*accessClaims, error) {
	if len(token) > 4096 {
		return nil, errTokenInvalid
	}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(s.opts.Issuer),
		jwt.WithAudience(s.opts.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(30*time.Second),
		jwt.WithTimeFunc(s.now),
	)
	var c accessClaims
	_, err := p.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		key, ok := s.keys.public(ctx, kid)
		if !ok {
			return nil, errors.New("unknown kid")
		}
		return key, nil
	})
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, errTokenExpired
	case err != nil:
		return nil, &cloud.Error{Code: cloud.EUNAUTHORIZED, Message: errTokenInvalid.Message, Err: err}
	case c.Subject == "":
		return nil, errTokenInvalid
	}
	return &c, nil
}
