package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	"github.com/gatehouse-parking/gatehouse/edge/tariff"
)

// bookingGarage creates facility fac with zone "A" of capacity 100 and heldBack
// spaces held back for bookings.
func bookingGarage(tb testing.TB, db *postgres.DB, fac string, heldBack int) {
	tb.Helper()
	ctx := context.Background()
	if _, err := db.CreateFacility(ctx, cloud.Facility{ID: fac, Name: fac, Timezone: "UTC", Currency: "EUR", Public: true}); err != nil {
		tb.Fatal(err)
	}
	if _, err := db.CreateZone(ctx, fac, cloud.Zone{ID: "A", Kind: "general", Capacity: 100, HeldBack: heldBack}); err != nil {
		tb.Fatal(err)
	}
}

// checkCounts fails the test when a slice's count differs from the bookings holding
// it, or exceeds the zone's held-back space.
func checkCounts(tb testing.TB, db *postgres.DB) {
	tb.Helper()
	if err := db.CheckReservationCounts(context.Background()); err != nil {
		tb.Fatal(err)
	}
}

var resAt = time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)

func bookReq(user, plate string, from, until time.Time) postgres.BookRequest {
	return postgres.BookRequest{Facility: "g1", Zone: "A", UserID: user, Plate: plate, From: from, Until: until, Actor: "user:" + user, At: resAt}
}

func events(tb testing.TB, db *postgres.DB, id string) []string {
	tb.Helper()
	hs, err := db.ReservationHistory(context.Background(), id)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, h := range hs {
		out = append(out, h.Event+":"+h.ToStatus)
	}
	return out
}

