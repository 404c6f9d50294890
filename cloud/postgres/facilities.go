package postgres

import (
	"context"
	"errors"
	"slices"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// Facilities' configuration (migration 0005): the facility's attributes and its
// layout of levels, zones and spots. Every change bumps facilities.layout_version in
// its own transaction, after taking the facility's row lock, so that one facility's
// changes are serialised and each committed version names exactly one layout.

const facilityColumns = `f.id, f.name, f.address, f.city, f.country, f.lat, f.lon, f.timezone, f.currency, f.public,
	f.layout_version, f.created_at, f.updated_at, f.last_contact, f.last_event_at`

func scanFacility(row pgx.Row, extra ...any) (cloud.Facility, error) {
	var f cloud.Facility
	var lat, lon pgtype.Float8
	var contact, lastAt pgtype.Timestamptz
	var version int64
	dst := append([]any{&f.ID, &f.Name, &f.Address, &f.City, &f.Country, &lat, &lon, &f.Timezone, &f.Currency, &f.Public,
		&version, &f.CreatedAt, &f.UpdatedAt, &contact, &lastAt}, extra...)
	if err := row.Scan(dst...); err != nil {
		return f, err
	}
	if lat.Valid && lon.Valid {
		f.Location = &cloud.Location{Lat: lat.Float64, Lon: lon.Float64}
	}
	f.LayoutVersion = uint64(version)
	f.LastContact, f.LastEventAt = contact.Time, lastAt.Time
	return f, nil
}

func location(l *cloud.Location) (lat, lon any) {
	if l == nil {
		return nil, nil
	}
	return l.Lat, l.Lon
}

// pgCode returns the SQLSTATE of a PostgreSQL error, "" for other errors.
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
	checkViolation      = "23514"
)

// CreateFacility adds a facility with layout version 1. It fails with ECONFLICT when
// the id is taken, also by a garage that has sent events before being configured:
// update that one instead.
func (db *DB) CreateFacility(ctx context.Context, f cloud.Facility) (cloud.Facility, error) {
	lat, lon := location(f.Location)
	row := db.pool.QueryRow(ctx, `INSERT INTO facilities AS f (id, name, address, city, country, lat, lon, timezone, currency, public, layout_version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1) RETURNING `+facilityColumns,
		f.ID, f.Name, f.Address, f.City, f.Country, lat, lon, f.Timezone, f.Currency, f.Public)
	out, err := scanFacility(row)
	if pgCode(err) == uniqueViolation {
		return out, cloud.Errorf(cloud.ECONFLICT, "facility %q exists", f.ID)
	}
	return out, wrap(err, "create facility")
}

