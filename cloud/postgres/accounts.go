package postgres

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Account is a user with the secrets the account service checks: never give it to
// a transport.
type Account struct {
	cloud.User
	PasswordHash string
	// TOTPSecret is set from enrolment on; TOTPEnabled once a code confirmed it.
	TOTPSecret   string
	TOTPLastStep int64
	// TokenVersion is carried in access tokens; an access token of another version is
	// no longer valid.
	TokenVersion int
}

// NewAccount is what CreateUser stores.
type NewAccount struct {
	Email, Name, PasswordHash string
	Role                      cloud.Role
	Facilities                []string
}

var errNoUser = cloud.Errorf(cloud.ENOTFOUND, "no such user")

// validUUID reports whether s is a UUID in its text form, so that a malformed id is
// "not found" rather than a database error.
func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return true
}

// CreateUser stores a new account and its facilities. An email already taken, in any
// case, is ECONFLICT.
func (db *DB) CreateUser(ctx context.Context, a NewAccount) (*cloud.User, error) {
	var id string
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO users (email, name, password_hash, role) VALUES ($1, $2, $3, $4) RETURNING id`,
			a.Email, a.Name, a.PasswordHash, string(a.Role)).Scan(&id)
		if err != nil {
			return err
		}
		return setFacilities(ctx, tx, id, a.Facilities)
	})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return nil, cloud.Errorf(cloud.ECONFLICT, "an account with this email exists")
	}
	if err != nil {
		return nil, wrap(err, "create user")
	}
	return db.User(ctx, id)
}

func setFacilities(ctx context.Context, tx pgx.Tx, userID string, facilities []string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM facility_managers WHERE user_id = $1`, userID); err != nil {
		return err
	}
	if len(facilities) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO facility_managers (user_id, facility_id) SELECT $1, f FROM unnest($2::text[]) f ON CONFLICT DO NOTHING`,
		userID, facilities)
	return err
}

const accountColumns = `u.id::text, u.email, u.name, u.role, u.totp_enabled, u.disabled, u.created_at, u.updated_at,
	coalesce((SELECT array_agg(facility_id ORDER BY facility_id) FROM facility_managers m WHERE m.user_id = u.id), '{}'),
	u.password_hash, u.totp_secret, u.totp_last_step, u.token_version`

func scanAccount(row pgx.Row) (*Account, error) {
	var a Account
	var role string
	err := row.Scan(&a.ID, &a.Email, &a.Name, &role, &a.TOTPEnabled, &a.Disabled, &a.CreatedAt, &a.UpdatedAt,
		&a.Facilities, &a.PasswordHash, &a.TOTPSecret, &a.TOTPLastStep, &a.TokenVersion)
	a.Role = cloud.Role(role)
	return &a, err
}

// AccountByEmail returns the account with the email, compared without case.
func (db *DB) AccountByEmail(ctx context.Context, email string) (*Account, error) {
	a, err := scanAccount(db.pool.QueryRow(ctx, `SELECT `+accountColumns+` FROM users u WHERE lower(u.email) = lower($1)`, email))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNoUser
	}
	return a, wrap(err, "account")
}

// Account returns the account with the id.
func (db *DB) Account(ctx context.Context, id string) (*Account, error) {
	if !validUUID(id) {
		return nil, errNoUser
	}
	a, err := scanAccount(db.pool.QueryRow(ctx, `SELECT `+accountColumns+` FROM users u WHERE u.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNoUser
	}
	return a, wrap(err, "account")
}

// User returns the account with the id, without its secrets.
func (db *DB) User(ctx context.Context, id string) (*cloud.User, error) {
	a, err := db.Account(ctx, id)
	if err != nil {
		return nil, err
	}
	return &a.User, nil
}

// Users returns accounts by email, from the one after the email after, at most limit.
func (db *DB) Users(ctx context.Context, after string, limit int) ([]cloud.User, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+accountColumns+` FROM users u WHERE lower(u.email) > lower($1)
		ORDER BY lower(u.email) LIMIT $2`, after, limit)
	if err != nil {
		return nil, wrap(err, "users")
	}
	defer rows.Close()
	var out []cloud.User
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, wrap(err, "users")
		}
		out = append(out, a.User)
	}
	return out, wrap(rows.Err(), "users")
}

