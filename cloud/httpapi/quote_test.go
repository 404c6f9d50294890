package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/httpapi"
	"github.com/gatehouse-parking/gatehouse/edge/config"
	"github.com/gatehouse-parking/gatehouse/edge/tariff"
)

// TestQuoteMatchesGarage uploads the demo garage's config file to the cloud as is and
// prices the same stays with the cloud's quote endpoint and with the garage's own
// tariffs as its config loader builds them: the cents must agree, for every zone's
// rate, across tiers, night bands, daily caps, convenience time and a DST change.
func TestQuoteMatchesGarage(t *testing.T) {
	const file = "../../deploy/garage-example.yaml"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	garage, err := config.Parse(file, data)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, httpapi.Config{Limits: noLimits})
	ctx := context.Background()
	// The cloud's facility keeps its own defaults (UTC): the file's must win, as at
	// the garage.
	if _, err := e.db.CreateFacility(ctx, cloud.Facility{ID: garage.ID, Name: garage.Name, Timezone: "UTC", Currency: "EUR", Public: true}); err != nil {
		t.Fatal(err)
	}
	r := e.do("PUT", "/v1/facilities/"+garage.ID+"/tariffs", data, "Content-Type", "application/yaml", "Authorization", "Bearer facility_manager:"+garage.ID)
	if r.Status != http.StatusOK {
		t.Fatalf("PUT the garage's file: %d %s", r.Status, r.Body)
	}

	loc, _ := time.LoadLocation("Europe/Amsterdam")
	day := func(m time.Month, d, h, min int) time.Time { return time.Date(2026, m, d, h, min, 0, 0, loc) }
	stays := []struct{ entry, exit time.Time }{
		{day(5, 4, 9, 0), day(5, 4, 9, 10)},     // convenience time
		{day(5, 4, 9, 0), day(5, 4, 9, 16)},     // just over it
		{day(5, 4, 9, 0), day(5, 4, 12, 0)},     // first tier
		{day(5, 4, 9, 0), day(5, 4, 18, 30)},    // three tiers, daily max
		{day(5, 4, 20, 40), day(5, 5, 8, 15)},   // overnight band
		{day(5, 4, 7, 5), day(5, 7, 16, 45)},    // several days
		{day(3, 28, 20, 0), day(3, 29, 10, 0)},  // over the spring DST change
		{day(10, 24, 21, 0), day(10, 25, 9, 0)}, // over the autumn DST change
	}
	checked := 0
	for _, z := range garage.Zones {
		var rate *tariff.Rate
		for i := range garage.Tariffs {
			if garage.Tariffs[i].ID == z.Rate {
				rate = &garage.Tariffs[i]
			}
		}
		if rate == nil {
			continue
		}
		for _, s := range stays {
			want, err := rate.Quote(tariff.Input{Entry: s.entry, Exit: s.exit})
			if err != nil {
				t.Fatal(err)
			}
			q := url.Values{"zone": {z.ID}, "from": {s.entry.Format(time.RFC3339)}, "to": {s.exit.Format(time.RFC3339)}}
			r := e.do("GET", "/v1/facilities/"+garage.ID+"/quote?"+q.Encode(), nil) // anonymous: a public facility
			var got httpapi.Quote
			r.JSON(t, &got)
			if r.Status != http.StatusOK || got.Total != want.Total || got.Currency != want.Currency || got.Rate != rate.ID ||
				fmt.Sprint(got.Lines) != fmt.Sprint(want.Lines) {
				t.Errorf("zone %s, %v to %v: cloud %d %d %s %v; garage %d %s %v", z.ID, s.entry, s.exit, r.Status, got.Total,
					got.Currency, got.Lines, want.Total, want.Currency, want.Lines)
			}
			checked++
		}
	}
	if checked < 2*len(stays) {
		t.Fatalf("compared %d quotes; want the stays under at least two rates", checked)
	}

	// POST prices what the exit knows too: a lost ticket and a validation.
	entry, exit := day(5, 4, 9, 0), day(5, 4, 13, 0)
	in := tariff.Input{Entry: entry, Exit: exit, LostTicket: true, Validations: []tariff.Validation{{Kind: tariff.ValidationFreeMinutes, Value: 60}}}
	want, err := garage.Tariffs[0].Quote(in)
	if err != nil {
		t.Fatal(err)
	}
	r = e.do("POST", "/v1/facilities/"+garage.ID+"/quote", map[string]any{"from": entry, "to": exit, "rate": garage.Tariffs[0].ID,
		"lost_ticket": true, "validations": in.Validations})
	var got httpapi.Quote
	r.JSON(t, &got)
	if r.Status != http.StatusOK || got.Total != want.Total || got.Due != want.Due {
		t.Errorf("POST quote: %d total %d due %d; garage %d %d", r.Status, got.Total, got.Due, want.Total, want.Due)
	}
	// A stay the engine cannot price is a 422, and a facility without tariffs a 404.
	if r := e.do("GET", "/v1/facilities/"+garage.ID+"/quote?from=2026-05-04T10:00:00Z&to=2026-05-04T09:00:00Z&zone=L1-general", nil); r.Status != http.StatusUnprocessableEntity {
		t.Errorf("quote of an exit before the entry: %d %s; want 422", r.Status, r.Body)
	}
	if _, err := e.db.CreateFacility(ctx, cloud.Facility{ID: "bare", Name: "bare", Timezone: "UTC", Currency: "EUR", Public: true}); err != nil {
		t.Fatal(err)
	}
	if r := e.do("GET", "/v1/facilities/bare/quote?from=2026-05-04T09:00:00Z&to=2026-05-04T10:00:00Z", nil); r.Status != http.StatusNotFound {
		t.Errorf("quote at a facility without tariffs: %d; want 404", r.Status)
	}
	// A rate the engine refuses is refused on upload, naming the problem.
	bad := `{"tariffs":[{"id":"x","increment":"7m","tiers":[{"per_increment":1}]}]}`
	if r := e.do("PUT", "/v1/facilities/bare/tariffs", bad, bearer("facility_manager:bare")...); r.Status != http.StatusUnprocessableEntity {
		t.Errorf("PUT a rate with a 7m increment: %d %s; want 422", r.Status, r.Body)
	}
}
