package config

import (
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// Defaults for keys a facility file may leave out (see docs/facility-config.md).
const (
	defaultTimezone    = "UTC"
	defaultCurrency    = "EUR"
	defaultCountSource = edge.CountLanes
	defaultFailMode    = edge.FailSecure
)

// defaultCaptureEvery is how often payments approved offline are offered to the
// acquirer: often enough that they settle soon after the link returns.
const defaultCaptureEvery = edge.Duration(30 * time.Second)

// defaultPolicies are the policies of a facility file without a policies
// section; each key left out of the section takes its value from here.
var defaultPolicies = edge.Policies{
	AntiPassback:     edge.PassbackSoft,
	PlateConfidence:  0.6,
	FuzzyPlates:      true,
	PlateVoteWindow:  edge.Duration(800 * time.Millisecond),
	CredentialWindow: edge.Duration(60 * time.Second),
	BarrierTimeout:   edge.Duration(3 * time.Second),
	BarrierRetries:   2,
	PassTimeout:      edge.Duration(30 * time.Second),
	StuckLoopAfter:   edge.Duration(5 * time.Minute),
	ExitGrace:        0,
}

// maxSpots bounds the spots a facility may expand to, so that a typo such as
// `to: 10000000` is reported instead of exhausting memory.
const maxSpots = 100_000

// applyDefaults fills in what the file left out. Policies whose key is
// absent (or null) take their default, so an explicit `fuzzy_plates: false`
// or `barrier_retries: 0` is kept.
func applyDefaults(c *collector, f *edge.Facility) {
	if f.Timezone == "" {
		f.Timezone = defaultTimezone
	}
	if f.Currency == "" {
		f.Currency = defaultCurrency
	}
	for i := range f.Zones {
		if f.Zones[i].CountSource == "" {
			f.Zones[i].CountSource = defaultCountSource
		}
	}
	for i := range f.Lanes {
		if f.Lanes[i].FailMode == "" {
			f.Lanes[i].FailMode = defaultFailMode
		}
	}

	p, d := &f.Policies, &defaultPolicies
	absent := func(key string) bool { return !c.present("policies." + key) }
	if p.AntiPassback == "" {
		p.AntiPassback = d.AntiPassback
	}
	if absent("plate_confidence") {
		p.PlateConfidence = d.PlateConfidence
	}
	if absent("fuzzy_plates") {
		p.FuzzyPlates = d.FuzzyPlates
	}
	if absent("plate_vote_window") {
		p.PlateVoteWindow = d.PlateVoteWindow
	}
	if absent("credential_window") {
		p.CredentialWindow = d.CredentialWindow
	}
	if absent("barrier_timeout") {
		p.BarrierTimeout = d.BarrierTimeout
	}
	if absent("barrier_retries") {
		p.BarrierRetries = d.BarrierRetries
	}
	if absent("pass_timeout") {
		p.PassTimeout = d.PassTimeout
	}
	if absent("stuck_loop_after") {
		p.StuckLoopAfter = d.StuckLoopAfter
	}
	if absent("exit_grace") {
		p.ExitGrace = d.ExitGrace
	}
	if f.Payments.CaptureEvery == 0 {
		f.Payments.CaptureEvery = defaultCaptureEvery
	}

	for i := range f.Permits {
		if f.Permits[i].MaxInside == 0 {
			f.Permits[i].MaxInside = 1
		}
	}

	// A tariff is priced in the garage's currency and, for its time-of-day
	// bands, on the garage's wall clock unless it says otherwise. An unknown
	// facility time zone is reported once, for the facility, not again for
	// every tariff.
	loc, tzErr := loadLocation(f.Timezone)
	for i := range f.Tariffs {
		r := &f.Tariffs[i]
		if r.Currency == "" {
			r.Currency = f.Currency
		}
		if r.Timezone == "" && tzErr == nil {
			r.Timezone = f.Timezone
		}
	}
	if tzErr == nil {
		localTimes(c, f, loc)
	}
}

// loadLocation loads a facility time zone. "Local" is refused: it is
// whatever the host says, and the lane controller and the cloud must agree.
func loadLocation(name string) (*time.Location, error) {
	if name == "Local" {
		return nil, fmt.Errorf(`"Local" depends on the host; name an IANA zone such as "Europe/Amsterdam"`)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q; use an IANA name such as \"Europe/Amsterdam\"", name)
	}
	return loc, nil
}

// localTimes re-reads the permit and reservation times written without a UTC
// offset (2026-01-31 or 2026-01-31 08:00:00) on the facility's wall clock;
// yaml.v3 reads them as UTC, which is an hour or two off for most garages.
func localTimes(c *collector, f *edge.Facility, loc *time.Location) {
	fix := func(path string, t *time.Time) {
		e, ok := c.index[path]
		if !ok || e.null || c.tainted(path) {
			return
		}
		for _, layout := range []string{"2006-1-2", "2006-1-2 15:4:5.999999999"} {
			if lt, err := time.ParseInLocation(layout, e.text, loc); err == nil {
				*t = lt
				return
			}
		}
	}
	for i := range f.Permits {
		p := elem("permits", i)
		fix(p+".from", &f.Permits[i].From)
		fix(p+".until", &f.Permits[i].Until)
	}
	for i := range f.Reservations {
		p := elem("reservations", i)
		fix(p+".from", &f.Reservations[i].From)
		fix(p+".until", &f.Reservations[i].Until)
	}
}

// expandSpots appends the spots of each zone's spot ranges to its Spots. It
// returns, for each zone and spot, the field path the spot came from: the
// spot itself, or the range that made it.
func expandSpots(c *collector, f *edge.Facility) [][]string {
	paths := make([][]string, len(f.Zones))
	total := 0
	for i := range f.Zones {
		total += len(f.Zones[i].Spots)
	}
	for i := range f.Zones {
		z := &f.Zones[i]
		zp := elem("zones", i)
		for j := range z.Spots {
			paths[i] = append(paths[i], elem(zp+".spots", j))
		}
		for j, r := range z.SpotRanges {
			rp := elem(zp+".spot_ranges", j)
			ok := true
			if r.From < 0 {
				c.add(rp+".from", fmt.Sprintf("must not be negative, got %d", r.From))
				ok = false
			}
			if r.To < r.From {
				c.add(rp+".to", fmt.Sprintf("must not be less than from (%d), got %d", r.From, r.To))
				ok = false
			}
			if r.Width < 0 || r.Width > 9 {
				c.add(rp+".width", fmt.Sprintf("must be 0 (no padding) to 9 digits, got %d", r.Width))
				ok = false
			}
			if !ok || c.tainted(rp) {
				continue
			}
			// Compare differences so that huge bounds cannot overflow.
			if r.To-r.From >= maxSpots-total {
				c.add(rp, fmt.Sprintf("%d to %d is more spots than the %d a facility may have", r.From, r.To, maxSpots))
				continue
			}
			features := slices.Clip(r.Features)
			z.Spots = slices.Grow(z.Spots, r.To-r.From+1)
			paths[i] = slices.Grow(paths[i], r.To-r.From+1)
			for k := r.From; k <= r.To; k++ {
				z.Spots = append(z.Spots, edge.Spot{ID: fmt.Sprintf("%s%0*d", r.Prefix, r.Width, k), Features: features})
				paths[i] = append(paths[i], rp)
			}
			total += r.To - r.From + 1
		}
	}
	return paths
}
