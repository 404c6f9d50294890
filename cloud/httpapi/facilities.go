package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // validate time zones on hosts without a zoneinfo database

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	"github.com/gofiber/fiber/v2"
)

// Facilities and their layout (levels, zones, spots). Reads follow visibleTo: a public
// facility is readable by anyone, a private one by admins, its assigned staff and the
// API keys issued for it; others get 404, so that a private facility's existence is
// not revealed. Writes are for the facility's managers and admins, and each one bumps
// the facility's layout version in its transaction and publishes the "layout"
// downlink document (see publishLayout).

// Facility is a facility as the API shows it.
type Facility struct {
	ID            string          `json:"id"`
	Name          string          `json:"name"`
	Address       string          `json:"address,omitempty"`
	City          string          `json:"city,omitempty"`
	Country       string          `json:"country,omitempty"`
	Location      *cloud.Location `json:"location,omitempty"`
	Timezone      string          `json:"timezone"`
	Currency      string          `json:"currency"`
	Public        bool            `json:"public"`
	LayoutVersion uint64          `json:"layout_version"`
	CreatedAt     time.Time       `json:"created_at"`
	UpdatedAt     time.Time       `json:"updated_at"`
	LastContact   time.Time       `json:"last_contact,omitzero"`
}

func facilityOut(f cloud.Facility) Facility {
	return Facility{ID: f.ID, Name: f.Name, Address: f.Address, City: f.City, Country: f.Country, Location: f.Location,
		Timezone: f.Timezone, Currency: f.Currency, Public: f.Public, LayoutVersion: f.LayoutVersion,
		CreatedAt: f.CreatedAt, UpdatedAt: f.UpdatedAt, LastContact: f.LastContact}
}

// FacilitySummary is a line of GET /v1/facilities: the facility with its totals.
type FacilitySummary struct {
	Facility
	Capacity int `json:"capacity"`
	Occupied int `json:"occupied"`
	// Free is what walk-ins may take: capacity less held-back and occupied spaces.
	Free int `json:"free"`
}

// FacilityCreate is the body of POST /v1/facilities.
type FacilityCreate struct {
	ID       string          `json:"id"`
	Name     string          `json:"name"`
	Address  string          `json:"address"`
	City     string          `json:"city"`
	Country  string          `json:"country"`
	Location *cloud.Location `json:"location"`
	// Timezone defaults to UTC; Currency to EUR.
	Timezone string `json:"timezone"`
	Currency string `json:"currency"`
	Public   bool   `json:"public"`
}

// FacilityPatch is the body of PATCH /v1/facilities/{facility}: the members present
// are changed.
type FacilityPatch struct {
	Name     *string         `json:"name"`
	Address  *string         `json:"address"`
	City     *string         `json:"city"`
	Country  *string         `json:"country"`
	Location *cloud.Location `json:"location"`
	Timezone *string         `json:"timezone"`
	Currency *string         `json:"currency"`
	Public   *bool           `json:"public"`
}

var (
	countryRE  = regexp.MustCompile(`^[A-Z]{2}$`)
	currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
	layoutIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	featureRE  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
)

const (
	maxText     = 200
	maxCapacity = 100000
	maxFeatures = 16
)

// fieldChecks collects the invalid fields of a body.
type fieldChecks []FieldError

func (fc *fieldChecks) check(ok bool, field, msg string) {
	if !ok {
		*fc = append(*fc, FieldError{field, msg})
	}
}

func (fc *fieldChecks) text(s *string, field string, required bool) {
	if s == nil {
		return
	}
	*s = strings.TrimSpace(*s)
	fc.check(!required || *s != "", field, "is required")
	fc.check(len(*s) <= maxText, field, fmt.Sprintf("must be at most %d bytes", maxText))
}

