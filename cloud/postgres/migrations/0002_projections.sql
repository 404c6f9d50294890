-- Live read models of every garage, kept by the ingest in the transaction that stores
-- the events, over the contiguous run of seqs only.

CREATE TABLE zone_occupancy (
    facility_id text        NOT NULL,
    zone_id     text        NOT NULL,
    occupied    integer     NOT NULL CHECK (occupied >= 0),
    -- as the garage last reported it with a count; NULL until it has
    capacity    integer,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (facility_id, zone_id)
);

CREATE TABLE open_sessions (
    facility_id    text        NOT NULL,
    session_id     text        NOT NULL,
    zone_id        text        NOT NULL,
    plate          text        NOT NULL DEFAULT '',
    ticket         text        NOT NULL DEFAULT '',
    card           text        NOT NULL DEFAULT '',
    permit_id      text        NOT NULL DEFAULT '',
    reservation_id text        NOT NULL DEFAULT '',
    -- the right of the current segment: transient, permit, reservation, operator
    parking_right  text        NOT NULL,
    rate_id        text        NOT NULL DEFAULT '',
    entry_lane     text        NOT NULL DEFAULT '',
    entered_at     timestamptz NOT NULL,
    -- the sum of the payments made so far, in minor units
    paid           bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (facility_id, session_id)
);
CREATE INDEX open_sessions_plate ON open_sessions (facility_id, plate) WHERE plate <> '';

-- Closed sessions: history, one row per stay.
CREATE TABLE sessions (
    facility_id      text        NOT NULL,
    session_id       text        NOT NULL,
    zone_id          text        NOT NULL DEFAULT '',
    plate            text        NOT NULL DEFAULT '',
    ticket           text        NOT NULL DEFAULT '',
    card             text        NOT NULL DEFAULT '',
    permit_id        text        NOT NULL DEFAULT '',
    reservation_id   text        NOT NULL DEFAULT '',
    parking_right    text        NOT NULL DEFAULT '',
    rate_id          text        NOT NULL DEFAULT '',
    entry_lane       text        NOT NULL DEFAULT '',
    -- NULL when the cloud never saw the session start (it cannot, for a valid stream)
    entered_at       timestamptz,
    exit_lane        text        NOT NULL DEFAULT '',
    exited_at        timestamptz NOT NULL,
    fee              bigint      NOT NULL DEFAULT 0,
    paid             bigint      NOT NULL DEFAULT 0,
    currency         text        NOT NULL DEFAULT '',
    -- exit, lost_ticket, antipassback_void, operator
    ended_how        text        NOT NULL DEFAULT '',
    duration_seconds bigint      NOT NULL DEFAULT 0,
    -- the seq of the session.ended event
    closed_seq       bigint      NOT NULL,
    PRIMARY KEY (facility_id, session_id)
);
CREATE INDEX sessions_exited ON sessions (facility_id, exited_at);

-- Lasting alerts raised and not yet cleared (barrier faults, stuck loops, devices
-- offline, ...), keyed as the garage keys them: code|lane|device|zone.
CREATE TABLE active_alerts (
    facility_id text        NOT NULL,
    key         text        NOT NULL,
    code        text        NOT NULL,
    severity    text        NOT NULL DEFAULT '',
    message     text        NOT NULL DEFAULT '',
    lane_id     text        NOT NULL DEFAULT '',
    device_id   text        NOT NULL DEFAULT '',
    zone_id     text        NOT NULL DEFAULT '',
    raised_at   timestamptz NOT NULL,
    PRIMARY KEY (facility_id, key)
);

-- Device health is what the active alerts say of each device; a device not listed
-- has no active alert.
CREATE VIEW device_health AS
SELECT facility_id,
       device_id,
       (array_agg(severity ORDER BY CASE severity WHEN 'critical' THEN 3 WHEN 'warning' THEN 2 WHEN 'info' THEN 1 ELSE 0 END DESC, code))[1] AS severity,
       array_agg(code ORDER BY code) AS codes,
       min(raised_at) AS since
FROM active_alerts
WHERE device_id <> ''
GROUP BY facility_id, device_id;

CREATE TABLE lane_status (
    facility_id text        NOT NULL,
    lane_id     text        NOT NULL,
    -- ok, degraded, closed
    status      text        NOT NULL,
    reason      text        NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (facility_id, lane_id)
);

CREATE TABLE spot_status (
    facility_id text        NOT NULL,
    spot_id     text        NOT NULL,
    zone_id     text        NOT NULL DEFAULT '',
    occupied    boolean     NOT NULL,
    since       timestamptz NOT NULL,
    PRIMARY KEY (facility_id, spot_id)
);
