package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/payment"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
)

// pendingPayment records a payment of amount for booking r, not yet answered.
func pendingPayment(tb testing.TB, db *postgres.DB, r cloud.Reservation, amount int64) postgres.Payment {
	tb.Helper()
	p, _, err := db.CreatePayment(context.Background(), postgres.NewPayment{UserID: r.UserID, Facility: r.Facility, ReservationID: r.ID,
		Plate: r.Plate, Amount: amount, Currency: "EUR", Provider: "inproc", IdempotencyKey: fmt.Sprintf("pay-%s-%d", r.ID, amount)})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// succeededPayment records a payment of amount for booking r that succeeded, and
// returns its id.
func succeededPayment(tb testing.TB, db *postgres.DB, r cloud.Reservation, amount int64) string {
	tb.Helper()
	p := pendingPayment(tb, db, r, amount)
	if _, err := db.RecordPaymentResult(context.Background(), p.ID, payment.Result{Reference: "pi_" + p.ID, Status: payment.StatusSucceeded},
		time.Now()); err != nil {
		tb.Fatal(err)
	}
	return p.ID
}

func tariffGarage(tb testing.TB, db *postgres.DB, heldBack int) {
	tb.Helper()
	bookingGarage(tb, db, "g1", heldBack)
	if _, err := db.SetTariffs(context.Background(), "g1", postgres.Tariffs{DefaultRate: "r", Rates: tariffRates(tb)}, "test"); err != nil {
		tb.Fatal(err)
	}
}

// bookFrom and bookUntil are the window of aliceBooking's booking.
var bookFrom, bookUntil = resAt.Add(10 * time.Hour), resAt.Add(12 * time.Hour)

// aliceBooking opens a database with a tariffed garage holding heldBack spaces
// back, and books one of them for alice's AB123 from bookFrom to bookUntil
// (held, not yet paid).
func aliceBooking(tb testing.TB, heldBack int) (*postgres.DB, cloud.Reservation) {
	tb.Helper()
	db := openDB(tb)
	tariffGarage(tb, db, heldBack)
	r, _, err := db.Book(context.Background(), bookReq("alice", "AB123", bookFrom, bookUntil))
	if err != nil {
		tb.Fatal(err)
	}
	return db, r
}

// TestModifyPaidBooking: a paid booking may not become dearer than what was paid
// (the garage would let the extra time out free); it may shrink, and stays prepaid,
// in the garage's document too.
func TestModifyPaidBooking(t *testing.T) {
	ctx := context.Background()
	db, r := aliceBooking(t, 2)
	from, until := bookFrom, bookUntil
	if _, err := db.ConfirmReservation(ctx, r.ID, succeededPayment(t, db, r, 800)); err != nil {
		t.Fatal(err)
	}
	_, _, err := db.Modify(ctx, r.ID, from, until.Add(6*time.Hour), "", "user:alice", resAt)
	if cloud.ErrorCode(err) != cloud.ECONFLICT || !strings.Contains(cloud.ErrorMessage(err), "cancel it and book") {
		t.Fatalf("Modify of a paid booking to a dearer window = %v; want a conflict saying to cancel and rebook", err)
	}
	if got, _ := db.Reservation(ctx, r.ID); !got.Until.Equal(until) || *got.Price != 800 || !got.Prepaid() {
		t.Errorf("after the refused change: until %v, price %d, prepaid %v; want unchanged", got.Until, *got.Price, got.Prepaid())
	}
	m, _, err := db.Modify(ctx, r.ID, from, until.Add(-time.Hour), "", "user:alice", resAt)
	if err != nil {
		t.Fatal(err)
	}
	if *m.Price != 400 || m.Paid != 800 || !m.Prepaid() {
		t.Errorf("Modify shorter = price %d, paid %d, prepaid %v; want 400, 800, prepaid", *m.Price, m.Paid, m.Prepaid())
	}
	_, rs, err := db.ReservationsDocument(ctx, "g1", resAt)
	if err != nil || len(rs) != 1 || !rs[0].Prepaid() {
		t.Errorf("ReservationsDocument = %+v, %v; want the booking, prepaid", rs, err)
	}
	checkCounts(t, db)
}

func TestReservationPrepaid(t *testing.T) {
	p := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		name string
		r    cloud.Reservation
		want bool
	}{
		{"paid in full", cloud.Reservation{Price: p(800), Paid: 800, PaymentID: "x"}, true},
		{"paid less than the price", cloud.Reservation{Price: p(1200), Paid: 800, PaymentID: "x"}, false},
		{"free", cloud.Reservation{Price: p(0)}, true},
		{"unpaid", cloud.Reservation{Price: p(800)}, false},
		{"no tariff, paid", cloud.Reservation{PaymentID: "x"}, true},
		{"no tariff, unpaid", cloud.Reservation{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.Prepaid(); got != tc.want {
				t.Errorf("Prepaid() = %v; want %v", got, tc.want)
			}
		})
	}
}

