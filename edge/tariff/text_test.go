package tariff_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge/tariff"
)

func TestDurationText(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		out  string
	}{
		{"15m", 15 * time.Minute, "15m"},
		{"1h30m", 90 * time.Minute, "1h30m"},
		{"24h", 24 * time.Hour, "24h"},
		{"90s", 90 * time.Second, "1m30s"},
		{"0", 0, "0s"},
		{"", 0, "0s"},
		{" 2h ", 2 * time.Hour, "2h"},
		{"1.5h", 90 * time.Minute, "1h30m"},
		{"-5m", -5 * time.Minute, "-5m"},
		{"1500ms", 1500 * time.Millisecond, "1.5s"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var d tariff.Duration
			if err := d.UnmarshalText([]byte(tt.in)); err != nil {
				t.Fatalf("UnmarshalText(%q) error: %v", tt.in, err)
			}
			if time.Duration(d) != tt.want {
				t.Errorf("UnmarshalText(%q) = %v; want %v", tt.in, time.Duration(d), tt.want)
			}
			if out, _ := d.MarshalText(); string(out) != tt.out {
				t.Errorf("MarshalText(%v) = %q; want %q", time.Duration(d), out, tt.out)
			}
		})
	}
	for _, bad := range []string{"15", "1d", "abc"} {
		var d tariff.Duration
		if err := d.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) = %v, nil; want error", bad, d)
		}
	}
}

func TestClockText(t *testing.T) {
	tests := []struct {
		in   string
		want tariff.Clock
		out  string
	}{
		{"00:00", 0, "00:00"},
		{"6:30", 390, "06:30"},
		{"22:00", 1320, "22:00"},
		{"23:59", 1439, "23:59"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var c tariff.Clock
			if err := c.UnmarshalText([]byte(tt.in)); err != nil {
				t.Fatalf("UnmarshalText(%q) error: %v", tt.in, err)
			}
			if c != tt.want {
				t.Errorf("UnmarshalText(%q) = %d; want %d", tt.in, c, tt.want)
			}
			if out, _ := c.MarshalText(); string(out) != tt.out {
				t.Errorf("MarshalText(%d) = %q; want %q", c, out, tt.out)
			}
		})
	}
	for _, bad := range []string{"24:00", "7", "07:60", "7:5", "-1:00", "+1:00", "07:+5", "ab:cd", "123:00"} {
		var c tariff.Clock
		if err := c.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) = %v, nil; want error", bad, c)
		}
	}
	if _, err := tariff.Clock(1440).MarshalText(); err == nil {
		t.Errorf("MarshalText(1440) error = nil; want error")
	}
}

// TestRateJSON decodes the same shape the facility YAML uses; yaml.v3 calls
// the same UnmarshalText methods.
func TestRateJSON(t *testing.T) {
	const src = `{
		"id": "visitors", "name": "Visitors", "currency": "EUR",
		"timezone": "Europe/Amsterdam",
		"free_time": "15m", "increment": "15m",
		"tiers": [{"upto": "1h", "per_increment": 100}, {"per_increment": 150}],
		"daily_max": 2500,
		"bands": [{"name": "Night", "start": "22:00", "end": "06:00", "flat": 500}],
		"lost_ticket": 3000, "grace": "15m"
	}`
	var r tariff.Rate
	if err := json.Unmarshal([]byte(src), &r); err != nil {
		t.Fatal(err)
	}
	if err := r.Compile(); err != nil {
		t.Fatal(err)
	}
	if r.Increment != tariff.Duration(15*time.Minute) || r.Bands[0].Start != 22*60 || r.Tiers[0].Upto != tariff.Duration(time.Hour) {
		t.Errorf("json.Unmarshal = %+v; want increment 15m, band start 22:00, tier upto 1h", r)
	}
	out, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	var back tariff.Rate
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if string(mustJSON(t, back)) != string(out) {
		t.Errorf("round trip = %s; want %s", mustJSON(t, back), out)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
