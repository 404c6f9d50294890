-- Accounts and their credentials: users with argon2id password hashes and optional
-- TOTP, the facilities operators and managers are assigned to, rotating refresh
-- tokens, integrators' API keys, and the keys that sign access tokens. Secrets that
-- only need to be recognised (refresh tokens, API keys) are stored as SHA-256 hashes.

CREATE TABLE users (
    id                  uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- normalised (trimmed, lower case) by the service; unique whatever its case
    email               text        NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name                text        NOT NULL DEFAULT '',
    -- PHC string: $argon2id$v=19$m=...,t=...,p=...$salt$hash
    password_hash       text        NOT NULL,
    role                text        NOT NULL CHECK (role IN ('driver', 'operator', 'facility_manager', 'admin')),
    -- base32 TOTP secret; set at enrolment, enabled once a code confirms it
    totp_secret         text        NOT NULL DEFAULT '',
    totp_enabled        boolean     NOT NULL DEFAULT false,
    -- the last 30-second step whose code was accepted: a code is never taken twice
    totp_last_step      bigint      NOT NULL DEFAULT 0,
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    -- carried in access tokens as "ver"; bumped by a password or role change and by
    -- "log out everywhere", which invalidates every access token issued before
    token_version       integer     NOT NULL DEFAULT 1,
    disabled            boolean     NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email ON users (lower(email));

-- The facilities an operator or a facility manager is assigned to. No foreign key to
-- facilities: the ingest creates those rows when a garage first reports, and staff may
-- be assigned before.
CREATE TABLE facility_managers (
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    facility_id text NOT NULL,
    PRIMARY KEY (user_id, facility_id)
);
CREATE INDEX facility_managers_facility ON facility_managers (facility_id);

-- Refresh tokens, one row per token ever issued. A login starts a family; each use
-- marks the token used and issues the next of the family. A used token presented again
-- (a stolen copy, or the thief's) revokes the whole family.
CREATE TABLE refresh_tokens (
    hash        bytea       PRIMARY KEY, -- SHA-256 of the token
    family_id   uuid        NOT NULL,
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issued_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    replaced_by bytea,
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id) WHERE revoked_at IS NULL;

-- Integrators' API keys: gh_<prefix>_<secret>; the prefix finds the row, the hash
-- (SHA-256 of the whole key) proves it.
CREATE TABLE api_keys (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    prefix       text        NOT NULL UNIQUE,
    hash         bytea       NOT NULL,
    name         text        NOT NULL,
    scopes       text[]      NOT NULL DEFAULT '{}',
    facilities   text[]      NOT NULL DEFAULT '{}',
    created_by   uuid        REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

-- Ed25519 keys that sign access tokens, shared by every cloud instance on the
-- database. The newest key not retired signs; retired keys still verify the tokens
-- they signed until those expire.
CREATE TABLE signing_keys (
    kid         text        PRIMARY KEY,
    private_key bytea       NOT NULL, -- Ed25519 seed, 32 bytes
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz
);