// Facility returns the facility; ENOTFOUND when there is none.
func (db *DB) Facility(ctx context.Context, id string) (cloud.Facility, error) {
	f, err := scanFacility(db.pool.QueryRow(ctx, `SELECT `+facilityColumns+` FROM facilities f WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return f, cloud.Errorf(cloud.ENOTFOUND, "no facility %q", id)
	}
	return f, wrap(err, "facility")
}

// FacilitySummary is a facility with its totals over its zones.
type FacilitySummary struct {
	cloud.Facility
	Capacity, Occupied, Free int
}

// FacilityFilter selects facilities: all of them, or the public ones and those in
// Also. After is a cursor (the last id returned).
type FacilityFilter struct {
	All   bool
	Also  []string
	After string
	Limit int
}

// zoneJoin is the set of a facility's zones, configured (zones) or only reported by
// the garage (zone_occupancy), for the facility f.id: the one definition of capacity
// (the configured one when there is, else the garage's), held_back and occupied that
// availability, the fleet view and the lists share.
const zoneJoin = `SELECT coalesce(c.id, o.zone_id) AS zone_id, coalesce(c.name, '') AS name, c.id IS NOT NULL AS configured,
		coalesce(c.capacity, o.capacity, 0) AS capacity, coalesce(c.held_back, 0) AS held_back,
		coalesce(o.occupied, 0) AS occupied, o.updated_at
	FROM (SELECT id, name, capacity, held_back FROM zones WHERE facility_id = f.id) c
	FULL JOIN (SELECT zone_id, occupied, capacity, updated_at FROM zone_occupancy WHERE facility_id = f.id) o
		ON o.zone_id = c.id`

const zoneTotals = `LEFT JOIN LATERAL (SELECT sum(capacity)::int AS capacity, sum(occupied)::int AS occupied,
		sum(greatest(0, capacity - held_back - occupied))::int AS free FROM (` + zoneJoin + `) zz) t ON true`

// Facilities returns the facilities f selects, by id, with their totals.
func (db *DB) Facilities(ctx context.Context, flt FacilityFilter) ([]FacilitySummary, error) {
	if flt.Limit <= 0 {
		flt.Limit = 100
	}
	also := flt.Also
	if also == nil {
		also = []string{}
	}
	rows, err := db.pool.Query(ctx, `SELECT `+facilityColumns+`, coalesce(t.capacity, 0), coalesce(t.occupied, 0), coalesce(t.free, 0)
		FROM facilities f `+zoneTotals+`
		WHERE ($1 OR f.public OR f.id = ANY($2)) AND f.id > $3
		ORDER BY f.id LIMIT $4`, flt.All, also, flt.After, flt.Limit)
	if err != nil {
		return nil, wrap(err, "facilities")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (FacilitySummary, error) {
		var s FacilitySummary
		var err error
		s.Facility, err = scanFacility(r, &s.Capacity, &s.Occupied, &s.Free)
		return s, err
	})
	return out, wrap(err, "facilities")
}

// layoutTx runs fn in a transaction that first bumps the facility's layout version
// (taking its row lock) and returns the new version. When fn fails nothing changes.
// It fails with ENOTFOUND for an unknown facility.
func (db *DB) layoutTx(ctx context.Context, facility, what string, fn func(tx pgx.Tx) error) (uint64, error) {
	var version int64
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE facilities SET layout_version = layout_version + 1, updated_at = now()
			WHERE id = $1 RETURNING layout_version`, facility).Scan(&version)
		if errors.Is(err, pgx.ErrNoRows) {
			return cloud.Errorf(cloud.ENOTFOUND, "no facility %q", facility)
		}
		if err != nil {
			return err
		}
		return fn(tx)
	})
	if err != nil {
		return 0, wrap(err, what)
	}
	return uint64(version), nil
}

// UpdateFacility changes the facility under its row lock: fn gets the stored facility
// and changes it, or returns an error (such as a validation error) to change nothing.
// It returns the facility as stored and the new layout version.
func (db *DB) UpdateFacility(ctx context.Context, id string, fn func(*cloud.Facility) error) (cloud.Facility, uint64, error) {
	var out cloud.Facility
	version, err := db.layoutTx(ctx, id, "update facility", func(tx pgx.Tx) error {
		f, err := scanFacility(tx.QueryRow(ctx, `SELECT `+facilityColumns+` FROM facilities f WHERE id = $1`, id))
		if err != nil {
			return err
		}
		if err := fn(&f); err != nil {
			return err
		}
		lat, lon := location(f.Location)
		out, err = scanFacility(tx.QueryRow(ctx, `UPDATE facilities f SET name = $2, address = $3, city = $4, country = $5,
				lat = $6, lon = $7, timezone = $8, currency = $9, public = $10
			WHERE id = $1 RETURNING `+facilityColumns,
			id, f.Name, f.Address, f.City, f.Country, lat, lon, f.Timezone, f.Currency, f.Public))
		return err
	})
	return out, version, err
}

// Levels returns the facility's levels by ordinal and id.
func (db *DB) Levels(ctx context.Context, facility string) ([]cloud.Level, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, name, ordinal FROM levels WHERE facility_id = $1 ORDER BY ordinal, id`, facility)
	if err != nil {
		return nil, wrap(err, "levels")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cloud.Level, error) {
		var l cloud.Level
		err := r.Scan(&l.ID, &l.Name, &l.Ordinal)
		return l, err
	})
	return out, wrap(err, "levels")
}

// CreateLevel adds a level; ECONFLICT when its id is taken.
func (db *DB) CreateLevel(ctx context.Context, facility string, l cloud.Level) (uint64, error) {
	return db.layoutTx(ctx, facility, "create level", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO levels (facility_id, id, name, ordinal) VALUES ($1, $2, $3, $4)`,
			facility, l.ID, l.Name, l.Ordinal)
		if pgCode(err) == uniqueViolation {
			return cloud.Errorf(cloud.ECONFLICT, "level %q exists", l.ID)
		}
		return err
	})
}

