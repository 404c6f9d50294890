package cloud

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// ReservationStatus is where a booking is in its life:
//
//	held ──confirm──▶ confirmed ──car enters──▶ checked_in ──▶ completed
//	  │                  │  └──not used by start+grace──▶ no_show
//	  └─hold ends─▶ expired  └──cancel──▶ cancelled (refund per policy)
//
// Held, confirmed and checked-in bookings hold their capacity slices; the others have
// released them.
type ReservationStatus string

// Reservation statuses.
const (
	ReservationHeld      ReservationStatus = "held"
	ReservationConfirmed ReservationStatus = "confirmed"
	ReservationCheckedIn ReservationStatus = "checked_in"
	ReservationCompleted ReservationStatus = "completed"
	ReservationCancelled ReservationStatus = "cancelled"
	ReservationExpired   ReservationStatus = "expired"
	ReservationNoShow    ReservationStatus = "no_show"
)

// Active reports whether a booking in status s holds capacity.
func (s ReservationStatus) Active() bool {
	return s == ReservationHeld || s == ReservationConfirmed || s == ReservationCheckedIn
}

// Reservation events, recorded in the reservation's history in the transaction of
// the change.
const (
	EventReservationCreated   = "reservation.created"
	EventReservationConfirmed = "reservation.confirmed"
	EventReservationModified  = "reservation.modified"
	EventReservationCancelled = "reservation.cancelled"
	EventReservationExpired   = "reservation.expired"
	EventReservationCheckedIn = "reservation.checked_in"
	EventReservationCompleted = "reservation.completed"
	// EventReservationRefundQueued: a payment that could not confirm the booking
	// (its hold ran out and the space was gone) is due back in full.
	EventReservationRefundQueued = "reservation.refund_queued"
)

