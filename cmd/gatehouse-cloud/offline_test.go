package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud/httpapi"
	"github.com/gatehouse-parking/gatehouse/cloud/pgtest"
	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/edge/config"
	"github.com/gatehouse-parking/gatehouse/edge/inmem"
	"github.com/gatehouse-parking/gatehouse/edge/plate"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/sim/acquirersim"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

const offlineToken = "offline-test-operator-token"

// TestOfflinePayments runs the real binaries with the garage's leaf link through a
// TCP proxy and its exit kiosk's card terminal on a simulated acquirer. Connected, the
// garage receives a booking (a reservations document) and an app payment for a car
// inside (a prepaid document, as the cloud publishes it). Then the link and the
// acquirer are cut: the booked car enters, a car pays at the kiosk by card (approved
// offline within the floor limit) and leaves, and the app payer leaves without
// stopping. Once both are back, the offline card payment is captured once, and the
// cloud holds every stay and every payment exactly once: the same events as the
// garage, with no duplicate, and the same paid amounts.
func TestOfflinePayments(t *testing.T) {
	if testing.Short() {
		t.Skip("offline payments: real processes")
	}
	start := time.Now()
	cloudBin, edgeBin := buildBinaries(t)
	ctx := context.Background()
	pg, err := pgtest.Start(ctx, pgtest.Options{NoFsync: true})
	if err != nil {
		t.Fatalf("PostgreSQL: %v", err)
	}
	t.Cleanup(func() { pg.Stop() })

	work := t.TempDir()
	leafAddr := "127.0.0.1:" + strconv.Itoa(freeTCPPort(t))
	cloud := startCloudArgs(t, cloudBin, work, "run", "--data-dir", work, "--database-url", pg.URL(),
		"--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:"+strconv.Itoa(freeTCPPort(t)), "--leaf-listen", leafAddr)
	proxy := startProxy(t, leafAddr)
	const id = "garage-o"
	creds := issueCredentials(t, cloudBin, work, id, proxy.Addr())

	acq := acquirersim.New()
	acqSrv := httptest.NewServer(acq)
	t.Cleanup(acqSrv.Close)

	e := &edgeProc{id: id, cfg: paymentsGarageConfig(t, id, acqSrv.URL), data: t.TempDir(), log: &syncBuffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gatehouse-edge %s log:\n%s", id, e.log)
		}
	})
	runEdge(t, edgeBin, e, "--hub-credentials", creds, "--hub-drain", "20s", "--travel", "50ms", "--pass", "50ms",
		"--operator-tokens", "ops:"+offlineToken)
	connected := func() bool { return metric(e.api, "gatehouse_hub_connected") == 1 }
	waitFor(t, 20*time.Second, "the garage's leaf connection", connected)

	// Connected: a booking, and a car inside that pays in the app.
	hub, err := connectHub(ctx, work, "", "", 10*time.Second, io.Discard)
	if err != nil {
		t.Fatalf("hub: %v", err)
	}
	defer hub.Shutdown()
	now := time.Now().UTC()
	resDoc := fmt.Sprintf(`{"reservations":[{"id":"R-OFF-1","plate":"RES-200-B","zone":"L1-general","from":%q,"until":%q,"grace_seconds":900,"prepaid":true}]}`,
		now.Add(-5*time.Minute).Format(time.RFC3339), now.Add(3*time.Hour).Format(time.RFC3339))
	resFile := filepath.Join(t.TempDir(), "reservations.json")
	if err := os.WriteFile(resFile, []byte(resDoc), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := cloudCommand(cloudBin, work, "publish", "--data-dir", work, id, "reservations", resFile); err != nil {
		t.Fatalf("publish reservations: %v\n%s", err, out)
	}
	waitApplied(t, e, map[string]uint64{"reservations": 1})

	drive(t, e, "entry-1", inmem.Vehicle{Plate: "APP-100-P"}, true)
	drive(t, e, "entry-1", inmem.Vehicle{Plate: "KSK-300-C"}, true)
	app := openSession(t, e, "APP-100-P")
	if app.ID == "" {
		t.Fatal("no open session of APP-100-P after its entry")
	}
	// What the app quotes: the stay priced by the garage's own tariff a minute from
	// now (a night band or the first hour, by the time of day), at least 3.00.
	fac, err := config.Load(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, due, err := edge.SessionFee(fac, &app, time.Now().Add(time.Minute), false)
	if err != nil {
		t.Fatal(err)
	}
	appAmount := max(due, 300)
	pre := httpapi.PrepaidDocument{Facility: id, Version: 1, Since: now.Add(-48 * time.Hour), Payments: []httpapi.PrepaidPayment{
		{PaymentID: "pay-app-1", SessionID: app.ID, Plate: app.Plate, Amount: appAmount, Currency: "EUR", Method: "app", Reference: "pi_app_1", PaidAt: time.Now().UTC()}}}
	publishPrepaid(t, hub, id, pre)
	waitFor(t, 20*time.Second, "the app payment at the garage", func() bool { return openSession(t, e, "APP-100-P").Paid == appAmount })
	// The garage may still be writing (device health, counts): wait until the cloud
	// holds all it has, whatever that number has come to.
	var eventsBefore int
	if !poll(30*time.Second, func() bool {
		eventsBefore = len(edgeEvents(t, e))
		return cloud.status(t, id).Events == int64(eventsBefore)
	}) {
		t.Fatalf("the cloud holds %+v before the cut; want %d events", cloud.status(t, id), eventsBefore)
	}
	t.Logf("%5.1fs connected: booking R-OFF-1 applied, APP-100-P paid %d in the app; cloud holds %d events",
		time.Since(start).Seconds(), appAmount, eventsBefore)

	// Cut off: no cloud, no acquirer.
	proxy.Cut()
	acq.SetOffline(true)
	waitFor(t, 20*time.Second, "the garage to see the cut", func() bool { return metric(e.api, "gatehouse_hub_connected") == 0 })
	cutAt := time.Now()
	atCut := cloud.status(t, id).Events // what crossed before the cut took hold

	in := drive(t, e, "entry-1", inmem.Vehicle{Plate: "RES-200-B"}, true)
	if in.Decision.Reason != "reservation" {
		t.Errorf("booked car entered as %q; want reservation", in.Decision.Reason)
	}
	kiosk := drive(t, e, "exit-1", inmem.Vehicle{Plate: "KSK-300-C", Pay: "card"}, true)
	if kiosk.Card == nil || !kiosk.Card.Approved || !kiosk.Card.Offline || kiosk.Card.Amount <= 0 {
		t.Fatalf("kiosk card payment offline: %+v; want approved offline", kiosk.Card)
	}
	out := drive(t, e, "exit-1", inmem.Vehicle{Plate: "APP-100-P"}, true)
	if out.Decision.Reason != "paid" {
		t.Errorf("app payer left as %q; want paid (without stopping)", out.Decision.Reason)
	}
	if c := acq.Counts(); c.Collected != 0 || c.Refused == 0 {
		t.Fatalf("acquirer while offline: %+v; want nothing collected and the terminal refused", c)
	}
	time.Sleep(2 * time.Second) // a capture round while the acquirer is still away
	if n := cloud.status(t, id).Events; n != atCut {
		t.Fatalf("the cloud got %d events during the cut; want still %d (the link is cut)", n, atCut)
	}
	t.Logf("%5.1fs cut off: RES-200-B entered on its booking, KSK-300-C paid %d by card offline and left, APP-100-P left without stopping",
		time.Since(start).Seconds(), kiosk.Card.Amount)

	// Reconnected. The prepaid document is sent again (a newer version listing the
	// same payment): nothing is recorded twice.
	acq.SetOffline(false)
	proxy.Restore()
	offline := time.Since(cutAt)
	waitFor(t, 30*time.Second, "the garage's leaf connection after the cut", connected)
	pre.Version = 2
	publishPrepaid(t, hub, id, pre)
	waitFor(t, 30*time.Second, "the offline card payment captured and the prepaid document v2 applied", func() bool {
		var captured, applied bool
		for _, ev := range edgeEvents(t, e) {
			captured = captured || ev.GetPaymentCaptured() != nil
			applied = applied || ev.GetPrepaidApplied().GetVersion() == 2
		}
		return captured && applied
	})
	e.cmd.Process.Signal(syscall.SIGTERM)
	if err := e.wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	want := e.outbox(t)
	var got statusJSON
	if !poll(30*time.Second, func() bool {
		got = cloud.status(t, id)
		return got.Events == int64(want.events) && got.AppliedSeq == want.maxSeq
	}) {
		t.Fatalf("the cloud holds %d events (applied seq %d); the garage's outbox %d up to seq %d", got.Events, got.AppliedSeq, want.events, want.maxSeq)
	}

	conn, err := pgx.Connect(ctx, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n, distinctIDs, distinctSeqs, maxSeq int64
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT event_id), count(DISTINCT seq), coalesce(max(seq), 0)
		FROM events WHERE facility_id = $1`, id).Scan(&n, &distinctIDs, &distinctSeqs, &maxSeq); err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	rows, err := conn.Query(ctx, `SELECT type, count(*) FROM events WHERE facility_id = $1 GROUP BY type`, id)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var typ string
		var c int
		if err := rows.Scan(&typ, &c); err != nil {
			t.Fatal(err)
		}
		types[typ] = c
	}
	rows.Close()
	type stay struct {
		rows        int
		paid        int64
		reservation string
	}
	stayOf := func(table, p string) stay {
		t.Helper()
		var s stay
		if err := conn.QueryRow(ctx, `SELECT count(*), coalesce(sum(paid), 0), coalesce(max(reservation_id), '')
			FROM `+table+` WHERE facility_id = $1 AND plate = $2`, id, plate.Normalize(p)).Scan(&s.rows, &s.paid, &s.reservation); err != nil {
			t.Fatal(err)
		}
		return s
	}
	booked, kioskStay, appStay := stayOf("open_sessions", "RES-200-B"), stayOf("sessions", "KSK-300-C"), stayOf("sessions", "APP-100-P")
	var paymentsTotal int64
	var paymentRefs []string
	prow, err := conn.Query(ctx, `SELECT payload FROM events WHERE facility_id = $1 AND type = 'payment.processed' ORDER BY seq`, id)
	if err != nil {
		t.Fatal(err)
	}
	for prow.Next() {
		var raw []byte
		if err := prow.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		env, err := decodeEnvelope(raw)
		if err != nil {
			t.Fatal(err)
		}
		p := env.GetPaymentProcessed()
		paymentsTotal += p.Amount
		paymentRefs = append(paymentRefs, fmt.Sprintf("%s %s %d offline=%v", p.Method, p.Reference, p.Amount, p.Offline))
	}
	prow.Close()
	acqCounts := acq.Counts()

	t.Logf("offline for %v; whole test %v", offline.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	t.Logf("garage outbox: %d events, max seq %d", want.events, want.maxSeq)
	t.Logf("cloud events: %d rows, %d distinct event ids, %d distinct seqs, max seq %d", n, distinctIDs, distinctSeqs, maxSeq)
	t.Logf("cloud event types: payment.processed %d, payment.captured %d, payment.capture_failed %d, prepaid.applied %d, session.started %d, session.ended %d",
		types["payment.processed"], types["payment.captured"], types["payment.capture_failed"], types["prepaid.applied"], types["session.started"], types["session.ended"])
	t.Logf("cloud stays: booked RES-200-B open %d (reservation %q); KSK-300-C closed %d, paid %d; APP-100-P closed %d, paid %d",
		booked.rows, booked.reservation, kioskStay.rows, kioskStay.paid, appStay.rows, appStay.paid)
	t.Logf("cloud payments: %v, total %d", paymentRefs, paymentsTotal)
	t.Logf("acquirer: %+v", acqCounts)

	if n != int64(want.events) || distinctIDs != n || distinctSeqs != n || maxSeq != n {
		t.Errorf("cloud events %d (%d ids, %d seqs, max seq %d); want exactly the garage's %d, each once", n, distinctIDs, distinctSeqs, maxSeq, want.events)
	}
	if booked.rows != 1 || booked.reservation != "R-OFF-1" {
		t.Errorf("booked stay in the cloud: %+v; want one open session on R-OFF-1", booked)
	}
	if kioskStay.rows != 1 || kioskStay.paid != kiosk.Card.Amount {
		t.Errorf("kiosk stay in the cloud: %+v; want one closed session paid %d", kioskStay, kiosk.Card.Amount)
	}
	if appStay.rows != 1 || appStay.paid != appAmount {
		t.Errorf("app stay in the cloud: %+v; want one closed session paid %d", appStay, appAmount)
	}
	if types["payment.processed"] != 2 || types["payment.captured"] != 1 || types["payment.capture_failed"] != 0 || types["prepaid.applied"] != 2 {
		t.Errorf("cloud event types %v; want 2 payment.processed, 1 payment.captured, 2 prepaid.applied", types)
	}
	if paymentsTotal != appAmount+kiosk.Card.Amount {
		t.Errorf("payments total %d; want %d", paymentsTotal, appAmount+kiosk.Card.Amount)
	}
	if acqCounts.Captured != 1 || acqCounts.Collected != kiosk.Card.Amount || acqCounts.Authorized != 0 {
		t.Errorf("acquirer %+v; want the offline payment captured once (%d) and nothing else", acqCounts, kiosk.Card.Amount)
	}
	cloud.stop(t)
}

// paymentsGarageConfig is the example garage as facility id, charging from the first
// minute, with a card terminal at exit-1's kiosk on the acquirer at acquirerURL and an
// offline floor limit of EUR 50.
func paymentsGarageConfig(t *testing.T, id, acquirerURL string) string {
	t.Helper()
	p := garageConfig(t, id)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, r := range []struct{ re, with string }{
		{`(?m)^(\s+)free_time: *15m`, "${1}free_time: 0s"},
		{`(?m)^(\s+)name: Marktstraat out\n`, "${1}name: Marktstraat out\n${1}card_terminal: x1-terminal\n"},
		{`(?m)^devices:\n`, "devices:\n  - {id: x1-terminal, kind: card_terminal, protocol: acquirer_http, address: \"" + acquirerURL + "\", options: {timeout: 2s}}\n"},
	} {
		next := regexp.MustCompile(r.re).ReplaceAllString(s, r.with)
		if next == s {
			t.Fatalf("example config: nothing matches %s", r.re)
		}
		s = next
	}
	s += "\npayments:\n  offline_floor_limit: 5000\n  capture_every: 1s\n"
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// drive takes one vehicle through a lane of the garage (POST /v1/sim/lanes/:id/vehicle)
// and checks whether it passed.
func drive(t *testing.T, e *edgeProc, lane string, v inmem.Vehicle, wantPassed bool) inmem.Driven {
	t.Helper()
	body, _ := json.Marshal(v)
	req, err := http.NewRequest(http.MethodPost, e.api+"/v1/sim/lanes/"+lane+"/vehicle", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+offlineToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out inmem.Driven
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &out) != nil || out.Decision == nil {
		t.Fatalf("drive %+v through %s: %s: %s", v, lane, resp.Status, b)
	}
	if out.Passed != wantPassed {
		t.Fatalf("drive %+v through %s: passed %v; want %v (decision %+v)", v, lane, out.Passed, wantPassed, out.Decision)
	}
	return out
}

// openSession returns the garage's open session of a plate (zero if none).
func openSession(t *testing.T, e *edgeProc, p string) edge.Session {
	t.Helper()
	resp, err := http.Get(e.api + "/v1/sessions")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Sessions []edge.Session `json:"sessions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	for _, s := range body.Sessions {
		if s.Plate == plate.Normalize(p) {
			return s
		}
	}
	return edge.Session{}
}

