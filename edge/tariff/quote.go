package tariff

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ValidationKind says how a Validation reduces the fee.
type ValidationKind string

// The validation kinds, applied in this order whatever order they are
// listed in: time first, then flat rate, then percent, then amount.
const (
	// ValidationFreeMinutes removes Value minutes from the start of the
	// chargeable stay before pricing.
	ValidationFreeMinutes ValidationKind = "free_minutes"
	// ValidationFlatRate caps the fee at Value minor units.
	ValidationFlatRate ValidationKind = "flat_rate"
	// ValidationPercent takes Value percent (0-100) off the fee; the
	// discount is rounded down to the minor unit.
	ValidationPercent ValidationKind = "percent"
	// ValidationAmount takes Value minor units off the fee.
	ValidationAmount ValidationKind = "amount"
)

// Validation is a merchant validation (a shop or cinema paying part of the
// stay) applied at exit. The fee never drops below zero.
type Validation struct {
	// Kind selects how Value is read.
	Kind ValidationKind `yaml:"kind" json:"kind"`
	// Value is minutes, minor units or percent depending on Kind.
	Value int64 `yaml:"value" json:"value"`
	// Merchant labels the validation on receipts.
	Merchant string `yaml:"merchant,omitempty" json:"merchant,omitempty"`
}

// Input is one stay to price.
type Input struct {
	// Entry is when the vehicle entered.
	Entry time.Time `yaml:"entry" json:"entry"`
	// Exit is when the vehicle leaves (or the time of a price quote).
	Exit time.Time `yaml:"exit" json:"exit"`
	// LostTicket makes the fee at least the rate's LostTicket fee.
	LostTicket bool `yaml:"lost_ticket,omitempty" json:"lost_ticket,omitempty"`
	// Validations are applied in kind order, see ValidationKind.
	Validations []Validation `yaml:"validations,omitempty" json:"validations,omitempty"`
	// Paid is what the driver has already paid, in minor units.
	Paid int64 `yaml:"paid,omitempty" json:"paid,omitempty"`
	// PaidAt is the last payment; zero if none. An exit no later than
	// PaidAt plus the rate's Grace owes nothing further.
	PaidAt time.Time `yaml:"paid_at,omitempty" json:"paid_at,omitzero"`
}

// Quote is the priced stay.
type Quote struct {
	// Currency is the rate's currency.
	Currency string `yaml:"currency" json:"currency"`
	// Total is the fee for the whole stay after validations and the
	// lost-ticket minimum.
	Total int64 `yaml:"total" json:"total"`
	// Due is Total minus Paid, never negative, and zero within the grace
	// period after a payment.
	Due int64 `yaml:"due" json:"due"`
	// Chargeable is the stay that was priced: the stay minus free-minutes
	// validations, or zero within the convenience time.
	Chargeable Duration `yaml:"chargeable" json:"chargeable"`
	// Capped reports that DailyMax lowered the fee of at least one period.
	Capped bool `yaml:"capped,omitempty" json:"capped,omitempty"`
	// Lines break Total down for receipts and kiosks; their amounts sum to
	// Total.
	Lines []Line `yaml:"lines" json:"lines"`
}

// Line is one row of a Quote's breakdown. Descriptions are plain ASCII so
// receipt printers can print them.
type Line struct {
	// Description says what the row is, such as "Day 1: 4 x 15m (first 1h)".
	Description string `yaml:"description" json:"description"`
	// Amount is in minor units; reductions are negative.
	Amount int64 `yaml:"amount" json:"amount"`
}

// Fee returns the fee for a stay from entry to exit with no validations,
// payments or lost ticket.
func (r *Rate) Fee(entry, exit time.Time) (int64, error) {
	q, err := r.Quote(Input{Entry: entry, Exit: exit})
	return q.Total, err
}