// TestReservationLifecycle books, confirms and cancels, checking the counts, the
// refund, the events and the downlink version at each step.
func TestReservationLifecycle(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	bookingGarage(t, db, "g1", 2)
	if err := db.SetReservationPolicy(ctx, "g1", cloud.ReservationPolicy{Hold: 10 * time.Minute, PromotionHold: 30 * time.Minute,
		ArrivalGrace: 15 * time.Minute, FullRefundBefore: 24 * time.Hour, LateRefundPercent: 50}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SetTariffs(ctx, "g1", postgres.Tariffs{DefaultRate: "r", Rates: tariffRates(t)}, "test"); err != nil {
		t.Fatal(err)
	}
	from, until := resAt.Add(10*time.Hour), resAt.Add(12*time.Hour)

	r, replayed, err := db.Book(ctx, bookReq("alice", "AB123", from, until))
	if err != nil || replayed {
		t.Fatalf("Book = %v, %v", replayed, err)
	}
	if r.Status != cloud.ReservationHeld || !r.HoldExpiresAt.Equal(resAt.Add(10*time.Minute)) || r.Price == nil || *r.Price != 800 ||
		r.Currency != "EUR" || r.Code == "" || r.Policy.LateRefundPercent != 50 {
		t.Fatalf("Book = %+v (price %v)", r, r.Price)
	}
	key, err := db.ReservationKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := cloud.ReservationCodeID(key, r.Code); !ok || id != r.ID {
		t.Errorf("the code %q does not verify as booking %s", r.Code, r.ID)
	}
	checkCounts(t, db)
	// Held bookings are not in the garage's list.
	if v, rs, err := db.ReservationsDocument(ctx, "g1", resAt); err != nil || v != 0 || len(rs) != 0 {
		t.Errorf("ReservationsDocument after a hold = %d, %d bookings, %v; want version 0", v, len(rs), err)
	}

	pay1 := succeededPayment(t, db, r, 800)
	c, err := db.ConfirmReservation(ctx, r.ID, pay1)
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != cloud.ReservationConfirmed || c.Paid != 800 || c.PaymentID != pay1 || !c.Prepaid() {
		t.Errorf("ConfirmReservation = %+v", c)
	}
	if again, err := db.ConfirmReservation(ctx, r.ID, pay1); err != nil || again.Status != cloud.ReservationConfirmed {
		t.Errorf("ConfirmReservation again with the same payment = %v, %v; want it confirmed, unchanged", again.Status, err)
	}
	if _, err := db.ConfirmReservation(ctx, r.ID, "pay-2"); cloud.ErrorCode(err) != cloud.ECONFLICT {
		t.Errorf("ConfirmReservation with another payment = %v; want conflict", err)
	}
	v, rs, err := db.ReservationsDocument(ctx, "g1", resAt)
	if err != nil || v != 1 || len(rs) != 1 || rs[0].ID != r.ID {
		t.Errorf("ReservationsDocument after confirming = %d, %v, %v; want version 1 with the booking", v, rs, err)
	}

	// Cancelled 3 hours before the start, inside the 24 h: 50% back.
	x, ch, err := db.Cancel(ctx, r.ID, "user:alice", from.Add(-3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if x.Status != cloud.ReservationCancelled || x.RefundDue != 400 || !ch.Downlink || !ch.Freed {
		t.Errorf("Cancel = %s, refund %d, %+v; want cancelled, 400 due, downlink and freed", x.Status, x.RefundDue, ch)
	}
	checkCounts(t, db)
	if x2, _, err := db.Cancel(ctx, r.ID, "user:alice", from); err != nil || x2.RefundDue != 400 {
		t.Errorf("Cancel twice = %d, %v; want the same cancellation", x2.RefundDue, err)
	}
	if v, rs, _ := db.ReservationsDocument(ctx, "g1", resAt); v != 2 || len(rs) != 0 {
		t.Errorf("ReservationsDocument after cancelling = version %d, %d bookings; want 2, none", v, len(rs))
	}
	due, err := db.ReservationsToRefund(ctx, 10)
	if err != nil || len(due) != 1 || due[0].ID != r.ID {
		t.Fatalf("ReservationsToRefund = %v, %v", due, err)
	}
	if err := db.MarkReservationRefunded(ctx, r.ID, "re_1", from); err != nil {
		t.Fatal(err)
	}
	if due, _ := db.ReservationsToRefund(ctx, 10); len(due) != 0 {
		t.Errorf("ReservationsToRefund after refunding = %v; want none", due)
	}
	want := []string{"reservation.created:held", "reservation.confirmed:confirmed", "reservation.cancelled:cancelled"}
	if got := events(t, db, r.ID); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("history = %v; want %v", got, want)
	}

	// Idempotency: the same key gives the same booking; with another request, a conflict.
	req := bookReq("bob", "CD456", from, until)
	req.IdempotencyKey = "k-1"
	b1, _, err := db.Book(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	b2, replayed, err := db.Book(ctx, req)
	if err != nil || !replayed || b2.ID != b1.ID {
		t.Errorf("Book with the same key = %s, %v, %v; want %s replayed", b2.ID, replayed, err, b1.ID)
	}
	req.Plate = "EF789"
	if _, _, err := db.Book(ctx, req); cloud.ErrorCode(err) != cloud.ECONFLICT {
		t.Errorf("Book with a used key and another plate = %v; want conflict", err)
	}
	checkCounts(t, db)
}

func TestReservationFullAndHoldExpiry(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	bookingGarage(t, db, "g1", 1)
	from, until := resAt.Add(2*time.Hour), resAt.Add(4*time.Hour)
	a, _, err := db.Book(ctx, bookReq("alice", "AB123", from, until))
	if err != nil {
		t.Fatal(err)
	}
	// Overlapping by one slice is a conflict; touching is not.
	if _, _, err := db.Book(ctx, bookReq("bob", "CD456", until.Add(-15*time.Minute), until.Add(time.Hour))); cloud.ErrorCode(err) != cloud.ECONFLICT {
		t.Errorf("Book of an overlapping window = %v; want conflict", err)
	}
	if _, _, err := db.Book(ctx, bookReq("bob", "CD456", until, until.Add(time.Hour))); err != nil {
		t.Errorf("Book of the next window = %v", err)
	}
	// Availability shows the full slices.
	ss, err := db.Reservable(ctx, "g1", "A", from.Add(-30*time.Minute), until, resAt)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 10 || ss[0].Available != 1 || ss[1].Available != 1 || ss[2].Available != 0 || ss[9].Booked != 1 {
		t.Errorf("Reservable = %+v", ss)
	}

	// Before the hold runs out nothing changes; after, the space is free again.
	if chs, err := db.SweepReservations(ctx, a.HoldExpiresAt.Add(-time.Second)); err != nil || len(chs) != 0 {
		t.Fatalf("SweepReservations before the hold ends = %v, %v", chs, err)
	}
	chs, err := db.SweepReservations(ctx, a.HoldExpiresAt)
	if err != nil || len(chs) != 2 || !chs[0].Freed || chs[0].Downlink {
		t.Fatalf("SweepReservations = %+v, %v; want two freed changes (both holds ran out)", chs, err)
	}
	if got, _ := db.Reservation(ctx, a.ID); got.Status != cloud.ReservationExpired {
		t.Errorf("status after the hold = %s; want expired", got.Status)
	}
	checkCounts(t, db)
	c := bookReq("carol", "GH012", from, until)
	c.At = a.HoldExpiresAt
	if _, _, err := db.Book(ctx, c); err != nil {
		t.Errorf("Book after the hold expired = %v", err)
	}
	// Alice's payment arrives late: the space is gone, so confirming fails.
	if _, err := db.ConfirmReservation(ctx, a.ID, "late-pay"); cloud.ErrorCode(err) != cloud.ECONFLICT {
		t.Errorf("ConfirmReservation of an expired hold whose space was taken = %v; want conflict", err)
	}
	want := []string{"reservation.created:held", "reservation.expired:expired"}
	if got := events(t, db, a.ID); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("history = %v; want %v", got, want)
	}
	checkCounts(t, db)
}

func TestReservationModify(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	bookingGarage(t, db, "g1", 1)
	a, _, err := db.Book(ctx, bookReq("alice", "AB123", resAt.Add(2*time.Hour), resAt.Add(3*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ConfirmReservation(ctx, a.ID, ""); err != nil {
		t.Fatal(err)
	}
	b, _, err := db.Book(ctx, bookReq("bob", "CD456", resAt.Add(5*time.Hour), resAt.Add(6*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	// Extending into Bob's window fails and leaves Alice's as it was.
	if _, _, err := db.Modify(ctx, a.ID, a.From, resAt.Add(5*time.Hour+time.Minute), "", "user:alice", resAt); cloud.ErrorCode(err) != cloud.ECONFLICT {
		t.Errorf("Modify into a full window = %v; want conflict", err)
	}
	if got, _ := db.Reservation(ctx, a.ID); !got.Until.Equal(a.Until) {
		t.Errorf("after a refused change the window ends %v; want %v", got.Until, a.Until)
	}
	checkCounts(t, db)
	// Moving within its own slices and beyond into free ones works.
	m, ch, err := db.Modify(ctx, a.ID, a.From.Add(30*time.Minute), resAt.Add(5*time.Hour), "XY999", "user:alice", resAt)
	if err != nil {
		t.Fatal(err)
	}
	if !m.From.Equal(a.From.Add(30*time.Minute)) || m.Plate != "XY999" || m.Status != cloud.ReservationConfirmed || !ch.Downlink || !ch.Freed {
		t.Errorf("Modify = %+v, %+v", m, ch)
	}
	checkCounts(t, db)
	// The first 30 minutes were given back.
	if _, _, err := db.Book(ctx, bookReq("carol", "GH012", resAt.Add(2*time.Hour), resAt.Add(2*time.Hour+30*time.Minute))); err != nil {
		t.Errorf("Book of the freed slices = %v", err)
	}
	// A begun booking may only change its end.
	if _, _, err := db.Modify(ctx, b.ID, b.From.Add(15*time.Minute), b.Until, "", "user:bob", b.From.Add(time.Minute)); cloud.ErrorCode(err) != cloud.EINVALID {
		t.Errorf("Modify of a begun booking's start = %v; want invalid", err)
	}
	if _, _, err := db.Modify(ctx, b.ID, b.From, b.Until.Add(time.Hour), "", "user:bob", b.From.Add(time.Minute)); err != nil {
		t.Errorf("Modify of a begun booking's end = %v", err)
	}
	checkCounts(t, db)
	if got := events(t, db, a.ID); len(got) != 3 || got[2] != "reservation.modified:confirmed" {
		t.Errorf("history = %v", got)
	}
}

// TestReservationArrivals follows confirmed bookings through the garage's sessions:
// used ones check in and complete, unused ones become no-shows after the grace.
func TestReservationArrivals(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	bookingGarage(t, db, "g1", 2)
	from, until := resAt.Add(time.Hour), resAt.Add(3*time.Hour)
	used, _, err := db.Book(ctx, bookReq("alice", "AB123", from, until))
	if err != nil {
		t.Fatal(err)
	}
	unused, _, err := db.Book(ctx, bookReq("bob", "CD456", from, until))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []cloud.Reservation{used, unused} {
		if _, err := db.ConfirmReservation(ctx, r.ID, ""); err != nil {
			t.Fatal(err)
		}
	}
	// The garage reports Alice's car in (as the ingest projects session.started).
	if _, err := db.Pool().Exec(ctx, `INSERT INTO open_sessions (facility_id, session_id, zone_id, plate, reservation_id, parking_right, entered_at)
		VALUES ('g1', 's1', 'A', 'AB123', $1, 'reservation', $2)`, used.ID, from.Add(-5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SweepReservations(ctx, from); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Reservation(ctx, used.ID); got.Status != cloud.ReservationCheckedIn {
		t.Errorf("used booking = %s; want checked_in", got.Status)
	}
	if got, _ := db.Reservation(ctx, unused.ID); got.Status != cloud.ReservationConfirmed {
		t.Errorf("unused booking within grace = %s; want confirmed", got.Status)
	}
	chs, err := db.SweepReservations(ctx, from.Add(15*time.Minute))
	if err != nil || len(chs) != 1 || !chs[0].Downlink || !chs[0].Freed {
		t.Fatalf("SweepReservations after the grace = %+v, %v", chs, err)
	}
	if got, _ := db.Reservation(ctx, unused.ID); got.Status != cloud.ReservationNoShow {
		t.Errorf("unused booking after grace = %s; want no_show", got.Status)
	}
	checkCounts(t, db)
	// Its remaining slices are free: another booking fits from the slice under way.
	late := bookReq("carol", "GH012", from.Add(15*time.Minute), until)
	late.At = from.Add(15 * time.Minute)
	if _, _, err := db.Book(ctx, late); err != nil {
		t.Errorf("Book into a no-show's space = %v", err)
	}
	// Alice leaves early: the booking completes and gives back what is left.
	if _, err := db.Pool().Exec(ctx, `DELETE FROM open_sessions WHERE session_id = 's1'`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SweepReservations(ctx, from.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Reservation(ctx, used.ID); got.Status != cloud.ReservationCompleted {
		t.Errorf("used booking after the car left = %s; want completed", got.Status)
	}
	checkCounts(t, db)
	want := []string{"reservation.created:held", "reservation.confirmed:confirmed", "reservation.checked_in:checked_in", "reservation.completed:completed"}
	if got := events(t, db, used.ID); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("history = %v; want %v", got, want)
	}
	if got := events(t, db, unused.ID); got[len(got)-1] != "reservation.expired:no_show" {
		t.Errorf("no-show history = %v", got)
	}
}

func TestReservationWaitlist(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	bookingGarage(t, db, "g1", 1)
	from, until := resAt.Add(2*time.Hour), resAt.Add(4*time.Hour)
	w0 := cloud.WaitlistEntry{Facility: "g1", Zone: "A", UserID: "bob", Plate: "CD456", From: from, Until: until}
	if _, err := db.JoinWaitlist(ctx, w0, resAt); cloud.ErrorCode(err) != cloud.ECONFLICT {
		t.Errorf("JoinWaitlist for a free window = %v; want conflict (book it)", err)
	}
	a, _, err := db.Book(ctx, bookReq("alice", "AB123", from, until))
	if err != nil {
		t.Fatal(err)
	}
	w, err := db.JoinWaitlist(ctx, w0, resAt)
	if err != nil {
		t.Fatal(err)
	}
	later := w0
	later.UserID, later.Plate = "carol", "GH012"
	if _, err := db.JoinWaitlist(ctx, later, resAt); err != nil {
		t.Fatal(err)
	}
	// Nothing freed: nothing promoted.
	if ps, err := db.PromoteWaitlist(ctx, "g1", "A", resAt); err != nil || len(ps) != 0 {
		t.Fatalf("PromoteWaitlist with no space = %v, %v", ps, err)
	}
	if _, _, err := db.Cancel(ctx, a.ID, "user:alice", resAt); err != nil {
		t.Fatal(err)
	}
	ps, err := db.PromoteWaitlist(ctx, "g1", "A", resAt)
	if err != nil || len(ps) != 1 || ps[0].ID != w.ID || ps[0].ReservationID == "" {
		t.Fatalf("PromoteWaitlist = %+v, %v; want bob's entry, first in line", ps, err)
	}
	r, err := db.Reservation(ctx, ps[0].ReservationID)
	if err != nil {
		t.Fatal(err)
	}
	if r.UserID != "bob" || r.Status != cloud.ReservationHeld || !r.HoldExpiresAt.Equal(resAt.Add(30*time.Minute)) {
		t.Errorf("promoted booking = %+v; want bob's, held for the promotion hold", r)
	}
	ns, err := db.Notifications(ctx, "bob", 10)
	if err != nil || len(ns) != 1 || ns[0].Kind != "reservation.promoted" || ns[0].Payload["reservation_id"] != r.ID {
		t.Errorf("Notifications(bob) = %+v, %v", ns, err)
	}
	if ns, _ := db.Notifications(ctx, "carol", 10); len(ns) != 0 {
		t.Errorf("Notifications(carol) = %+v; want none (still waiting)", ns)
	}
	checkCounts(t, db)
}

// TestReservationOverlappingRace races bookings of random overlapping windows: the
// counts stay exact and within the held-back space, and no transaction deadlocks.
func TestReservationOverlappingRace(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	bookingGarage(t, db, "g1", 5)
	var wg sync.WaitGroup
	var ok, full atomic.Int64
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			from := resAt.Add(time.Hour + time.Duration(rng.IntN(16))*15*time.Minute)
			until := from.Add(time.Duration(1+rng.IntN(12)) * 15 * time.Minute)
			r, _, err := db.Book(ctx, bookReq(fmt.Sprint("u", i), "AB123", from, until))
			switch cloud.ErrorCode(err) {
			case "":
				ok.Add(1)
				if i%3 == 0 { // churn: cancel some, freeing space for others
					_, _, err = db.Cancel(ctx, r.ID, "test", resAt)
				}
			case cloud.ECONFLICT:
				full.Add(1)
				err = nil
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if ok.Load() == 0 || full.Load() == 0 {
		t.Errorf("%d booked, %d full: want both", ok.Load(), full.Load())
	}
	checkCounts(t, db)
}

// tariffRates is one rate, "r": EUR 4.00 per started hour.
func tariffRates(tb testing.TB) []tariff.Rate {
	tb.Helper()
	return []tariff.Rate{{ID: "r", Currency: "EUR", Timezone: "UTC", Increment: tariff.Duration(time.Hour),
		Tiers: []tariff.Tier{{PerIncrement: 400}}}}
}
