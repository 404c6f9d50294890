-- Reservations (issue 6): capacity per time slice, holds while paying, confirmation,
-- modification, cancellation with a refund policy, no-shows, a waitlist with
-- notifications, the "reservations" downlink document's versions, and the facilities'
-- tariffs that the quote endpoint and booking prices use. Extends 0006's reservations.
--
-- No overbooking. A zone's bookable space is its held-back space (zones.held_back):
-- the garage admits walk-ins only into capacity - held_back, and reservations into any
-- free space, so held-back space is the part that is free for bookings whatever the
-- walk-ins do. Time is cut into 15-minute slices (aligned to the epoch, so in every
-- time zone whose offset is a whole quarter hour); capacity_slices counts, per zone
-- and slice, the bookings that hold it. A booking takes a share lock on its zone row
-- (so held_back cannot change under it), then locks its slices' rows FOR UPDATE in
-- slice order, checks every slice has booked < held_back, and increments them, all in
-- one READ COMMITTED transaction. Row locks rather than SERIALIZABLE: racing bookings
-- of one window queue on the first slice's lock instead of failing with serialization
-- errors that would need retries (200 clients for 10 spaces would retry hundreds of
-- times), and bookings of other windows or zones do not touch each other's rows.
-- Locking in one fixed order (slice_start ascending) rules out deadlocks between
-- overlapping windows. CHECK (booked >= 0) guards the releases; the upper bound is
-- checked under the locks because it lives in another table (zones).

ALTER TABLE reservations DROP CONSTRAINT reservations_status_check;
ALTER TABLE reservations
    ADD CONSTRAINT reservations_status_check
        CHECK (status IN ('pending', 'held', 'confirmed', 'checked_in', 'completed', 'cancelled', 'no_show', 'expired')),
    -- a held booking holds its slices until then, while the driver pays
    ADD COLUMN hold_expires_at timestamptz,
    -- the signed token the QR code carries; the garage admits it like the plate
    ADD COLUMN code            text        NOT NULL DEFAULT '',
    -- the price quoted at booking, in minor units of currency; NULL when the facility
    -- has no tariff in the cloud (the garage then charges the stay at exit)
    ADD COLUMN price           bigint      CHECK (price >= 0),
    ADD COLUMN currency        text        NOT NULL DEFAULT '',
    -- the payment that confirmed it ('' for none: free, or confirmed by staff) and
    -- what it paid
    ADD COLUMN payment_id      text        NOT NULL DEFAULT '',
    ADD COLUMN paid            bigint      NOT NULL DEFAULT 0 CHECK (paid >= 0),
    -- set on cancellation: what the refund policy gives back, and when the payments
    -- code has refunded it
    ADD COLUMN refund_due      bigint      NOT NULL DEFAULT 0 CHECK (refund_due >= 0 AND refund_due <= paid),
    ADD COLUMN refunded_at     timestamptz,
    ADD COLUMN refund_reference text       NOT NULL DEFAULT '',
    -- the facility's policy as it was at booking: later changes do not touch it
    ADD COLUMN arrival_grace   interval    NOT NULL DEFAULT '15 minutes',
    ADD COLUMN full_refund_before interval NOT NULL DEFAULT '24 hours',
    ADD COLUMN late_refund_percent integer NOT NULL DEFAULT 0 CHECK (late_refund_percent BETWEEN 0 AND 100),
    -- the slices whose count this booking holds now; empty once released
    ADD COLUMN slices          tstzrange   NOT NULL DEFAULT 'empty',
    -- the client's Idempotency-Key of the POST that created it
    ADD COLUMN idempotency_key text,
    ADD COLUMN cancelled_at    timestamptz,
    ADD CONSTRAINT reservations_held_expires CHECK (status <> 'held' OR hold_expires_at IS NOT NULL);
