package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gofiber/fiber/v2"
)

// Open-data exports of availability, for city platforms and journey planners: FIWARE
// Smart Data Models (NGSI-LD) per facility, and a DATEX II v3 parking status
// publication of every public facility. They are public and only show public
// facilities; responses carry an ETag and a short max-age so that pollers can
// revalidate cheaply.

// fiwareContext is the JSON-LD context of the Smart Data Models.
const fiwareContext = "https://smartdatamodels.org/context.jsonld"

// staleAfter is how long a garage may be offline before its exported status says
// "unknown" rather than its last counts' status.
const staleAfter = 15 * time.Minute

func (a *api) exportRoutes() []*route {
	return []*route{
		{method: fiber.MethodGet, path: "/exports/fiware/facilities/:facility", tag: "exports",
			summary: "A public facility as NGSI-LD (JSON-LD): an OffStreetParking entity and a ParkingGroup per zone",
			access:  access{public: true}, response: []map[string]any{}, handler: a.fiwareExport},
		{method: fiber.MethodGet, path: "/exports/datex2/parking", tag: "exports",
			summary: "Every public facility's status as a DATEX II v3 parking status publication (XML)",
			access:  access{public: true}, handler: a.datexExport},
	}
}

// ngsiProp is an NGSI-LD Property.
func ngsiProp(v any) map[string]any { return map[string]any{"type": "Property", "value": v} }

func ngsiTime(t time.Time) map[string]any {
	return ngsiProp(map[string]any{"@type": "DateTime", "@value": t.UTC().Format(time.RFC3339)})
}

// exportStatus is a facility's status in the exports' vocabulary (the Smart Data
// Models' and DATEX II's share these words).
func (a *api) exportStatus(av cloud.Availability, free int) string {
	online, since := a.presence(av.Facility, av.LastContact)
	switch {
	case av.LastContact.IsZero() || len(av.Zones) == 0:
		return "unknown"
	case online != nil && !*online && since != nil && a.now().Sub(*since) > staleAfter:
		return "unknown"
	case free == 0:
		return "full"
	}
	return "spacesAvailable"
}

func occupancyRate(occupied, capacity int) float64 {
	if capacity <= 0 {
		return 0
	}
	return min(1, float64(occupied)/float64(capacity))
}

// modified is the time the facility's counts last changed, or its last contact.
func modified(av cloud.Availability) time.Time {
	t := av.LastContact
	for _, z := range av.Zones {
		if z.UpdatedAt.After(t) {
			t = z.UpdatedAt
		}
	}
	return t
}

func (a *api) fiwareExport(c *fiber.Ctx) error {
	id, err := facilityParam(c)
	if err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	av, err := a.db.Availability(ctx, id)
	if err == nil && !av.Public {
		err = cloud.Errorf(cloud.ENOTFOUND, "no public facility %q", id)
	}
	if err != nil {
		return err
	}
	site := "urn:ngsi-ld:OffStreetParking:" + id
	var total, occupied, free int
	for _, z := range av.Zones {
		total, occupied, free = total+z.Capacity, occupied+z.Occupied, free+z.Free()
	}
	mod := modified(av)
	e := map[string]any{
		"id": site, "type": "OffStreetParking",
		"name":                ngsiProp(av.Name),
		"totalSpotNumber":     ngsiProp(total),
		"availableSpotNumber": ngsiProp(free),
		"occupancy":           ngsiProp(occupancyRate(occupied, total)),
		"status":              ngsiProp([]string{a.exportStatus(av, free)}),
		"@context":            []string{fiwareContext},
	}
	if !mod.IsZero() {
		e["dateModified"] = ngsiTime(mod)
		e["availableSpotNumber"].(map[string]any)["observedAt"] = mod.UTC().Format(time.RFC3339)
	}
	if av.Location != nil {
		e["location"] = map[string]any{"type": "GeoProperty",
			"value": map[string]any{"type": "Point", "coordinates": []float64{av.Location.Lon, av.Location.Lat}}}
	}
	entities := []map[string]any{e}
	for _, z := range av.Zones {
		g := map[string]any{
			"id": "urn:ngsi-ld:ParkingGroup:" + id + ":" + z.Zone, "type": "ParkingGroup",
			"name":                ngsiProp(zoneName(z)),
			"category":            ngsiProp([]string{"offstreet"}),
			"refParkingSite":      map[string]any{"type": "Relationship", "object": site},
			"totalSpotNumber":     ngsiProp(z.Capacity),
			"availableSpotNumber": ngsiProp(z.Free()),
			"occupancy":           ngsiProp(occupancyRate(z.Occupied, z.Capacity)),
			"@context":            []string{fiwareContext},
		}
		if !z.UpdatedAt.IsZero() {
			g["dateModified"] = ngsiTime(z.UpdatedAt)
		}
		entities = append(entities, g)
	}
	body, err := json.Marshal(entities)
	if err != nil {
		return err
	}
	return sendCacheable(c, "application/ld+json", body)
}

