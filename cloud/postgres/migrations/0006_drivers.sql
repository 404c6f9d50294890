-- Drivers and what they park: vehicles and who owns them, the stays of those vehicles
-- (a view over the ingest's projections), reservations with their history, payments
-- and stored payment methods. The reservations and payments issue extends these.
--
-- user_id columns hold cloud/auth's account ids as text, without a foreign key: the
-- accounts are another package's (0004), and deleting an account must decide what
-- happens to its payments (kept, for the books) rather than cascade here.

-- A vehicle is a plate in a country; the plate as edge/plate.Normalize leaves it
-- (A-Z, 0-9), which is how the garages record it.
CREATE TABLE vehicles (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plate      text        NOT NULL CHECK (plate ~ '^[A-Z0-9]{2,12}$'),
    -- ISO 3166-1 alpha-2
    country    text        NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (plate, country)
);

-- Who has registered which vehicle, and when. A removal ends the row rather than
-- deleting it, so the stays a driver saw while the vehicle was theirs stay theirs, and
-- a later owner of the plate never sees an earlier owner's stays.
CREATE TABLE user_vehicles (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    text        NOT NULL,
    vehicle_id bigint      NOT NULL REFERENCES vehicles (id),
    nickname   text        NOT NULL DEFAULT '' CHECK (length(nickname) <= 40),
    added_at   timestamptz NOT NULL DEFAULT now(),
    removed_at timestamptz CHECK (removed_at >= added_at)
);
-- One active owner per vehicle.
CREATE UNIQUE INDEX user_vehicles_one_owner ON user_vehicles (vehicle_id) WHERE removed_at IS NULL;
CREATE INDEX user_vehicles_user ON user_vehicles (user_id, added_at);

-- Every stay, open (exited_at NULL) or closed, from the ingest's two projections: one
-- copy of each, kept where the ingest keeps it.
CREATE VIEW parking_sessions AS
SELECT facility_id, session_id, zone_id, plate, ticket, card, permit_id, reservation_id, parking_right, rate_id,
       entry_lane, entered_at, paid,
       ''::text AS exit_lane, NULL::timestamptz AS exited_at, 0::bigint AS fee, ''::text AS currency,
       ''::text AS ended_how, 0::bigint AS duration_seconds, NULL::bigint AS closed_seq
FROM open_sessions
UNION ALL
SELECT facility_id, session_id, zone_id, plate, ticket, card, permit_id, reservation_id, parking_right, rate_id,
       entry_lane, entered_at, paid,
       exit_lane, exited_at, fee, currency, ended_how, duration_seconds, closed_seq
FROM sessions;
-- The drivers' history looks sessions up by plate.
CREATE INDEX sessions_plate ON sessions (plate, exited_at) WHERE plate <> '';
CREATE INDEX open_sessions_plate_only ON open_sessions (plate) WHERE plate <> '';

-- A booking of a space in a zone for a time. "period" rather than "window": WINDOW is
-- a reserved word.
CREATE TABLE reservations (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    facility_id text        NOT NULL REFERENCES facilities (id),
    zone_id     text        NOT NULL,
    user_id     text        NOT NULL,
    plate       text        NOT NULL CHECK (plate ~ '^[A-Z0-9]{2,12}$'),
    period      tstzrange   NOT NULL CHECK (NOT isempty(period) AND NOT lower_inf(period) AND NOT upper_inf(period)),
    status      text        NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'confirmed', 'checked_in', 'completed', 'cancelled', 'no_show', 'expired')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reservations_zone ON reservations (facility_id, zone_id, lower(period));
CREATE INDEX reservations_user ON reservations (user_id, lower(period));

-- Every change of a reservation's status, appended, never changed.
CREATE TABLE reservation_history (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reservation_id uuid        NOT NULL REFERENCES reservations (id),
    at             timestamptz NOT NULL DEFAULT now(),
    -- NULL for the creation
    from_status    text,
    to_status      text        NOT NULL,
    -- as AuditEntry.Actor: "user:<id>", "key:<id>", "system"
    actor          text        NOT NULL,
    detail         jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX reservation_history_reservation ON reservation_history (reservation_id, id);

CREATE FUNCTION reservation_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'reservation_history is append-only';
END $$;
CREATE TRIGGER reservation_history_append_only BEFORE UPDATE OR DELETE ON reservation_history
    FOR EACH ROW EXECUTE FUNCTION reservation_history_append_only();
CREATE TRIGGER reservation_history_no_truncate BEFORE TRUNCATE ON reservation_history
    FOR EACH STATEMENT EXECUTE FUNCTION reservation_history_append_only();

-- A driver's stored means of payment: the provider's token and what may be shown
-- (brand, last four digits, expiry). Never a card number: the token may not look like
-- one.
CREATE TABLE user_payment_methods (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id        text        NOT NULL,
    provider       text        NOT NULL CHECK (provider ~ '^[a-z][a-z0-9_]{0,31}$'),
    provider_token text        NOT NULL CHECK (provider_token <> '' AND provider_token !~ '^[0-9 -]{12,}$'),
    brand          text        NOT NULL DEFAULT '',
    last4          text        NOT NULL DEFAULT '' CHECK (last4 ~ '^([0-9]{4})?$'),
    exp_month      smallint    CHECK (exp_month BETWEEN 1 AND 12),
    exp_year       smallint    CHECK (exp_year BETWEEN 2000 AND 2200),
    is_default     boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    removed_at     timestamptz,
    UNIQUE (provider, provider_token)
);
CREATE UNIQUE INDEX user_payment_methods_one_default ON user_payment_methods (user_id)
    WHERE is_default AND removed_at IS NULL;
CREATE INDEX user_payment_methods_user ON user_payment_methods (user_id) WHERE removed_at IS NULL;

-- A payment through a provider, for a stay or a reservation. The idempotency key makes
-- a retried request one payment.
CREATE TABLE payments (
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id            text        NOT NULL DEFAULT '',
    facility_id        text        REFERENCES facilities (id),
    session_id         text,
    reservation_id     uuid        REFERENCES reservations (id),
    -- minor units
    amount             bigint      NOT NULL CHECK (amount > 0),
    currency           text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    provider           text        NOT NULL CHECK (provider ~ '^[a-z][a-z0-9_]{0,31}$'),
    provider_reference text        NOT NULL DEFAULT '',
    idempotency_key    text        NOT NULL UNIQUE CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    status             text        NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'succeeded', 'failed', 'refunded', 'partially_refunded')),
    refunded           bigint      NOT NULL DEFAULT 0 CHECK (refunded >= 0 AND refunded <= amount),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (session_id IS NULL OR facility_id IS NOT NULL)
);
CREATE UNIQUE INDEX payments_provider_reference ON payments (provider, provider_reference) WHERE provider_reference <> '';
CREATE INDEX payments_user ON payments (user_id, created_at) WHERE user_id <> '';
CREATE INDEX payments_session ON payments (facility_id, session_id) WHERE session_id IS NOT NULL;