// publishPrepaid publishes a prepaid document to the hub as the cloud does
// (cloud/httpapi.publishPrepaid).
func publishPrepaid(t *testing.T, hub interface {
	PublishDown(ctx context.Context, facility, kind string, version uint64, body []byte) error
}, facility string, doc httpapi.PrepaidDocument) {
	t.Helper()
	body, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hub.PublishDown(ctx, facility, httpapi.PrepaidKind, doc.Version, body); err != nil {
		t.Fatalf("publish prepaid v%d: %v", doc.Version, err)
	}
}

// edgeEvents reads every event of the running garage through GET /v1/events.
func edgeEvents(t *testing.T, e *edgeProc) []*gh.Envelope {
	t.Helper()
	var out []*gh.Envelope
	after := uint64(0)
	for {
		resp, err := http.Get(fmt.Sprintf("%s/v1/events?after=%d", e.api, after))
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Events    []json.RawMessage `json:"events"`
			NextAfter uint64            `json:"next_after"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("GET /v1/events: %v", err)
		}
		for _, raw := range page.Events {
			env := new(gh.Envelope)
			if err := protojson.Unmarshal(raw, env); err != nil {
				t.Fatalf("event %s: %v", raw, err)
			}
			out = append(out, env)
		}
		if len(page.Events) == 0 || page.NextAfter == after {
			return out
		}
		after = page.NextAfter
	}
}

func decodeEnvelope(b []byte) (*gh.Envelope, error) {
	env := new(gh.Envelope)
	return env, proto.Unmarshal(b, env)
}
