package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// What changes bookings with time: holds that run out, no-shows, arrivals and
// departures seen in the garages' sessions; the waitlist; and the "reservations"
// downlink document of each facility.

// sweepBatch bounds the bookings one sweep step changes.
const sweepBatch = 500

// SweepReservations moves bookings on as of at, each in its own transaction:
//   - held bookings whose hold ran out expire and release their slices;
//   - confirmed bookings with a stay at the garage (a session carrying their id)
//     become checked_in;
//   - confirmed bookings with no stay by start + arrival grace become no_show and
//     release their slices from the one under way;
//   - checked-in bookings whose stay has ended become completed and release the
//     slices after the one under way.
//
// It returns one Change per booking changed, for the caller to promote waitlisted
// drivers and publish the facilities' documents.
func (db *DB) SweepReservations(ctx context.Context, at time.Time) ([]Change, error) {
	steps := []struct {
		query string
		to    cloud.ReservationStatus
		event string
	}{
		{`SELECT id::text FROM reservations WHERE status = 'held' AND hold_expires_at <= $1 ORDER BY hold_expires_at LIMIT $2`,
			cloud.ReservationExpired, cloud.EventReservationExpired},
		{`SELECT r.id::text FROM reservations r WHERE r.status = 'confirmed' AND lower(r.period) - r.arrival_grace <= $1
			AND (EXISTS (SELECT 1 FROM open_sessions s WHERE s.reservation_id = r.id::text)
				OR EXISTS (SELECT 1 FROM sessions s WHERE s.reservation_id = r.id::text))
			ORDER BY lower(r.period) LIMIT $2`,
			cloud.ReservationCheckedIn, cloud.EventReservationCheckedIn},
		{`SELECT r.id::text FROM reservations r WHERE r.status = 'confirmed' AND lower(r.period) + r.arrival_grace <= $1
			AND NOT EXISTS (SELECT 1 FROM open_sessions s WHERE s.reservation_id = r.id::text)
			AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.reservation_id = r.id::text)
			ORDER BY lower(r.period) LIMIT $2`,
			cloud.ReservationNoShow, cloud.EventReservationExpired},
		{`SELECT r.id::text FROM reservations r WHERE r.status = 'checked_in' AND lower(r.period) - r.arrival_grace <= $1
			AND NOT EXISTS (SELECT 1 FROM open_sessions s WHERE s.reservation_id = r.id::text)
			ORDER BY lower(r.period) LIMIT $2`,
			cloud.ReservationCompleted, cloud.EventReservationCompleted},
	}
	var out []Change
	for _, st := range steps {
		rows, _ := db.pool.Query(ctx, st.query, at, sweepBatch)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return out, wrap(err, "sweep reservations")
		}
		for _, id := range ids {
			ch, err := db.moveOn(ctx, id, st.to, st.event, at)
			if err != nil {
				return out, err
			}
			if ch.Facility != "" {
				out = append(out, ch)
			}
		}
	}
	return out, nil
}

// moveOn makes one sweep transition, re-checked under the booking's lock.
func (db *DB) moveOn(ctx context.Context, id string, to cloud.ReservationStatus, event string, at time.Time) (Change, error) {
	var ch Change
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		r, err := lockReservation(ctx, tx, id)
		if err != nil {
			return err
		}
		var used bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM open_sessions WHERE reservation_id = $1)
			OR EXISTS (SELECT 1 FROM sessions WHERE reservation_id = $1)`, id).Scan(&used); err != nil {
			return err
		}
		var open bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM open_sessions WHERE reservation_id = $1)`, id).Scan(&open); err != nil {
			return err
		}
		detail := map[string]any{}
		switch to {
		case cloud.ReservationExpired:
			if r.Status != cloud.ReservationHeld || r.HoldExpiresAt.After(at) {
				return nil
			}
			detail["reason"] = "hold_expired"
		case cloud.ReservationCheckedIn:
			if r.Status != cloud.ReservationConfirmed || !used {
				return nil
			}
		case cloud.ReservationNoShow:
			if r.Status != cloud.ReservationConfirmed || used || r.From.Add(r.Policy.ArrivalGrace).After(at) {
				return nil
			}
			detail["reason"] = "no_show"
		case cloud.ReservationCompleted:
			if r.Status != cloud.ReservationCheckedIn || open {
				return nil
			}
		}
		release0 := at
		if to == cloud.ReservationCompleted {
			release0 = at.Add(cloud.SliceLength) // the car left during the slice under way
		}
		if to != cloud.ReservationCheckedIn {
			if err := release(ctx, tx, &r, release0); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE reservations SET status = $2, updated_at = $3 WHERE id = $1`, id, string(to), at); err != nil {
			return err
		}
		ch = Change{Facility: r.Facility, Zone: r.Zone, Freed: to != cloud.ReservationCheckedIn}
		// A checked-in booking stays in the garage's list while the car is inside.
		if to == cloud.ReservationNoShow || to == cloud.ReservationCompleted {
			ch.Downlink = true
			if err := bumpDownlink(ctx, tx, r.Facility); err != nil {
				return err
			}
		}
		return history(ctx, tx, id, r.Status, to, "system", event, at, detail)
	})
	return ch, wrap(err, "sweep reservation")
}

// ReservationsDocument returns, as of one snapshot, the version of the facility's
// "reservations" downlink document and its content: the confirmed bookings not yet
// ended at at and the checked-in ones, by start. Version 0: never changed.
func (db *DB) ReservationsDocument(ctx context.Context, facility string, at time.Time) (uint64, []cloud.Reservation, error) {
	var version int64
	var out []cloud.Reservation
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT version FROM reservation_downlink WHERE facility_id = $1`, facility).Scan(&version)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `SELECT `+reservationColumns+` FROM reservations r
			WHERE r.facility_id = $1 AND (r.status = 'checked_in' OR (r.status = 'confirmed' AND upper(r.period) > $2))
			ORDER BY lower(r.period), r.id`, facility, at)
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (cloud.Reservation, error) { return scanReservation(r) })
		return err
	})
	return uint64(version), out, wrap(err, "reservations document")
}