// SetRole gives the account a role and the facilities it is assigned to, and
// invalidates its access tokens (their claims are out of date; a refresh issues new
// ones). It returns the account before and after.
func (db *DB) SetRole(ctx context.Context, id string, role cloud.Role, facilities []string) (before, after *cloud.User, err error) {
	if !validUUID(id) {
		return nil, nil, errNoUser
	}
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		a, err := scanAccount(tx.QueryRow(ctx, `SELECT `+accountColumns+` FROM users u WHERE u.id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		before = &a.User
		if _, err := tx.Exec(ctx, `UPDATE users SET role = $2, token_version = token_version + 1, updated_at = now() WHERE id = $1`,
			id, string(role)); err != nil {
			return err
		}
		return setFacilities(ctx, tx, id, facilities)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, errNoUser
	}
	if err != nil {
		return nil, nil, wrap(err, "set role")
	}
	after, err = db.User(ctx, id)
	return before, after, err
}

// SetPassword replaces the account's password hash, revokes all its refresh tokens
// and invalidates its access tokens.
func (db *DB) SetPassword(ctx context.Context, id, hash string) error {
	return db.revokeAll(ctx, id, hash)
}

// RevokeSessions revokes all the account's refresh tokens and invalidates its access
// tokens: "log out everywhere".
func (db *DB) RevokeSessions(ctx context.Context, id string) error {
	return db.revokeAll(ctx, id, "")
}

func (db *DB) revokeAll(ctx context.Context, id, hash string) error {
	if !validUUID(id) {
		return errNoUser
	}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET token_version = token_version + 1, updated_at = now(),
			password_hash = CASE WHEN $2 = '' THEN password_hash ELSE $2 END,
			password_changed_at = CASE WHEN $2 = '' THEN password_changed_at ELSE now() END
			WHERE id = $1`, id, hash)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errNoUser
		}
		_, err = tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL`, id)
		return err
	})
	return wrap(err, "revoke sessions")
}

// SetDisabled disables or enables the account; disabling revokes its sessions.
func (db *DB) SetDisabled(ctx context.Context, id string, disabled bool) error {
	if !validUUID(id) {
		return errNoUser
	}
	tag, err := db.pool.Exec(ctx, `UPDATE users SET disabled = $2, token_version = token_version + 1, updated_at = now() WHERE id = $1`, id, disabled)
	if err == nil && tag.RowsAffected() == 0 {
		return errNoUser
	}
	if err != nil {
		return wrap(err, "disable user")
	}
	if disabled {
		_, err = db.pool.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL`, id)
	}
	return wrap(err, "disable user")
}

// SetTOTPSecret stores a TOTP secret awaiting confirmation. An account whose TOTP is
// enabled keeps it: ECONFLICT.
func (db *DB) SetTOTPSecret(ctx context.Context, id, secret string) error {
	tag, err := db.pool.Exec(ctx, `UPDATE users SET totp_secret = $2, updated_at = now() WHERE id = $1 AND NOT totp_enabled`, id, secret)
	if err != nil {
		return wrap(err, "totp")
	}
	if tag.RowsAffected() == 0 {
		return cloud.Errorf(cloud.ECONFLICT, "two-factor authentication is already enabled")
	}
	return nil
}

// UseTOTPStep records that the code of the step was accepted, and enables TOTP when
// enable is set. It reports false when a code of that step or a later one was already
// accepted: a replay.
func (db *DB) UseTOTPStep(ctx context.Context, id string, step int64, enable bool) (bool, error) {
	tag, err := db.pool.Exec(ctx, `UPDATE users SET totp_last_step = $2, totp_enabled = totp_enabled OR $3, updated_at = now()
		WHERE id = $1 AND totp_last_step < $2 AND totp_secret <> ''`, id, step, enable)
	if err != nil {
		return false, wrap(err, "totp")
	}
	return tag.RowsAffected() == 1, nil
}

