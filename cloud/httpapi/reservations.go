package httpapi

import (
	"bytes"
	"context"
	"image/png"
	"slices"
	"strings"
	"time"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/qr"
	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	"github.com/gatehouse-parking/gatehouse/edge/plate"
	"github.com/gofiber/fiber/v2"
)

// Reservations (see docs/reservations.md). A driver books a window in a zone and gets
// a held booking while paying; the payment confirms it, and a confirmed booking
// reaches the garage in the facility's "reservations" downlink document, so that the
// car enters by plate or QR code with no network, into held-back space. A booking is
// visible to the driver who made it and to the staff of its facility; to anyone else
// it does not exist (404).

// ReservationRequest is the body of POST /v1/reservations.
type ReservationRequest struct {
	Facility string `json:"facility"`
	Zone     string `json:"zone"`
	// Plate as written; it is normalised as the garages record plates.
	Plate string    `json:"plate"`
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
}

func (b *ReservationRequest) validate() []FieldError {
	var fc fieldChecks
	fc.check(cloud.ValidFacilityID(b.Facility), "facility", "must be a facility id")
	fc.check(layoutIDRE.MatchString(b.Zone), "zone", "must be a zone id")
	fc.plate(&b.Plate, true)
	fc.window(b.From, b.To)
	return fc
}

func (fc *fieldChecks) plate(p *string, required bool) {
	if *p == "" && !required {
		return
	}
	if msg := plateProblem(*p); msg != "" {
		fc.check(false, "plate", msg)
		return
	}
	*p = plate.Normalize(*p)
}

func (fc *fieldChecks) window(from, to time.Time) {
	fc.check(!from.IsZero(), "from", "is required: an RFC 3339 time")
	fc.check(!to.IsZero(), "to", "is required: an RFC 3339 time")
	if !from.IsZero() && !to.IsZero() {
		fc.check(to.After(from), "to", "must be after from")
		fc.check(to.Sub(from) <= cloud.MaxReservationLength, "to", "the window may last at most 14 days")
	}
}

// ReservationPatch is the body of PATCH /v1/reservations/{id}: the members present
// change. A booking that has begun may only change its end.
type ReservationPatch struct {
	From  *time.Time `json:"from"`
	To    *time.Time `json:"to"`
	Plate *string    `json:"plate"`
}

func (b *ReservationPatch) validate() []FieldError {
	var fc fieldChecks
	fc.check(b.From != nil || b.To != nil || b.Plate != nil, "", "name at least one of from, to, plate")
	if b.Plate != nil {
		fc.plate(b.Plate, true)
	}
	return fc
}

// ConfirmRequest is the body of POST /v1/reservations/{id}/confirm.
type ConfirmRequest struct {
	// PaymentID is the succeeded payment of the booking's price. A free booking
	// needs none; a facility's managers may confirm without one.
	PaymentID string `json:"payment_id"`
}

func (b *ConfirmRequest) validate() []FieldError {
	var fc fieldChecks
	b.PaymentID = strings.TrimSpace(b.PaymentID)
	fc.check(len(b.PaymentID) <= 64, "payment_id", "must be at most 64 bytes")
	return fc
}