func (fc *fieldChecks) facility(name, address, city, country *string, loc *cloud.Location, tz, currency *string) {
	fc.text(name, "name", true)
	fc.text(address, "address", false)
	fc.text(city, "city", false)
	if country != nil {
		fc.check(*country == "" || countryRE.MatchString(*country), "country", "must be an ISO 3166-1 alpha-2 code in upper case, such as DE")
	}
	if loc != nil {
		fc.check(loc.Lat >= -90 && loc.Lat <= 90, "location.lat", "must be between -90 and 90")
		fc.check(loc.Lon >= -180 && loc.Lon <= 180, "location.lon", "must be between -180 and 180")
	}
	if tz != nil {
		_, err := time.LoadLocation(*tz)
		fc.check(*tz != "" && *tz != "Local" && err == nil, "timezone", "must be an IANA time zone name, such as Europe/Berlin")
	}
	if currency != nil {
		fc.check(currencyRE.MatchString(*currency), "currency", "must be an ISO 4217 code, such as EUR")
	}
}

func (b *FacilityCreate) validate() []FieldError {
	var fc fieldChecks
	fc.check(cloud.ValidFacilityID(b.ID), "id", "must be a facility id: lower-case letters, digits and dashes, at most 63")
	if b.Timezone == "" {
		b.Timezone = "UTC"
	}
	if b.Currency == "" {
		b.Currency = "EUR"
	}
	fc.facility(&b.Name, &b.Address, &b.City, &b.Country, b.Location, &b.Timezone, &b.Currency)
	return fc
}

func (b *FacilityPatch) validate() []FieldError {
	var fc fieldChecks
	fc.facility(b.Name, b.Address, b.City, b.Country, b.Location, b.Timezone, b.Currency)
	return fc
}

// Level is a floor of a facility.
type Level struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Ordinal int    `json:"ordinal"`
}

// LevelPatch is the body of PATCH /v1/facilities/{facility}/levels/{level}.
type LevelPatch struct {
	Name    *string `json:"name"`
	Ordinal *int    `json:"ordinal"`
}

func (b *Level) validate() []FieldError {
	var fc fieldChecks
	fc.check(layoutIDRE.MatchString(b.ID), "id", "must be 1 to 64 letters, digits, dots, dashes or underscores")
	fc.text(&b.Name, "name", false)
	fc.check(b.Ordinal >= -100 && b.Ordinal <= 200, "ordinal", "must be between -100 and 200")
	return fc
}

func (b *LevelPatch) validate() []FieldError {
	var fc fieldChecks
	fc.text(b.Name, "name", false)
	if b.Ordinal != nil {
		fc.check(*b.Ordinal >= -100 && *b.Ordinal <= 200, "ordinal", "must be between -100 and 200")
	}
	return fc
}

// Zone is a counted area of a facility as configured.
type Zone struct {
	ID    string `json:"id"`
	Level string `json:"level,omitempty"`
	Name  string `json:"name"`
	// Kind is general, permit, reservation, ev, disabled, staff or other.
	Kind     string `json:"kind"`
	Capacity int    `json:"capacity"`
	// HeldBack is how many spaces are kept for bookings and permits.
	HeldBack int `json:"held_back"`
}

// ZoneCreate is the body of POST /v1/facilities/{facility}/zones.
type ZoneCreate struct {
	ID       string `json:"id"`
	Level    string `json:"level"`
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Capacity *int   `json:"capacity"`
	HeldBack int    `json:"held_back"`
}

// ZonePatch is the body of PATCH /v1/facilities/{facility}/zones/{zone}; level ""
// takes the zone off its level.
type ZonePatch struct {
	Level    *string `json:"level"`
	Name     *string `json:"name"`
	Kind     *string `json:"kind"`
	Capacity *int    `json:"capacity"`
	HeldBack *int    `json:"held_back"`
}

func zoneOut(z cloud.Zone) Zone {
	return Zone{ID: z.ID, Level: z.Level, Name: z.Name, Kind: z.Kind, Capacity: z.Capacity, HeldBack: z.HeldBack}
}

