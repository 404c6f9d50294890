package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/httpapi"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	"google.golang.org/protobuf/proto"
)

// resHub is the hub as the reservations see it: it keeps the latest document of each
// facility and kind, refuses older versions as the real hub does, and fails every
// publish while down.
type resHub struct {
	mu   sync.Mutex
	docs map[string]resDoc // facility/kind
	down bool
	n    int // publishes accepted
}

type resDoc struct {
	version uint64
	body    []byte
}

var _ httpapi.Hub = (*resHub)(nil)

func newResHub() *resHub { return &resHub{docs: map[string]resDoc{}} }

func (h *resHub) Command(ctx context.Context, facility, verb string, body []byte) ([]byte, error) {
	return nil, cloud.Errorf(cloud.EUNAVAILABLE, "offline")
}

func (h *resHub) PublishDown(ctx context.Context, facility, kind string, version uint64, body []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		return cloud.Errorf(cloud.EUNAVAILABLE, "hub down")
	}
	k := facility + "/" + kind
	if held := h.docs[k]; held.version > version {
		return cloud.Errorf(cloud.ECONFLICT, "a newer version of the document is already published")
	}
	h.docs[k] = resDoc{version, bytes.Clone(body)}
	h.n++
	return nil
}

func (h *resHub) Presence(string) (bool, time.Time) { return true, time.Time{} }

func (h *resHub) setDown(v bool) { h.mu.Lock(); h.down = v; h.mu.Unlock() }

// reservations returns the facility's "reservations" document the hub holds.
func (h *resHub) reservations(t *testing.T, facility string) *gh.CredentialsReplaced {
	t.Helper()
	h.mu.Lock()
	d, ok := h.docs[facility+"/reservations"]
	h.mu.Unlock()
	doc := new(gh.CredentialsReplaced)
	if !ok {
		return doc
	}
	if err := proto.Unmarshal(d.body, doc); err != nil {
		t.Fatalf("the reservations document does not decode: %v", err)
	}
	if doc.Version != d.version || doc.Kind != "reservations" {
		t.Fatalf("document kind %q version %d published as version %d", doc.Kind, doc.Version, d.version)
	}
	return doc
}

// resEnv is the API with a clock and a hub, on a garage "g1" with zone "A".
type resEnv struct {
	*env
	hub *resHub
	mu  sync.Mutex
	now time.Time
}

func (e *resEnv) clock() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }

func (e *resEnv) setClock(t time.Time) { e.mu.Lock(); e.now = t; e.mu.Unlock() }

var resStart = time.Date(2026, 7, 1, 6, 0, 0, 0, time.UTC)

