package postgres_test

import (
	"context"
	"slices"
	"testing"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
)

// TestFacilityLayout creates a facility's layout and checks that every change bumps
// the layout version once, that refused changes (duplicates, unknown references,
// deleting what is in use) bump nothing, and that Layout reads it back.
func TestFacilityLayout(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	f, err := db.CreateFacility(ctx, cloud.Facility{ID: "fac1", Name: "One", Timezone: "Europe/Berlin", Currency: "EUR",
		Location: &cloud.Location{Lat: 52.5, Lon: 13.4}, Public: true})
	if err != nil {
		t.Fatal(err)
	}
	if f.LayoutVersion != 1 || f.Location == nil || f.Location.Lat != 52.5 {
		t.Fatalf("CreateFacility = %+v; want version 1 at 52.5,13.4", f)
	}
	if _, err := db.CreateFacility(ctx, cloud.Facility{ID: "fac1", Timezone: "UTC", Currency: "EUR"}); cloud.ErrorCode(err) != cloud.ECONFLICT {
		t.Fatalf("CreateFacility twice: %v; want conflict", err)
	}
	want := uint64(1)
	step := func(name string, v uint64, err error, code string) {
		t.Helper()
		if code != "" {
			if cloud.ErrorCode(err) != code {
				t.Fatalf("%s: %v; want %s", name, err, code)
			}
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want++
		if v != want {
			t.Fatalf("%s: version %d; want %d", name, v, want)
		}
	}
	v, err := db.CreateLevel(ctx, "fac1", cloud.Level{ID: "L0", Name: "Ground"})
	step("CreateLevel", v, err, "")
	v, err = db.CreateLevel(ctx, "fac1", cloud.Level{ID: "L0"})
	step("CreateLevel dup", v, err, cloud.ECONFLICT)
	v, err = db.CreateZone(ctx, "fac1", cloud.Zone{ID: "A", Level: "L9", Kind: "general", Capacity: 10})
	step("CreateZone unknown level", v, err, cloud.EINVALID)
	v, err = db.CreateZone(ctx, "fac1", cloud.Zone{ID: "A", Level: "L0", Kind: "general", Capacity: 10, HeldBack: 2})
	step("CreateZone", v, err, "")
	_, v, err = db.UpdateZone(ctx, "fac1", "A", func(z *cloud.Zone) error { z.HeldBack = 11; return nil })
	step("UpdateZone held_back > capacity", v, err, cloud.EINVALID)
	v, err = db.CreateSpot(ctx, "fac1", cloud.Spot{ID: "S1", Zone: "A", Kind: "ev", Features: []string{"charger", "covered", "charger"}})
	step("CreateSpot", v, err, "")
	v, err = db.CreateSpot(ctx, "fac1", cloud.Spot{ID: "S2", Zone: "Z", Kind: "standard"})
	step("CreateSpot unknown zone", v, err, cloud.EINVALID)
	v, err = db.DeleteZone(ctx, "fac1", "A")
	step("DeleteZone with spots", v, err, cloud.ECONFLICT)
	v, err = db.DeleteLevel(ctx, "fac1", "L0")
	step("DeleteLevel with zones", v, err, cloud.ECONFLICT)
	_, v, err = db.UpdateSpot(ctx, "fac1", "S1", func(s *cloud.Spot) error { s.Features = []string{"wide"}; return nil })
	step("UpdateSpot", v, err, "")
	v, err = db.DeleteSpot(ctx, "fac1", "nope")
	step("DeleteSpot unknown", v, err, cloud.ENOTFOUND)
	v, err = db.CreateLevel(ctx, "nope", cloud.Level{ID: "L0"})
	step("CreateLevel unknown facility", v, err, cloud.ENOTFOUND)

	l, err := db.Layout(ctx, "fac1")
	if err != nil {
		t.Fatal(err)
	}
	if l.Facility.LayoutVersion != want {
		t.Errorf("Layout version = %d; want %d", l.Facility.LayoutVersion, want)
	}
	if len(l.Levels) != 1 || len(l.Zones) != 1 || l.Zones[0].HeldBack != 2 || len(l.Spots) != 1 || !slices.Equal(l.Spots[0].Features, []string{"wide"}) {
		t.Errorf("Layout = %+v; want one level, zone A held back 2, spot S1 [wide]", l)
	}
	unpub, err := db.UnpublishedLayouts(ctx)
	if err != nil || !slices.Equal(unpub, []string{"fac1"}) {
		t.Fatalf("UnpublishedLayouts = %v, %v; want [fac1]", unpub, err)
	}
	if err := db.MarkLayoutPublished(ctx, "fac1", want); err != nil {
		t.Fatal(err)
	}
	if unpub, _ := db.UnpublishedLayouts(ctx); len(unpub) != 0 {
		t.Errorf("UnpublishedLayouts after publish = %v; want none", unpub)
	}
}

// TestAvailabilityFromIngest ingests a garage's stream and checks that availability
// carries the projection's counts, with the configured capacity and held-back spaces
// where a zone is configured and the garage's capacity where it is not.
func TestAvailabilityFromIngest(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	const fac = "avail"
	if _, err := db.Ingest(ctx, generate(fac, 7, 2000)); err != nil {
		t.Fatal(err)
	}
	occ, err := db.Occupancy(ctx, fac)
	if err != nil || len(occ) == 0 {
		t.Fatalf("Occupancy = %v, %v; want zones", occ, err)
	}
	if _, err := db.CreateZone(ctx, fac, cloud.Zone{ID: "L1", Kind: "general", Capacity: 250, HeldBack: 20}); err != nil {
		t.Fatal(err)
	}
	a, err := db.Availability(ctx, fac)
	if err != nil {
		t.Fatal(err)
	}
	if a.LastContact.IsZero() || a.LastEventAt.IsZero() {
		t.Errorf("Availability contact %v, last event %v; want both set", a.LastContact, a.LastEventAt)
	}
	if len(a.Zones) != len(occ) {
		t.Fatalf("Availability has %d zones; want %d: %+v", len(a.Zones), len(occ), a.Zones)
	}
	for i, z := range a.Zones {
		o := occ[i]
		if z.Zone != o.Zone || z.Occupied != o.Occupied {
			t.Errorf("zone %d = %s occupied %d; want %s occupied %d", i, z.Zone, z.Occupied, o.Zone, o.Occupied)
		}
		wantCap, wantHeld := o.Capacity, 0
		if z.Zone == "L1" {
			wantCap, wantHeld = 250, 20
		}
		if z.Capacity != wantCap || z.HeldBack != wantHeld || z.Configured != (z.Zone == "L1") {
			t.Errorf("zone %s capacity %d held %d configured %v; want %d, %d", z.Zone, z.Capacity, z.HeldBack, z.Configured, wantCap, wantHeld)
		}
	}
	fleet, err := db.Fleet(ctx, postgresFleetAll())
	if err != nil || len(fleet) != 1 {
		t.Fatalf("Fleet = %v, %v; want one garage", fleet, err)
	}
	var occupied, free int
	for _, z := range a.Zones {
		occupied += z.Occupied
		free += z.Free()
	}
	if fleet[0].Occupied != occupied || fleet[0].Free != free {
		t.Errorf("Fleet occupied %d free %d; want %d, %d", fleet[0].Occupied, fleet[0].Free, occupied, free)
	}
	if _, err := db.Availability(ctx, "nope"); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("Availability(nope): %v; want not found", err)
	}
}

func postgresFleetAll() postgres.FleetFilter { return postgres.FleetFilter{All: true} }