// MarkReservationsPublished records that the hub holds version of the facility's
// document. It never moves backwards.
func (db *DB) MarkReservationsPublished(ctx context.Context, facility string, version uint64) error {
	_, err := db.pool.Exec(ctx, `UPDATE reservation_downlink SET published = greatest(published, $2) WHERE facility_id = $1`,
		facility, int64(version))
	return wrap(err, "mark reservations published")
}

// UnpublishedReservations returns the facilities whose current document the hub has
// not accepted, by id.
func (db *DB) UnpublishedReservations(ctx context.Context) ([]string, error) {
	rows, _ := db.pool.Query(ctx, `SELECT facility_id FROM reservation_downlink WHERE published < version ORDER BY facility_id`)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return out, wrap(err, "unpublished reservations")
}

const waitlistColumns = `w.id::text, w.facility_id, w.zone_id, w.user_id, w.plate, lower(w.period), upper(w.period), w.status,
	coalesce(w.reservation_id::text, ''), w.created_at`

func scanWaitlist(row pgx.Row) (cloud.WaitlistEntry, error) {
	var w cloud.WaitlistEntry
	err := row.Scan(&w.ID, &w.Facility, &w.Zone, &w.UserID, &w.Plate, &w.From, &w.Until, &w.Status, &w.ReservationID, &w.CreatedAt)
	return w, err
}

