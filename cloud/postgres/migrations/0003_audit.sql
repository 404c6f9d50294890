-- The audit log: one row per sensitive action (logins, role changes, gate commands,
-- refunds, API keys), append-only.

CREATE TABLE audit_logs (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text        NOT NULL,
    action      text        NOT NULL,
    target      text        NOT NULL DEFAULT '',
    facility_id text        NOT NULL DEFAULT '',
    outcome     text        NOT NULL CHECK (outcome IN ('ok', 'denied', 'failed')),
    ip          text        NOT NULL DEFAULT '',
    request_id  text        NOT NULL DEFAULT '',
    detail      jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_logs_facility ON audit_logs (facility_id, id) WHERE facility_id <> '';
CREATE INDEX audit_logs_actor ON audit_logs (actor, id);