func (fc *fieldChecks) zone(level, name, kind *string, capacity, heldBack *int) {
	if level != nil {
		fc.check(*level == "" || layoutIDRE.MatchString(*level), "level", "must be a level id")
	}
	fc.text(name, "name", false)
	if kind != nil {
		fc.check(slices.Contains(cloud.ZoneKinds, *kind), "kind", "must be one of "+strings.Join(cloud.ZoneKinds, ", "))
	}
	if capacity != nil {
		fc.check(*capacity >= 0 && *capacity <= maxCapacity, "capacity", fmt.Sprintf("must be between 0 and %d", maxCapacity))
	}
	if heldBack != nil {
		fc.check(*heldBack >= 0, "held_back", "must not be negative")
		if capacity != nil {
			fc.check(*heldBack <= *capacity, "held_back", "must not exceed capacity")
		}
	}
}

func (b *ZoneCreate) validate() []FieldError {
	var fc fieldChecks
	fc.check(layoutIDRE.MatchString(b.ID), "id", "must be 1 to 64 letters, digits, dots, dashes or underscores")
	if b.Kind == "" {
		b.Kind = "general"
	}
	fc.check(b.Capacity != nil, "capacity", "is required")
	fc.zone(&b.Level, &b.Name, &b.Kind, b.Capacity, &b.HeldBack)
	return fc
}

func (b *ZonePatch) validate() []FieldError {
	var fc fieldChecks
	fc.zone(b.Level, b.Name, b.Kind, b.Capacity, b.HeldBack)
	return fc
}

// Spot is one marked space.
type Spot struct {
	ID    string `json:"id"`
	Zone  string `json:"zone"`
	Label string `json:"label"`
	// Kind is standard, ev, disabled, family, motorcycle, compact or oversize.
	Kind string `json:"kind"`
	// Features are lower-case words such as charger, covered, wide.
	Features []string `json:"features"`
}

// SpotPatch is the body of PATCH /v1/facilities/{facility}/spots/{spot}; features,
// when present, replace the spot's.
type SpotPatch struct {
	Zone     *string   `json:"zone"`
	Label    *string   `json:"label"`
	Kind     *string   `json:"kind"`
	Features *[]string `json:"features"`
}

func spotOut(s cloud.Spot) Spot {
	if s.Features == nil {
		s.Features = []string{}
	}
	return Spot{ID: s.ID, Zone: s.Zone, Label: s.Label, Kind: s.Kind, Features: s.Features}
}

func (fc *fieldChecks) spot(zone, label, kind *string, features *[]string) {
	if zone != nil {
		fc.check(layoutIDRE.MatchString(*zone), "zone", "must be a zone id")
	}
	if label != nil {
		*label = strings.TrimSpace(*label)
		fc.check(len(*label) <= 64, "label", "must be at most 64 bytes")
	}
	if kind != nil {
		fc.check(slices.Contains(cloud.SpotKinds, *kind), "kind", "must be one of "+strings.Join(cloud.SpotKinds, ", "))
	}
	if features != nil {
		fc.check(len(*features) <= maxFeatures, "features", fmt.Sprintf("must have at most %d entries", maxFeatures))
		for i, f := range *features {
			fc.check(featureRE.MatchString(f), fmt.Sprintf("features[%d]", i), "must be a lower-case word such as charger")
		}
	}
}

func (b *Spot) validate() []FieldError {
	var fc fieldChecks
	fc.check(layoutIDRE.MatchString(b.ID), "id", "must be 1 to 64 letters, digits, dots, dashes or underscores")
	if b.Kind == "" {
		b.Kind = "standard"
	}
	fc.spot(&b.Zone, &b.Label, &b.Kind, &b.Features)
	return fc
}

func (b *SpotPatch) validate() []FieldError {
	var fc fieldChecks
	fc.spot(b.Zone, b.Label, b.Kind, b.Features)
	return fc
}

var facilityListQuery = []param{
	{name: "limit", typ: "integer", description: "page size, 1 to 500 (default 50)"},
	{name: "cursor", typ: "string", description: "next_cursor of the previous page"},
}

