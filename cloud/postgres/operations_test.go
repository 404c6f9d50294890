package postgres_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
)

// TestOperationsSessionPages ingests a stream and walks the open and closed sessions
// page by page: every session comes exactly once, in order, and the pages equal the
// projections read whole.
func TestOperationsSessionPages(t *testing.T) {
	const fac = "ops"
	ctx := context.Background()
	db := openDB(t)
	events := generate(fac, 7, 2500)
	if _, err := db.Ingest(ctx, events); err != nil {
		t.Fatal(err)
	}
	open, err := db.OpenSessions(ctx, fac)
	if err != nil {
		t.Fatal(err)
	}
	closed, err := db.ClosedSessions(ctx, fac, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) < 20 || len(closed) < 20 {
		t.Fatalf("stream has %d open and %d closed sessions; want enough to page", len(open), len(closed))
	}

	walk := func(page func(postgres.SessionFilter) ([]cloud.Session, error), key func(cloud.Session) time.Time, f postgres.SessionFilter) []cloud.Session {
		t.Helper()
		var all []cloud.Session
		for range 1000 {
			got, err := page(f)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, got...)
			if len(got) < f.Limit {
				return all
			}
			last := got[len(got)-1]
			f.After = postgres.SessionKey{At: key(last), Session: last.ID}
		}
		t.Fatal("pages never end")
		return nil
	}
	ids := func(ss []cloud.Session) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.ID)
		}
		return out
	}
	byPage := func(f postgres.SessionFilter) ([]cloud.Session, error) { return db.OpenSessionPage(ctx, fac, f) }
	gotOpen := walk(byPage, func(s cloud.Session) time.Time { return s.EnteredAt }, postgres.SessionFilter{Limit: 7})
	if !slices.Equal(ids(gotOpen), ids(open)) {
		t.Errorf("open pages = %v; want %v", ids(gotOpen), ids(open))
	}
	for _, s := range gotOpen {
		if s.Facility != fac || !s.ExitedAt.IsZero() || s.EnteredAt.IsZero() {
			t.Errorf("open session %+v: want facility %s, entered, not exited", s, fac)
		}
	}

	closedPage := func(f postgres.SessionFilter) ([]cloud.Session, error) { return db.ClosedSessionPage(ctx, fac, f) }
	exited := func(s cloud.Session) time.Time { return s.ExitedAt }
	gotClosed := walk(closedPage, exited, postgres.SessionFilter{Limit: 9})
	want := slices.Clone(closed)
	slices.SortFunc(want, func(a, b cloud.Session) int {
		if c := b.ExitedAt.Compare(a.ExitedAt); c != 0 {
			return c
		}
		return cmpString(b.ID, a.ID)
	})
	if !slices.Equal(ids(gotClosed), ids(want)) {
		t.Errorf("closed pages: %d sessions; want %d, in exit order", len(gotClosed), len(want))
	}
	for i, s := range gotClosed {
		if s.ExitedAt.IsZero() || s.ClosedSeq == 0 {
			t.Errorf("closed session %s: exited %v, closed seq %d", s.ID, s.ExitedAt, s.ClosedSeq)
		}
		if i > 0 && s.ExitedAt.After(gotClosed[i-1].ExitedAt) {
			t.Errorf("closed session %s out of order", s.ID)
		}
	}

	// A time window keeps exactly the exits in [from, to).
	from, to := want[len(want)*3/4].ExitedAt, want[len(want)/4].ExitedAt
	var inWindow []cloud.Session
	for _, s := range want {
		if !s.ExitedAt.Before(from) && s.ExitedAt.Before(to) {
			inWindow = append(inWindow, s)
		}
	}
	got := walk(closedPage, exited, postgres.SessionFilter{From: from, To: to, Limit: 5})
	if !slices.Equal(ids(got), ids(inWindow)) || len(got) == 0 {
		t.Errorf("closed in [%v, %v) = %d sessions; want %d", from, to, len(got), len(inWindow))
	}

	// A plate prefix keeps that plate's sessions.
	var plated cloud.Session
	for _, s := range open {
		if s.Plate != "" {
			plated = s
			break
		}
	}
	got, err = db.OpenSessionPage(ctx, fac, postgres.SessionFilter{Plate: plated.Plate[:4], Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(got, func(s cloud.Session) bool { return s.ID == plated.ID }) {
		t.Errorf("plate prefix %q: %v; want it to hold %s", plated.Plate[:4], ids(got), plated.ID)
	}
	for _, s := range got {
		if s.Plate[:4] != plated.Plate[:4] {
			t.Errorf("plate prefix %q returned plate %q", plated.Plate[:4], s.Plate)
		}
	}

	// Another facility sees none of them.
	if got, err := db.OpenSessionPage(ctx, "other", postgres.SessionFilter{}); err != nil || len(got) != 0 {
		t.Errorf("OpenSessionPage(other) = %d sessions, %v; want none", len(got), err)
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestOperationsEvents walks a facility's events both ways and checks the decoded
// payloads against the envelopes ingested.
func TestOperationsEvents(t *testing.T) {
	const fac = "evts"
	ctx := context.Background()
	db := openDB(t)
	events := generate(fac, 3, 400)
	if _, err := db.Ingest(ctx, events); err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for f := (postgres.EventFilter{Limit: 33}); ; {
		page, err := db.Events(ctx, fac, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			seqs = append(seqs, e.Seq)
			env := events[e.Seq-1]
			if e.Type != env.Type || e.Lane != env.LaneId || e.EventID == "" || !e.OccurredAt.Equal(env.OccurredAt.AsTime()) {
				t.Fatalf("event %d = %+v; want type %s lane %q at %v", e.Seq, e, env.Type, env.LaneId, env.OccurredAt.AsTime())
			}
			var payload map[string]any
			if err := json.Unmarshal(e.Payload, &payload); err != nil {
				t.Fatalf("event %d payload %s: %v", e.Seq, e.Payload, err)
			}
			if s := env.GetSessionStarted(); s != nil && (payload["session_id"] != s.SessionId || payload["zone_id"] != s.ZoneId) {
				t.Errorf("session.started %d payload = %s; want session_id %s zone_id %s", e.Seq, e.Payload, s.SessionId, s.ZoneId)
			}
		}
		if len(page) < f.Limit {
			break
		}
		f.Before = page[len(page)-1].Seq
	}
	for i, seq := range seqs {
		if want := uint64(len(events) - i); seq != want {
			t.Fatalf("newest first: item %d is seq %d; want %d (%d items, %d events)", i, seq, want, len(seqs), len(events))
		}
	}
	if len(seqs) != len(events) {
		t.Fatalf("newest first: %d events; want %d", len(seqs), len(events))
	}

	// Forward from a seq, one type only.
	page, err := db.Events(ctx, fac, postgres.EventFilter{Ascending: true, After: 100, Type: "session.started", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for _, env := range events[100:] {
		if env.Type == "session.started" {
			want = append(want, env.Seq)
		}
	}
	var got []uint64
	for _, e := range page {
		got = append(got, e.Seq)
	}
	if !slices.Equal(got, want) || len(got) == 0 {
		t.Errorf("session.started after 100 = %v; want %v", got, want)
	}
}

// TestOperationsDeviceHealth checks that a device with active alerts is listed with
// its lane and worst severity, and one whose alert cleared is not.
func TestOperationsDeviceHealth(t *testing.T) {
	const fac = "health"
	ctx := context.Background()
	db := openDB(t)
	events := generate(fac, 5, 3000)
	if _, err := db.Ingest(ctx, events); err != nil {
		t.Fatal(err)
	}
	alerts, err := db.ActiveAlerts(ctx, fac)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, a := range alerts {
		if a.Device != "" {
			want[a.Device] = a.Lane
		}
	}
	if len(want) == 0 {
		t.Fatal("the stream left no device alert active")
	}
	got, err := db.DeviceHealths(ctx, fac)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("DeviceHealths = %d devices; want %d", len(got), len(want))
	}
	for _, d := range got {
		if lane, ok := want[d.Device]; !ok || d.Lane != lane || d.Severity != "critical" || len(d.Codes) == 0 || d.Since.IsZero() {
			t.Errorf("device %+v; want lane %q (listed: %v), critical, with codes", d, lane, ok)
		}
	}
}
