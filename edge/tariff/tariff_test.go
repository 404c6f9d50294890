package tariff_test

import (
	"errors"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // DST cases must not depend on the host's zoneinfo

	"github.com/gatehouse-parking/gatehouse/edge/tariff"
)

const (
	m = time.Minute
	h = time.Hour
)

// cityRate: 15 min convenience time, 15 min increments, 1.00 for the first
// hour, 1.50 up to 3 h, 2.00 after, capped at 20.00 per 24 h.
func cityRate() *tariff.Rate {
	return &tariff.Rate{
		ID: "city", Name: "City centre", Currency: "EUR",
		FreeTime:  tariff.Duration(15 * m),
		Increment: tariff.Duration(15 * m),
		Tiers: []tariff.Tier{
			{Upto: tariff.Duration(1 * h), PerIncrement: 100},
			{Upto: tariff.Duration(3 * h), PerIncrement: 150},
			{PerIncrement: 200},
		},
		DailyMax:   2000,
		LostTicket: 2500,
		Grace:      tariff.Duration(15 * m),
	}
}

// nightFlatRate: 2.00 per 30 min, but 5.00 flat for each night 22:00-06:00.
func nightFlatRate() *tariff.Rate {
	return &tariff.Rate{
		ID: "night-flat", Currency: "EUR",
		Increment: tariff.Duration(30 * m),
		Tiers:     []tariff.Tier{{PerIncrement: 200}},
		Bands:     []tariff.Band{{Name: "Night", Start: clock(22, 0), End: clock(6, 0), Flat: 500}},
	}
}

// nightPerRate: 1.00 per 15 min, 0.25 per 15 min from 23:00 to 07:00.
func nightPerRate(tz string) *tariff.Rate {
	return &tariff.Rate{
		ID: "night-per", Currency: "EUR", Timezone: tz,
		Increment: tariff.Duration(15 * m),
		Tiers:     []tariff.Tier{{PerIncrement: 100}},
		Bands:     []tariff.Band{{Name: "Night", Start: clock(23, 0), End: clock(7, 0), PerIncrement: 25}},
	}
}

// hourlyAmsterdam: 1.00 per hour, max 15.00 per 24 h, in Europe/Amsterdam.
func hourlyAmsterdam() *tariff.Rate {
	return &tariff.Rate{
		ID: "hourly", Currency: "EUR", Timezone: "Europe/Amsterdam",
		Increment: tariff.Duration(h),
		Tiers:     []tariff.Tier{{PerIncrement: 100}},
		DailyMax:  1500,
	}
}

func clock(hh, mm int) tariff.Clock { return tariff.Clock(hh*60 + mm) }

func mustCompile(t testing.TB, r *tariff.Rate) *tariff.Rate {
	t.Helper()
	if err := r.Compile(); err != nil {
		t.Fatalf("Compile(%s) = %v", r.ID, err)
	}
	return r
}

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// June 2026 has no DST change; day 0 is Monday 1 June, 00:00 UTC.
func utc(day, hh, mm int) time.Time { return time.Date(2026, 6, 1+day, hh, mm, 0, 0, time.UTC) }

// checkLines verifies the receipt breakdown adds up to the total.
func checkLines(t *testing.T, q tariff.Quote) {
	t.Helper()
	var sum int64
	for _, l := range q.Lines {
		sum += l.Amount
	}
	if sum != q.Total {
		t.Errorf("lines sum to %d, Total = %d; lines: %+v", sum, q.Total, q.Lines)
	}
}