// Reservation is a booking as the API shows it.
type Reservation struct {
	ID       string    `json:"id"`
	Facility string    `json:"facility"`
	Zone     string    `json:"zone"`
	Plate    string    `json:"plate"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	// Status is held, confirmed, checked_in, completed, cancelled, expired or no_show.
	Status string `json:"status"`
	// HoldExpiresAt is when a held booking is released unless confirmed.
	HoldExpiresAt *time.Time `json:"hold_expires_at,omitempty"`
	// Code is the QR code's content: a signed token the garage admits like the plate.
	Code string `json:"code"`
	// QRCode is the path of the QR code as a PNG image.
	QRCode string `json:"qr_code"`
	// Price is the window's price under the zone's tariff, in minor units; null when
	// the facility has no tariff in the cloud (the garage charges at exit).
	Price    *int64 `json:"price"`
	Currency string `json:"currency,omitempty"`
	// Paid is what the confirming payment paid; Prepaid whether the garage treats the
	// window as paid.
	Paid      int64  `json:"paid"`
	PaymentID string `json:"payment_id,omitempty"`
	Prepaid   bool   `json:"prepaid"`
	// ArrivalGraceSeconds is how early before from and late after it the car may
	// arrive; not arriving by then makes the booking a no-show.
	ArrivalGraceSeconds int64 `json:"arrival_grace_seconds"`
	// Refund policy of the booking: a full refund until FullRefundBeforeSeconds before
	// from, then LateRefundPercent until from, then none.
	FullRefundBeforeSeconds int64 `json:"full_refund_before_seconds"`
	LateRefundPercent       int   `json:"late_refund_percent"`
	// RefundDue is what the cancellation gives back; RefundedAt when it was refunded.
	RefundDue   int64     `json:"refund_due"`
	RefundedAt  time.Time `json:"refunded_at,omitzero"`
	CancelledAt time.Time `json:"cancelled_at,omitzero"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func reservationOut(r cloud.Reservation) Reservation {
	out := Reservation{ID: r.ID, Facility: r.Facility, Zone: r.Zone, Plate: r.Plate, From: r.From.UTC(), To: r.Until.UTC(),
		Status: string(r.Status), Code: r.Code, QRCode: "/v1/reservations/" + r.ID + "/qr.png", Price: r.Price,
		Currency: r.Currency, Paid: r.Paid, PaymentID: r.PaymentID, Prepaid: r.Prepaid(),
		ArrivalGraceSeconds: int64(r.Policy.ArrivalGrace / time.Second), FullRefundBeforeSeconds: int64(r.Policy.FullRefundBefore / time.Second),
		LateRefundPercent: r.Policy.LateRefundPercent, RefundDue: r.RefundDue, RefundedAt: r.RefundedAt, CancelledAt: r.CancelledAt,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	if r.Status == cloud.ReservationHeld {
		t := r.HoldExpiresAt.UTC()
		out.HoldExpiresAt = &t
	}
	return out
}

// Reservable is the body of GET /v1/facilities/{facility}/reservable.
type Reservable struct {
	Facility string    `json:"facility"`
	Zone     string    `json:"zone"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	// Available is how many bookings of the whole window fit now: the least of
	// the slices'.
	Available    int               `json:"available"`
	SliceMinutes int               `json:"slice_minutes"`
	Slices       []ReservableSlice `json:"slices"`
}

// ReservableSlice is one 15-minute slice of a zone's bookable space.
type ReservableSlice struct {
	Start time.Time `json:"start"`
	// Bookable is the zone's held-back space, what bookings may take; Booked what
	// held and confirmed bookings take of it.
	Bookable int `json:"bookable"`
	Booked   int `json:"booked"`
	// Available is Bookable less Booked; for the slice under way no more than the
	// garage's real free space less the bookings not yet arrived.
	Available int `json:"available"`
}

// WaitlistRequest is the body of POST /v1/reservations/waitlist.
type WaitlistRequest struct {
	Facility string    `json:"facility"`
	Zone     string    `json:"zone"`
	Plate    string    `json:"plate"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
}

func (b *WaitlistRequest) validate() []FieldError {
	r := ReservationRequest(*b)
	f := r.validate()
	b.Plate = r.Plate
	return f
}

// WaitlistEntry is a driver waiting for a full window.
type WaitlistEntry struct {
	ID       string    `json:"id"`
	Facility string    `json:"facility"`
	Zone     string    `json:"zone"`
	Plate    string    `json:"plate"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	// Status is waiting, promoted (a held booking was made: reservation_id),
	// cancelled or expired.
	Status        string    `json:"status"`
	ReservationID string    `json:"reservation_id,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
}

func waitlistOut(w cloud.WaitlistEntry) WaitlistEntry {
	return WaitlistEntry{ID: w.ID, Facility: w.Facility, Zone: w.Zone, Plate: w.Plate, From: w.From.UTC(), To: w.Until.UTC(),
		Status: w.Status, ReservationID: w.ReservationID, CreatedAt: w.CreatedAt}
}

// ReservationPolicy is a facility's booking rules, for GET and PUT
// /v1/facilities/{facility}/reservation-policy.
type ReservationPolicy struct {
	// HoldSeconds is how long a new booking is held while the driver pays.
	HoldSeconds int64 `json:"hold_seconds"`
	// PromotionHoldSeconds is how long a booking made for a waitlisted driver is held.
	PromotionHoldSeconds int64 `json:"promotion_hold_seconds"`
	// ArrivalGraceSeconds is how early and late around the start the car may arrive.
	ArrivalGraceSeconds int64 `json:"arrival_grace_seconds"`
	// FullRefundBeforeSeconds: cancelling at least this long before the start
	// refunds everything; later, LateRefundPercent; after the start, nothing.
	FullRefundBeforeSeconds int64 `json:"full_refund_before_seconds"`
	LateRefundPercent       int   `json:"late_refund_percent"`
}

func (b *ReservationPolicy) validate() []FieldError {
	var fc fieldChecks
	fc.check(b.HoldSeconds >= 60 && b.HoldSeconds <= 86400, "hold_seconds", "must be between 60 and 86400")
	fc.check(b.PromotionHoldSeconds >= 60 && b.PromotionHoldSeconds <= 86400, "promotion_hold_seconds", "must be between 60 and 86400")
	fc.check(b.ArrivalGraceSeconds >= 0 && b.ArrivalGraceSeconds <= 86400, "arrival_grace_seconds", "must be between 0 and 86400")
	fc.check(b.FullRefundBeforeSeconds >= 0 && b.FullRefundBeforeSeconds <= 366*86400, "full_refund_before_seconds", "must be between 0 and 31622400")
	fc.check(b.LateRefundPercent >= 0 && b.LateRefundPercent <= 100, "late_refund_percent", "must be between 0 and 100")
	return fc
}

func policyOut(p cloud.ReservationPolicy) ReservationPolicy {
	return ReservationPolicy{HoldSeconds: int64(p.Hold / time.Second), PromotionHoldSeconds: int64(p.PromotionHold / time.Second),
		ArrivalGraceSeconds: int64(p.ArrivalGrace / time.Second), FullRefundBeforeSeconds: int64(p.FullRefundBefore / time.Second),
		LateRefundPercent: p.LateRefundPercent}
}

// bookingIdempotencyHeader makes a retried POST /v1/reservations return the booking
// the first request made (the header the payments routes honour too).
const bookingIdempotencyHeader = "Idempotency-Key"

var reservationListQuery = []param{
	{name: "limit", typ: "integer", description: "page size, 1 to 500 (default 50)"},
	{name: "cursor", typ: "string", description: "next_cursor of the previous page"},
	{name: "status", typ: "string", description: "only these statuses, comma-separated: held, confirmed, checked_in, completed, cancelled, expired, no_show"},
}

func (a *api) reservationRoutes() []*route {
	driver := access{roles: anyRole}
	return []*route{
		{method: fiber.MethodGet, path: "/facilities/:facility/reservable", tag: "reservations",
			summary: "Bookable space of a zone per 15-minute slice over a window. Public facilities: anyone",
			access:  access{public: true, roles: anyRole, scope: "availability:read", scoped: true},
			query: []param{{name: "zone", typ: "string", required: true, description: "the zone"},
				{name: "from", typ: "string", required: true, description: "window start, RFC 3339"},
				{name: "to", typ: "string", required: true, description: "window end, RFC 3339"}},
			response: Reservable{}, handler: a.reservable},
		{method: fiber.MethodPost, path: "/reservations", tag: "reservations",
			summary: "Book a window: the booking is held while the driver pays (409 when the window is full). Honours Idempotency-Key",
			access:  driver, request: ReservationRequest{}, response: Reservation{}, status: fiber.StatusCreated, handler: a.book},
		{method: fiber.MethodPost, path: "/reservations/waitlist", tag: "reservations",
			summary: "Wait for a full window: when space frees up, a held booking is made and the driver notified",
			access:  driver, request: WaitlistRequest{}, response: WaitlistEntry{}, status: fiber.StatusCreated, handler: a.joinWaitlist},
		{method: fiber.MethodDelete, path: "/reservations/waitlist/:id", tag: "reservations", summary: "Leave the waitlist",
			access: driver, status: fiber.StatusNoContent, handler: a.leaveWaitlist},
		{method: fiber.MethodGet, path: "/me/waitlist", tag: "reservations", summary: "The caller's waitlist entries",
			access: driver, response: Page[WaitlistEntry]{}, handler: a.myWaitlist},
		{method: fiber.MethodGet, path: "/reservations/:id", tag: "reservations", summary: "A booking (its driver, or its facility's staff)",
			access: driver, response: Reservation{}, handler: a.getReservation},
		{method: fiber.MethodGet, path: "/reservations/:id/qr.png", tag: "reservations", summary: "A booking's QR code as a PNG image",
			access: driver, handler: a.reservationQR},
		{method: fiber.MethodPost, path: "/reservations/:id/confirm", tag: "reservations",
			summary: "Confirm a held booking with its succeeded payment (free bookings need none; managers may confirm without)",
			access:  driver, request: ConfirmRequest{}, response: Reservation{}, handler: a.confirmReservation},
		{method: fiber.MethodPatch, path: "/reservations/:id", tag: "reservations",
			summary: "Change a booking's window or plate; capacity is checked again (409 when the new window is full)",
			access:  driver, request: ReservationPatch{}, response: Reservation{}, handler: a.patchReservation},
		{method: fiber.MethodDelete, path: "/reservations/:id", tag: "reservations",
			summary: "Cancel a booking; refund_due is what the facility's refund policy gives back",
			access:  driver, response: Reservation{}, handler: a.cancelReservation},
		{method: fiber.MethodGet, path: "/me/reservations", tag: "reservations", summary: "The caller's bookings, latest start first",
			access: driver, query: reservationListQuery, response: Page[Reservation]{}, handler: a.myReservations},
		{method: fiber.MethodGet, path: "/facilities/:facility/reservations", tag: "reservations",
			summary: "A facility's bookings, latest start first (staff)",
			access:  access{roles: staff, scoped: true},
			query: append(slices.Clone(reservationListQuery), param{name: "zone", typ: "string", description: "only this zone"},
				param{name: "from", typ: "string", description: "only bookings overlapping [from, to), RFC 3339"},
				param{name: "to", typ: "string", description: "see from"}),
			response: Page[Reservation]{}, handler: a.facilityReservations},
		{method: fiber.MethodGet, path: "/facilities/:facility/reservation-policy", tag: "reservations",
			summary:  "A facility's booking rules: hold, arrival grace, refund policy",
			access:   access{public: true, roles: anyRole, scope: "facilities:read", scoped: true},
			response: ReservationPolicy{}, handler: a.getReservationPolicy},
		{method: fiber.MethodPut, path: "/facilities/:facility/reservation-policy", tag: "reservations",
			summary: "Set a facility's booking rules (bookings already made keep theirs)",
			access:  access{roles: managers, scoped: true}, request: ReservationPolicy{}, response: ReservationPolicy{},
			handler: a.putReservationPolicy},
	}
}

// requiredTime reads a required RFC 3339 query parameter.
func requiredTime(c *fiber.Ctx, name string) (time.Time, error) {
	if c.Query(name) == "" {
		return time.Time{}, malformed("missing query parameter", FieldError{name, "is required: an RFC 3339 time"})
	}
	return timeQuery(c, name)
}

func (a *api) reservable(c *fiber.Ctx) error {
	ctx, cancel := opContext(c)
	defer cancel()
	f, err := a.readableFacilityScope(c, ctx, "availability:read")
	if err != nil {
		return err
	}
	zone := c.Query("zone")
	if !layoutIDRE.MatchString(zone) {
		return malformed("invalid query parameter", FieldError{"zone", "is required: a zone id"})
	}
	from, err := requiredTime(c, "from")
	if err != nil {
		return err
	}
	to, err := requiredTime(c, "to")
	if err != nil {
		return err
	}
	var fc fieldChecks
	fc.window(from, to)
	if len(fc) > 0 {
		return invalid("the window is invalid", fc...)
	}
	ss, err := a.db.Reservable(ctx, f.ID, zone, from, to, a.now())
	if err != nil {
		return err
	}
	out := Reservable{Facility: f.ID, Zone: zone, From: from.UTC(), To: to.UTC(), SliceMinutes: int(cloud.SliceLength / time.Minute),
		Slices: make([]ReservableSlice, 0, len(ss))}
	for i, s := range ss {
		out.Slices = append(out.Slices, ReservableSlice{Start: s.Start.UTC(), Bookable: s.Bookable, Booked: s.Booked, Available: s.Available})
		if i == 0 || s.Available < out.Available {
			out.Available = s.Available
		}
	}
	c.Set(fiber.HeaderCacheControl, "private, no-store")
	return c.JSON(out)
}

// readableFacilityScope is readableFacility with an API-key scope.
func (a *api) readableFacilityScope(c *fiber.Ctx, ctx context.Context, scope string) (cloud.Facility, error) {
	id, err := facilityParam(c)
	if err != nil {
		return cloud.Facility{}, err
	}
	f, err := a.db.Facility(ctx, id)
	if err == nil && !visibleTo(principal(c), id, f.Public, scope) {
		err = cloud.Errorf(cloud.ENOTFOUND, "no facility %q", id)
	}
	return f, err
}

func (a *api) book(c *fiber.Ctx) error {
	var b ReservationRequest
	if err := decode(c, &b); err != nil {
		return err
	}
	key := strings.TrimSpace(c.Get(bookingIdempotencyHeader))
	if len(key) > 255 {
		return malformed("the Idempotency-Key header is too long", FieldError{bookingIdempotencyHeader, "must be at most 255 bytes"})
	}
	ctx, cancel := opContext(c)
	defer cancel()
	p := principal(c)
	f, err := a.db.Facility(ctx, b.Facility)
	if err == nil && !visibleTo(p, f.ID, f.Public, "") {
		err = cloud.Errorf(cloud.ENOTFOUND, "no facility %q", b.Facility)
	}
	if err != nil {
		return fieldFor(err, "facility")
	}
	r, replayed, err := a.db.Book(ctx, postgres.BookRequest{Facility: b.Facility, Zone: b.Zone, UserID: p.UserID, Plate: b.Plate,
		From: b.From, Until: b.To, IdempotencyKey: key, Actor: p.Actor(), At: a.now()})
	if err != nil {
		return err
	}
	if replayed {
		c.Set("Idempotent-Replayed", "true")
	}
	c.Set(fiber.HeaderLocation, "/v1/reservations/"+r.ID)
	return c.Status(fiber.StatusCreated).JSON(reservationOut(r))
}

// reservationFor returns the :id booking when the caller may see it (its driver, an
// admin, the facility's staff), else 404; manage further requires, of staff, a
// manager's role.
func (a *api) reservationFor(c *fiber.Ctx, ctx context.Context) (cloud.Reservation, error) {
	id := c.Params("id")
	r, err := a.db.Reservation(ctx, id)
	if err != nil {
		return r, err
	}
	p := principal(c)
	if p.UserID != "" && p.UserID == r.UserID {
		return r, nil
	}
	if p.Role.Staff() && p.CanAccess(r.Facility) {
		return r, nil
	}
	return cloud.Reservation{}, cloud.Errorf(cloud.ENOTFOUND, "no reservation %q", id)
}

func (a *api) getReservation(c *fiber.Ctx) error {
	ctx, cancel := opContext(c)
	defer cancel()
	r, err := a.reservationFor(c, ctx)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "private, no-store")
	return c.JSON(reservationOut(r))
}

func (a *api) reservationQR(c *fiber.Ctx) error {
	ctx, cancel := opContext(c)
	defer cancel()
	r, err := a.reservationFor(c, ctx)
	if err != nil {
		return err
	}
	img, err := qrPNG(r.Code)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "image/png")
	c.Set(fiber.HeaderCacheControl, "private, max-age=300")
	return c.Send(img)
}