CREATE UNIQUE INDEX reservations_idempotency ON reservations (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX reservations_code ON reservations (code) WHERE code <> '';
CREATE INDEX reservations_held ON reservations (hold_expires_at) WHERE status = 'held';
CREATE INDEX reservations_confirmed ON reservations (lower(period)) WHERE status = 'confirmed';
CREATE INDEX reservations_refunds ON reservations (cancelled_at) WHERE refund_due > 0 AND refunded_at IS NULL;

-- The reservation events the cloud originates (reservation.created, .confirmed,
-- .modified, .cancelled, .expired, .checked_in, .completed): one history row each, in
-- the transaction of the change. Garage events flow up the event stream; these are
-- the cloud's own, in order of id.
ALTER TABLE reservation_history ADD COLUMN event text NOT NULL DEFAULT '';
CREATE INDEX reservation_history_event ON reservation_history (event, id) WHERE event <> '';

-- Bookings counted per zone and 15-minute slice. A row exists once a booking has
-- touched the slice; a missing row counts 0.
CREATE TABLE capacity_slices (
    facility_id text        NOT NULL,
    zone_id     text        NOT NULL,
    slice_start timestamptz NOT NULL CHECK (extract(epoch FROM slice_start)::bigint % 900 = 0),
    booked      integer     NOT NULL DEFAULT 0 CHECK (booked >= 0),
    PRIMARY KEY (facility_id, zone_id, slice_start),
    FOREIGN KEY (facility_id, zone_id) REFERENCES zones (facility_id, id) ON DELETE CASCADE
);

-- Each facility's booking rules; a facility without a row has the defaults.
CREATE TABLE reservation_policies (
    facility_id         text     PRIMARY KEY REFERENCES facilities (id) ON DELETE CASCADE,
    -- how long a booking is held while the driver pays
    hold                interval NOT NULL DEFAULT '10 minutes' CHECK (hold BETWEEN '1 minute' AND '1 day'),
    -- how long a booking promoted from the waitlist is held: the driver must see the
    -- notification first
    promotion_hold      interval NOT NULL DEFAULT '30 minutes' CHECK (promotion_hold BETWEEN '1 minute' AND '1 day'),
    -- how early before its start and how late after it the car may arrive; a booking
    -- not used by start + grace is a no-show
    arrival_grace       interval NOT NULL DEFAULT '15 minutes' CHECK (arrival_grace BETWEEN '0' AND '1 day'),
    -- cancelled at least this long before the start: full refund; later, before the
    -- start: late_refund_percent of it; after the start: nothing
    full_refund_before  interval NOT NULL DEFAULT '24 hours' CHECK (full_refund_before BETWEEN '0' AND '365 days'),
    late_refund_percent integer  NOT NULL DEFAULT 0 CHECK (late_refund_percent BETWEEN 0 AND 100),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- The "reservations" downlink document of each facility: the version of its list of
-- confirmed bookings, bumped in the transaction of every change to that list, and the
-- highest version the hub has accepted (behind: a publish to retry).
CREATE TABLE reservation_downlink (
    facility_id text   PRIMARY KEY REFERENCES facilities (id) ON DELETE CASCADE,
    version     bigint NOT NULL DEFAULT 0 CHECK (version >= 0),
    published   bigint NOT NULL DEFAULT 0 CHECK (published >= 0)
);
CREATE INDEX reservation_downlink_unpublished ON reservation_downlink (facility_id) WHERE published < version;

-- Drivers waiting for a window that was full. When space frees up in the zone, the
-- oldest waiting entry that now fits is promoted: a held booking is made for it and a
-- notification is queued.
CREATE TABLE reservation_waitlist (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- the order of arrival: first come, first promoted
    seq            bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    facility_id    text        NOT NULL REFERENCES facilities (id),
    zone_id        text        NOT NULL,
    user_id        text        NOT NULL,
    plate          text        NOT NULL CHECK (plate ~ '^[A-Z0-9]{2,12}$'),
    period         tstzrange   NOT NULL CHECK (NOT isempty(period) AND NOT lower_inf(period) AND NOT upper_inf(period)),
    status         text        NOT NULL DEFAULT 'waiting' CHECK (status IN ('waiting', 'promoted', 'cancelled', 'expired')),
    reservation_id uuid        REFERENCES reservations (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'promoted') = (reservation_id IS NOT NULL))
);
CREATE INDEX reservation_waitlist_waiting ON reservation_waitlist (facility_id, zone_id, seq) WHERE status = 'waiting';
CREATE INDEX reservation_waitlist_user ON reservation_waitlist (user_id, created_at);

-- The outbox of messages to drivers: a notifier sends each row and sets sent_at.
CREATE TABLE notifications (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    text        NOT NULL,
    -- a dotted name such as "reservation.promoted"
    kind       text        NOT NULL,
    payload    jsonb       NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX notifications_unsent ON notifications (id) WHERE sent_at IS NULL;
CREATE INDEX notifications_user ON notifications (user_id, id);

-- A facility's tariffs as the garage's config file writes them (edge/tariff.Rate, in
-- its JSON form), and which rate each zone charges: the one source the quote endpoint
-- and booking prices are computed from, with the garage's own engine.
CREATE TABLE tariffs (
    facility_id  text        PRIMARY KEY REFERENCES facilities (id) ON DELETE CASCADE,
    -- a JSON array of edge/tariff.Rate
    rates        jsonb       NOT NULL CHECK (jsonb_typeof(rates) = 'array'),
    -- zone id -> rate id
    zone_rates   jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(zone_rates) = 'object'),
    -- the rate of zones zone_rates does not name; '' for none
    default_rate text        NOT NULL DEFAULT '',
    version      bigint      NOT NULL DEFAULT 1,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    updated_by   text        NOT NULL DEFAULT ''
);

-- The key that signs reservation codes (HMAC-SHA256), made by the first process that
-- needs it.
CREATE TABLE reservation_keys (
    id         integer     PRIMARY KEY CHECK (id = 1),
    key        bytea       NOT NULL CHECK (length(key) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- No-show detection finds a booking's stay by its id.
CREATE INDEX open_sessions_reservation ON open_sessions (reservation_id) WHERE reservation_id <> '';
CREATE INDEX sessions_reservation ON sessions (reservation_id) WHERE reservation_id <> '';