// UpdateLevel changes a level under the facility's lock; see UpdateFacility.
func (db *DB) UpdateLevel(ctx context.Context, facility, id string, fn func(*cloud.Level) error) (cloud.Level, uint64, error) {
	var l cloud.Level
	version, err := db.layoutTx(ctx, facility, "update level", func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT id, name, ordinal FROM levels WHERE facility_id = $1 AND id = $2`, facility, id).
			Scan(&l.ID, &l.Name, &l.Ordinal)
		if errors.Is(err, pgx.ErrNoRows) {
			return cloud.Errorf(cloud.ENOTFOUND, "no level %q", id)
		}
		if err != nil {
			return err
		}
		if err := fn(&l); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE levels SET name = $3, ordinal = $4 WHERE facility_id = $1 AND id = $2`,
			facility, id, l.Name, l.Ordinal)
		return err
	})
	return l, version, err
}

// DeleteLevel removes a level; ECONFLICT while zones are on it.
func (db *DB) DeleteLevel(ctx context.Context, facility, id string) (uint64, error) {
	return db.layoutTx(ctx, facility, "delete level", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM levels WHERE facility_id = $1 AND id = $2`, facility, id)
		switch {
		case pgCode(err) == foreignKeyViolation:
			return cloud.Errorf(cloud.ECONFLICT, "level %q has zones: move or delete them first", id)
		case err != nil:
			return err
		case tag.RowsAffected() == 0:
			return cloud.Errorf(cloud.ENOTFOUND, "no level %q", id)
		}
		return nil
	})
}

const zoneColumns = `id, coalesce(level_id, ''), name, kind, capacity, held_back`

func scanZone(row pgx.Row) (cloud.Zone, error) {
	var z cloud.Zone
	err := row.Scan(&z.ID, &z.Level, &z.Name, &z.Kind, &z.Capacity, &z.HeldBack)
	return z, err
}

// Zones returns the facility's configured zones by id.
func (db *DB) Zones(ctx context.Context, facility string) ([]cloud.Zone, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+zoneColumns+` FROM zones WHERE facility_id = $1 ORDER BY id`, facility)
	if err != nil {
		return nil, wrap(err, "zones")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cloud.Zone, error) { return scanZone(r) })
	return out, wrap(err, "zones")
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// zoneWriteError turns the constraint violations of a zone write into domain errors.
func zoneWriteError(err error, z cloud.Zone) error {
	switch pgCode(err) {
	case uniqueViolation:
		return cloud.Errorf(cloud.ECONFLICT, "zone %q exists", z.ID)
	case foreignKeyViolation:
		return cloud.Errorf(cloud.EINVALID, "no level %q", z.Level)
	case checkViolation:
		return cloud.Errorf(cloud.EINVALID, "held_back must be between 0 and the capacity")
	}
	return err
}

// CreateZone adds a zone; ECONFLICT when its id is taken, EINVALID for an unknown
// level.
func (db *DB) CreateZone(ctx context.Context, facility string, z cloud.Zone) (uint64, error) {
	return db.layoutTx(ctx, facility, "create zone", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO zones (facility_id, id, level_id, name, kind, capacity, held_back)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, facility, z.ID, nullable(z.Level), z.Name, z.Kind, z.Capacity, z.HeldBack)
		return zoneWriteError(err, z)
	})
}

// UpdateZone changes a zone under the facility's lock; see UpdateFacility.
func (db *DB) UpdateZone(ctx context.Context, facility, id string, fn func(*cloud.Zone) error) (cloud.Zone, uint64, error) {
	var z cloud.Zone
	version, err := db.layoutTx(ctx, facility, "update zone", func(tx pgx.Tx) error {
		var err error
		z, err = scanZone(tx.QueryRow(ctx, `SELECT `+zoneColumns+` FROM zones WHERE facility_id = $1 AND id = $2`, facility, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return cloud.Errorf(cloud.ENOTFOUND, "no zone %q", id)
		}
		if err != nil {
			return err
		}
		if err := fn(&z); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE zones SET level_id = $3, name = $4, kind = $5, capacity = $6, held_back = $7
			WHERE facility_id = $1 AND id = $2`, facility, id, nullable(z.Level), z.Name, z.Kind, z.Capacity, z.HeldBack)
		return zoneWriteError(err, z)
	})
	return z, version, err
}

