package tariff

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// day is the length of a pricing period and of the wall-clock cycle.
const day = 24 * time.Hour

// MaxStay is the longest stay Quote prices. Longer stays (abandoned
// vehicles) are settled by the operator, and the bound keeps a quote's work
// and its arithmetic bounded.
const MaxStay = 366 * day

// ErrInvalidRate is wrapped by errors Quote returns for a rate that fails
// validation.
var ErrInvalidRate = errors.New("tariff: invalid rate")

// ErrInvalidInput is wrapped by errors Quote returns for an Input that
// cannot be priced, such as an exit before the entry.
var ErrInvalidInput = errors.New("tariff: invalid input")

// FieldError describes one problem with one field. Field uses the yaml key
// path, such as "tiers[1].upto", so operators can find it in the config file.
type FieldError struct {
	Field   string
	Problem string
}

// Error returns "field: problem".
func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// Rate is one tariff: how a stay between entry and exit is priced. It is
// decoded from the facility config (a list under `tariffs:`) and must pass
// Validate; call Compile once after decoding so the time zone is loaded
// before the rate is shared between goroutines.
type Rate struct {
	// ID identifies the rate in config and on receipts; required.
	ID string `yaml:"id" json:"id"`
	// Name is the operator-facing name, such as "Visitors".
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Currency is the ISO 4217 code all amounts are in; amounts are minor
	// units (cents).
	Currency string `yaml:"currency" json:"currency"`
	// Timezone is the IANA zone that bands are evaluated in, such as
	// "Europe/Amsterdam"; empty means UTC. Compile loads it into Location.
	Timezone string `yaml:"timezone,omitempty" json:"timezone,omitempty"`
	// Location is the loaded Timezone; nil means Timezone is loaded on each
	// Quote (slow) or, if Timezone is empty, UTC.
	Location *time.Location `yaml:"-" json:"-"`

	// FreeTime is the convenience time: stays up to and including it are
	// free. Longer stays are charged from entry.
	FreeTime Duration `yaml:"free_time,omitempty" json:"free_time,omitempty"`
	// Increment is the billing unit; a started increment is charged in full.
	// It must be at least 1m, whole seconds, and divide 24h evenly.
	Increment Duration `yaml:"increment" json:"increment"`
	// Tiers price increments outside bands by how long the car has been
	// parked since entry. The last tier must be unbounded (upto 0).
	Tiers []Tier `yaml:"tiers" json:"tiers"`
	// DailyMax caps the fee for each 24-hour period counted from entry;
	// 0 means no cap.
	DailyMax int64 `yaml:"daily_max,omitempty" json:"daily_max,omitempty"`
	// Bands are time-of-day bands that price the increments starting inside
	// them instead of the tiers. They must not overlap.
	Bands []Band `yaml:"bands,omitempty" json:"bands,omitempty"`
	// LostTicket is the minimum fee when the ticket is lost: the driver pays
	// the larger of this and the computed fee.
	LostTicket int64 `yaml:"lost_ticket,omitempty" json:"lost_ticket,omitempty"`
	// Grace is how long a driver who has paid may take to exit without a
	// further charge.
	Grace Duration `yaml:"grace,omitempty" json:"grace,omitempty"`
}

// Tier is one step of a rate's duration-based price.
type Tier struct {
	// Upto is the cumulative stay, measured from entry, up to which this tier
	// applies: an increment starting at offset o from entry uses the first
	// tier with o < Upto. 0 means unbounded and is allowed only on the last
	// tier. It must be a multiple of the rate's Increment.
	Upto Duration `yaml:"upto,omitempty" json:"upto,omitempty"`
	// PerIncrement is the price of one increment in this tier.
	PerIncrement int64 `yaml:"per_increment" json:"per_increment"`
}

// Band is a daily time-of-day window, such as a night rate. An increment
// whose start falls in [Start, End) on the wall clock is priced by the band;
// End <= Start means the band crosses midnight.
type Band struct {
	// Name labels the band on receipts, such as "Night".
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Start is the wall-clock time the band begins (inclusive).
	Start Clock `yaml:"start" json:"start"`
	// End is the wall-clock time the band ends (exclusive).
	End Clock `yaml:"end" json:"end"`
	// Flat, if positive, is charged once for each occurrence of the band the
	// stay enters; increments inside it then cost nothing more.
	Flat int64 `yaml:"flat,omitempty" json:"flat,omitempty"`
	// PerIncrement prices each increment starting inside the band. Set
	// either Flat or PerIncrement; both zero makes the band free.
	PerIncrement int64 `yaml:"per_increment,omitempty" json:"per_increment,omitempty"`
}

// crosses reports whether b wraps past midnight.
func (b *Band) crosses() bool { return b.End <= b.Start }

// covers reports whether the wall-clock second-of-day tod lies in b.
func (b *Band) covers(tod int64) bool {
	s, e := int64(b.Start)*60, int64(b.End)*60
	if b.crosses() {
		return tod >= s || tod < e
	}
	return tod >= s && tod < e
}

// label names b for receipt lines.
func (b *Band) label() string {
	if b.Name != "" {
		return fmt.Sprintf("%s %s-%s", b.Name, b.Start, b.End)
	}
	return fmt.Sprintf("band %s-%s", b.Start, b.End)
}