func TestFee(t *testing.T) {
	ams := mustLoad(t, "Europe/Amsterdam")
	city := mustCompile(t, cityRate())
	flat := mustCompile(t, nightFlatRate())
	per := mustCompile(t, nightPerRate(""))
	perAms := mustCompile(t, nightPerRate("Europe/Amsterdam"))
	hourly := mustCompile(t, hourlyAmsterdam())
	start := utc(0, 8, 0)

	tests := []struct {
		name        string
		rate        *tariff.Rate
		entry, exit time.Time
		want        int64
		capped      bool
	}{
		// city: tiers 100 (<1h), 150 (<3h), 200 (after) per 15 min.
		{"zero stay", city, start, start, 0, false},
		{"exactly convenience time", city, start, start.Add(15 * m), 0, false},
		// 15m1s > 15m, charged from entry: 2 increments x 100 = 200.
		{"1s over convenience time", city, start, start.Add(15*m + time.Second), 200, false},
		// 31m -> ceil(31/15) = 3 increments x 100 = 300.
		{"partial increment rounds up", city, start, start.Add(31 * m), 300, false},
		// 4 x 100 = 400.
		{"whole first tier", city, start, start.Add(h), 400, false},
		// 4 x 100 + 1 x 150 = 550.
		{"second tier starts", city, start, start.Add(h + m), 550, false},
		// 4 x 100 + 8 x 150 = 1600.
		{"end of second tier", city, start, start.Add(3 * h), 1600, false},
		// 1600 + 1 x 200 = 1800.
		{"unbounded last tier", city, start, start.Add(3*h + 15*m), 1800, false},
		// 1600 + 2 x 200 = 2000 = daily max, nothing cut.
		{"exactly daily max", city, start, start.Add(3*h + 30*m), 2000, false},
		// 1600 + 3 x 200 = 2200, capped to 2000.
		{"over daily max", city, start, start.Add(3*h + 45*m), 2000, true},
		// 400 + 1200 + 84 x 200 = 18400, capped to 2000.
		{"full day capped", city, start, start.Add(24 * h), 2000, true},
		// Day 1 capped 2000; day 2 has one increment at 200.
		{"second period starts", city, start, start.Add(24*h + m), 2200, true},
		// 2000 + 2000 + day 3: 8 x 200 = 1600.
		{"two and a bit days", city, start, start.Add(50 * h), 5600, true},
		// 3 x 2000.
		{"three full days", city, start, start.Add(72 * h), 6000, true},

		// nightFlat: 200 per 30 min, 500 once per night 22:00-06:00.
		// 20:00-21:30 4 x 200, 22:00-05:30 in band -> 500, 06:00-07:30 4 x 200.
		{"flat night band crossing midnight", flat, utc(0, 20, 0), utc(1, 8, 0), 2100, false},
		// Day 1 (20:00-20:00): 800 + 500 + 28 x 200 = 6900.
		// Day 2 (20:00-23:00): 800 + second night 500 = 1300. Total 8200.
		{"flat band twice over two nights", flat, utc(0, 20, 0), utc(1, 23, 0), 8200, false},
		// 05:00, 05:30 are in the night that began yesterday -> 500;
		// 06:00-21:30 32 x 200 = 6400; 22:00 starts tonight's night -> 500.
		{"two flat occurrences in one period", flat, utc(0, 5, 0), utc(0, 23, 0), 7400, false},
		// Entirely inside one night: 500 however many increments.
		{"flat band only", flat, utc(0, 23, 0), utc(1, 5, 0), 500, false},

		// nightPer: 100 per 15 min, 25 per 15 min 23:00-07:00.
		// 22:00-23:00 4 x 100, 23:00-07:00 32 x 25, 07:00-08:00 4 x 100.
		{"per-increment night band", per, utc(0, 22, 0), utc(1, 8, 0), 1600, false},

		// Spring forward, Sun 29 Mar 2026 02:00 CET -> 03:00 CEST: 9 h elapsed
		// = 36 increments. 22:00-23:00 4 x 100; 23:00-02:00 12 and
		// 03:00-07:00 16 band increments = 28 x 25 = 700; 07:00-08:00 4 x 100.
		{"DST spring forward", perAms,
			time.Date(2026, 3, 28, 22, 0, 0, 0, ams), time.Date(2026, 3, 29, 8, 0, 0, 0, ams), 1500, false},
		// Fall back, Sun 25 Oct 2026 03:00 CEST -> 02:00 CET: 11 h elapsed
		// = 44 increments: 4 x 100 + (16 + 20) x 25 + 4 x 100 = 1700.
		{"DST fall back", perAms,
			time.Date(2026, 10, 24, 22, 0, 0, 0, ams), time.Date(2026, 10, 25, 8, 0, 0, 0, ams), 1700, false},
		// 12:00 CET to 13:00 CEST is 24 h elapsed: one period,
		// 24 x 100 = 2400 capped to 1500.
		{"period is 24 elapsed hours across DST", hourly,
			time.Date(2026, 3, 28, 12, 0, 0, 0, ams), time.Date(2026, 3, 29, 13, 0, 0, 0, ams), 1500, true},
		// One minute more starts period 2: 1500 + 100.
		{"second period across DST", hourly,
			time.Date(2026, 3, 28, 12, 0, 0, 0, ams), time.Date(2026, 3, 29, 13, 1, 0, 0, ams), 1600, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.rate.Fee(tt.entry, tt.exit)
			if err != nil {
				t.Fatalf("Fee(%v, %v) error: %v", tt.entry, tt.exit, err)
			}
			if got != tt.want {
				t.Errorf("Fee(%v) = %v; want %v", tt.exit.Sub(tt.entry), got, tt.want)
			}
			q, err := tt.rate.Quote(tariff.Input{Entry: tt.entry, Exit: tt.exit})
			if err != nil {
				t.Fatal(err)
			}
			if q.Capped != tt.capped {
				t.Errorf("Quote(%v).Capped = %v; want %v", tt.exit.Sub(tt.entry), q.Capped, tt.capped)
			}
			checkLines(t, q)
		})
	}
}