// TestConfirmRecordsPaymentAmount: the booking records what the payment paid, not
// its price now.
func TestConfirmRecordsPaymentAmount(t *testing.T) {
	ctx := context.Background()
	db, r := aliceBooking(t, 2)
	c, err := db.ConfirmReservation(ctx, r.ID, succeededPayment(t, db, r, 500))
	if err != nil {
		t.Fatal(err)
	}
	if c.Paid != 500 || c.Prepaid() {
		t.Errorf("confirmed by a payment of 500 for a price of 800: paid %d, prepaid %v; want 500, not prepaid", c.Paid, c.Prepaid())
	}
	if _, err := db.ConfirmReservation(ctx, r.ID, "not-a-payment"); cloud.ErrorCode(err) != cloud.ECONFLICT {
		t.Errorf("ConfirmReservation with another payment = %v; want conflict", err)
	}
	r2, _, err := db.Book(ctx, bookReq("bob", "CD456", resAt.Add(10*time.Hour), resAt.Add(12*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ConfirmReservation(ctx, r2.ID, "pay-made-up"); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("ConfirmReservation with no such payment = %v; want not found", err)
	}
}

// TestHeldBookingPaymentInFlight: a held booking cannot change or be cancelled while
// its payment is in flight, and can once the payment has finished.
func TestHeldBookingPaymentInFlight(t *testing.T) {
	ctx := context.Background()
	db, r := aliceBooking(t, 2)
	from, until := bookFrom, bookUntil
	p := pendingPayment(t, db, r, 800)
	if _, _, err := db.Modify(ctx, r.ID, from, until.Add(4*time.Hour), "", "user:alice", resAt); cloud.ErrorCode(err) != cloud.ECONFLICT ||
		!strings.Contains(cloud.ErrorMessage(err), "payment for this booking is in progress") {
		t.Errorf("Modify while paying = %v; want conflict", err)
	}
	if _, _, err := db.Cancel(ctx, r.ID, "user:alice", resAt); cloud.ErrorCode(err) != cloud.ECONFLICT {
		t.Errorf("Cancel while paying = %v; want conflict", err)
	}
	if _, err := db.RecordPaymentResult(ctx, p.ID, payment.Result{Reference: "pi_x", Status: payment.StatusFailed, Failure: "declined"}, resAt); err != nil {
		t.Fatal(err)
	}
	if x, _, err := db.Cancel(ctx, r.ID, "user:alice", resAt); err != nil || x.Status != cloud.ReservationCancelled {
		t.Errorf("Cancel after the payment failed = %v, %v; want cancelled", x.Status, err)
	}
	checkCounts(t, db)
}

// TestUnconfirmablePaymentRefundQueued: a payment that succeeds after the hold ran
// out and the space was taken is queued for a full refund.
func TestUnconfirmablePaymentRefundQueued(t *testing.T) {
	ctx := context.Background()
	db, a := aliceBooking(t, 1)
	from, until := bookFrom, bookUntil
	pay := succeededPayment(t, db, a, 800)
	if _, err := db.SweepReservations(ctx, a.HoldExpiresAt.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	b := bookReq("bob", "CD456", from, until)
	b.At = a.HoldExpiresAt.Add(time.Minute)
	if _, _, err := db.Book(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ConfirmReservation(ctx, a.ID, pay); cloud.ErrorCode(err) != cloud.ECONFLICT {
		t.Fatalf("ConfirmReservation after the space was taken = %v; want conflict", err)
	}
	due, err := db.ReservationsToRefund(ctx, 10)
	if err != nil || len(due) != 1 || due[0].ID != a.ID || due[0].RefundDue != 800 || due[0].PaymentID != pay {
		t.Fatalf("ReservationsToRefund = %+v, %v; want alice's booking, 800 due from %s", due, err, pay)
	}
	if ps, err := db.UnconfirmedReservationPayments(ctx); err != nil || len(ps) != 0 {
		t.Errorf("UnconfirmedReservationPayments = %v, %v; want none once the refund is queued", ps, err)
	}
	checkCounts(t, db)
}

// TestPaymentLookupByUUID: payment ids are compared as UUIDs (the index), in any
// case; anything else is not found.
func TestPaymentLookupByUUID(t *testing.T) {
	ctx := context.Background()
	db, r := aliceBooking(t, 2)
	p := pendingPayment(t, db, r, 800)
	if got, err := db.Payment(ctx, strings.ToUpper(p.ID)); err != nil || got.ID != p.ID {
		t.Errorf("Payment(%s) = %v, %v; want %s", strings.ToUpper(p.ID), got.ID, err, p.ID)
	}
	if _, err := db.RecordPaymentResult(ctx, strings.ToUpper(p.ID), payment.Result{Reference: "pi_u", Status: payment.StatusProcessing}, resAt); err != nil {
		t.Errorf("RecordPaymentResult(upper case id) = %v", err)
	}
	for _, id := range []string{"", "nope", "1' OR '1'='1", p.ID + "x"} {
		if _, err := db.Payment(ctx, id); cloud.ErrorCode(err) != cloud.ENOTFOUND {
			t.Errorf("Payment(%q) = %v; want not found", id, err)
		}
	}
}

// TestAccountCaps: an account may hold at most cloud.MaxHeldPerAccount unpaid
// bookings and wait on at most cloud.MaxWaitingPerAccount waitlists.
func TestAccountCaps(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	bookingGarage(t, db, "g1", 20)
	for i := range cloud.MaxHeldPerAccount {
		from := resAt.Add(time.Duration(10+i) * time.Hour)
		if _, _, err := db.Book(ctx, bookReq("alice", "AB123", from, from.Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	from := resAt.Add(20 * time.Hour)
	_, _, err := db.Book(ctx, bookReq("alice", "AB123", from, from.Add(time.Hour)))
	if cloud.ErrorCode(err) != cloud.ECONFLICT || !strings.Contains(cloud.ErrorMessage(err), "on hold") {
		t.Errorf("Book beyond the cap = %v; want conflict", err)
	}
	if _, _, err := db.Book(ctx, bookReq("bob", "CD456", from, from.Add(time.Hour))); err != nil {
		t.Errorf("Book by another account = %v", err)
	}

	bookingGarage(t, db, "g2", 1)
	full := from.Add(24 * time.Hour)
	filler := bookReq("carol", "EF789", full, full.Add(24*time.Hour))
	filler.Facility = "g2"
	if _, _, err := db.Book(ctx, filler); err != nil {
		t.Fatal(err)
	}
	join := func(i int) error {
		start := full.Add(time.Duration(i) * time.Hour)
		_, err := db.JoinWaitlist(ctx, cloud.WaitlistEntry{Facility: "g2", Zone: "A", UserID: "dave", Plate: "GH1",
			From: start, Until: start.Add(time.Hour)}, resAt)
		return err
	}
	for i := range cloud.MaxWaitingPerAccount {
		if err := join(i); err != nil {
			t.Fatal(err)
		}
	}
	if err := join(cloud.MaxWaitingPerAccount); cloud.ErrorCode(err) != cloud.ECONFLICT || !strings.Contains(cloud.ErrorMessage(err), "waiting for") {
		t.Errorf("JoinWaitlist beyond the cap = %v; want conflict", err)
	}
}