func (a *api) facilityRoutes() []*route {
	read := access{public: true, scope: "facilities:read", scoped: true}
	write := access{roles: managers, scoped: true}
	return []*route{
		{method: fiber.MethodGet, path: "/facilities", tag: "facilities",
			summary: "Facilities: the public ones with their free spaces, and those the caller is assigned to (admins: all)",
			access:  access{public: true, scope: "facilities:read"}, query: facilityListQuery,
			response: Page[FacilitySummary]{}, handler: a.listFacilities},
		{method: fiber.MethodPost, path: "/facilities", tag: "facilities", summary: "Create a facility",
			access: access{roles: adminOnly}, request: FacilityCreate{}, response: Facility{}, status: fiber.StatusCreated,
			handler: a.createFacility},
		{method: fiber.MethodGet, path: "/facilities/:facility", tag: "facilities", summary: "A facility",
			access: read, response: Facility{}, handler: a.getFacility},
		{method: fiber.MethodPatch, path: "/facilities/:facility", tag: "facilities", summary: "Change a facility",
			access: write, request: FacilityPatch{}, response: Facility{}, handler: a.patchFacility},

		{method: fiber.MethodGet, path: "/facilities/:facility/levels", tag: "facilities", summary: "A facility's levels",
			access: read, response: Page[Level]{}, handler: a.listLevels},
		{method: fiber.MethodPost, path: "/facilities/:facility/levels", tag: "facilities", summary: "Add a level",
			access: write, request: Level{}, response: Level{}, status: fiber.StatusCreated, handler: a.createLevel},
		{method: fiber.MethodPatch, path: "/facilities/:facility/levels/:level", tag: "facilities", summary: "Change a level",
			access: write, request: LevelPatch{}, response: Level{}, handler: a.patchLevel},
		{method: fiber.MethodDelete, path: "/facilities/:facility/levels/:level", tag: "facilities",
			summary: "Remove a level (refused while zones are on it)", access: write, status: fiber.StatusNoContent, handler: a.deleteLayout("level", a.db.DeleteLevel)},

		{method: fiber.MethodGet, path: "/facilities/:facility/zones", tag: "facilities", summary: "A facility's configured zones",
			access: read, response: Page[Zone]{}, handler: a.listZones},
		{method: fiber.MethodPost, path: "/facilities/:facility/zones", tag: "facilities", summary: "Add a zone",
			access: write, request: ZoneCreate{}, response: Zone{}, status: fiber.StatusCreated, handler: a.createZone},
		{method: fiber.MethodPatch, path: "/facilities/:facility/zones/:zone", tag: "facilities", summary: "Change a zone",
			access: write, request: ZonePatch{}, response: Zone{}, handler: a.patchZone},
		{method: fiber.MethodDelete, path: "/facilities/:facility/zones/:zone", tag: "facilities",
			summary: "Remove a zone (refused while it has spots)", access: write, status: fiber.StatusNoContent, handler: a.deleteLayout("zone", a.db.DeleteZone)},

		{method: fiber.MethodGet, path: "/facilities/:facility/spots", tag: "facilities", summary: "A facility's spots",
			access: read, query: append(slices.Clone(facilityListQuery), param{name: "zone", typ: "string", description: "only this zone's spots"}),
			response: Page[Spot]{}, handler: a.listSpots},
		{method: fiber.MethodPost, path: "/facilities/:facility/spots", tag: "facilities", summary: "Add a spot",
			access: write, request: Spot{}, response: Spot{}, status: fiber.StatusCreated, handler: a.createSpot},
		{method: fiber.MethodPatch, path: "/facilities/:facility/spots/:spot", tag: "facilities", summary: "Change a spot",
			access: write, request: SpotPatch{}, response: Spot{}, handler: a.patchSpot},
		{method: fiber.MethodDelete, path: "/facilities/:facility/spots/:spot", tag: "facilities", summary: "Remove a spot",
			access: write, status: fiber.StatusNoContent, handler: a.deleteLayout("spot", a.db.DeleteSpot)},
	}
}