// Reservation is a booking of a space in a zone of a facility for a window of time.
type Reservation struct {
	ID       string
	Facility string
	Zone     string
	UserID   string
	// Plate is normalised (A-Z, 0-9): the garage admits the car by it.
	Plate  string
	From   time.Time
	Until  time.Time
	Status ReservationStatus
	// HoldExpiresAt is when a held booking is released unless confirmed.
	HoldExpiresAt time.Time
	// Code is the signed token of the QR code; the garage admits it like the plate.
	Code string
	// Price is what the window costs under the zone's tariff, in minor units of
	// Currency; nil when the facility has no tariff in the cloud.
	Price    *int64
	Currency string
	// PaymentID is the payment that confirmed the booking; "" for none.
	PaymentID string
	// Paid is what that payment paid.
	Paid int64
	// RefundDue is what a cancellation gives back under the policy; RefundedAt is
	// when the payments code refunded it (zero: not yet).
	RefundDue       int64
	RefundedAt      time.Time
	RefundReference string
	// Policy is the facility's policy as it was at booking.
	Policy      ReservationPolicy
	CancelledAt time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Prepaid reports whether the booked window is paid for, so that the garage charges
// only time beyond Until: free under the tariff, or paid through a payment of at
// least its price. A window whose price rose above what was paid is not prepaid, so
// the garage charges it in full rather than give the extra time away; a booking
// without a price in the cloud is prepaid when a payment confirmed it.
func (r *Reservation) Prepaid() bool {
	if r.Price == nil {
		return r.PaymentID != ""
	}
	return *r.Price == 0 || r.PaymentID != "" && r.Paid >= *r.Price
}

// ReservationPolicy is a facility's rules for bookings.
type ReservationPolicy struct {
	// Hold is how long a new booking is held while the driver pays.
	Hold time.Duration
	// PromotionHold is how long a booking made for a waitlisted driver is held.
	PromotionHold time.Duration
	// ArrivalGrace is how early before its start and how late after it the car may
	// arrive; a booking not used by start + grace is a no-show.
	ArrivalGrace time.Duration
	// FullRefundBefore: a cancellation at least this long before the start refunds
	// all that was paid; a later one before the start refunds LateRefundPercent of
	// it; one after the start nothing.
	FullRefundBefore  time.Duration
	LateRefundPercent int
}

// DefaultReservationPolicy is the policy of a facility that has not set one.
var DefaultReservationPolicy = ReservationPolicy{Hold: 10 * time.Minute, PromotionHold: 30 * time.Minute,
	ArrivalGrace: 15 * time.Minute, FullRefundBefore: 24 * time.Hour, LateRefundPercent: 0}

// Refund returns what a cancellation at at gives back of paid for a booking that
// starts at start: all of it until FullRefundBefore before the start, then
// LateRefundPercent of it (rounded down to the minor unit) until the start, then
// nothing.
func (p ReservationPolicy) Refund(paid int64, start, at time.Time) int64 {
	switch {
	case paid <= 0:
		return 0
	case !at.After(start.Add(-p.FullRefundBefore)):
		return paid
	case at.Before(start):
		pct := int64(min(max(p.LateRefundPercent, 0), 100))
		return paid/100*pct + paid%100*pct/100 // floor(paid*pct/100) without overflow
	}
	return 0
}

// Bounds of bookings.
const (
	// SliceLength is the unit capacity is counted in.
	SliceLength = 15 * time.Minute
	// MaxReservationLength is the longest window one booking may have.
	MaxReservationLength = 14 * 24 * time.Hour
	// MaxBookingAhead is how far ahead a window may start.
	MaxBookingAhead = 366 * 24 * time.Hour
	// MaxHeldPerAccount is how many unpaid held bookings one account may have at a
	// time: holds take space from everyone else without paying for it.
	MaxHeldPerAccount = 3
	// MaxWaitingPerAccount is how many waiting waitlist entries one account may
	// have at a time.
	MaxWaitingPerAccount = 5
)

// Slices returns the first slice a window [from, until) touches and the end of its
// last slice: from rounded down and until rounded up to SliceLength.
func Slices(from, until time.Time) (first, end time.Time) {
	first = from.UTC().Truncate(SliceLength)
	end = until.UTC().Truncate(SliceLength)
	if end.Before(until) {
		end = end.Add(SliceLength)
	}
	return first, end
}

// SliceAvailability is one slice of a zone's bookable space.
type SliceAvailability struct {
	Start time.Time
	// Bookable is the zone's held-back space: what bookings may take.
	Bookable int
	// Booked is what held, confirmed and checked-in bookings take of it.
	Booked int
	// Available is what a new booking may take: Bookable less Booked, and for the
	// slice under way also no more than the garage's real free space less the
	// bookings not yet arrived.
	Available int
}

// WaitlistEntry is a driver waiting for a window that was full.
type WaitlistEntry struct {
	ID       string
	Facility string
	Zone     string
	UserID   string
	Plate    string
	From     time.Time
	Until    time.Time
	// Status is waiting, promoted, cancelled or expired.
	Status string
	// ReservationID is the held booking made when it was promoted.
	ReservationID string
	CreatedAt     time.Time
}

// Notification is a message queued for a driver (the notifications outbox).
type Notification struct {
	ID        int64
	UserID    string
	Kind      string
	Payload   map[string]any
	CreatedAt time.Time
	SentAt    time.Time
}

// reservationCodePrefix versions the code format.
const reservationCodePrefix = "GHR1"

// ReservationCode returns the signed token of a booking's QR code:
// "GHR1-<id, 32 hex digits>-<the first 8 bytes of HMAC-SHA256 over the two, in hex>",
// upper case. Its 54 characters are all in the QR alphanumeric set, which keeps the
// code small, and the 64-bit signature makes codes unguessable: a garage admits a
// code only if it is in its downlink list, and the cloud accepts only signed ones.
func ReservationCode(key []byte, id string) string {
	hexID := strings.ToUpper(strings.ReplaceAll(id, "-", ""))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(reservationCodePrefix + "-" + hexID))
	sum := m.Sum(nil)
	return reservationCodePrefix + "-" + hexID + "-" + strings.ToUpper(hex.EncodeToString(sum[:8]))
}

// ReservationCodeID checks code's signature with key and returns the booking id it
// names (with dashes, as a UUID); ok is false for a code that is not one of ours.
func ReservationCodeID(key []byte, code string) (id string, ok bool) {
	parts := strings.Split(code, "-")
	if len(parts) != 3 || parts[0] != reservationCodePrefix || len(parts[1]) != 32 {
		return "", false
	}
	if _, err := hex.DecodeString(parts[1]); err != nil {
		return "", false
	}
	want := ReservationCode(key, parts[1])
	if !hmac.Equal([]byte(want), []byte(code)) {
		return "", false
	}
	h := strings.ToLower(parts[1])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], true
}