// RefreshToken is a stored refresh token.
type RefreshToken struct {
	Hash      []byte
	Family    string // a UUID; empty starts a new family
	UserID    string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// AddRefreshToken stores a new refresh token; with no Family it starts one.
func (db *DB) AddRefreshToken(ctx context.Context, t RefreshToken) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO refresh_tokens (hash, family_id, user_id, issued_at, expires_at)
		VALUES ($1, coalesce(nullif($2, '')::uuid, gen_random_uuid()), $3, $4, $5)`, t.Hash, t.Family, t.UserID, t.IssuedAt, t.ExpiresAt)
	return wrap(err, "refresh token")
}

var errRefreshInvalid = cloud.Errorf(cloud.EUNAUTHORIZED, "the refresh token is not valid; log in again")

// RotateRefreshToken spends the refresh token with hash old and stores next in its
// family, in one transaction, and returns the account. A token that is unknown,
// expired, revoked or of a disabled account is EUNAUTHORIZED. A token already spent is
// a reuse: the whole family is revoked and the error wraps *cloud.RefreshReuseError.
func (db *DB) RotateRefreshToken(ctx context.Context, old []byte, next RefreshToken) (*Account, error) {
	var userID string
	var reused bool
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var family string
		var expires time.Time
		var used, revoked *time.Time
		var disabled bool
		err := tx.QueryRow(ctx, `SELECT t.family_id::text, t.user_id::text, t.expires_at, t.used_at, t.revoked_at, u.disabled
			FROM refresh_tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = $1 FOR UPDATE OF t`, old).
			Scan(&family, &userID, &expires, &used, &revoked, &disabled)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return errRefreshInvalid
		case err != nil:
			return err
		case revoked != nil:
			return errRefreshInvalid
		case used != nil:
			reused = true
			_, err := tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL`, family, next.IssuedAt)
			return err // commit the revocation
		case !next.IssuedAt.Before(expires), disabled:
			return errRefreshInvalid
		}
		if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET used_at = $2, replaced_by = $3 WHERE hash = $1`, old, next.IssuedAt, next.Hash); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO refresh_tokens (hash, family_id, user_id, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
			next.Hash, family, userID, next.IssuedAt, next.ExpiresAt)
		return err
	})
	if err != nil {
		return nil, wrap(err, "refresh")
	}
	if reused {
		return nil, &cloud.Error{Code: cloud.EUNAUTHORIZED, Message: errRefreshInvalid.Message, Err: &cloud.RefreshReuseError{UserID: userID}}
	}
	return db.Account(ctx, userID)
}

// RevokeRefreshFamily revokes the family of the refresh token with the hash, when it
// belongs to the user; it reports whether it did.
func (db *DB) RevokeRefreshFamily(ctx context.Context, userID string, hash []byte) (bool, error) {
	tag, err := db.pool.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = now()
		WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE hash = $1 AND user_id::text = $2) AND revoked_at IS NULL`, hash, userID)
	if err != nil {
		return false, wrap(err, "logout")
	}
	return tag.RowsAffected() > 0, nil
}

// RefreshFamilyRevoked reports whether the family of the token with the hash is
// revoked, for tests and diagnostics: true when every token of it is.
func (db *DB) RefreshFamilyRevoked(ctx context.Context, hash []byte) (bool, error) {
	var live int
	err := db.pool.QueryRow(ctx, `SELECT count(*) FROM refresh_tokens WHERE revoked_at IS NULL
		AND family_id = (SELECT family_id FROM refresh_tokens WHERE hash = $1)`, hash).Scan(&live)
	return live == 0, wrap(err, "refresh family")
}

// CreateAPIKey stores a key with its hash and returns it with its id.
func (db *DB) CreateAPIKey(ctx context.Context, k cloud.APIKey, hash []byte) (*cloud.APIKey, error) {
	var id string
	err := db.pool.QueryRow(ctx, `INSERT INTO api_keys (prefix, hash, name, scopes, facilities, created_by)
		VALUES ($1, $2, $3, coalesce($4::text[], '{}'), coalesce($5::text[], '{}'), nullif($6, '')::uuid) RETURNING id::text`,
		k.Prefix, hash, k.Name, k.Scopes, k.Facilities, k.CreatedBy).Scan(&id)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return nil, cloud.Errorf(cloud.ECONFLICT, "key prefix taken; try again")
	}
	if err != nil {
		return nil, wrap(err, "create api key")
	}
	return db.APIKey(ctx, id)
}

const apiKeyColumns = `id::text, prefix, name, scopes, facilities, coalesce(created_by::text, ''), created_at,
	coalesce(last_used_at, 'epoch'), coalesce(revoked_at, 'epoch')`

func scanAPIKey(row pgx.Row) (*cloud.APIKey, error) {
	var k cloud.APIKey
	err := row.Scan(&k.ID, &k.Prefix, &k.Name, &k.Scopes, &k.Facilities, &k.CreatedBy, &k.CreatedAt, &k.LastUsedAt, &k.RevokedAt)
	if k.LastUsedAt.Unix() == 0 {
		k.LastUsedAt = time.Time{}
	}
	if k.RevokedAt.Unix() == 0 {
		k.RevokedAt = time.Time{}
	}
	return &k, err
}

var errNoKey = cloud.Errorf(cloud.ENOTFOUND, "no such API key")

// APIKey returns the key with the id.
func (db *DB) APIKey(ctx context.Context, id string) (*cloud.APIKey, error) {
	if !validUUID(id) {
		return nil, errNoKey
	}
	k, err := scanAPIKey(db.pool.QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNoKey
	}
	return k, wrap(err, "api key")
}

// APIKeyByPrefix returns the key with the prefix and its hash.
func (db *DB) APIKeyByPrefix(ctx context.Context, prefix string) (*cloud.APIKey, []byte, error) {
	var hash []byte
	row := db.pool.QueryRow(ctx, `SELECT `+apiKeyColumns+`, hash FROM api_keys WHERE prefix = $1`, prefix)
	var k cloud.APIKey
	err := row.Scan(&k.ID, &k.Prefix, &k.Name, &k.Scopes, &k.Facilities, &k.CreatedBy, &k.CreatedAt, &k.LastUsedAt, &k.RevokedAt, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, errNoKey
	}
	if err != nil {
		return nil, nil, wrap(err, "api key")
	}
	if k.LastUsedAt.Unix() == 0 {
		k.LastUsedAt = time.Time{}
	}
	if k.RevokedAt.Unix() == 0 {
		k.RevokedAt = time.Time{}
	}
	return &k, hash, nil
}