// qrPNG renders code as a QR code (error correction M) of 320×320 pixels.
func qrPNG(code string) ([]byte, error) {
	bc, err := qr.Encode(code, qr.M, qr.AlphaNumeric)
	if err != nil {
		return nil, err
	}
	if bc, err = barcode.Scale(bc, 320, 320); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = png.Encode(&buf, bc)
	return buf.Bytes(), err
}

func (a *api) confirmReservation(c *fiber.Ctx) error {
	var b ConfirmRequest
	if err := decode(c, &b); err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	r, err := a.reservationFor(c, ctx)
	if err != nil {
		return err
	}
	p := principal(c)
	manager := p.Role == cloud.RoleAdmin || p.Role == cloud.RoleManager && p.CanAccess(r.Facility)
	free := r.Price == nil || *r.Price == 0
	switch {
	case b.PaymentID != "":
		if err := a.db.CheckReservationPayment(ctx, r.ID, b.PaymentID); err != nil {
			return fieldFor(err, "payment_id")
		}
	case !free && !manager:
		return cloud.Errorf(cloud.ECONFLICT, "this booking costs %d %s: pay it, then confirm with the payment's id", *r.Price, r.Currency)
	}
	r, err = a.db.Confirm(ctx, r.ID, postgres.Confirmation{PaymentID: b.PaymentID, Actor: p.Actor(), At: a.now()})
	if err != nil {
		return err
	}
	a.reservationsChanged(c, postgres.Change{Facility: r.Facility, Zone: r.Zone, Downlink: true})
	return c.JSON(reservationOut(r))
}

