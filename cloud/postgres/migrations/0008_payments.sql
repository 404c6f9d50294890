-- Payments (issue 6): the payments of 0006 extended with what idempotency, webhooks,
-- refunds and receipts need. Amounts are in minor units. No card number is stored
-- anywhere: a payment keeps the provider's token of the means of payment, which may
-- not look like one.

-- Idempotency keys are the client's, so they are unique per account, not globally:
-- two drivers' apps may pick the same key.
ALTER TABLE payments DROP CONSTRAINT payments_idempotency_key_key;
ALTER TABLE payments ADD CONSTRAINT payments_user_idempotency_key UNIQUE (user_id, idempotency_key);

-- The statuses only move forward (cloud/payment.Advances):
-- pending < requires_action < processing < failed < canceled|succeeded
-- < partially_refunded < refunded.
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check CHECK (status IN ('pending', 'requires_action', 'processing',
    'failed', 'canceled', 'succeeded', 'partially_refunded', 'refunded'));

ALTER TABLE payments
    -- sha256 of the request as normalised, so that a key reused with another request
    -- is refused
    ADD COLUMN request_hash    text        NOT NULL DEFAULT '',
    -- the provider's token of the means of payment, and its customer when saved
    ADD COLUMN payment_method  text        NOT NULL DEFAULT '' CHECK (payment_method !~ '([0-9][ -]*){12}'),
    ADD COLUMN customer        text        NOT NULL DEFAULT '',
    -- the plate of the session paid for, for the garage to match on
    ADD COLUMN plate           text        NOT NULL DEFAULT '',
    -- why a failed payment failed, as the provider told the driver
    ADD COLUMN failure         text        NOT NULL DEFAULT '',
    -- a request holds the payment while it asks the provider, until this time
    ADD COLUMN claimed_until   timestamptz,
    ADD COLUMN succeeded_at    timestamptz,
    -- "2026-000042": numbered without gaps per year, given when the payment succeeds
    ADD COLUMN receipt_number  text        UNIQUE;
CREATE INDEX payments_facility_succeeded ON payments (facility_id, succeeded_at) WHERE succeeded_at IS NOT NULL;
CREATE INDEX payments_reservation ON payments (reservation_id) WHERE reservation_id IS NOT NULL;
-- A stay or a booking has at most one payment in flight: a second one started
-- meanwhile (another tap with a fresh key) would be a double charge.
CREATE UNIQUE INDEX payments_session_in_flight ON payments (facility_id, session_id)
    WHERE session_id IS NOT NULL AND status IN ('pending', 'requires_action', 'processing');
-- A booking is paid once: a second payment waits until the first failed or was
-- refunded in full.
CREATE UNIQUE INDEX payments_reservation_once ON payments (reservation_id)
    WHERE reservation_id IS NOT NULL AND status IN ('pending', 'requires_action', 'processing', 'succeeded', 'partially_refunded');

-- Gapless receipt numbers, one run per year.
CREATE TABLE receipt_counters (
    year integer PRIMARY KEY,
    last bigint  NOT NULL CHECK (last >= 0)
);

-- A refund of part or all of a payment. payments.refunded is the sum of the refunds
-- not failed, kept in the transaction that adds one, under a lock on the payment
-- row; its CHECK (refunded <= amount) and the trigger below refuse anything more.
CREATE TABLE refunds (
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    payment_id         uuid        NOT NULL REFERENCES payments (id),
    amount             bigint      NOT NULL CHECK (amount > 0),
    reason             text        NOT NULL DEFAULT '' CHECK (length(reason) <= 500),
    -- as AuditEntry.Actor
    actor              text        NOT NULL,
    idempotency_key    text        NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_hash       text        NOT NULL DEFAULT '',
    provider_reference text        NOT NULL DEFAULT '',
    status             text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    failure            text        NOT NULL DEFAULT '',
    claimed_until      timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (payment_id, idempotency_key)
);
CREATE INDEX refunds_updated ON refunds (updated_at) WHERE status = 'succeeded';

CREATE FUNCTION refunds_within_payment() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    paid bigint;
    total bigint;
BEGIN
    SELECT amount INTO paid FROM payments WHERE id = NEW.payment_id;
    SELECT coalesce(sum(amount), 0) INTO total FROM refunds WHERE payment_id = NEW.payment_id AND status <> 'failed';
    IF total > paid THEN
        RAISE EXCEPTION 'refunds of payment % (%) exceed its amount (%)', NEW.payment_id, total, paid
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER refunds_within_payment AFTER INSERT OR UPDATE ON refunds
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refunds_within_payment();

-- Every webhook event received and verified, once: a duplicate or a replay of an
-- event id finds its row and changes nothing.
CREATE TABLE webhook_events (
    provider    text        NOT NULL,
    event_id    text        NOT NULL CHECK (length(event_id) BETWEEN 1 AND 255),
    type        text        NOT NULL,
    -- when the provider created the event
    created     timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    payment_id  uuid        REFERENCES payments (id),
    -- applied: moved the payment on; stale: arrived after a later status (out of
    -- order); unknown: no such payment here; ignored: a type not acted on
    outcome     text        NOT NULL CHECK (outcome IN ('applied', 'stale', 'unknown', 'ignored')),
    PRIMARY KEY (provider, event_id)
);

-- What happened to payments, appended: "payment.processed" once per payment when it
-- succeeds (the brief's event), "payment.failed", "payment.refunded" per refund.
CREATE TABLE payment_events (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- the event's identity: "payment.processed:<payment>", "payment.refunded:<refund>"
    key        text        NOT NULL UNIQUE,
    payment_id uuid        NOT NULL REFERENCES payments (id),
    type       text        NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    detail     jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX payment_events_payment ON payment_events (payment_id, id);

-- A driver's customer at a provider, for saved means of payment.
CREATE TABLE payment_customers (
    user_id    text        NOT NULL,
    provider   text        NOT NULL,
    customer   text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, provider)
);

-- The "prepaid" downlink document of each garage: its version goes up with every app
-- payment for one of its stays; published is the version the hub accepted.
CREATE TABLE prepaid_versions (
    facility_id text   PRIMARY KEY REFERENCES facilities (id),
    version     bigint NOT NULL DEFAULT 0 CHECK (version >= 0),
    published   bigint NOT NULL DEFAULT 0 CHECK (published >= 0)
);
