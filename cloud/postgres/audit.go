package postgres

import (
	"context"
	"encoding/json"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/jackc/pgx/v5"
)

// Audit appends e to the audit log. At is set by the database when zero.
func (db *DB) Audit(ctx context.Context, e cloud.AuditEntry) error {
	detail := []byte("{}")
	if len(e.Detail) > 0 {
		var err error
		if detail, err = json.Marshal(e.Detail); err != nil {
			return cloud.Errorf(cloud.EINVALID, "audit detail: %v", err)
		}
	}
	var at any
	if !e.At.IsZero() {
		at = e.At
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO audit_logs (at, actor, action, target, facility_id, outcome, ip, request_id, detail)
		VALUES (coalesce($1, now()), $2, $3, $4, $5, $6, $7, $8, $9)`,
		at, e.Actor, e.Action, e.Target, e.Facility, e.Outcome, e.IP, e.RequestID, detail)
	return wrap(err, "audit")
}

// AuditFilter selects audit entries. Zero fields select everything.
type AuditFilter struct {
	Facility string
	Actor    string
	// Before returns entries with ids below it (a cursor); 0 starts at the newest.
	Before int64
	Limit  int
}

// AuditLog returns audit entries matching f, newest first.
func (db *DB) AuditLog(ctx context.Context, f AuditFilter) ([]cloud.AuditEntry, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	rows, err := db.pool.Query(ctx, `SELECT id, at, actor, action, target, facility_id, outcome, ip, request_id, detail
		FROM audit_logs
		WHERE ($1 = '' OR facility_id = $1) AND ($2 = '' OR actor = $2) AND ($3 = 0 OR id < $3)
		ORDER BY id DESC LIMIT $4`, f.Facility, f.Actor, f.Before, f.Limit)
	if err != nil {
		return nil, wrap(err, "audit log")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cloud.AuditEntry, error) {
		var e cloud.AuditEntry
		var detail []byte
		if err := r.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Target, &e.Facility, &e.Outcome, &e.IP, &e.RequestID, &detail); err != nil {
			return e, err
		}
		if len(detail) > 2 {
			json.Unmarshal(detail, &e.Detail)
		}
		return e, nil
	})
	return out, wrap(err, "audit log")
}