// DeleteZone removes a zone; ECONFLICT while it has spots.
func (db *DB) DeleteZone(ctx context.Context, facility, id string) (uint64, error) {
	return db.layoutTx(ctx, facility, "delete zone", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM zones WHERE facility_id = $1 AND id = $2`, facility, id)
		switch {
		case pgCode(err) == foreignKeyViolation:
			return cloud.Errorf(cloud.ECONFLICT, "zone %q has spots: move or delete them first", id)
		case err != nil:
			return err
		case tag.RowsAffected() == 0:
			return cloud.Errorf(cloud.ENOTFOUND, "no zone %q", id)
		}
		return nil
	})
}

const spotColumns = `s.id, s.zone_id, s.label, s.kind,
	coalesce((SELECT array_agg(feature ORDER BY feature) FROM spot_features sf
		WHERE sf.facility_id = s.facility_id AND sf.spot_id = s.id), '{}')`

func scanSpot(row pgx.Row) (cloud.Spot, error) {
	var s cloud.Spot
	err := row.Scan(&s.ID, &s.Zone, &s.Label, &s.Kind, &s.Features)
	return s, err
}

// SpotFilter selects spots of a facility: those of Zone ("" for all), with ids after
// After, at most Limit (0: all).
type SpotFilter struct {
	Zone  string
	After string
	Limit int
}

// Spots returns the facility's spots f selects, by id.
func (db *DB) Spots(ctx context.Context, facility string, f SpotFilter) ([]cloud.Spot, error) {
	var limit any
	if f.Limit > 0 {
		limit = f.Limit
	}
	rows, err := db.pool.Query(ctx, `SELECT `+spotColumns+` FROM spots s
		WHERE s.facility_id = $1 AND ($2 = '' OR s.zone_id = $2) AND s.id > $3 ORDER BY s.id LIMIT $4`,
		facility, f.Zone, f.After, limit)
	if err != nil {
		return nil, wrap(err, "spots")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cloud.Spot, error) { return scanSpot(r) })
	return out, wrap(err, "spots")
}

func writeFeatures(ctx context.Context, tx pgx.Tx, facility string, s cloud.Spot) error {
	if _, err := tx.Exec(ctx, `DELETE FROM spot_features WHERE facility_id = $1 AND spot_id = $2`, facility, s.ID); err != nil {
		return err
	}
	if len(s.Features) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO spot_features (facility_id, spot_id, feature)
		SELECT DISTINCT $1, $2, f FROM unnest($3::text[]) AS f`, facility, s.ID, s.Features)
	return err
}

func spotWriteError(err error, s cloud.Spot) error {
	switch pgCode(err) {
	case uniqueViolation:
		return cloud.Errorf(cloud.ECONFLICT, "spot %q exists", s.ID)
	case foreignKeyViolation:
		return cloud.Errorf(cloud.EINVALID, "no zone %q", s.Zone)
	}
	return err
}

// CreateSpot adds a spot with its features; ECONFLICT when its id is taken, EINVALID
// for an unknown zone.
func (db *DB) CreateSpot(ctx context.Context, facility string, s cloud.Spot) (uint64, error) {
	return db.layoutTx(ctx, facility, "create spot", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO spots (facility_id, id, zone_id, label, kind) VALUES ($1, $2, $3, $4, $5)`,
			facility, s.ID, s.Zone, s.Label, s.Kind)
		if err != nil {
			return spotWriteError(err, s)
		}
		return writeFeatures(ctx, tx, facility, s)
	})
}

// UpdateSpot changes a spot and its features under the facility's lock; see
// UpdateFacility.
func (db *DB) UpdateSpot(ctx context.Context, facility, id string, fn func(*cloud.Spot) error) (cloud.Spot, uint64, error) {
	var s cloud.Spot
	version, err := db.layoutTx(ctx, facility, "update spot", func(tx pgx.Tx) error {
		var err error
		s, err = scanSpot(tx.QueryRow(ctx, `SELECT `+spotColumns+` FROM spots s WHERE s.facility_id = $1 AND s.id = $2`, facility, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return cloud.Errorf(cloud.ENOTFOUND, "no spot %q", id)
		}
		if err != nil {
			return err
		}
		if err := fn(&s); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE spots SET zone_id = $3, label = $4, kind = $5 WHERE facility_id = $1 AND id = $2`,
			facility, id, s.Zone, s.Label, s.Kind)
		if err != nil {
			return spotWriteError(err, s)
		}
		slices.Sort(s.Features)
		s.Features = slices.Compact(s.Features)
		return writeFeatures(ctx, tx, facility, s)
	})
	return s, version, err
}