// JoinWaitlist puts a driver on the zone's waitlist for a window. It fails with
// ECONFLICT when the window can be booked now (book it instead) or the account has
// cloud.MaxWaitingPerAccount entries waiting, ENOTFOUND for an unknown zone,
// EINVALID for a bad window.
func (db *DB) JoinWaitlist(ctx context.Context, w cloud.WaitlistEntry, at time.Time) (cloud.WaitlistEntry, error) {
	if err := CheckWindow(w.From, w.Until, at); err != nil {
		return w, err
	}
	avail, err := db.Reservable(ctx, w.Facility, w.Zone, w.From, w.Until, at)
	if err != nil {
		return w, err
	}
	if !slices.ContainsFunc(avail, func(s cloud.SliceAvailability) bool { return s.Available == 0 }) {
		return w, cloud.Errorf(cloud.ECONFLICT, "the window has space: book it instead of waiting")
	}
	var out cloud.WaitlistEntry
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if err := lockAccount(ctx, tx, w.UserID); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM reservation_waitlist WHERE user_id = $1 AND status = 'waiting'`, w.UserID).Scan(&n); err != nil {
			return err
		}
		if n >= cloud.MaxWaitingPerAccount {
			return cloud.Errorf(cloud.ECONFLICT, "you are waiting for %d windows, the most an account may: leave one of those waitlists first", n)
		}
		var err error
		out, err = scanWaitlist(tx.QueryRow(ctx, `INSERT INTO reservation_waitlist AS w (facility_id, zone_id, user_id, plate, period, created_at, updated_at)
			VALUES ($1, $2, $3, $4, tstzrange($5, $6), $7, $7) RETURNING `+waitlistColumns,
			w.Facility, w.Zone, w.UserID, w.Plate, w.From, w.Until, at))
		return err
	})
	return out, wrap(err, "join waitlist")
}

// Waitlist returns the account's waitlist entries, newest first.
func (db *DB) Waitlist(ctx context.Context, userID string, limit int) ([]cloud.WaitlistEntry, error) {
	rows, _ := db.pool.Query(ctx, `SELECT `+waitlistColumns+` FROM reservation_waitlist w WHERE w.user_id = $1
		ORDER BY w.created_at DESC, w.id DESC LIMIT $2`, userID, limit)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cloud.WaitlistEntry, error) { return scanWaitlist(r) })
	return out, wrap(err, "waitlist")
}

// LeaveWaitlist cancels the account's waiting entry; ENOTFOUND when it has no such
// waiting entry.
func (db *DB) LeaveWaitlist(ctx context.Context, userID, id string, at time.Time) error {
	if !validUUID(id) {
		return cloud.Errorf(cloud.ENOTFOUND, "no waitlist entry %q", id)
	}
	tag, err := db.pool.Exec(ctx, `UPDATE reservation_waitlist SET status = 'cancelled', updated_at = $3
		WHERE id = $1 AND user_id = $2 AND status = 'waiting'`, id, userID, at)
	if err != nil {
		return wrap(err, "leave waitlist")
	}
	if tag.RowsAffected() == 0 {
		return cloud.Errorf(cloud.ENOTFOUND, "you have no waiting entry %q", id)
	}
	return nil
}

// maxPromotions bounds the entries one promotion pass tries.
const maxPromotions = 100

// PromoteWaitlist gives freed space in the zone to waiting drivers, oldest entry
// first: for each entry whose window now fits, a held booking is made (held for the
// policy's PromotionHold), the entry is marked promoted and a "reservation.promoted"
// notification is queued, all in one transaction. Entries whose window has started
// expire. It returns the entries promoted.
func (db *DB) PromoteWaitlist(ctx context.Context, facility, zone string, at time.Time) ([]cloud.WaitlistEntry, error) {
	if _, err := db.pool.Exec(ctx, `UPDATE reservation_waitlist SET status = 'expired', updated_at = $3
		WHERE facility_id = $1 AND zone_id = $2 AND status = 'waiting' AND lower(period) <= $3`, facility, zone, at); err != nil {
		return nil, wrap(err, "promote waitlist")
	}
	rows, _ := db.pool.Query(ctx, `SELECT id::text FROM reservation_waitlist
		WHERE facility_id = $1 AND zone_id = $2 AND status = 'waiting' ORDER BY seq LIMIT $3`, facility, zone, maxPromotions)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, wrap(err, "promote waitlist")
	}
	var out []cloud.WaitlistEntry
	for _, id := range ids {
		var w cloud.WaitlistEntry
		var lo, hi pgtype.Timestamptz
		if err := db.pool.QueryRow(ctx, `SELECT lower(period), upper(period) FROM reservation_waitlist WHERE id = $1`, id).Scan(&lo, &hi); err != nil {
			return out, wrap(err, "promote waitlist")
		}
		first, end := cloud.Slices(lo.Time, hi.Time)
		if err := db.ensureSlices(ctx, facility, zone, first, end); err != nil {
			return out, wrap(err, "promote waitlist")
		}
		err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			var err error
			w, err = scanWaitlist(tx.QueryRow(ctx, `SELECT `+waitlistColumns+` FROM reservation_waitlist w
				WHERE w.id = $1 AND w.status = 'waiting' FOR UPDATE SKIP LOCKED`, id))
			if err != nil {
				return err // gone, or another process is promoting it
			}
			r, err := bookTx(ctx, tx, BookRequest{Facility: w.Facility, Zone: w.Zone, UserID: w.UserID, Plate: w.Plate,
				From: w.From, Until: w.Until, Actor: "system", At: at, promotion: true})
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE reservation_waitlist SET status = 'promoted', reservation_id = $2, updated_at = $3
				WHERE id = $1`, id, r.ID, at); err != nil {
				return err
			}
			w.Status, w.ReservationID = "promoted", r.ID
			payload, err := json.Marshal(map[string]any{"reservation_id": r.ID, "waitlist_id": w.ID, "facility": r.Facility,
				"zone": r.Zone, "from": r.From, "until": r.Until, "plate": r.Plate, "hold_expires_at": r.HoldExpiresAt, "price": r.Price,
				"currency": r.Currency, "message": "A space became free for your waitlisted booking. It is held for you: pay before the hold ends to confirm it."})
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO notifications (user_id, kind, payload, created_at) VALUES ($1, 'reservation.promoted', $2, $3)`,
				w.UserID, payload, at)
			return err
		})
		switch {
		case err == nil:
			out = append(out, w)
		case errors.Is(err, pgx.ErrNoRows), cloud.ErrorCode(err) == cloud.ECONFLICT:
		default:
			return out, wrap(err, "promote waitlist")
		}
	}
	return out, nil
}

// Notifications returns the account's queued and sent notifications, newest first.
func (db *DB) Notifications(ctx context.Context, userID string, limit int) ([]cloud.Notification, error) {
	rows, _ := db.pool.Query(ctx, `SELECT id, user_id, kind, payload, created_at, sent_at FROM notifications
		WHERE user_id = $1 ORDER BY id DESC LIMIT $2`, userID, limit)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cloud.Notification, error) {
		var n cloud.Notification
		var sent pgtype.Timestamptz
		err := r.Scan(&n.ID, &n.UserID, &n.Kind, &n.Payload, &n.CreatedAt, &sent)
		n.SentAt = sent.Time
		return n, err
	})
	return out, wrap(err, "notifications")
}

// WaitingZones returns the zones with drivers waiting, as (facility, zone) pairs.
func (db *DB) WaitingZones(ctx context.Context) ([][2]string, error) {
	rows, _ := db.pool.Query(ctx, `SELECT DISTINCT facility_id, zone_id FROM reservation_waitlist WHERE status = 'waiting' ORDER BY 1, 2`)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var z [2]string
		err := r.Scan(&z[0], &z[1])
		return z, err
	})
	return out, wrap(err, "waiting zones")
}