// visibleTo reports whether p may read a facility: anyone a public one; admins, the
// staff assigned to it and the keys issued for it (with scope, when not "") a private
// one. Drivers see public facilities only.
func visibleTo(p *cloud.Principal, facility string, public bool, scope string) bool {
	if public {
		return true
	}
	if p == nil || !p.CanAccess(facility) {
		return false
	}
	return scope == "" || p.HasScope(scope)
}

// readableFacility returns the :facility the caller may read, or 404.
func (a *api) readableFacility(c *fiber.Ctx, ctx context.Context) (cloud.Facility, error) {
	id, err := facilityParam(c)
	if err != nil {
		return cloud.Facility{}, err
	}
	f, err := a.db.Facility(ctx, id)
	if err == nil && !visibleTo(principal(c), id, f.Public, "facilities:read") {
		err = cloud.Errorf(cloud.ENOTFOUND, "no facility %q", id)
	}
	return f, err
}

// layoutParam returns a validated level, zone or spot id from the path.
func layoutParam(c *fiber.Ctx, name string) (string, error) {
	id := c.Params(name)
	if !layoutIDRE.MatchString(id) {
		return "", malformed("invalid "+name+" id", FieldError{name, "must be 1 to 64 letters, digits, dots, dashes or underscores"})
	}
	return id, nil
}

func (a *api) listFacilities(c *fiber.Ctx) error {
	limit, cur, err := pageParams(c)
	if err != nil {
		return err
	}
	flt := postgres.FacilityFilter{After: cur.After, Limit: limit + 1}
	if p := principal(c); p != nil {
		switch p.Role {
		case cloud.RoleAdmin:
			flt.All = true
		case cloud.RoleOperator, cloud.RoleManager, cloud.RoleIntegrator:
			flt.Also = p.Facilities
		}
	}
	ctx, cancel := opContext(c)
	defer cancel()
	rows, err := a.db.Facilities(ctx, flt)
	if err != nil {
		return err
	}
	out := make([]FacilitySummary, 0, len(rows))
	for _, r := range rows {
		out = append(out, FacilitySummary{Facility: facilityOut(r.Facility), Capacity: r.Capacity, Occupied: r.Occupied, Free: r.Free})
	}
	return c.JSON(makePage(out, limit, func(f FacilitySummary) string { return f.ID }))
}

func (a *api) createFacility(c *fiber.Ctx) error {
	var b FacilityCreate
	if err := decode(c, &b); err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	f, err := a.db.CreateFacility(ctx, cloud.Facility{ID: b.ID, Name: b.Name, Address: b.Address, City: b.City,
		Country: b.Country, Location: b.Location, Timezone: b.Timezone, Currency: b.Currency, Public: b.Public})
	if err != nil {
		return err
	}
	a.layoutChanged(c, "facility.create", "facility:"+f.ID, f.ID, f.LayoutVersion)
	return c.Status(fiber.StatusCreated).JSON(facilityOut(f))
}

func (a *api) getFacility(c *fiber.Ctx) error {
	ctx, cancel := opContext(c)
	defer cancel()
	f, err := a.readableFacility(c, ctx)
	if err != nil {
		return err
	}
	return c.JSON(facilityOut(f))
}

func (a *api) patchFacility(c *fiber.Ctx) error {
	id, err := facilityParam(c)
	if err != nil {
		return err
	}
	var b FacilityPatch
	if err := decode(c, &b); err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	f, v, err := a.db.UpdateFacility(ctx, id, func(f *cloud.Facility) error {
		set(&f.Name, b.Name)
		set(&f.Address, b.Address)
		set(&f.City, b.City)
		set(&f.Country, b.Country)
		set(&f.Timezone, b.Timezone)
		set(&f.Currency, b.Currency)
		set(&f.Public, b.Public)
		if b.Location != nil {
			f.Location = b.Location
		}
		return nil
	})
	if err != nil {
		return err
	}
	a.layoutChanged(c, "facility.update", "facility:"+id, id, v)
	return c.JSON(facilityOut(f))
}