// Quote prices in under r. It fails, wrapping ErrInvalidRate or
// ErrInvalidInput, if r does not validate, the exit is before the entry, the
// stay exceeds MaxStay, or a validation is malformed. Quote does not modify
// r, so it is safe for concurrent use.
func (r *Rate) Quote(in Input) (Quote, error) {
	// Drop monotonic readings so a quote depends only on the wall times the
	// lane and the cloud both see.
	in.Entry, in.Exit, in.PaidAt = in.Entry.Round(0), in.Exit.Round(0), in.PaidAt.Round(0)
	if errs := r.check(); errs != nil {
		return Quote{}, fmt.Errorf("%w %q: %w", ErrInvalidRate, r.ID, errors.Join(errs...))
	}
	loc, err := r.location()
	if err != nil {
		return Quote{}, fmt.Errorf("%w %q: %w", ErrInvalidRate, r.ID, err)
	}
	if err := in.check(); err != nil {
		return Quote{}, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}

	q := Quote{Currency: r.Currency}
	stay := in.Exit.Sub(in.Entry)
	var fee int64
	if stay <= time.Duration(r.FreeTime) {
		q.Lines = append(q.Lines, Line{fmt.Sprintf("Convenience time: stay of %v within %v", Duration(stay), r.FreeTime), 0})
	} else {
		var free time.Duration
		for _, v := range in.Validations {
			if v.Kind == ValidationFreeMinutes {
				free = min(free+minutes(v.Value), MaxStay+day)
				q.Lines = append(q.Lines, Line{"Validation: " + Duration(minutes(v.Value)).String() + " free" + merchant(v), 0})
			}
		}
		chargeable := max(stay-free, 0)
		q.Chargeable = Duration(chargeable)
		// Free minutes come off the start of the stay, so tiers restart at
		// the first chargeable increment and bands see its real wall clock.
		fee, q.Capped, q.Lines = r.price(loc, in.Exit.Add(-chargeable), chargeable, q.Lines)
	}

	for _, v := range in.Validations {
		if v.Kind == ValidationFlatRate {
			cut := max(fee-v.Value, 0)
			fee -= cut
			q.Lines = append(q.Lines, Line{"Validation: flat rate" + merchant(v), -cut})
		}
	}
	for _, v := range in.Validations {
		if v.Kind == ValidationPercent {
			// Exact floor(fee*v/100) without overflowing for any fee.
			cut := fee/100*v.Value + fee%100*v.Value/100
			fee -= cut
			q.Lines = append(q.Lines, Line{fmt.Sprintf("Validation: %d%% off%s", v.Value, merchant(v)), -cut})
		}
	}
	for _, v := range in.Validations {
		if v.Kind == ValidationAmount {
			cut := min(v.Value, fee)
			fee -= cut
			q.Lines = append(q.Lines, Line{"Validation: amount off" + merchant(v), -cut})
		}
	}
	// The lost-ticket fee is a floor that validations cannot lower.
	if in.LostTicket {
		desc := "Lost ticket: minimum fee"
		if fee >= r.LostTicket {
			desc = "Lost ticket: stay fee exceeds minimum"
		}
		extra := max(r.LostTicket-fee, 0)
		fee += extra
		q.Lines = append(q.Lines, Line{desc, extra})
	}

	q.Total = fee
	if !in.PaidAt.IsZero() && !in.Exit.After(in.PaidAt.Add(time.Duration(r.Grace))) {
		q.Due = 0
	} else {
		q.Due = max(fee-in.Paid, 0)
	}
	return q, nil
}

// check reports what makes in unpriceable.
func (in *Input) check() error {
	var errs []error
	stay := in.Exit.Sub(in.Entry)
	switch {
	case in.Exit.Before(in.Entry):
		errs = append(errs, &FieldError{"exit", fmt.Sprintf("%v is before entry %v", in.Exit, in.Entry)})
	case stay > MaxStay: // Sub saturates, so absurd stays land here too
		errs = append(errs, &FieldError{"exit", fmt.Sprintf("stay of %v exceeds the %v the engine prices", Duration(stay), Duration(MaxStay))})
	}
	if in.Paid < 0 {
		errs = append(errs, &FieldError{"paid", fmt.Sprintf("must not be negative, got %d", in.Paid)})
	}
	for i, v := range in.Validations {
		switch v.Kind {
		case ValidationFreeMinutes, ValidationFlatRate, ValidationAmount:
		case ValidationPercent:
			if v.Value > 100 {
				errs = append(errs, &FieldError{elem("validations", i, "value"), fmt.Sprintf("percent must be 0-100, got %d", v.Value)})
			}
		default:
			errs = append(errs, &FieldError{elem("validations", i, "kind"), fmt.Sprintf("unknown kind %q", v.Kind)})
		}
		if v.Value < 0 {
			errs = append(errs, &FieldError{elem("validations", i, "value"), fmt.Sprintf("must not be negative, got %d", v.Value)})
		}
	}
	return errors.Join(errs...)
}

// minutes converts a free-minutes value, saturating well above MaxStay.
func minutes(v int64) time.Duration {
	if v > int64((MaxStay+day)/time.Minute) {
		return MaxStay + day
	}
	return time.Duration(v) * time.Minute
}

// merchant formats a validation's merchant for a receipt line.
func merchant(v Validation) string {
	if v.Merchant == "" {
		return ""
	}
	return " (" + v.Merchant + ")"
}

