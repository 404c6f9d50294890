package httpapi

import (
	"bytes"
	"context"
	"mime"
	"strings"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	"github.com/gatehouse-parking/gatehouse/edge/tariff"
	"github.com/gofiber/fiber/v2"
	"go.yaml.in/yaml/v3"
)

// Tariffs and price quotes. A facility's tariffs are stored in the cloud in the form
// the garage's config file writes them (a list of edge/tariff rates, and each zone's
// rate), and every price the cloud gives (a quote, a booking's price) comes from
// edge/tariff, the engine the exit lanes run: the app's price and the exit's agree to
// the cent as long as the cloud holds the garage's tariffs. Managers upload them as
// JSON, or as the garage's config file itself (YAML), of which only tariffs, zones'
// rates, currency and timezone are read.

// Tariffs is the body of GET and PUT /v1/facilities/{facility}/tariffs.
type Tariffs struct {
	// Tariffs are the rates, as in the garage's config file (docs/tariffs.md); a
	// rate without currency or timezone takes the facility's.
	Tariffs []tariff.Rate `json:"tariffs"`
	// Zones maps a zone id to the id of the rate it charges.
	Zones map[string]string `json:"zones"`
	// DefaultRate is the rate of the zones Zones does not name.
	DefaultRate string    `json:"default_rate,omitempty"`
	Version     int64     `json:"version,omitempty"`
	UpdatedAt   time.Time `json:"updated_at,omitzero"`
}

func (b *Tariffs) validate() []FieldError {
	var fc fieldChecks
	fc.check(len(b.Tariffs) > 0, "tariffs", "name at least one rate")
	fc.check(len(b.Tariffs) <= 100, "tariffs", "at most 100 rates")
	for z := range b.Zones {
		fc.check(layoutIDRE.MatchString(z), "zones", "keys must be zone ids")
	}
	return fc
}

// garageFile is what the cloud reads of a garage's config file.
type garageFile struct {
	Timezone string        `yaml:"timezone"`
	Currency string        `yaml:"currency"`
	Tariffs  []tariff.Rate `yaml:"tariffs"`
	Zones    []struct {
		ID   string `yaml:"id"`
		Rate string `yaml:"rate"`
	} `yaml:"zones"`
}