// set sets *dst to *v when v is not nil: a PATCH member that is present.
func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func (a *api) listLevels(c *fiber.Ctx) error {
	ctx, cancel := opContext(c)
	defer cancel()
	f, err := a.readableFacility(c, ctx)
	if err != nil {
		return err
	}
	ls, err := a.db.Levels(ctx, f.ID)
	if err != nil {
		return err
	}
	out := make([]Level, 0, len(ls))
	for _, l := range ls {
		out = append(out, Level{ID: l.ID, Name: l.Name, Ordinal: l.Ordinal})
	}
	return c.JSON(Page[Level]{Items: out}) // a handful per facility: one page
}

func (a *api) createLevel(c *fiber.Ctx) error {
	id, err := facilityParam(c)
	if err != nil {
		return err
	}
	var b Level
	if err := decode(c, &b); err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	v, err := a.db.CreateLevel(ctx, id, cloud.Level{ID: b.ID, Name: b.Name, Ordinal: b.Ordinal})
	if err != nil {
		return err
	}
	a.layoutChanged(c, "level.create", "level:"+id+"/"+b.ID, id, v)
	return c.Status(fiber.StatusCreated).JSON(b)
}

func (a *api) patchLevel(c *fiber.Ctx) error {
	id, err := facilityParam(c)
	if err != nil {
		return err
	}
	lid, err := layoutParam(c, "level")
	if err != nil {
		return err
	}
	var b LevelPatch
	if err := decode(c, &b); err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	l, v, err := a.db.UpdateLevel(ctx, id, lid, func(l *cloud.Level) error {
		set(&l.Name, b.Name)
		set(&l.Ordinal, b.Ordinal)
		return nil
	})
	if err != nil {
		return err
	}
	a.layoutChanged(c, "level.update", "level:"+id+"/"+lid, id, v)
	return c.JSON(Level{ID: l.ID, Name: l.Name, Ordinal: l.Ordinal})
}

func (a *api) listZones(c *fiber.Ctx) error {
	ctx, cancel := opContext(c)
	defer cancel()
	f, err := a.readableFacility(c, ctx)
	if err != nil {
		return err
	}
	zs, err := a.db.Zones(ctx, f.ID)
	if err != nil {
		return err
	}
	out := make([]Zone, 0, len(zs))
	for _, z := range zs {
		out = append(out, zoneOut(z))
	}
	return c.JSON(Page[Zone]{Items: out}) // tens per facility: one page
}

func (a *api) createZone(c *fiber.Ctx) error {
	id, err := facilityParam(c)
	if err != nil {
		return err
	}
	var b ZoneCreate
	if err := decode(c, &b); err != nil {
		return err
	}
	z := cloud.Zone{ID: b.ID, Level: b.Level, Name: b.Name, Kind: b.Kind, Capacity: *b.Capacity, HeldBack: b.HeldBack}
	ctx, cancel := opContext(c)
	defer cancel()
	v, err := a.db.CreateZone(ctx, id, z)
	if err != nil {
		return fieldFor(err, "level")
	}
	a.layoutChanged(c, "zone.create", "zone:"+id+"/"+z.ID, id, v)
	return c.Status(fiber.StatusCreated).JSON(zoneOut(z))
}

// fieldFor names field in a domain validation error of the store (an unknown level
// or zone referred to), so that the problem says which member is wrong.
func fieldFor(err error, field string) error {
	if cloud.ErrorCode(err) == cloud.EINVALID {
		return invalid("the request has invalid fields", FieldError{field, cloud.ErrorMessage(err)})
	}
	return err
}