func (a *api) patchReservation(c *fiber.Ctx) error {
	var b ReservationPatch
	if err := decode(c, &b); err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	r, err := a.reservationFor(c, ctx)
	if err != nil {
		return err
	}
	from, to, pl := r.From, r.Until, ""
	if b.From != nil {
		from = *b.From
	}
	if b.To != nil {
		to = *b.To
	}
	if b.Plate != nil {
		pl = *b.Plate
	}
	var fc fieldChecks
	fc.window(from, to)
	if len(fc) > 0 {
		return invalid("the window is invalid", fc...)
	}
	r, ch, err := a.db.Modify(ctx, r.ID, from, to, pl, principal(c).Actor(), a.now())
	if err != nil {
		return err
	}
	a.reservationsChanged(c, ch)
	return c.JSON(reservationOut(r))
}

func (a *api) cancelReservation(c *fiber.Ctx) error {
	ctx, cancel := opContext(c)
	defer cancel()
	r, err := a.reservationFor(c, ctx)
	if err != nil {
		return err
	}
	r, ch, err := a.db.Cancel(ctx, r.ID, principal(c).Actor(), a.now())
	if err != nil {
		return err
	}
	a.reservationsChanged(c, ch)
	return c.JSON(reservationOut(r))
}

// statusQuery reads ?status=a,b.
func statusQuery(c *fiber.Ctx) ([]cloud.ReservationStatus, error) {
	var out []cloud.ReservationStatus
	valid := []cloud.ReservationStatus{cloud.ReservationHeld, cloud.ReservationConfirmed, cloud.ReservationCheckedIn,
		cloud.ReservationCompleted, cloud.ReservationCancelled, cloud.ReservationExpired, cloud.ReservationNoShow}
	for _, s := range strings.Split(c.Query("status"), ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !slices.Contains(valid, cloud.ReservationStatus(s)) {
			return nil, malformed("invalid query parameter", FieldError{"status", "statuses are held, confirmed, checked_in, completed, cancelled, expired, no_show"})
		}
		out = append(out, cloud.ReservationStatus(s))
	}
	return out, nil
}