// price charges the chargeable stay starting at start, appending to lines.
// Increment k covers [start+k*inc, start+(k+1)*inc) and belongs to 24-hour
// period k/perDay. Its price comes from the band covering its start on the
// wall clock, else from the tier its offset k*inc from start has reached.
func (r *Rate) price(loc *time.Location, start time.Time, chargeable time.Duration, lines []Line) (fee int64, capped bool, _ []Line) {
	inc := time.Duration(r.Increment)
	n := int64((chargeable + inc - 1) / inc)
	perDay := int64(day / inc)
	incSec := int64(inc / time.Second)
	base := start.Unix()

	nt, nb := len(r.Tiers), len(r.Bands)
	buf := make([]int64, nt+3*nb)
	tierN, bandN, flatN, seen := buf[:nt], buf[nt:nt+nb], buf[nt+nb:nt+2*nb], buf[nt+2*nb:]
	for i := range seen {
		seen[i] = math.MinInt64 // wall-clock day of the last flat occurrence charged
	}
	wc := wallClock{loc: loc}
	tier := 0

	for p := int64(0); p*perDay < n; p++ {
		clear(tierN)
		clear(bandN)
		clear(flatN)
		for k, end := p*perDay, min(n, (p+1)*perDay); k < end; k++ {
			for tier < nt-1 && time.Duration(k)*inc >= time.Duration(r.Tiers[tier].Upto) {
				tier++
			}
			tod, d := wc.at(base + k*incSec)
			b := r.bandAt(tod)
			switch {
			case b < 0:
				tierN[tier]++
			case r.Bands[b].Flat > 0:
				// An occurrence is named by the wall-clock day it starts on;
				// the morning part of a midnight-crossing band belongs to the
				// previous day's occurrence.
				occ := d
				if r.Bands[b].crosses() && tod < int64(r.Bands[b].End)*60 {
					occ--
				}
				if occ > seen[b] {
					seen[b] = occ
					flatN[b]++
				}
			default:
				bandN[b]++
			}
		}

		var sum int64
		label := fmt.Sprintf("Day %d: ", p+1)
		for i, c := range tierN {
			if c > 0 {
				amt := mulSat(c, r.Tiers[i].PerIncrement)
				sum = addSat(sum, amt)
				lines = append(lines, Line{fmt.Sprintf("%s%d x %v%s", label, c, r.Increment, r.tierLabel(i)), amt})
			}
		}
		for i, c := range bandN {
			if c > 0 {
				amt := mulSat(c, r.Bands[i].PerIncrement)
				sum = addSat(sum, amt)
				lines = append(lines, Line{fmt.Sprintf("%s%d x %v (%s)", label, c, r.Increment, r.Bands[i].label()), amt})
			}
		}
		for i, c := range flatN {
			if c > 0 {
				amt := mulSat(c, r.Bands[i].Flat)
				sum = addSat(sum, amt)
				lines = append(lines, Line{fmt.Sprintf("%s%d x %s flat", label, c, r.Bands[i].label()), amt})
			}
		}
		if r.DailyMax > 0 && sum > r.DailyMax {
			lines = append(lines, Line{label + "daily maximum", r.DailyMax - sum})
			sum = r.DailyMax
			capped = true
		}
		fee = addSat(fee, sum)
	}
	return fee, capped, lines
}

// tierLabel describes tier i's range for receipt lines.
func (r *Rate) tierLabel(i int) string {
	switch {
	case len(r.Tiers) == 1:
		return ""
	case i == 0:
		return fmt.Sprintf(" (first %v)", r.Tiers[0].Upto)
	case i == len(r.Tiers)-1:
		return fmt.Sprintf(" (after %v)", r.Tiers[i-1].Upto)
	}
	return fmt.Sprintf(" (%v to %v)", r.Tiers[i-1].Upto, r.Tiers[i].Upto)
}

// bandAt returns the index of the band covering wall-clock second tod, or -1.
func (r *Rate) bandAt(tod int64) int {
	for i := range r.Bands {
		if r.Bands[i].covers(tod) {
			return i
		}
	}
	return -1
}

// wallClock converts Unix seconds to wall-clock time in loc, caching the
// current zone's offset and bounds so most conversions are arithmetic.
// Bands follow the wall clock, so across a DST change the clock skips or
// repeats an hour while elapsed time does not.
type wallClock struct {
	loc         *time.Location
	off, lo, hi int64
	ok          bool
}

// at returns the second of the wall-clock day and the wall-clock day number
// (days since 1970-01-01 on the wall calendar) at Unix second u.
func (w *wallClock) at(u int64) (tod, d int64) {
	if !w.ok || u < w.lo || u >= w.hi {
		t := time.Unix(u, 0).In(w.loc)
		_, off := t.Zone()
		zs, ze := t.ZoneBounds()
		w.off, w.lo, w.hi, w.ok = int64(off), math.MinInt64, math.MaxInt64, true
		if !zs.IsZero() {
			w.lo = zs.Unix()
		}
		if !ze.IsZero() {
			w.hi = ze.Unix()
		}
	}
	wall := u + w.off
	d = wall / 86400
	if wall%86400 < 0 {
		d--
	}
	return wall - d*86400, d
}

// addSat adds non-negative amounts, saturating instead of overflowing.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// mulSat multiplies non-negative amounts, saturating instead of overflowing.
func mulSat(a, b int64) int64 {
	if a != 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}