// APIKeys returns keys newest first, after the key id after (a cursor: "" starts at
// the newest), at most limit. With within set, only the keys whose facilities are all
// among within: a manager's view.
func (db *DB) APIKeys(ctx context.Context, within []string, after string, limit int) ([]cloud.APIKey, error) {
	if after != "" && !validUUID(after) {
		return nil, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys
		WHERE ($1::text[] IS NULL OR facilities <@ $1::text[])
		AND ($2 = '' OR (created_at, id) < (SELECT created_at, id FROM api_keys WHERE id = nullif($2, '')::uuid))
		ORDER BY created_at DESC, id DESC LIMIT $3`, within, after, limit)
	if err != nil {
		return nil, wrap(err, "api keys")
	}
	defer rows.Close()
	var out []cloud.APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, wrap(err, "api keys")
		}
		out = append(out, *k)
	}
	return out, wrap(rows.Err(), "api keys")
}

// RevokeAPIKey revokes the key; revoking a revoked key is not an error.
func (db *DB) RevokeAPIKey(ctx context.Context, id string) error {
	if !validUUID(id) {
		return errNoKey
	}
	tag, err := db.pool.Exec(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1`, id)
	if err == nil && tag.RowsAffected() == 0 {
		return errNoKey
	}
	return wrap(err, "revoke api key")
}

// TouchAPIKey records that the key was used now, at most once a minute so that a
// busy key does not write on every request.
func (db *DB) TouchAPIKey(ctx context.Context, id string) error {
	_, err := db.pool.Exec(ctx, `UPDATE api_keys SET last_used_at = now()
		WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`, id)
	return wrap(err, "api key")
}

// SigningKey is a key that signs access tokens.
type SigningKey struct {
	KID       string
	Seed      []byte // Ed25519 seed
	CreatedAt time.Time
	RetiredAt time.Time // zero while it signs
}

// signingKeyLock serialises the creation of the first signing key across instances.
const signingKeyLock = 0x6761746569

// EnsureSigningKey stores k as the signing key unless a key that is not retired
// exists, and returns every key, newest first. Instances starting together agree on
// one key.
func (db *DB) EnsureSigningKey(ctx context.Context, k SigningKey) ([]SigningKey, error) {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(signingKeyLock)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO signing_keys (kid, private_key) SELECT $1, $2
			WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)`, k.KID, k.Seed)
		return err
	})
	if err != nil {
		return nil, wrap(err, "signing key")
	}
	return db.SigningKeys(ctx)
}

// RotateSigningKey retires the keys that sign and stores k, which signs from now on.
func (db *DB) RotateSigningKey(ctx context.Context, k SigningKey) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(signingKeyLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE signing_keys SET retired_at = now() WHERE retired_at IS NULL`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO signing_keys (kid, private_key) VALUES ($1, $2)`, k.KID, k.Seed)
		return err
	})
	return wrap(err, "rotate signing key")
}

// SigningKeys returns every signing key, newest first.
func (db *DB) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	rows, err := db.pool.Query(ctx, `SELECT kid, private_key, created_at, coalesce(retired_at, 'epoch') FROM signing_keys
		ORDER BY (retired_at IS NULL) DESC, created_at DESC`)
	if err != nil {
		return nil, wrap(err, "signing keys")
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SigningKey, error) {
		var k SigningKey
		err := r.Scan(&k.KID, &k.Seed, &k.CreatedAt, &k.RetiredAt)
		if k.RetiredAt.Unix() == 0 {
			k.RetiredAt = time.Time{}
		}
		return k, err
	})
	return keys, wrap(err, "signing keys")
}

// AuditLogIn returns the audit entries of the facilities, newest first, with ids
// below before (0: from the newest), at most limit: a manager's view of the log.
func (db *DB) AuditLogIn(ctx context.Context, facilities []string, before int64, limit int) ([]cloud.AuditEntry, error) {
	if len(facilities) == 0 {
		return nil, nil
	}
	var out []cloud.AuditEntry
	// One query per facility keeps each on the audit_logs_facility index; a manager
	// has a handful.
	for _, f := range slices.Compact(slices.Sorted(slices.Values(facilities))) {
		es, err := db.AuditLog(ctx, AuditFilter{Facility: f, Before: before, Limit: limit})
		if err != nil {
			return nil, err
		}
		out = append(out, es...)
	}
	slices.SortFunc(out, func(a, b cloud.AuditEntry) int { return cmp.Compare(b.ID, a.ID) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
