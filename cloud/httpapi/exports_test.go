package httpapi_test

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud/httpapi"
)

// TestFiwareExport parses the NGSI-LD export of a public facility and checks its
// entities' numbers, and that private facilities are not exported.
func TestFiwareExport(t *testing.T) {
	e := newEnv(t, httpapi.Config{Hub: &fakeHub{online: map[string]bool{"pub": true}}, Now: func() time.Time { return t0 }})
	seedGarage(t, e.db, "pub", true)
	seedGarage(t, e.db, "priv", false)
	res := e.do(http.MethodGet, "/v1/exports/fiware/facilities/pub", nil)
	expect(t, "fiware", res, http.StatusOK)
	if ct := res.Header.Get("Content-Type"); ct != "application/ld+json" {
		t.Errorf("content type %q; want application/ld+json", ct)
	}
	type prop struct {
		Type   string          `json:"type"`
		Value  json.RawMessage `json:"value"`
		Object string          `json:"object"`
	}
	var ents []map[string]json.RawMessage
	res.JSON(t, &ents)
	if len(ents) != 3 {
		t.Fatalf("%d entities; want a site and 2 groups", len(ents))
	}
	get := func(ent map[string]json.RawMessage, k string) prop {
		var p prop
		if err := json.Unmarshal(ent[k], &p); err != nil {
			t.Fatalf("%s: %v in %s", k, err, ent[k])
		}
		return p
	}
	str := func(raw json.RawMessage) string { var s string; json.Unmarshal(raw, &s); return s }
	site := ents[0]
	if str(site["type"]) != "OffStreetParking" || str(site["id"]) != "urn:ngsi-ld:OffStreetParking:pub" {
		t.Fatalf("first entity %s %s; want OffStreetParking urn:ngsi-ld:OffStreetParking:pub", site["type"], site["id"])
	}
	for k, want := range map[string]string{"totalSpotNumber": "150", "availableSpotNumber": "30", "status": `["spacesAvailable"]`} {
		if got := string(get(site, k).Value); got != want {
			t.Errorf("site %s = %s; want %s", k, got, want)
		}
	}
	var ctx []string
	json.Unmarshal(site["@context"], &ctx)
	if len(ctx) != 1 || ctx[0] != "https://smartdatamodels.org/context.jsonld" {
		t.Errorf("@context = %v", ctx)
	}
	var loc struct {
		Type  string `json:"type"`
		Value struct {
			Type        string    `json:"type"`
			Coordinates []float64 `json:"coordinates"`
		} `json:"value"`
	}
	json.Unmarshal(site["location"], &loc)
	if loc.Type != "GeoProperty" || loc.Value.Type != "Point" || len(loc.Value.Coordinates) != 2 || loc.Value.Coordinates[0] != 11.5 {
		t.Errorf("location = %+v; want a GeoProperty Point [11.5, 48.1]", loc)
	}
	l2 := ents[2]
	if str(l2["type"]) != "ParkingGroup" || get(l2, "refParkingSite").Object != "urn:ngsi-ld:OffStreetParking:pub" ||
		string(get(l2, "availableSpotNumber").Value) != "0" || string(get(l2, "totalSpotNumber").Value) != "50" {
		t.Errorf("group L2 = %s; want a ParkingGroup of the site, 0 of 50 free", l2)
	}
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	expect(t, "revalidated", e.do(http.MethodGet, "/v1/exports/fiware/facilities/pub", nil, "If-None-Match", etag), http.StatusNotModified)
	expect(t, "private", e.do(http.MethodGet, "/v1/exports/fiware/facilities/priv", nil), http.StatusNotFound)
}

// TestDatexExport parses the DATEX II publication back, with its namespaces, and
// checks that it lists the public facilities only, with their numbers.
func TestDatexExport(t *testing.T) {
	e := newEnv(t, httpapi.Config{Hub: &fakeHub{online: map[string]bool{"a": true, "b": true}}, Now: func() time.Time { return t0 }})
	seedGarage(t, e.db, "a", true)
	seedGarage(t, e.db, "b", true)
	seedGarage(t, e.db, "hidden", false)
	if _, err := e.db.Pool().Exec(t.Context(), `UPDATE zone_occupancy SET occupied = 120 WHERE facility_id = 'b' AND zone_id = 'L1'`); err != nil {
		t.Fatal(err)
	}
	res := e.do(http.MethodGet, "/v1/exports/datex2/parking", nil)
	expect(t, "datex", res, http.StatusOK)
	var pub struct {
		XMLName xml.Name
		Time    string `xml:"http://datex2.eu/schema/3/common publicationTime"`
		Records []struct {
			Ref struct {
				ID string `xml:"id,attr"`
			} `xml:"http://datex2.eu/schema/3/parking parkingRecordReference"`
			Origin    string `xml:"http://datex2.eu/schema/3/parking parkingStatusOriginTime"`
			Occupancy struct {
				Spaces   int `xml:"http://datex2.eu/schema/3/parking parkingNumberOfSpacesOverride"`
				Vacant   int `xml:"http://datex2.eu/schema/3/parking parkingNumberOfVacantSpaces"`
				Occupied int `xml:"http://datex2.eu/schema/3/parking parkingNumberOfOccupiedSpaces"`
			} `xml:"http://datex2.eu/schema/3/parking parkingOccupancy"`
			Status string `xml:"http://datex2.eu/schema/3/parking parkingSiteStatus"`
		} `xml:"http://datex2.eu/schema/3/parking parkingRecordStatus"`
	}
	if err := xml.Unmarshal(res.Body, &pub); err != nil {
		t.Fatalf("not well-formed: %v\n%s", err, res.Body)
	}
	if pub.XMLName.Space != "http://datex2.eu/schema/3/d2Payload" || pub.XMLName.Local != "payload" {
		t.Errorf("root %v; want d2Payload payload", pub.XMLName)
	}
	if _, err := time.Parse(time.RFC3339, pub.Time); err != nil {
		t.Errorf("publicationTime %q: %v", pub.Time, err)
	}
	if len(pub.Records) != 2 {
		t.Fatalf("%d records; want a and b\n%s", len(pub.Records), res.Body)
	}
	a, b := pub.Records[0], pub.Records[1]
	if a.Ref.ID != "a" || a.Occupancy.Spaces != 150 || a.Occupancy.Vacant != 30 || a.Occupancy.Occupied != 110 || a.Status != "spacesAvailable" {
		t.Errorf("record a = %+v; want 150 spaces, 30 vacant, 110 occupied", a)
	}
	if b.Ref.ID != "b" || b.Occupancy.Vacant != 0 || b.Occupancy.Occupied != 170 || b.Status != "full" {
		t.Errorf("record b = %+v; want 0 vacant, 170 occupied, full", b)
	}
	if a.Origin != t0.Add(-30*time.Second).Format(time.RFC3339) {
		t.Errorf("origin time %q; want the last contact %v", a.Origin, t0.Add(-30*time.Second))
	}
}
