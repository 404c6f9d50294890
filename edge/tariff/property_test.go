package tariff_test

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge/tariff"
)

// mixedRate exercises everything at once: convenience time, a 20-minute
// increment, three tiers, a flat night band, a per-increment lunch band, a
// daily maximum and a lost-ticket fee, in a zone with DST.
func mixedRate() *tariff.Rate {
	return &tariff.Rate{
		ID: "mixed", Currency: "EUR", Timezone: "Europe/Amsterdam",
		FreeTime:  tariff.Duration(10 * m),
		Increment: tariff.Duration(20 * m),
		Tiers: []tariff.Tier{
			{Upto: tariff.Duration(1 * h), PerIncrement: 120},
			{Upto: tariff.Duration(4 * h), PerIncrement: 80},
			{PerIncrement: 60},
		},
		DailyMax: 1800,
		Bands: []tariff.Band{
			{Name: "Night", Start: clock(22, 0), End: clock(6, 0), Flat: 700},
			{Name: "Lunch", Start: clock(12, 0), End: clock(14, 0), PerIncrement: 50},
		},
		LostTicket: 4000,
	}
}

// TestProperties checks, over many random stays through 2026 (so across
// both DST changes), that the fee never falls as the exit gets later, that
// DailyMax bounds the fee per started period, and that lines add up.
func TestProperties(t *testing.T) {
	rates := []*tariff.Rate{cityRate(), nightFlatRate(), nightPerRate("Europe/Amsterdam"), hourlyAmsterdam(), mixedRate()}
	extras := []struct {
		name string
		in   tariff.Input
	}{
		{"plain", tariff.Input{}},
		{"validated", tariff.Input{Validations: []tariff.Validation{
			{Kind: tariff.ValidationFreeMinutes, Value: 30},
			{Kind: tariff.ValidationPercent, Value: 10},
			{Kind: tariff.ValidationAmount, Value: 50},
		}}},
		{"lost", tariff.Input{LostTicket: true}},
	}
	rng := rand.New(rand.NewPCG(2026, 1))
	year := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, r := range rates {
		mustCompile(t, r)
		for _, x := range extras {
			t.Run(r.ID+"/"+x.name, func(t *testing.T) {
				for range 60 {
					entry := year.Add(time.Duration(rng.Int64N(int64(365 * 24 * h))))
					stays := make([]time.Duration, 40)
					for i := range stays {
						stays[i] = time.Duration(rng.Int64N(int64(80 * h)))
					}
					slices.Sort(stays)
					prev := int64(-1)
					for _, stay := range stays {
						in := x.in
						in.Entry, in.Exit = entry, entry.Add(stay)
						q, err := r.Quote(in)
						if err != nil {
							t.Fatalf("Quote(%v from %v) error: %v", stay, entry, err)
						}
						if q.Total < prev {
							t.Fatalf("Quote(%v from %v).Total = %v; want >= %v (fee fell as the stay grew)", stay, entry, q.Total, prev)
						}
						prev = q.Total
						if r.DailyMax > 0 && !in.LostTicket {
							periods := (int64(q.Chargeable) + int64(24*h) - 1) / int64(24*h)
							if q.Total > r.DailyMax*periods {
								t.Fatalf("Quote(%v from %v).Total = %v; want <= %v (daily max %v x %d periods)",
									stay, entry, q.Total, r.DailyMax*periods, r.DailyMax, periods)
							}
						}
						if q.Due != q.Total {
							t.Fatalf("Quote(%v from %v).Due = %v; want Total %v with nothing paid", stay, entry, q.Due, q.Total)
						}
						checkLines(t, q)
					}
				}
			})
		}
	}
}
