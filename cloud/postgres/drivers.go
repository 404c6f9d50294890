package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// MaxVehicles is how many vehicles one account may have registered at a time.
const MaxVehicles = 20

// Vehicle is a driver's registration of a plate: the vehicle is theirs from AddedAt
// until they remove it.
type Vehicle struct {
	// ID is the registration's id, the one the driver removes it by.
	ID int64
	// Plate is as edge/plate.Normalize leaves it: A-Z and 0-9.
	Plate string
	// Country is ISO 3166-1 alpha-2.
	Country  string
	Nickname string
	AddedAt  time.Time
}

// AddVehicle registers the vehicle plate/country to the account userID from at. plate
// and country must be normalised and valid (the caller validates). A vehicle has one
// owner at a time: the error has code ECONFLICT when it is registered already, to this
// account or another, and when the account has MaxVehicles.
func (db *DB) AddVehicle(ctx context.Context, userID, plate, country, nickname string, at time.Time) (Vehicle, error) {
	v := Vehicle{Plate: plate, Country: country, Nickname: nickname, AddedAt: at}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		// Serialise one account's additions, so that the count below holds.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('user_vehicles:' || $1, 0))", userID); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM user_vehicles WHERE user_id = $1 AND removed_at IS NULL", userID).Scan(&n); err != nil {
			return err
		}
		if n >= MaxVehicles {
			return cloud.Errorf(cloud.ECONFLICT, "an account may register at most %d vehicles; remove one first", MaxVehicles)
		}
		// Garages record a plate without its country, so a driver's history matches
		// on the plate alone: one active owner per plate, whatever the country, or
		// anyone could register a plate under another country and follow its stays.
		// The lock serialises additions of one plate (there is no row to lock yet).
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('plate:' || $1, 0))", plate); err != nil {
			return err
		}
		var taken bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM user_vehicles uv JOIN vehicles v ON v.id = uv.vehicle_id
			WHERE v.plate = $1 AND uv.removed_at IS NULL)`, plate).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return cloud.Errorf(cloud.ECONFLICT, "vehicle %s is already registered to an account", plate)
		}
		var vehicleID int64
		err := tx.QueryRow(ctx, `WITH ins AS (
				INSERT INTO vehicles (plate, country) VALUES ($1, $2) ON CONFLICT (plate, country) DO NOTHING RETURNING id)
			SELECT id FROM ins UNION ALL SELECT id FROM vehicles WHERE plate = $1 AND country = $2`, plate, country).Scan(&vehicleID)
		if err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `INSERT INTO user_vehicles (user_id, vehicle_id, nickname, added_at) VALUES ($1, $2, $3, $4)
			RETURNING id, added_at`, userID, vehicleID, nickname, at).Scan(&v.ID, &v.AddedAt)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "user_vehicles_one_owner" {
			return cloud.Errorf(cloud.ECONFLICT, "vehicle %s (%s) is already registered to an account", plate, country)
		}
		return err
	})
	return v, wrap(err, "add vehicle")
}

// Vehicles returns the vehicles registered to the account now, oldest registration
// first.
func (db *DB) Vehicles(ctx context.Context, userID string) ([]Vehicle, error) {
	rows, err := db.pool.Query(ctx, `SELECT uv.id, v.plate, v.country, uv.nickname, uv.added_at
		FROM user_vehicles uv JOIN vehicles v ON v.id = uv.vehicle_id
		WHERE uv.user_id = $1 AND uv.removed_at IS NULL ORDER BY uv.added_at, uv.id`, userID)
	if err != nil {
		return nil, wrap(err, "vehicles")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Vehicle, error) {
		var v Vehicle
		err := r.Scan(&v.ID, &v.Plate, &v.Country, &v.Nickname, &v.AddedAt)
		return v, err
	})
	return out, wrap(err, "vehicles")
}

// RemoveVehicle ends the account's registration id at at. The stays made while it
// lasted remain in the account's history. The error has code ENOTFOUND when the
// account has no such registration now.
func (db *DB) RemoveVehicle(ctx context.Context, userID string, id int64, at time.Time) error {
	tag, err := db.pool.Exec(ctx, `UPDATE user_vehicles SET removed_at = greatest($3, added_at)
		WHERE id = $1 AND user_id = $2 AND removed_at IS NULL`, id, userID, at)
	if err != nil {
		return wrap(err, "remove vehicle")
	}
	if tag.RowsAffected() == 0 {
		return cloud.Errorf(cloud.ENOTFOUND, "you have no vehicle %d", id)
	}
	return nil
}

// SessionKey is where a page of sessions stopped: the sort time and the session.
type SessionKey struct {
	At       time.Time
	Facility string
	Session  string
}

// DriverSessions returns up to limit stays, open and closed, of the vehicles
// registered to the account, each only if it began while the vehicle was registered
// to it: latest entry first, after the key when it is not zero. Stays are matched by
// plate: garages do not record a plate's country.
func (db *DB) DriverSessions(ctx context.Context, userID string, after SessionKey, limit int) ([]cloud.Session, error) {
	rows, err := db.pool.Query(ctx, `SELECT facility_id, `+viewColumns+` FROM parking_sessions p
		WHERE EXISTS (SELECT 1 FROM user_vehicles uv JOIN vehicles v ON v.id = uv.vehicle_id
				WHERE uv.user_id = $1 AND v.plate = p.plate
					AND coalesce(p.entered_at, p.exited_at) >= uv.added_at
					AND (uv.removed_at IS NULL OR coalesce(p.entered_at, p.exited_at) < uv.removed_at))
			AND ($2::timestamptz IS NULL OR (coalesce(p.entered_at, p.exited_at), p.facility_id, p.session_id) < ($2, $3, $4))
		ORDER BY coalesce(p.entered_at, p.exited_at) DESC, p.facility_id DESC, p.session_id DESC
		LIMIT $5`, userID, nullTime(after.At), after.Facility, after.Session, limit)
	if err != nil {
		return nil, wrap(err, "driver sessions")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cloud.Session, error) {
		var s cloud.Session
		err := scanSession(r, &s, &s.Facility)
		return s, err
	})
	return out, wrap(err, "driver sessions")
}

// nullTime is t, or NULL for the zero time.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}