func TestQuote(t *testing.T) {
	city := mustCompile(t, cityRate())
	start := utc(0, 8, 0)
	v := func(k tariff.ValidationKind, n int64) tariff.Validation { return tariff.Validation{Kind: k, Value: n} }

	tests := []struct {
		name       string
		in         tariff.Input
		total, due int64
		chargeable time.Duration
	}{
		// 30 min costs 200, the lost-ticket fee 2500 is higher.
		{"lost ticket short stay", tariff.Input{Entry: start, Exit: start.Add(30 * m), LostTicket: true}, 2500, 2500, 30 * m},
		// 3 days cost 6000 > 2500.
		{"lost ticket long stay", tariff.Input{Entry: start, Exit: start.Add(72 * h), LostTicket: true}, 6000, 6000, 72 * h},
		{"lost ticket within convenience time", tariff.Input{Entry: start, Exit: start.Add(10 * m), LostTicket: true}, 2500, 2500, 0},
		// 3h = 1600, 50% -> 800, lost-ticket floor -> 2500.
		{"lost ticket not lowered by validation", tariff.Input{Entry: start, Exit: start.Add(3 * h), LostTicket: true,
			Validations: []tariff.Validation{v(tariff.ValidationPercent, 50)}}, 2500, 2500, 3 * h},

		// 2h - 60 min = 1h chargeable = 4 x 100.
		{"free minutes", tariff.Input{Entry: start, Exit: start.Add(2 * h),
			Validations: []tariff.Validation{v(tariff.ValidationFreeMinutes, 60)}}, 400, 400, h},
		// Two 30 min validations add up: same as above.
		{"free minutes add up", tariff.Input{Entry: start, Exit: start.Add(2 * h),
			Validations: []tariff.Validation{v(tariff.ValidationFreeMinutes, 30), v(tariff.ValidationFreeMinutes, 30)}}, 400, 400, h},
		{"free minutes exceed stay", tariff.Input{Entry: start, Exit: start.Add(90 * m),
			Validations: []tariff.Validation{v(tariff.ValidationFreeMinutes, 120)}}, 0, 0, 0},
		// 2h = 4 x 100 + 4 x 150 = 1000; minus 300.
		{"amount", tariff.Input{Entry: start, Exit: start.Add(2 * h),
			Validations: []tariff.Validation{v(tariff.ValidationAmount, 300)}}, 700, 700, 2 * h},
		{"amount exceeds fee", tariff.Input{Entry: start, Exit: start.Add(2 * h),
			Validations: []tariff.Validation{v(tariff.ValidationAmount, 5000)}}, 0, 0, 2 * h},
		// 1000 - 25% = 750.
		{"percent", tariff.Input{Entry: start, Exit: start.Add(2 * h),
			Validations: []tariff.Validation{v(tariff.ValidationPercent, 25)}}, 750, 750, 2 * h},
		// 16 min = 200; 33% = 66 (rounded down) -> 134.
		{"percent rounds discount down", tariff.Input{Entry: start, Exit: start.Add(16 * m),
			Validations: []tariff.Validation{v(tariff.ValidationPercent, 33)}}, 134, 134, 16 * m},
		// 3h = 1600, flat rate 500.
		{"flat rate", tariff.Input{Entry: start, Exit: start.Add(3 * h),
			Validations: []tariff.Validation{v(tariff.ValidationFlatRate, 500)}}, 500, 500, 3 * h},
		{"flat rate above fee", tariff.Input{Entry: start, Exit: start.Add(2 * h),
			Validations: []tariff.Validation{v(tariff.ValidationFlatRate, 5000)}}, 1000, 1000, 2 * h},
		// Listed backwards, applied time -> flat -> percent -> amount:
		// 3h - 60 min = 2h = 1000; flat 800; 50% -> 400; -100 -> 300.
		{"all kinds in fixed order", tariff.Input{Entry: start, Exit: start.Add(3 * h),
			Validations: []tariff.Validation{
				v(tariff.ValidationAmount, 100), v(tariff.ValidationPercent, 50),
				v(tariff.ValidationFlatRate, 800), v(tariff.ValidationFreeMinutes, 60),
			}}, 300, 300, 2 * h},

		// Paid 1000 at 1h50m; exit at 2h is within the 15 min grace.
		{"paid, exit within grace", tariff.Input{Entry: start, Exit: start.Add(2 * h),
			Paid: 1000, PaidAt: start.Add(110 * m)}, 1000, 0, 2 * h},
		// Exit exactly at the end of grace (2h05m, 9 increments = 1150) owes nothing.
		{"paid, exit at end of grace", tariff.Input{Entry: start, Exit: start.Add(125 * m),
			Paid: 1000, PaidAt: start.Add(110 * m)}, 1150, 0, 125 * m},
		// Exit at 2h10m, after grace: 9 increments = 4 x 100 + 5 x 150 = 1150; 150 due.
		{"paid, exit after grace", tariff.Input{Entry: start, Exit: start.Add(130 * m),
			Paid: 1000, PaidAt: start.Add(110 * m)}, 1150, 150, 130 * m},
		{"part paid without payment time", tariff.Input{Entry: start, Exit: start.Add(2 * h), Paid: 500}, 1000, 500, 2 * h},
		{"overpaid", tariff.Input{Entry: start, Exit: start.Add(2 * h), Paid: 2000}, 1000, 0, 2 * h},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := city.Quote(tt.in)
			if err != nil {
				t.Fatalf("Quote(%+v) error: %v", tt.in, err)
			}
			if q.Total != tt.total || q.Due != tt.due || time.Duration(q.Chargeable) != tt.chargeable {
				t.Errorf("Quote(%v) = total %v, due %v, chargeable %v; want %v, %v, %v",
					tt.in.Exit.Sub(tt.in.Entry), q.Total, q.Due, q.Chargeable, tt.total, tt.due, tt.chargeable)
			}
			if q.Currency != "EUR" {
				t.Errorf("Quote(%v).Currency = %q; want EUR", tt.in.Exit.Sub(tt.in.Entry), q.Currency)
			}
			checkLines(t, q)
		})
	}
}

