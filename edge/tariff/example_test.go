package tariff_test

import (
	"fmt"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge/tariff"
)

func ExampleRate_Quote() {
	r := &tariff.Rate{
		ID: "visitors", Currency: "EUR", Timezone: "Europe/Amsterdam",
		FreeTime:  tariff.Duration(15 * time.Minute),
		Increment: tariff.Duration(15 * time.Minute),
		Tiers: []tariff.Tier{
			{Upto: tariff.Duration(time.Hour), PerIncrement: 100},
			{PerIncrement: 150},
		},
		DailyMax: 2500,
		Bands:    []tariff.Band{{Name: "Night", Start: 22 * 60, End: 6 * 60, Flat: 500}},
		Grace:    tariff.Duration(15 * time.Minute),
	}
	if err := r.Compile(); err != nil {
		panic(err)
	}
	entry := time.Date(2026, 6, 5, 20, 40, 0, 0, r.Location)
	q, err := r.Quote(tariff.Input{
		Entry:       entry,
		Exit:        entry.Add(2*time.Hour + 5*time.Minute),
		Validations: []tariff.Validation{{Kind: tariff.ValidationAmount, Value: 200, Merchant: "Cinema"}},
	})
	if err != nil {
		panic(err)
	}
	for _, l := range q.Lines {
		fmt.Printf("%-40s %6d\n", l.Description, l.Amount)
	}
	fmt.Println("total", q.Total, q.Currency)
	// Output:
	// Day 1: 4 x 15m (first 1h)                   400
	// Day 1: 2 x 15m (after 1h)                   300
	// Day 1: 1 x Night 22:00-06:00 flat           500
	// Validation: amount off (Cinema)            -200
	// total 1000 EUR
}