// DeleteSpot removes a spot and its features.
func (db *DB) DeleteSpot(ctx context.Context, facility, id string) (uint64, error) {
	return db.layoutTx(ctx, facility, "delete spot", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM spots WHERE facility_id = $1 AND id = $2`, facility, id)
		if err == nil && tag.RowsAffected() == 0 {
			return cloud.Errorf(cloud.ENOTFOUND, "no spot %q", id)
		}
		return err
	})
}

// Layout returns the facility's whole configuration as of one snapshot, so that its
// LayoutVersion names exactly this content.
func (db *DB) Layout(ctx context.Context, facility string) (cloud.Layout, error) {
	var l cloud.Layout
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		l.Facility, err = scanFacility(tx.QueryRow(ctx, `SELECT `+facilityColumns+` FROM facilities f WHERE id = $1`, facility))
		if errors.Is(err, pgx.ErrNoRows) {
			return cloud.Errorf(cloud.ENOTFOUND, "no facility %q", facility)
		}
		if err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `SELECT id, name, ordinal FROM levels WHERE facility_id = $1 ORDER BY ordinal, id`, facility)
		if l.Levels, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (cloud.Level, error) {
			var lv cloud.Level
			err := r.Scan(&lv.ID, &lv.Name, &lv.Ordinal)
			return lv, err
		}); err != nil {
			return err
		}
		rows, _ = tx.Query(ctx, `SELECT `+zoneColumns+` FROM zones WHERE facility_id = $1 ORDER BY id`, facility)
		if l.Zones, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (cloud.Zone, error) { return scanZone(r) }); err != nil {
			return err
		}
		rows, _ = tx.Query(ctx, `SELECT `+spotColumns+` FROM spots s WHERE s.facility_id = $1 ORDER BY s.id`, facility)
		l.Spots, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (cloud.Spot, error) { return scanSpot(r) })
		return err
	})
	return l, wrap(err, "layout")
}

// MarkLayoutPublished records that the hub holds version of the facility's layout.
// It never moves backwards.
func (db *DB) MarkLayoutPublished(ctx context.Context, facility string, version uint64) error {
	_, err := db.pool.Exec(ctx, `UPDATE facilities SET layout_published = greatest(layout_published, $2) WHERE id = $1`,
		facility, int64(version))
	return wrap(err, "mark layout published")
}

// UnpublishedLayouts returns the facilities whose current layout version the hub has
// not accepted, by id.
func (db *DB) UnpublishedLayouts(ctx context.Context) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT id FROM facilities WHERE layout_published < layout_version ORDER BY id`)
	if err != nil {
		return nil, wrap(err, "unpublished layouts")
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return out, wrap(err, "unpublished layouts")
}

const availabilityQuery = `SELECT f.id, f.name, f.public, f.lat, f.lon, f.last_contact, f.last_event_at,
		z.zone_id, z.name, z.configured, z.capacity, z.held_back, z.occupied, z.updated_at
	FROM facilities f LEFT JOIN LATERAL (` + zoneJoin + `) z ON true`

// Availability returns the facility's live availability in one statement on primary
// keys; ENOTFOUND for an unknown facility.
func (db *DB) Availability(ctx context.Context, facility string) (cloud.Availability, error) {
	out, err := db.availabilities(ctx, availabilityQuery+` WHERE f.id = $1 ORDER BY z.zone_id`, facility)
	if err != nil {
		return cloud.Availability{}, err
	}
	if len(out) == 0 {
		return cloud.Availability{}, cloud.Errorf(cloud.ENOTFOUND, "no facility %q", facility)
	}
	return out[0], nil
}

// PublicAvailability returns the availability of every public facility, by id: the
// open-data exports.
func (db *DB) PublicAvailability(ctx context.Context) ([]cloud.Availability, error) {
	return db.availabilities(ctx, availabilityQuery+` WHERE f.public ORDER BY f.id, z.zone_id`)
}

func (db *DB) availabilities(ctx context.Context, sql string, args ...any) ([]cloud.Availability, error) {
	rows, err := db.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, wrap(err, "availability")
	}
	defer rows.Close()
	var out []cloud.Availability
	for rows.Next() {
		var a cloud.Availability
		var lat, lon pgtype.Float8
		var contact, lastAt, updated pgtype.Timestamptz
		var zone, name pgtype.Text
		var configured pgtype.Bool
		var capacity, held, occupied pgtype.Int4
		if err := rows.Scan(&a.Facility, &a.Name, &a.Public, &lat, &lon, &contact, &lastAt,
			&zone, &name, &configured, &capacity, &held, &occupied, &updated); err != nil {
			return nil, wrap(err, "availability")
		}
		if len(out) == 0 || out[len(out)-1].Facility != a.Facility {
			if lat.Valid && lon.Valid {
				a.Location = &cloud.Location{Lat: lat.Float64, Lon: lon.Float64}
			}
			a.LastContact, a.LastEventAt = contact.Time, lastAt.Time
			a.Zones = []cloud.ZoneAvailability{}
			out = append(out, a)
		}
		if zone.Valid {
			cur := &out[len(out)-1]
			cur.Zones = append(cur.Zones, cloud.ZoneAvailability{Zone: zone.String, Name: name.String, Configured: configured.Bool,
				Capacity: int(capacity.Int32), HeldBack: int(held.Int32), Occupied: int(occupied.Int32), UpdatedAt: updated.Time})
		}
	}
	return out, wrap(rows.Err(), "availability")
}

