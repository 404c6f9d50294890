-- Garages and the events they send: the durable log of every garage, stored once per
-- (facility_id, seq).

CREATE TABLE facilities (
    id                text        PRIMARY KEY,
    name              text        NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    -- when the cloud last received a batch with an event of the garage
    last_contact      timestamptz,
    -- the newest occurred_at among the applied events
    last_event_at     timestamptz,
    -- the highest seq stored; the ingest relies on it being exact
    last_seq_received bigint      NOT NULL DEFAULT 0 CHECK (last_seq_received >= 0),
    -- every seq up to applied_seq is stored and folded into the projections
    applied_seq       bigint      NOT NULL DEFAULT 0 CHECK (applied_seq >= 0 AND applied_seq <= last_seq_received)
);

-- No foreign key to facilities: a per-row trigger would halve the ingest rate, and
-- the ingest creates the facility row in the same transaction anyway.
CREATE TABLE events (
    facility_id text        NOT NULL,
    seq         bigint      NOT NULL CHECK (seq > 0),
    event_id    uuid        NOT NULL,
    type        text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    lane_id     text        NOT NULL DEFAULT '',
    -- the marshalled gatehouse.v1.Envelope, as the garage sent it
    payload     bytea       NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (facility_id, seq)
);
