package httpapi

import (
	"context"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// ReservationsKind is the downlink document kind of a facility's confirmed bookings:
// a gh.CredentialsReplaced that edge.Garage.ApplyCredentials applies.
const ReservationsKind = "reservations"

const reservationsPublishTimeout = 3 * time.Second

// reservationsChanged follows a committed change: it gives freed space to waitlisted
// drivers and publishes the facility's document when its confirmed bookings changed.
// Failures are logged: the sweeper promotes and republishes on its next round.
func (a *api) reservationsChanged(c interface{ UserContext() context.Context }, ch postgres.Change) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.UserContext()), reservationsPublishTimeout)
	defer cancel()
	if ch.Freed {
		if _, err := a.db.PromoteWaitlist(ctx, ch.Facility, ch.Zone, a.now()); err != nil {
			a.log.Warn("waitlist not promoted; the reservation sweeper retries", "facility", ch.Facility, "zone", ch.Zone, "err", err)
		}
	}
	if ch.Downlink {
		if err := publishReservations(ctx, a.db, a.hub, ch.Facility, a.now()); err != nil {
			a.log.Warn("reservations saved but not yet published to the garage; the reservation sweeper retries",
				"facility", ch.Facility, "err", err)
		}
	}
}

// ReservationsDocument builds the "reservations" downlink document of a facility's
// bookings: each with its plate, QR code, zone, window, arrival grace and whether it
// is prepaid.
func ReservationsDocument(version uint64, rs []cloud.Reservation) *gh.CredentialsReplaced {
	doc := &gh.CredentialsReplaced{Kind: ReservationsKind, Version: version, Reservations: make([]*gh.Reservation, 0, len(rs))}
	for _, r := range rs {
		doc.Reservations = append(doc.Reservations, &gh.Reservation{Id: r.ID, Plate: r.Plate, Code: r.Code, Zone: r.Zone,
			From: timestamppb.New(r.From), Until: timestamppb.New(r.Until),
			GraceSeconds: int64(r.Policy.ArrivalGrace / time.Second), Prepaid: r.Prepaid()})
	}
	return doc
}

// publishReservations publishes the facility's current document, read afresh, and
// records the version the hub accepted. As with layouts (see publishLayout), the
// current document rather than the change's: each version names one whole list, so a
// publish is idempotent and a later one carries every earlier change; the hub refuses
// a version older than the one it holds, so racing publishes cannot regress a garage.
func publishReservations(ctx context.Context, db *postgres.DB, hub Hub, facility string, at time.Time) error {
	if hub == nil {
		return cloud.Errorf(cloud.EUNAVAILABLE, "no hub configured")
	}
	version, rs, err := db.ReservationsDocument(ctx, facility, at)
	if err != nil || version == 0 {
		return err
	}
	body, err := proto.Marshal(ReservationsDocument(version, rs))
	if err != nil {
		return err
	}
	if err := hub.PublishDown(ctx, facility, ReservationsKind, version, body); err != nil && cloud.ErrorCode(err) != cloud.ECONFLICT {
		return err
	}
	return db.MarkReservationsPublished(ctx, facility, version)
}

// RunReservationSweeper moves bookings on with time until ctx ends, every interval
// (15 s suits the default 10-minute hold): it expires holds that ran out, marks
// arrivals, no-shows and departures from the garages' sessions (see
// postgres.DB.SweepReservations), gives freed space to waitlisted drivers, and
// publishes every facility's "reservations" document the hub does not hold yet (a
// change in this round, or a publish that failed before). cmd/gatehouse-cloud runs it
// beside the API; several processes may run it at once.
func RunReservationSweeper(ctx context.Context, db *postgres.DB, hub Hub, interval time.Duration, log interface {
	Warn(msg string, args ...any)
}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		sweepReservations(ctx, db, hub, time.Now(), log)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweepReservations is one round of RunReservationSweeper, as of at.
func sweepReservations(ctx context.Context, db *postgres.DB, hub Hub, at time.Time, log interface {
	Warn(msg string, args ...any)
}) {
	changes, err := db.SweepReservations(ctx, at)
	if err != nil && ctx.Err() == nil {
		log.Warn("sweeping reservations", "err", err)
	}
	freed := map[[2]string]bool{}
	for _, ch := range changes {
		if ch.Freed {
			freed[[2]string{ch.Facility, ch.Zone}] = true
		}
	}
	waiting, err := db.WaitingZones(ctx)
	if err != nil && ctx.Err() == nil {
		log.Warn("listing waitlists", "err", err)
	}
	for _, z := range waiting {
		freed[z] = true // space may have come from elsewhere too (more held-back space)
	}
	for z := range freed {
		if _, err := db.PromoteWaitlist(ctx, z[0], z[1], at); err != nil && ctx.Err() == nil {
			log.Warn("promoting the waitlist", "facility", z[0], "zone", z[1], "err", err)
		}
	}
	facs, err := db.UnpublishedReservations(ctx)
	if err != nil && ctx.Err() == nil {
		log.Warn("listing unpublished reservations", "err", err)
	}
	for _, f := range facs {
		pctx, cancel := context.WithTimeout(ctx, reservationsPublishTimeout)
		if err := publishReservations(pctx, db, hub, f, at); err != nil && ctx.Err() == nil {
			log.Warn("reservations not published; retrying", "facility", f, "err", err)
		}
		cancel()
	}
}