func zoneName(z cloud.ZoneAvailability) string {
	if z.Name != "" {
		return z.Name
	}
	return z.Zone
}

// DATEX II v3 namespaces.
const (
	datexPayloadNS = "http://datex2.eu/schema/3/d2Payload"
	datexCommonNS  = "http://datex2.eu/schema/3/common"
	datexParkingNS = "http://datex2.eu/schema/3/parking"
	xsiNS          = "http://www.w3.org/2001/XMLSchema-instance"
)

// The publication, written with explicit prefixes (encoding/xml would otherwise
// repeat a default namespace on every element).
type datexPayload struct {
	XMLName          xml.Name      `xml:"d2:payload"`
	NSPayload        string        `xml:"xmlns:d2,attr"`
	NSCommon         string        `xml:"xmlns:com,attr"`
	NSParking        string        `xml:"xmlns:prk,attr"`
	NSXSI            string        `xml:"xmlns:xsi,attr"`
	Type             string        `xml:"xsi:type,attr"`
	Lang             string        `xml:"lang,attr"`
	ModelBaseVersion string        `xml:"modelBaseVersion,attr"`
	PublicationTime  string        `xml:"com:publicationTime"`
	Creator          datexCreator  `xml:"com:publicationCreator"`
	Records          []datexStatus `xml:"prk:parkingRecordStatus"`
}

type datexCreator struct {
	Country            string `xml:"com:country"`
	NationalIdentifier string `xml:"com:nationalIdentifier"`
}

type datexStatus struct {
	Type       string         `xml:"xsi:type,attr"`
	Reference  datexReference `xml:"prk:parkingRecordReference"`
	OriginTime string         `xml:"prk:parkingStatusOriginTime"`
	Occupancy  datexOccupancy `xml:"prk:parkingOccupancy"`
	SiteStatus string         `xml:"prk:parkingSiteStatus"`
}

type datexReference struct {
	TargetClass string `xml:"targetClass,attr"`
	ID          string `xml:"id,attr"`
	Version     string `xml:"version,attr"`
}

type datexOccupancy struct {
	Spaces    int     `xml:"prk:parkingNumberOfSpacesOverride"`
	Vacant    int     `xml:"prk:parkingNumberOfVacantSpaces"`
	Occupied  int     `xml:"prk:parkingNumberOfOccupiedSpaces"`
	Occupancy float64 `xml:"prk:parkingOccupancy"`
}

func (a *api) datexExport(c *fiber.Ctx) error {
	ctx, cancel := opContext(c)
	defer cancel()
	avs, err := a.db.PublicAvailability(ctx)
	if err != nil {
		return err
	}
	p := datexPayload{NSPayload: datexPayloadNS, NSCommon: datexCommonNS, NSParking: datexParkingNS, NSXSI: xsiNS,
		Type: "prk:ParkingStatusPublication", Lang: "en", ModelBaseVersion: "3",
		Creator: datexCreator{Country: "other", NationalIdentifier: "gatehouse"}}
	var newest time.Time
	for _, av := range avs {
		var total, occupied, free int
		for _, z := range av.Zones {
			total, occupied, free = total+z.Capacity, occupied+z.Occupied, free+z.Free()
		}
		mod := modified(av)
		if mod.After(newest) {
			newest = mod
		}
		origin := ""
		if !mod.IsZero() {
			origin = mod.UTC().Format(time.RFC3339)
		}
		p.Records = append(p.Records, datexStatus{Type: "prk:ParkingSiteStatus",
			Reference:  datexReference{TargetClass: "prk:ParkingSite", ID: av.Facility, Version: "1"},
			OriginTime: origin,
			Occupancy: datexOccupancy{Spaces: total, Vacant: free, Occupied: occupied,
				Occupancy: float64(int(occupancyRate(occupied, total)*1000)) / 10},
			SiteStatus: a.exportStatus(av, free)})
	}
	// The publication time is that of the newest data, not of the request, so that
	// the body (and its ETag) changes only when the data does.
	if newest.IsZero() {
		newest = time.Unix(0, 0)
	}
	p.PublicationTime = newest.UTC().Format(time.RFC3339)
	body, err := xml.Marshal(p)
	if err != nil {
		return err
	}
	return sendCacheable(c, "application/xml; charset=utf-8", append([]byte(xml.Header), body...))
}

// sendCacheable sends body with a strong ETag and a short max-age, answering 304 to a
// matching If-None-Match.
func sendCacheable(c *fiber.Ctx, contentType string, body []byte) error {
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:12]) + `"`
	c.Set(fiber.HeaderETag, etag)
	c.Set(fiber.HeaderCacheControl, "public, max-age=5")
	if c.Get(fiber.HeaderIfNoneMatch) == etag {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, contentType)
	return c.Send(body)
}