func (a *api) patchZone(c *fiber.Ctx) error {
	id, err := facilityParam(c)
	if err != nil {
		return err
	}
	zid, err := layoutParam(c, "zone")
	if err != nil {
		return err
	}
	var b ZonePatch
	if err := decode(c, &b); err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	z, v, err := a.db.UpdateZone(ctx, id, zid, func(z *cloud.Zone) error {
		set(&z.Level, b.Level)
		set(&z.Name, b.Name)
		set(&z.Kind, b.Kind)
		set(&z.Capacity, b.Capacity)
		set(&z.HeldBack, b.HeldBack)
		if z.HeldBack > z.Capacity {
			return invalid("the request has invalid fields", FieldError{"held_back", fmt.Sprintf("must not exceed the capacity (%d)", z.Capacity)})
		}
		return nil
	})
	if err != nil {
		return fieldFor(err, "level")
	}
	a.layoutChanged(c, "zone.update", "zone:"+id+"/"+zid, id, v)
	return c.JSON(zoneOut(z))
}

func (a *api) listSpots(c *fiber.Ctx) error {
	limit, cur, err := pageParams(c)
	if err != nil {
		return err
	}
	zone := c.Query("zone")
	if zone != "" && !layoutIDRE.MatchString(zone) {
		return malformed("invalid query parameter", FieldError{"zone", "must be a zone id"})
	}
	ctx, cancel := opContext(c)
	defer cancel()
	f, err := a.readableFacility(c, ctx)
	if err != nil {
		return err
	}
	ss, err := a.db.Spots(ctx, f.ID, postgres.SpotFilter{Zone: zone, After: cur.After, Limit: limit + 1})
	if err != nil {
		return err
	}
	out := make([]Spot, 0, len(ss))
	for _, s := range ss {
		out = append(out, spotOut(s))
	}
	return c.JSON(makePage(out, limit, func(s Spot) string { return s.ID }))
}

func (a *api) createSpot(c *fiber.Ctx) error {
	id, err := facilityParam(c)
	if err != nil {
		return err
	}
	var b Spot
	if err := decode(c, &b); err != nil {
		return err
	}
	slices.Sort(b.Features)
	b.Features = slices.Compact(b.Features)
	ctx, cancel := opContext(c)
	defer cancel()
	v, err := a.db.CreateSpot(ctx, id, cloud.Spot{ID: b.ID, Zone: b.Zone, Label: b.Label, Kind: b.Kind, Features: b.Features})
	if err != nil {
		return fieldFor(err, "zone")
	}
	a.layoutChanged(c, "spot.create", "spot:"+id+"/"+b.ID, id, v)
	if b.Features == nil {
		b.Features = []string{}
	}
	return c.Status(fiber.StatusCreated).JSON(b)
}

func (a *api) patchSpot(c *fiber.Ctx) error {
	id, err := facilityParam(c)
	if err != nil {
		return err
	}
	sid, err := layoutParam(c, "spot")
	if err != nil {
		return err
	}
	var b SpotPatch
	if err := decode(c, &b); err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	s, v, err := a.db.UpdateSpot(ctx, id, sid, func(s *cloud.Spot) error {
		set(&s.Zone, b.Zone)
		set(&s.Label, b.Label)
		set(&s.Kind, b.Kind)
		set(&s.Features, b.Features)
		return nil
	})
	if err != nil {
		return fieldFor(err, "zone")
	}
	a.layoutChanged(c, "spot.update", "spot:"+id+"/"+sid, id, v)
	return c.JSON(spotOut(s))
}

// deleteLayout returns the handler that removes a level, zone or spot (kind, named by
// the path parameter of that name) with del, then audits and publishes the change.
func (a *api) deleteLayout(kind string, del func(ctx context.Context, facility, id string) (uint64, error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := facilityParam(c)
		if err != nil {
			return err
		}
		item, err := layoutParam(c, kind)
		if err != nil {
			return err
		}
		ctx, cancel := opContext(c)
		defer cancel()
		v, err := del(ctx, id, item)
		if err != nil {
			return err
		}
		a.layoutChanged(c, kind+".delete", kind+":"+id+"/"+item, id, v)
		return c.SendStatus(fiber.StatusNoContent)
	}
}