// Quote is the body of a price quote: edge/tariff's Quote with what was priced.
type Quote struct {
	Facility string    `json:"facility"`
	Zone     string    `json:"zone,omitempty"`
	Rate     string    `json:"rate"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Currency string    `json:"currency"`
	// Total is the fee for the stay in minor units; Due is Total less Paid.
	Total int64 `json:"total"`
	Due   int64 `json:"due"`
	// Chargeable is the priced part of the stay, such as "2h5m0s".
	Chargeable string `json:"chargeable"`
	Capped     bool   `json:"capped,omitempty"`
	// Lines break Total down as a receipt does.
	Lines []tariff.Line `json:"lines"`
}

// QuoteRequest is the body of POST /v1/facilities/{facility}/quote: a stay to price,
// with what the exit would also know.
type QuoteRequest struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Zone selects the zone's rate; Rate names one instead.
	Zone        string              `json:"zone"`
	Rate        string              `json:"rate"`
	LostTicket  bool                `json:"lost_ticket"`
	Validations []tariff.Validation `json:"validations"`
	Paid        int64               `json:"paid"`
	PaidAt      time.Time           `json:"paid_at"`
}

func (b *QuoteRequest) validate() []FieldError {
	var fc fieldChecks
	fc.check(!b.From.IsZero(), "from", "is required: an RFC 3339 time")
	fc.check(!b.To.IsZero(), "to", "is required: an RFC 3339 time")
	fc.check(b.Zone == "" || layoutIDRE.MatchString(b.Zone), "zone", "must be a zone id")
	fc.check(len(b.Rate) <= 64, "rate", "must be a rate id")
	fc.check(len(b.Validations) <= 20, "validations", "at most 20")
	fc.check(b.Paid >= 0, "paid", "must not be negative")
	return fc
}

func (a *api) quoteRoutes() []*route {
	read := access{public: true, roles: anyRole, scope: "facilities:read", scoped: true}
	query := []param{
		{name: "from", typ: "string", required: true, description: "entry, RFC 3339"},
		{name: "to", typ: "string", required: true, description: "exit, RFC 3339"},
		{name: "zone", typ: "string", description: "price with this zone's rate"},
		{name: "rate", typ: "string", description: "price with this rate instead"},
	}
	return []*route{
		{method: fiber.MethodGet, path: "/facilities/:facility/quote", tag: "tariffs",
			summary: "Price a stay with the garage's tariff engine: the same cents as the exit. Public facilities: anyone",
			access:  read, query: query, response: Quote{}, handler: a.quoteGet},
		{method: fiber.MethodPost, path: "/facilities/:facility/quote", tag: "tariffs",
			summary: "Price a stay with validations, a lost ticket or payments made, as the exit would",
			access:  read, request: QuoteRequest{}, response: Quote{}, handler: a.quotePost},
		{method: fiber.MethodGet, path: "/facilities/:facility/tariffs", tag: "tariffs", summary: "A facility's tariffs and zones' rates",
			access: read, response: Tariffs{}, handler: a.getTariffs},
		{method: fiber.MethodPut, path: "/facilities/:facility/tariffs", tag: "tariffs",
			summary: "Replace a facility's tariffs: JSON, or the garage's config file as application/yaml",
			access:  access{roles: managers, scoped: true}, request: Tariffs{}, response: Tariffs{}, handler: a.putTariffs},
	}
}

func (a *api) quoteGet(c *fiber.Ctx) error {
	ctx, cancel := opContext(c)
	defer cancel()
	f, err := a.readableFacilityScope(c, ctx, "facilities:read")
	if err != nil {
		return err
	}
	from, err := requiredTime(c, "from")
	if err != nil {
		return err
	}
	to, err := requiredTime(c, "to")
	if err != nil {
		return err
	}
	return a.quote(c, ctx, f, QuoteRequest{From: from, To: to, Zone: c.Query("zone"), Rate: c.Query("rate")})
}

func (a *api) quotePost(c *fiber.Ctx) error {
	ctx, cancel := opContext(c)
	defer cancel()
	// Visibility first: a hidden facility is 404 whatever the body.
	f, err := a.readableFacilityScope(c, ctx, "facilities:read")
	if err != nil {
		return err
	}
	var b QuoteRequest
	if err := decode(c, &b); err != nil {
		return err
	}
	return a.quote(c, ctx, f, b)
}

func (a *api) quote(c *fiber.Ctx, ctx context.Context, f cloud.Facility, b QuoteRequest) error {
	rate, q, err := a.db.Quote(ctx, f.ID, b.Zone, b.Rate, tariff.Input{Entry: b.From, Exit: b.To, LostTicket: b.LostTicket,
		Validations: b.Validations, Paid: b.Paid, PaidAt: b.PaidAt})
	if err != nil {
		return err
	}
	if q.Lines == nil {
		q.Lines = []tariff.Line{}
	}
	return c.JSON(Quote{Facility: f.ID, Zone: b.Zone, Rate: rate, From: b.From.UTC(), To: b.To.UTC(), Currency: q.Currency,
		Total: q.Total, Due: q.Due, Chargeable: time.Duration(q.Chargeable).String(), Capped: q.Capped, Lines: q.Lines})
}

func tariffsOut(t postgres.Tariffs) Tariffs {
	return Tariffs{Tariffs: t.Rates, Zones: t.ZoneRates, DefaultRate: t.DefaultRate, Version: t.Version, UpdatedAt: t.UpdatedAt}
}

func (a *api) getTariffs(c *fiber.Ctx) error {
	ctx, cancel := opContext(c)
	defer cancel()
	f, err := a.readableFacilityScope(c, ctx, "facilities:read")
	if err != nil {
		return err
	}
	t, err := a.db.Tariffs(ctx, f.ID)
	if cloud.ErrorCode(err) == cloud.ENOTFOUND {
		// None yet: an empty list, version 0 (quotes answer 404 until there are).
		return c.JSON(Tariffs{Tariffs: []tariff.Rate{}, Zones: map[string]string{}})
	}
	if err != nil {
		return err
	}
	return c.JSON(tariffsOut(t))
}

func (a *api) putTariffs(c *fiber.Ctx) error {
	ctx, cancel := opContext(c)
	defer cancel()
	id, err := facilityParam(c)
	if err != nil {
		return err
	}
	f, err := a.db.Facility(ctx, id)
	if err != nil {
		return err
	}
	var b Tariffs
	mt, _, _ := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if mt == "application/yaml" || mt == "application/x-yaml" || mt == "text/yaml" {
		var g garageFile
		if err := yaml.NewDecoder(bytes.NewReader(c.Body())).Decode(&g); err != nil {
			return malformed("the body is not a garage config file: " + firstLine(err.Error()))
		}
		b = Tariffs{Tariffs: g.Tariffs, Zones: map[string]string{}}
		for _, z := range g.Zones {
			if z.Rate != "" {
				b.Zones[z.ID] = z.Rate
			}
		}
		// As the garage's config loader does: rates take the file's currency and
		// time zone, else the facility's.
		f.Currency = cmpOr(g.Currency, f.Currency)
		f.Timezone = cmpOr(g.Timezone, f.Timezone)
		if fe := b.validate(); len(fe) > 0 {
			return invalid("the request has invalid fields", fe...)
		}
	} else if err := decode(c, &b); err != nil {
		return err
	}
	for i := range b.Tariffs {
		r := &b.Tariffs[i]
		r.Currency = cmpOr(r.Currency, f.Currency)
		r.Timezone = cmpOr(r.Timezone, f.Timezone)
	}
	t, err := a.db.SetTariffs(ctx, id, postgres.Tariffs{Rates: b.Tariffs, ZoneRates: b.Zones, DefaultRate: b.DefaultRate}, principal(c).Actor())
	if err != nil {
		return fieldFor(err, "tariffs")
	}
	a.audit(c, cloud.AuditEntry{Action: "tariffs.set", Target: "facility:" + id, Facility: id,
		Detail: map[string]any{"version": t.Version, "rates": len(t.Rates)}})
	return c.JSON(tariffsOut(t))
}

func cmpOr(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