// FleetFilter selects garages for the fleet view: all, or those in Facilities; After
// is a cursor (the last id returned).
type FleetFilter struct {
	All        bool
	Facilities []string
	After      string
	Limit      int
}

// Fleet returns a line per garage f selects, by id: contact, occupancy totals, active
// alerts and the first gap of its stream.
func (db *DB) Fleet(ctx context.Context, f FleetFilter) ([]cloud.FleetEntry, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	facs := f.Facilities
	if facs == nil {
		facs = []string{}
	}
	rows, err := db.pool.Query(ctx, `SELECT f.id, f.name, f.last_contact, f.last_event_at,
			coalesce(t.capacity, 0), coalesce(t.occupied, 0), coalesce(t.free, 0), a.n, coalesce(a.worst, ''),
			f.applied_seq, CASE WHEN f.last_seq_received > f.applied_seq THEN
				(SELECT min(seq) FROM events e WHERE e.facility_id = f.id AND e.seq > f.applied_seq) END
		FROM facilities f `+zoneTotals+`
		LEFT JOIN LATERAL (SELECT count(*)::int AS n,
				(array_agg(severity ORDER BY CASE severity WHEN 'critical' THEN 3 WHEN 'warning' THEN 2 WHEN 'info' THEN 1 ELSE 0 END DESC))[1] AS worst
			FROM active_alerts WHERE facility_id = f.id) a ON true
		WHERE ($1 OR f.id = ANY($2)) AND f.id > $3
		ORDER BY f.id LIMIT $4`, f.All, facs, f.After, f.Limit)
	if err != nil {
		return nil, wrap(err, "fleet")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cloud.FleetEntry, error) {
		var e cloud.FleetEntry
		var contact, lastAt pgtype.Timestamptz
		var applied int64
		var first pgtype.Int8
		err := r.Scan(&e.Facility, &e.Name, &contact, &lastAt, &e.Capacity, &e.Occupied, &e.Free, &e.Alerts, &e.WorstSeverity,
			&applied, &first)
		e.LastContact, e.LastEventAt = contact.Time, lastAt.Time
		if first.Valid {
			e.Gap = &cloud.Gap{Facility: e.Facility, From: uint64(applied) + 1, To: uint64(first.Int64) - 1}
		}
		return e, err
	})
	return out, wrap(err, "fleet")
}