// layoutChanged audits a committed change and publishes the facility's layout.
func (a *api) layoutChanged(c *fiber.Ctx, action, target, facility string, version uint64) {
	a.audit(c, cloud.AuditEntry{Action: action, Target: target, Facility: facility,
		Detail: map[string]any{"layout_version": version}})
	// The change is committed: the publish must not hang on the client going away,
	// and must not keep the client waiting for long when the hub is slow.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.UserContext()), layoutPublishTimeout)
	defer cancel()
	if err := publishLayout(ctx, a.db, a.hub, facility); err != nil {
		a.log.Warn("layout saved but not yet published to the garage; RepublishLayouts retries it",
			"facility", facility, "version", version, "err", err)
	}
}

// LayoutKind is the downlink document kind of a facility's layout.
const LayoutKind = "layout"

const layoutPublishTimeout = 3 * time.Second

// LayoutDocument is the "layout" downlink document: a facility's whole configuration
// at one version, as JSON. The garage replaces its copy with a newer version and
// ignores older ones.
type LayoutDocument struct {
	Facility string  `json:"facility"`
	Version  uint64  `json:"version"`
	Name     string  `json:"name"`
	Timezone string  `json:"timezone"`
	Currency string  `json:"currency"`
	Levels   []Level `json:"levels"`
	Zones    []Zone  `json:"zones"`
	Spots    []Spot  `json:"spots"`
}

// publishLayout publishes the facility's current layout, read afresh, and records the
// version the hub accepted.
//
// Why the current layout rather than the document of the change just made: the
// database is the source of truth and every version names one whole layout, so
// publishing "whatever is current" is idempotent and self-healing. When the hub is
// nil or the publish fails, the change stays committed with layout_published behind
// layout_version; the next change to that facility publishes the then-current version
// (which includes this one), and RepublishLayouts, run by cmd/gatehouse-cloud, retries
// every facility left behind. Two racing publishes cannot regress the garage: the hub
// refuses a version older than the one it holds.
func publishLayout(ctx context.Context, db *postgres.DB, hub Hub, facility string) error {
	if hub == nil {
		return cloud.Errorf(cloud.EUNAVAILABLE, "no hub configured")
	}
	l, err := db.Layout(ctx, facility)
	if err != nil {
		return err
	}
	doc := LayoutDocument{Facility: facility, Version: l.Facility.LayoutVersion, Name: l.Facility.Name,
		Timezone: l.Facility.Timezone, Currency: l.Facility.Currency,
		Levels: make([]Level, 0, len(l.Levels)), Zones: make([]Zone, 0, len(l.Zones)), Spots: make([]Spot, 0, len(l.Spots))}
	for _, lv := range l.Levels {
		doc.Levels = append(doc.Levels, Level{ID: lv.ID, Name: lv.Name, Ordinal: lv.Ordinal})
	}
	for _, z := range l.Zones {
		doc.Zones = append(doc.Zones, zoneOut(z))
	}
	for _, s := range l.Spots {
		doc.Spots = append(doc.Spots, spotOut(s))
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	// A conflict means the hub holds a newer version, published by a racing change:
	// this one is superseded, not lost.
	if err := hub.PublishDown(ctx, facility, LayoutKind, doc.Version, body); err != nil && cloud.ErrorCode(err) != cloud.ECONFLICT {
		return err
	}
	return db.MarkLayoutPublished(ctx, facility, doc.Version)
}

// RepublishLayouts publishes, every interval until ctx ends, the layout of each
// facility whose current version the hub has not accepted (the hub was down, or the
// process stopped between commit and publish). cmd/gatehouse-cloud runs it beside
// the API.
func RepublishLayouts(ctx context.Context, db *postgres.DB, hub Hub, interval time.Duration, log interface {
	Warn(msg string, args ...any)
}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		facs, err := db.UnpublishedLayouts(ctx)
		if err != nil && ctx.Err() == nil {
			log.Warn("listing unpublished layouts", "err", err)
		}
		for _, f := range facs {
			pctx, cancel := context.WithTimeout(ctx, layoutPublishTimeout)
			if err := publishLayout(pctx, db, hub, f); err != nil && ctx.Err() == nil {
				log.Warn("layout not published; retrying", "facility", f, "err", err, "in", interval)
			}
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