// Validate reports every problem with r, joined with errors.Join, each as a
// *FieldError naming the yaml key. It loads Timezone to check it but does not
// modify r.
func (r *Rate) Validate() error {
	errs := r.check()
	if _, err := r.location(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Compile validates r and stores the loaded time zone in Location so that
// Quote need not load it. Call it once before sharing r between goroutines;
// Quote never modifies r.
func (r *Rate) Compile() error {
	if err := r.Validate(); err != nil {
		return err
	}
	loc, _ := r.location()
	r.Location = loc
	return nil
}

// location resolves the zone bands are evaluated in. "Local" is refused
// because it differs between the lane controller and the cloud, which must
// agree to the cent.
func (r *Rate) location() (*time.Location, error) {
	switch {
	case r.Location == time.Local || r.Timezone == "Local":
		return nil, &FieldError{"timezone", `"Local" depends on the host; name an IANA zone such as "Europe/Amsterdam"`}
	case r.Location != nil:
		if r.Timezone != "" && r.Timezone != r.Location.String() {
			return nil, &FieldError{"timezone", fmt.Sprintf("%q does not match the loaded location %q", r.Timezone, r.Location)}
		}
		return r.Location, nil
	case r.Timezone == "" || r.Timezone == "UTC":
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(r.Timezone)
	if err != nil {
		return nil, &FieldError{"timezone", fmt.Sprintf("unknown time zone %q", r.Timezone)}
	}
	return loc, nil
}

// check validates everything except the time zone. Quote calls it on every
// quote, so it allocates only when it finds a problem.
func (r *Rate) check() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{field, fmt.Sprintf(format, args...)})
	}
	if strings.TrimSpace(r.ID) == "" {
		add("id", "required")
	}
	if !isCurrency(r.Currency) {
		add("currency", "must be a three-letter ISO 4217 code such as EUR, got %q", r.Currency)
	}
	if r.FreeTime < 0 {
		add("free_time", "must not be negative, got %v", r.FreeTime)
	}
	inc := time.Duration(r.Increment)
	incOK := false
	switch {
	case inc == 0:
		add("increment", "required, for example 15m")
	case inc < time.Minute:
		add("increment", "must be at least 1m, got %v", r.Increment)
	case inc%time.Second != 0 || day%inc != 0:
		add("increment", "must be whole seconds and divide 24h evenly, got %v", r.Increment)
	default:
		incOK = true
	}
	if len(r.Tiers) == 0 {
		add("tiers", "at least one tier is required")
	}
	var prev Duration
	for i := range r.Tiers {
		t := &r.Tiers[i]
		last := i == len(r.Tiers)-1
		switch {
		case t.Upto < 0:
			add(elem("tiers", i, "upto"), "must not be negative, got %v", t.Upto)
		case last && t.Upto != 0:
			add(elem("tiers", i, "upto"), "the last tier must be unbounded (0 or omitted), got %v", t.Upto)
		case !last && t.Upto == 0:
			add(elem("tiers", i, "upto"), "only the last tier may be unbounded")
		case !last && t.Upto <= prev:
			add(elem("tiers", i, "upto"), "must be greater than the previous tier's %v, got %v", prev, t.Upto)
		case !last && incOK && time.Duration(t.Upto)%inc != 0:
			add(elem("tiers", i, "upto"), "must be a multiple of increment %v, got %v", r.Increment, t.Upto)
		}
		if !last && t.Upto > prev {
			prev = t.Upto
		}
		if t.PerIncrement < 0 {
			add(elem("tiers", i, "per_increment"), "must not be negative, got %d", t.PerIncrement)
		}
	}
	if r.DailyMax < 0 {
		add("daily_max", "must not be negative, got %d", r.DailyMax)
	}
	if r.LostTicket < 0 {
		add("lost_ticket", "must not be negative, got %d", r.LostTicket)
	}
	if r.Grace < 0 {
		add("grace", "must not be negative, got %v", r.Grace)
	}
	for i := range r.Bands {
		b := &r.Bands[i]
		if !b.Start.valid() {
			add(elem("bands", i, "start"), "must be 00:00-23:59, got %v", b.Start)
		}
		if !b.End.valid() {
			add(elem("bands", i, "end"), "must be 00:00-23:59, got %v", b.End)
		}
		if b.Start == b.End {
			add(elem("bands", i, "end"), "must differ from start %v", b.Start)
		}
		if b.Flat < 0 {
			add(elem("bands", i, "flat"), "must not be negative, got %d", b.Flat)
		}
		if b.PerIncrement < 0 {
			add(elem("bands", i, "per_increment"), "must not be negative, got %d", b.PerIncrement)
		}
		if b.Flat > 0 && b.PerIncrement > 0 {
			add(elem("bands", i, "flat"), "set either flat or per_increment, not both")
		}
		for j := range i {
			if overlap(&r.Bands[j], b) {
				add(elem("bands", i, ""), "overlaps bands[%d] (%v-%v)", j, r.Bands[j].Start, r.Bands[j].End)
			}
		}
	}
	return errs
}

// elem formats a field path such as "tiers[1].upto".
func elem(list string, i int, field string) string {
	if field == "" {
		return fmt.Sprintf("%s[%d]", list, i)
	}
	return fmt.Sprintf("%s[%d].%s", list, i, field)
}

// isCurrency reports whether s looks like an ISO 4217 code.
func isCurrency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := range len(s) {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// overlap reports whether two bands share any minute of the day. Bands
// crossing midnight are split into two same-day spans.
func overlap(a, b *Band) bool {
	as, bs := spans(a), spans(b)
	for _, x := range as {
		for _, y := range bs {
			if x[0] < x[1] && y[0] < y[1] && x[0] < y[1] && y[0] < x[1] {
				return true
			}
		}
	}
	return false
}

// spans returns b as up to two [start, end) minute ranges within one day.
func spans(b *Band) [2][2]int {
	s, e := int(b.Start), int(b.End)
	if e <= s {
		return [2][2]int{{s, minutesPerDay}, {0, e}}
	}
	return [2][2]int{{s, e}, {0, 0}}
}