func newResEnv(t *testing.T, heldBack int) *resEnv {
	t.Helper()
	e := &resEnv{hub: newResHub(), now: resStart}
	e.env = newEnv(t, httpapi.Config{Hub: e.hub, Now: e.clock, Limits: noLimits, Auth: clientsAuth{}})
	ctx := context.Background()
	if _, err := e.db.CreateFacility(ctx, cloud.Facility{ID: "g1", Name: "Garage", Timezone: "UTC", Currency: "EUR", Public: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.CreateZone(ctx, "g1", cloud.Zone{ID: "A", Kind: "general", Capacity: 50, HeldBack: heldBack}); err != nil {
		t.Fatal(err)
	}
	return e
}

// clientsAuth is fakeAuth with many drivers: the token "driver#N" is driver
// account "u-driver-N", for tests of many clients (each account may hold only
// cloud.MaxHeldPerAccount bookings).
type clientsAuth struct{ fakeAuth }

func (a clientsAuth) AuthenticateToken(ctx context.Context, tok string) (*cloud.Principal, error) {
	if n, ok := strings.CutPrefix(tok, "driver#"); ok {
		return &cloud.Principal{UserID: "u-driver-" + n, Name: "driver-" + n + "@example.com", Role: cloud.RoleDriver}, nil
	}
	return a.fakeAuth.AuthenticateToken(ctx, tok)
}

func window(from, until time.Time) map[string]any {
	return map[string]any{"facility": "g1", "zone": "A", "plate": "ab-123", "from": from, "to": until}
}

// TestReservationsRaceForTheLastSpaces races 200 clients through the API for the
// last 10 spaces of a window, 20 times: exactly 10 bookings succeed each time, the
// others get a 409 problem that says the window is full, and the counts are exact.
func TestReservationsRaceForTheLastSpaces(t *testing.T) {
	const clients, last, rounds, taken = 200, 10, 20, 5
	e := newResEnv(t, taken+last)
	start := time.Now()
	for round := range rounds {
		from := resStart.Add(time.Duration(round+1) * 24 * time.Hour)
		until := from.Add(2 * time.Hour)
		for k := range taken { // the window is nearly full already
			if r := e.do("POST", "/v1/reservations", window(from, until), bearer(fmt.Sprintf("driver#%d-taken-%d", round, k))...); r.Status != http.StatusCreated {
				t.Fatalf("round %d: booking %d: %d %s", round, taken, r.Status, r.Body)
			}
		}
		var wg sync.WaitGroup
		statuses := make([]int, clients)
		bodies := make([][]byte, clients)
		for i := range clients {
			wg.Go(func() {
				// Windows differ in how they overlap the full one: all need its slices.
				body := window(from.Add(-time.Duration(i%3)*15*time.Minute), until.Add(time.Duration(i%5)*15*time.Minute))
				body["plate"] = fmt.Sprintf("R%dC%d", round, i)
				r := e.do("POST", "/v1/reservations", body, bearer(fmt.Sprintf("driver#%d-%d", round, i))...)
				statuses[i], bodies[i] = r.Status, r.Body
			})
		}
		wg.Wait()
		won := 0
		for i, s := range statuses {
			switch s {
			case http.StatusCreated:
				won++
			case http.StatusConflict:
				if !strings.Contains(string(bodies[i]), `"type":"urn:gatehouse:problem:conflict"`) ||
					!strings.Contains(string(bodies[i]), "no space left to book in zone") {
					t.Fatalf("round %d: the 409 is not a clear problem: %s", round, bodies[i])
				}
			default:
				t.Fatalf("round %d: client %d got %d %s", round, i, s, bodies[i])
			}
		}
		if won != last {
			t.Fatalf("round %d: %d of %d clients booked the last %d spaces; want exactly %d", round, won, clients, last, last)
		}
		if err := e.db.CheckReservationCounts(context.Background()); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		ss, err := e.db.Reservable(context.Background(), "g1", "A", from, until, resStart)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ss {
			if s.Booked != taken+last || s.Available != 0 {
				t.Fatalf("round %d: slice %v booked %d, available %d; want %d, 0", round, s.Start, s.Booked, s.Available, taken+last)
			}
		}
	}
	t.Logf("%d rounds of %d clients in %v", rounds, clients, time.Since(start))
}

// TestReservationsFlow books, pays, changes and cancels through the API, checking
// what the garage is sent at each step.
func TestReservationsFlow(t *testing.T) {
	e := newResEnv(t, 3)
	ctx := context.Background()
	if err := e.db.SetReservationPolicy(ctx, "g1", cloud.ReservationPolicy{Hold: 10 * time.Minute, PromotionHold: 30 * time.Minute,
		ArrivalGrace: 20 * time.Minute, FullRefundBefore: 24 * time.Hour, LateRefundPercent: 25}); err != nil {
		t.Fatal(err)
	}
	tariffs := `{"tariffs":[{"id":"day","increment":"1h","tiers":[{"per_increment":250}]}],"zones":{"A":"day"}}`
	if r := e.do("PUT", "/v1/facilities/g1/tariffs", tariffs, bearer("facility_manager:g1")...); r.Status != http.StatusOK {
		t.Fatalf("PUT tariffs: %d %s", r.Status, r.Body)
	}
	from, until := resStart.Add(5*time.Hour), resStart.Add(8*time.Hour)

	r := e.do("POST", "/v1/reservations", window(from, until), append(bearer("driver"), "Idempotency-Key", "tap-1")...)
	if r.Status != http.StatusCreated {
		t.Fatalf("book: %d %s", r.Status, r.Body)
	}
	var res httpapi.Reservation
	r.JSON(t, &res)
	if res.Status != "held" || res.HoldExpiresAt == nil || !res.HoldExpiresAt.Equal(resStart.Add(10*time.Minute)) ||
		res.Plate != "AB123" || res.Price == nil || *res.Price != 750 || res.Currency != "EUR" || !strings.HasPrefix(res.Code, "GHR1-") {
		t.Fatalf("booked %+v", res)
	}
	again := e.do("POST", "/v1/reservations", window(from, until), append(bearer("driver"), "Idempotency-Key", "tap-1")...)
	var res2 httpapi.Reservation
	again.JSON(t, &res2)
	if again.Status != http.StatusCreated || res2.ID != res.ID || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retry with the same Idempotency-Key: %d, id %s, replayed %q; want the same booking", again.Status, res2.ID, again.Header.Get("Idempotent-Replayed"))
	}
	if n := len(e.hub.reservations(t, "g1").Reservations); n != 0 {
		t.Errorf("the garage was sent %d bookings while held; want none", n)
	}

	// A priced booking is not confirmed without its payment.
	if r := e.do("POST", "/v1/reservations/"+res.ID+"/confirm", `{}`, bearer("driver")...); r.Status != http.StatusConflict {
		t.Errorf("confirm without paying: %d %s; want 409", r.Status, r.Body)
	}
	var payID string
	if err := e.db.Pool().QueryRow(ctx, `INSERT INTO payments (user_id, facility_id, reservation_id, amount, currency, provider, idempotency_key, status)
		VALUES ('u-driver', 'g1', $1, 750, 'EUR', 'test', 'pay-1', 'succeeded') RETURNING id::text`, res.ID).Scan(&payID); err != nil {
		t.Fatal(err)
	}
	r = e.do("POST", "/v1/reservations/"+res.ID+"/confirm", map[string]any{"payment_id": payID}, bearer("driver")...)
	if r.Status != http.StatusOK {
		t.Fatalf("confirm: %d %s", r.Status, r.Body)
	}
	res = httpapi.Reservation{}
	r.JSON(t, &res)
	if res.Status != "confirmed" || res.Paid != 750 || !res.Prepaid || res.HoldExpiresAt != nil {
		t.Errorf("confirmed %+v", res)
	}
	doc := e.hub.reservations(t, "g1")
	if len(doc.Reservations) != 1 {
		t.Fatalf("the garage holds %d bookings; want 1", len(doc.Reservations))
	}
	got := doc.Reservations[0]
	if got.Id != res.ID || got.Plate != "AB123" || got.Code != res.Code || got.Zone != "A" || !got.From.AsTime().Equal(from) ||
		!got.Until.AsTime().Equal(until) || got.GraceSeconds != 1200 || !got.Prepaid {
		t.Errorf("the garage's booking = %v", got)
	}
	v1 := doc.Version

	// The QR code is a PNG of the code.
	qr := e.do("GET", "/v1/reservations/"+res.ID+"/qr.png", nil, bearer("driver")...)
	if qr.Status != http.StatusOK || qr.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("QR: %d %s", qr.Status, qr.Header.Get("Content-Type"))
	}
	if img, err := png.Decode(bytes.NewReader(qr.Body)); err != nil || img.Bounds().Dx() != 320 {
		t.Errorf("QR image: %v", err)
	}

	// Extending a paid booking would make the extra hour free at the garage: refused.
	r = e.do("PATCH", "/v1/reservations/"+res.ID, map[string]any{"to": until.Add(time.Hour)}, bearer("driver")...)
	if r.Status != http.StatusConflict || !strings.Contains(r.Problem(t).Detail, "cancel it and book the new window") {
		t.Fatalf("extending a paid booking: %d %s; want 409 saying to cancel and rebook", r.Status, r.Body)
	}
	// Shorten by an hour: the garage gets the new window in a newer version, prepaid.
	r = e.do("PATCH", "/v1/reservations/"+res.ID, map[string]any{"to": until.Add(-time.Hour)}, bearer("driver")...)
	if r.Status != http.StatusOK {
		t.Fatalf("patch: %d %s", r.Status, r.Body)
	}
	doc = e.hub.reservations(t, "g1")
	if doc.Version <= v1 || len(doc.Reservations) != 1 || !doc.Reservations[0].Until.AsTime().Equal(until.Add(-time.Hour)) ||
		!doc.Reservations[0].Prepaid {
		t.Errorf("after the change the garage holds version %d (was %d): %v", doc.Version, v1, doc.Reservations)
	}

	// Cancelled 2 hours before: within 24 h, so 25% of 7.50 is due back.
	e.setClock(from.Add(-2 * time.Hour))
	r = e.do("DELETE", "/v1/reservations/"+res.ID, nil, bearer("driver")...)
	if r.Status != http.StatusOK {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &res)
	if res.Status != "cancelled" || res.RefundDue != 187 {
		t.Errorf("cancelled: %s, refund_due %d; want cancelled, 187", res.Status, res.RefundDue)
	}
	if doc := e.hub.reservations(t, "g1"); len(doc.Reservations) != 0 {
		t.Errorf("after cancelling the garage still holds %v", doc.Reservations)
	}
	// The cloud's events of the booking, in order.
	hs, err := e.db.ReservationHistory(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	var evs []string
	for _, h := range hs {
		evs = append(evs, h.Event)
	}
	if want := "[reservation.created reservation.confirmed reservation.modified reservation.cancelled]"; fmt.Sprint(evs) != want {
		t.Errorf("events = %v; want %s", evs, want)
	}
	if err := e.db.CheckReservationCounts(ctx); err != nil {
		t.Error(err)
	}
}

// TestReservationsSweeper lets a hold run out and the hub fail: the sweeper frees
// the space, promotes the waitlisted driver and publishes once the hub is back.
func TestReservationsSweeper(t *testing.T) {
	e := newResEnv(t, 1)
	e.setClock(time.Now().Add(-11 * time.Minute)) // holds made now ran out a minute ago
	from, until := time.Now().Add(24*time.Hour).Truncate(time.Hour), time.Now().Add(26*time.Hour).Truncate(time.Hour)
	var held httpapi.Reservation
	r := e.do("POST", "/v1/reservations", window(from, until), bearer("driver")...)
	if r.Status != http.StatusCreated {
		t.Fatalf("book: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &held)
	r = e.do("POST", "/v1/reservations", window(from, until), bearer("operator:g1")...)
	if p := r.Problem(t); r.Status != http.StatusConflict || !strings.Contains(p.Detail, "no space left") {
		t.Fatalf("second booking: %d %+v; want 409", r.Status, p)
	}
	wl := window(from, until)
	wl["plate"] = "WAIT1"
	r = e.do("POST", "/v1/reservations/waitlist", wl, bearer("admin")...)
	if r.Status != http.StatusCreated {
		t.Fatalf("waitlist: %d %s", r.Status, r.Body)
	}
	// A confirmed booking elsewhere, while the hub is down: not published yet.
	e.hub.setDown(true)
	e.setClock(time.Now())
	other := window(from.Add(48*time.Hour), until.Add(48*time.Hour))
	var conf httpapi.Reservation
	r = e.do("POST", "/v1/reservations", other, bearer("driver")...)
	r.JSON(t, &conf)
	if r := e.do("POST", "/v1/reservations/"+conf.ID+"/confirm", `{"payment_id":""}`, bearer("driver")...); r.Status != http.StatusOK {
		t.Fatalf("confirm a free booking: %d %s", r.Status, r.Body)
	}
	if n := len(e.hub.reservations(t, "g1").Reservations); n != 0 {
		t.Fatalf("published while the hub was down")
	}
	e.hub.setDown(false)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		httpapi.RunReservationSweeper(ctx, e.db, e.hub, 20*time.Millisecond, testWarner{t})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := e.db.Reservation(context.Background(), held.ID)
		if err != nil {
			t.Fatal(err)
		}
		ws, _ := e.db.Waitlist(context.Background(), "u-admin", 10)
		doc := e.hub.reservations(t, "g1")
		if got.Status == cloud.ReservationExpired && len(ws) == 1 && ws[0].Status == "promoted" && len(doc.Reservations) == 1 {
			if doc.Reservations[0].Id != conf.ID {
				t.Errorf("published %v; want the confirmed booking %s", doc.Reservations, conf.ID)
			}
			promoted, err := e.db.Reservation(context.Background(), ws[0].ReservationID)
			if err != nil || promoted.Status != cloud.ReservationHeld || promoted.Plate != "WAIT1" {
				t.Errorf("promoted booking = %+v, %v", promoted, err)
			}
			ns, _ := e.db.Notifications(context.Background(), "u-admin", 10)
			if len(ns) != 1 || ns[0].Kind != "reservation.promoted" {
				t.Errorf("notifications = %+v; want one reservation.promoted", ns)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: hold %s, waitlist %+v, %d published", got.Status, ws, len(doc.Reservations))
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if err := e.db.CheckReservationCounts(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestReservationsValidation(t *testing.T) {
	e := newResEnv(t, 2)
	from := resStart.Add(time.Hour)
	tests := []struct {
		name   string
		body   any
		status int
	}{
		{"end before start", window(from, from.Add(-time.Hour)), http.StatusUnprocessableEntity},
		{"too long", window(from, from.Add(15*24*time.Hour)), http.StatusUnprocessableEntity},
		{"in the past", window(resStart.Add(-time.Hour), resStart.Add(time.Hour)), http.StatusUnprocessableEntity},
		{"bad plate", map[string]any{"facility": "g1", "zone": "A", "plate": "!", "from": from, "to": from.Add(time.Hour)}, http.StatusUnprocessableEntity},
		{"unknown zone", map[string]any{"facility": "g1", "zone": "Z", "plate": "AB1", "from": from, "to": from.Add(time.Hour)}, http.StatusNotFound},
		{"unknown facility", map[string]any{"facility": "nope", "zone": "A", "plate": "AB1", "from": from, "to": from.Add(time.Hour)}, http.StatusNotFound},
		{"unknown member", `{"facility":"g1","zone":"A","plate":"AB1","from":"2026-07-01T07:00:00Z","to":"2026-07-01T08:00:00Z","x":1}`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("POST", "/v1/reservations", tt.body, bearer("driver")...)
			if r.Status != tt.status {
				t.Errorf("POST /v1/reservations = %d %s; want %d", r.Status, r.Body, tt.status)
			}
			r.Problem(t)
		})
	}
	if r := e.do("POST", "/v1/reservations", window(from, from.Add(time.Hour))); r.Status != http.StatusUnauthorized {
		t.Errorf("anonymous booking: %d; want 401", r.Status)
	}
	r := e.do("GET", "/v1/facilities/g1/reservable?zone=A&from=2026-07-01T07:00:00Z&to=2026-07-01T08:00:00Z", nil)
	var av httpapi.Reservable
	r.JSON(t, &av)
	if r.Status != http.StatusOK || av.Available != 2 || len(av.Slices) != 4 || av.SliceMinutes != 15 {
		t.Errorf("anonymous reservable of a public facility: %d %+v", r.Status, av)
	}
}

// TestReservationsAuthorization checks with real accounts who sees and changes
// which booking: its driver; the staff of its facility; nobody else.
func TestReservationsAuthorization(t *testing.T) {
	e := newAuthEnv(t, httpapi.Config{})
	ctx := context.Background()
	for _, f := range []string{"g1", "g2"} {
		if _, err := e.db.CreateFacility(ctx, cloud.Facility{ID: f, Name: f, Timezone: "UTC", Currency: "EUR", Public: f == "g1"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.CreateZone(ctx, f, cloud.Zone{ID: "A", Kind: "general", Capacity: 10, HeldBack: 5}); err != nil {
			t.Fatal(err)
		}
	}
	alice, bob := loginAs(t, e, cloud.RoleDriver), loginAs(t, e, cloud.RoleDriver)
	opG1, opG2, mgrG1 := loginAs(t, e, cloud.RoleOperator, "g1"), loginAs(t, e, cloud.RoleOperator, "g2"), loginAs(t, e, cloud.RoleManager, "g1")
	from := time.Now().Add(48 * time.Hour).Truncate(time.Hour)
	r := e.do("POST", "/v1/reservations", window(from, from.Add(time.Hour)), bearer(alice)...)
	if r.Status != http.StatusCreated {
		t.Fatalf("book: %d %s", r.Status, r.Body)
	}
	var res httpapi.Reservation
	r.JSON(t, &res)
	// A driver cannot book at a private facility: it does not exist for them.
	priv := window(from, from.Add(time.Hour))
	priv["facility"] = "g2"
	if r := e.do("POST", "/v1/reservations", priv, bearer(alice)...); r.Status != http.StatusNotFound {
		t.Errorf("driver books at a private facility: %d; want 404", r.Status)
	}

	path := "/v1/reservations/" + res.ID
	for _, tt := range []struct {
		who, tok, method, path string
		status                 int
	}{
		{"owner", alice, "GET", path, 200},
		{"another driver", bob, "GET", path, 404},
		{"another driver", bob, "PATCH", path, 404},
		{"another driver", bob, "DELETE", path, 404},
		{"another driver", bob, "POST", path + "/confirm", 404},
		{"another driver", bob, "GET", path + "/qr.png", 404},
		{"staff of another facility", opG2, "GET", path, 404},
		{"staff of the facility", opG1, "GET", path, 200},
		{"driver", alice, "GET", "/v1/facilities/g1/reservations", 403},
		{"staff of another facility", opG2, "GET", "/v1/facilities/g1/reservations", 403},
		{"staff of the facility", opG1, "GET", "/v1/facilities/g1/reservations", 200},
		{"operator", opG1, "PUT", "/v1/facilities/g1/reservation-policy", 403},
		{"driver", alice, "PUT", "/v1/facilities/g1/tariffs", 403},
		{"anonymous", "", "GET", "/v1/facilities/g2/reservable?zone=A&from=2027-01-01T00:00:00Z&to=2027-01-01T01:00:00Z", 404},
		{"anonymous", "", "GET", "/v1/facilities/g2/quote?from=2027-01-01T00:00:00Z&to=2027-01-01T01:00:00Z", 404},
	} {
		var hdr []string
		if tt.tok != "" {
			hdr = bearer(tt.tok)
		}
		var body any
		switch tt.method {
		case "PATCH":
			body = map[string]any{"plate": "XX1"}
		case "POST":
			body = `{}`
		case "PUT":
			body = `{"hold_seconds":600,"promotion_hold_seconds":600,"arrival_grace_seconds":0,"full_refund_before_seconds":0,"late_refund_percent":0}`
		}
		if r := e.do(tt.method, tt.path, body, hdr...); r.Status != tt.status {
			t.Errorf("%s: %s %s = %d %s; want %d", tt.who, tt.method, tt.path, r.Status, r.Body, tt.status)
		}
	}
	var page httpapi.Page[httpapi.Reservation]
	e.do("GET", "/v1/me/reservations", nil, bearer(bob)...).JSON(t, &page)
	if len(page.Items) != 0 {
		t.Errorf("bob's bookings = %v; want none", page.Items)
	}
	e.do("GET", "/v1/me/reservations", nil, bearer(alice)...).JSON(t, &page)
	if len(page.Items) != 1 || page.Items[0].ID != res.ID {
		t.Errorf("alice's bookings = %v; want hers", page.Items)
	}
	// A manager of the facility confirms without payment (desk, demo) and cancels.
	if r := e.do("POST", path+"/confirm", `{}`, bearer(mgrG1)...); r.Status != http.StatusOK {
		t.Errorf("manager confirms: %d %s", r.Status, r.Body)
	}
	if r := e.do("DELETE", path, nil, bearer(opG1)...); r.Status != http.StatusOK {
		t.Errorf("operator of the facility cancels: %d %s", r.Status, r.Body)
	}
	if err := e.db.CheckReservationCounts(ctx); err != nil {
		t.Error(err)
	}
}
