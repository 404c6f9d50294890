package tariff_test

import (
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge/tariff"
)

// FuzzQuote builds arbitrary rates and stays; Quote must never panic, must
// reject exactly the rates Validate rejects, and must keep its invariants.
func FuzzQuote(f *testing.F) {
	// entry, stay s, zone, increment min, free min, tier1 upto (increments),
	// tier prices, daily max, band start/end min, flat, band price, lost,
	// lost fee, validation kind/value, paid, paid-at offset s, grace min.
	f.Add(int64(1780300800), int64(7200), uint8(0), uint16(15), uint16(15), uint16(4), int64(100), int64(200), int64(2000),
		uint16(22*60), uint16(6*60), int64(500), int64(0), false, int64(2500), uint8(0), int64(0), int64(0), int64(0), uint16(15))
	f.Add(int64(1774731600), int64(36000), uint8(1), uint16(15), uint16(0), uint16(2), int64(100), int64(100), int64(0),
		uint16(23*60), uint16(7*60), int64(0), int64(25), true, int64(3000), uint8(3), int64(50), int64(500), int64(3600), uint16(10))
	f.Add(int64(1792890000), int64(200000), uint8(2), uint16(60), uint16(5), uint16(3), int64(300), int64(50), int64(1500),
		uint16(12*60), uint16(14*60), int64(0), int64(10), false, int64(0), uint8(1), int64(90), int64(1000), int64(-60), uint16(0))
	f.Add(int64(0), int64(-1), uint8(3), uint16(7), uint16(0), uint16(0), int64(-1), int64(1<<62), int64(-5),
		uint16(0), uint16(0), int64(1<<62), int64(1<<62), true, int64(-1), uint8(4), int64(-3), int64(-1), int64(1<<40), uint16(1))
	f.Add(int64(1780300800), int64(366*86400), uint8(4), uint16(1), uint16(0), uint16(1), int64(1<<62), int64(1<<62), int64(0),
		uint16(0), uint16(1439), int64(0), int64(1<<62), false, int64(0), uint8(2), int64(100), int64(0), int64(0), uint16(0))

	zones := []string{"", "UTC", "Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"}
	kinds := []tariff.ValidationKind{tariff.ValidationFreeMinutes, tariff.ValidationAmount, tariff.ValidationPercent,
		tariff.ValidationFlatRate, "bogus"}

	f.Fuzz(func(t *testing.T, entryUnix, staySec int64, zone uint8, incMin, freeMin, upto uint16, p1, p2, dailyMax int64,
		bStart, bEnd uint16, flat, per int64, lost bool, lostFee int64, kind uint8, val, paid, paidOff int64, graceMin uint16) {
		inc := time.Duration(incMin) * time.Minute
		r := &tariff.Rate{
			ID: "fuzz", Currency: "EUR", Timezone: zones[int(zone)%len(zones)],
			FreeTime:  tariff.Duration(time.Duration(freeMin) * time.Minute),
			Increment: tariff.Duration(inc),
			Tiers: []tariff.Tier{
				{Upto: tariff.Duration(time.Duration(upto) * inc), PerIncrement: p1},
				{PerIncrement: p2},
			},
			DailyMax:   dailyMax,
			Bands:      []tariff.Band{{Start: tariff.Clock(bStart), End: tariff.Clock(bEnd), Flat: flat, PerIncrement: per}},
			LostTicket: lostFee,
			Grace:      tariff.Duration(time.Duration(graceMin) * time.Minute),
		}
		entry := time.Unix(entryUnix, 0)
		in := tariff.Input{
			Entry:       entry,
			Exit:        entry.Add(time.Duration(staySec) * time.Second),
			LostTicket:  lost,
			Validations: []tariff.Validation{{Kind: kinds[int(kind)%len(kinds)], Value: val}},
			Paid:        paid,
			PaidAt:      entry.Add(time.Duration(paidOff) * time.Second),
		}
		q, err := r.Quote(in)
		if verr := r.Validate(); (verr != nil) != errors.Is(err, tariff.ErrInvalidRate) {
			t.Fatalf("Validate() = %v but Quote error = %v", verr, err)
		}
		if err != nil {
			return
		}
		if q.Total < 0 || q.Due < 0 || q.Due > q.Total {
			t.Fatalf("Quote(%+v) = total %d, due %d; want 0 <= due <= total", in, q.Total, q.Due)
		}
		var sum int64
		small := true
		for _, l := range q.Lines {
			small = small && l.Amount > -1<<52 && l.Amount < 1<<52
			sum += l.Amount
		}
		if small && sum != q.Total {
			t.Fatalf("Quote(%+v) lines sum to %d; want Total %d", in, sum, q.Total)
		}
		if q2, _ := r.Quote(in); q2.Total != q.Total || q2.Due != q.Due {
			t.Fatalf("Quote(%+v) not deterministic: %d then %d", in, q.Total, q2.Total)
		}
	})
}