func TestQuoteLines(t *testing.T) {
	r := mustCompile(t, cityRate())
	start := utc(0, 8, 0)
	q, err := r.Quote(tariff.Input{Entry: start, Exit: start.Add(3*h + 45*m),
		Validations: []tariff.Validation{{Kind: tariff.ValidationAmount, Value: 500, Merchant: "Cinema"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []tariff.Line{
		{"Day 1: 4 x 15m (first 1h)", 400},
		{"Day 1: 8 x 15m (1h to 3h)", 1200},
		{"Day 1: 3 x 15m (after 3h)", 600},
		{"Day 1: daily maximum", -200},
		{"Validation: amount off (Cinema)", -500},
	}
	if len(q.Lines) != len(want) {
		t.Fatalf("Quote(3h45m).Lines = %+v; want %+v", q.Lines, want)
	}
	for i := range want {
		if q.Lines[i] != want[i] {
			t.Errorf("Quote(3h45m).Lines[%d] = %+v; want %+v", i, q.Lines[i], want[i])
		}
	}
}

func TestQuoteErrors(t *testing.T) {
	start := utc(0, 8, 0)
	tests := []struct {
		name  string
		rate  *tariff.Rate
		in    tariff.Input
		is    error
		field string
	}{
		{"exit before entry", cityRate(), tariff.Input{Entry: start, Exit: start.Add(-time.Second)}, tariff.ErrInvalidInput, "exit"},
		{"stay too long", cityRate(), tariff.Input{Entry: start, Exit: start.Add(tariff.MaxStay + time.Second)}, tariff.ErrInvalidInput, "exit"},
		{"zero entry", cityRate(), tariff.Input{Exit: start}, tariff.ErrInvalidInput, "exit"},
		{"negative paid", cityRate(), tariff.Input{Entry: start, Exit: start, Paid: -1}, tariff.ErrInvalidInput, "paid"},
		{"unknown validation", cityRate(), tariff.Input{Entry: start, Exit: start,
			Validations: []tariff.Validation{{Kind: "coupon", Value: 1}}}, tariff.ErrInvalidInput, "validations[0].kind"},
		{"percent over 100", cityRate(), tariff.Input{Entry: start, Exit: start,
			Validations: []tariff.Validation{{Kind: tariff.ValidationPercent, Value: 101}}}, tariff.ErrInvalidInput, "validations[0].value"},
		{"invalid rate", &tariff.Rate{ID: "x"}, tariff.Input{Entry: start, Exit: start}, tariff.ErrInvalidRate, "increment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.rate.Quote(tt.in)
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.field+":") {
				t.Errorf("Quote(%+v) error = %v; want %v mentioning %q", tt.in, err, tt.is, tt.field)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(r *tariff.Rate)
		fields []string // each must appear as "field:"; none means valid
	}{
		{"city is valid", func(*tariff.Rate) {}, nil},
		{"night flat is valid", func(r *tariff.Rate) { *r = *nightFlatRate() }, nil},
		{"Amsterdam is valid", func(r *tariff.Rate) { *r = *nightPerRate("Europe/Amsterdam") }, nil},
		{"free band is valid", func(r *tariff.Rate) {
			r.Bands = []tariff.Band{{Start: clock(0, 0), End: clock(6, 0)}}
		}, nil},
		{"many problems at once", func(r *tariff.Rate) {
			r.ID = ""
			r.Currency = "euro"
			r.Timezone = "Mars/Olympus_Mons"
			r.Increment = tariff.Duration(7 * m) // 1440/7 is not whole
			r.DailyMax = -1
			r.Bands = []tariff.Band{{Start: clock(22, 0), End: clock(6, 0), Flat: 500, PerIncrement: 10}}
		}, []string{"id", "currency", "timezone", "increment", "daily_max", "bands[0].flat"}},
		{"tiers out of order", func(r *tariff.Rate) {
			r.Tiers = []tariff.Tier{
				{Upto: tariff.Duration(3 * h), PerIncrement: 100},
				{Upto: tariff.Duration(1 * h), PerIncrement: -5},
				{Upto: tariff.Duration(4 * h), PerIncrement: 200},
			}
		}, []string{"tiers[1].upto", "tiers[1].per_increment", "tiers[2].upto"}},
		{"tier not a multiple of increment", func(r *tariff.Rate) {
			r.Tiers[0].Upto = tariff.Duration(50 * m)
		}, []string{"tiers[0].upto"}},
		{"no tiers, no increment", func(r *tariff.Rate) {
			r.Tiers, r.Increment = nil, 0
		}, []string{"tiers", "increment"}},
		{"sub-minute increment", func(r *tariff.Rate) { r.Increment = tariff.Duration(30 * time.Second) }, []string{"increment"}},
		{"negative durations and fees", func(r *tariff.Rate) {
			r.FreeTime, r.Grace, r.LostTicket = -1, -1, -1
		}, []string{"free_time", "grace", "lost_ticket"}},
		{"bad bands", func(r *tariff.Rate) {
			r.Bands = []tariff.Band{
				{Start: clock(22, 0), End: clock(6, 0)},
				{Start: clock(5, 0), End: clock(9, 0)}, // overlaps the night
				{Start: clock(12, 0), End: clock(12, 0)},
				{Start: 1440, End: -1},
			}
		}, []string{"bands[1]", "bands[2].end", "bands[3].start", "bands[3].end"}},
		{"host-local zone refused", func(r *tariff.Rate) { r.Timezone = "Local" }, []string{"timezone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cityRate()
			tt.mutate(r)
			err := r.Validate()
			if len(tt.fields) == 0 {
				if err != nil {
					t.Errorf("Validate() = %v; want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil; want errors for %v", tt.fields)
			}
			for _, f := range tt.fields {
				if !strings.Contains(err.Error(), f+":") {
					t.Errorf("Validate() = %v; want a problem with %s", err, f)
				}
			}
			if n := len(strings.Split(err.Error(), "\n")); n < len(tt.fields) {
				t.Errorf("Validate() reported %d problems; want at least %d", n, len(tt.fields))
			}
			var fe *tariff.FieldError
			if !errors.As(err, &fe) {
				t.Errorf("Validate() = %T; want it to wrap *tariff.FieldError", err)
			}
		})
	}
}

func TestCompile(t *testing.T) {
	r := nightPerRate("Europe/Amsterdam")
	if err := r.Compile(); err != nil {
		t.Fatal(err)
	}
	if got := r.Location.String(); got != "Europe/Amsterdam" {
		t.Errorf("Compile() Location = %q; want Europe/Amsterdam", got)
	}
	// A Location set in code without Timezone is used as is.
	r2 := nightPerRate("")
	r2.Location = r.Location
	if err := r2.Validate(); err != nil {
		t.Errorf("Validate() with Location only = %v; want nil", err)
	}
	r2.Timezone = "Europe/Paris"
	if err := r2.Validate(); err == nil || !strings.Contains(err.Error(), "timezone:") {
		t.Errorf("Validate() with mismatched Location = %v; want timezone error", err)
	}
	// An uncompiled rate loads its zone per quote and agrees with a compiled one.
	in := tariff.Input{Entry: time.Date(2026, 3, 28, 22, 0, 0, 0, time.UTC), Exit: time.Date(2026, 3, 29, 9, 0, 0, 0, time.UTC)}
	a, errA := nightPerRate("Europe/Amsterdam").Quote(in)
	b, errB := r.Quote(in)
	if errA != nil || errB != nil || a.Total != b.Total {
		t.Errorf("Quote uncompiled = %v, %v; compiled = %v, %v", a.Total, errA, b.Total, errB)
	}
}
