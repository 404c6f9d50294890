package tariff_test

import (
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge/tariff"
)

// BenchmarkQuote prices a three-day stay across a DST change with bands,
// tiers, a daily maximum and validations.
func BenchmarkQuote(b *testing.B) {
	r := mustCompile(b, mixedRate())
	ams := mustLoad(b, "Europe/Amsterdam")
	in := tariff.Input{
		Entry: time.Date(2026, 3, 27, 9, 12, 0, 0, ams),
		Exit:  time.Date(2026, 3, 30, 17, 45, 0, 0, ams),
		Validations: []tariff.Validation{
			{Kind: tariff.ValidationFreeMinutes, Value: 120},
			{Kind: tariff.ValidationPercent, Value: 10},
		},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Quote(in); err != nil {
			b.Fatal(err)
		}
	}
}