func (a *api) listReservations(c *fiber.Ctx, f postgres.ReservationFilter) error {
	limit, cur, err := pageParams(c)
	if err != nil {
		return err
	}
	if f.Statuses, err = statusQuery(c); err != nil {
		return err
	}
	if cur.After != "" {
		at, id, ok := strings.Cut(cur.After, "|")
		t, perr := time.Parse(time.RFC3339Nano, at)
		if !ok || perr != nil {
			return malformed("invalid query parameter", FieldError{"cursor", "not a cursor this API returned"})
		}
		f.AfterFrom, f.AfterID = t, id
	}
	f.Limit = limit + 1
	ctx, cancel := opContext(c)
	defer cancel()
	rs, err := a.db.Reservations(ctx, f)
	if err != nil {
		return err
	}
	items := make([]Reservation, len(rs))
	for i, r := range rs {
		items[i] = reservationOut(r)
	}
	c.Set(fiber.HeaderCacheControl, "private, no-store")
	return c.JSON(makePage(items, limit, func(r Reservation) string { return r.From.Format(time.RFC3339Nano) + "|" + r.ID }))
}

func (a *api) myReservations(c *fiber.Ctx) error {
	p := principal(c)
	if p.UserID == "" {
		return forbidden("only accounts have bookings")
	}
	return a.listReservations(c, postgres.ReservationFilter{UserID: p.UserID})
}

func (a *api) facilityReservations(c *fiber.Ctx) error {
	id, err := facilityParam(c)
	if err != nil {
		return err
	}
	f := postgres.ReservationFilter{Facility: id, Zone: c.Query("zone")}
	if f.From, err = timeQuery(c, "from"); err != nil {
		return err
	}
	if f.Until, err = timeQuery(c, "to"); err != nil {
		return err
	}
	return a.listReservations(c, f)
}

func (a *api) joinWaitlist(c *fiber.Ctx) error {
	var b WaitlistRequest
	if err := decode(c, &b); err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	p := principal(c)
	f, err := a.db.Facility(ctx, b.Facility)
	if err == nil && !visibleTo(p, f.ID, f.Public, "") {
		err = cloud.Errorf(cloud.ENOTFOUND, "no facility %q", b.Facility)
	}
	if err != nil {
		return fieldFor(err, "facility")
	}
	w, err := a.db.JoinWaitlist(ctx, cloud.WaitlistEntry{Facility: b.Facility, Zone: b.Zone, UserID: p.UserID, Plate: b.Plate,
		From: b.From, Until: b.To}, a.now())
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(waitlistOut(w))
}

func (a *api) leaveWaitlist(c *fiber.Ctx) error {
	ctx, cancel := opContext(c)
	defer cancel()
	if err := a.db.LeaveWaitlist(ctx, principal(c).UserID, c.Params("id"), a.now()); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *api) myWaitlist(c *fiber.Ctx) error {
	ctx, cancel := opContext(c)
	defer cancel()
	ws, err := a.db.Waitlist(ctx, principal(c).UserID, MaxLimit)
	if err != nil {
		return err
	}
	items := make([]WaitlistEntry, len(ws))
	for i, w := range ws {
		items[i] = waitlistOut(w)
	}
	return c.JSON(Page[WaitlistEntry]{Items: items})
}

func (a *api) getReservationPolicy(c *fiber.Ctx) error {
	ctx, cancel := opContext(c)
	defer cancel()
	f, err := a.readableFacilityScope(c, ctx, "facilities:read")
	if err != nil {
		return err
	}
	p, err := a.db.ReservationPolicy(ctx, f.ID)
	if err != nil {
		return err
	}
	return c.JSON(policyOut(p))
}

func (a *api) putReservationPolicy(c *fiber.Ctx) error {
	var b ReservationPolicy
	if err := decode(c, &b); err != nil {
		return err
	}
	id, err := facilityParam(c)
	if err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	p := cloud.ReservationPolicy{Hold: time.Duration(b.HoldSeconds) * time.Second, PromotionHold: time.Duration(b.PromotionHoldSeconds) * time.Second,
		ArrivalGrace: time.Duration(b.ArrivalGraceSeconds) * time.Second, FullRefundBefore: time.Duration(b.FullRefundBeforeSeconds) * time.Second,
		LateRefundPercent: b.LateRefundPercent}
	if err := a.db.SetReservationPolicy(ctx, id, p); err != nil {
		return err
	}
	a.audit(c, cloud.AuditEntry{Action: "reservation_policy.set", Target: "facility:" + id, Facility: id,
		Detail: map[string]any{"policy": b}})
	return c.JSON(policyOut(p))
}
