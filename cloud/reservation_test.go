package cloud_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
)

func TestReservationPolicyRefund(t *testing.T) {
	start := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	p := cloud.ReservationPolicy{FullRefundBefore: 24 * time.Hour, LateRefundPercent: 50}
	tests := []struct {
		name string
		p    cloud.ReservationPolicy
		paid int64
		at   time.Time
		want int64
	}{
		{"well before", p, 1999, start.Add(-48 * time.Hour), 1999},
		{"exactly at the full-refund limit", p, 1999, start.Add(-24 * time.Hour), 1999},
		{"a second late", p, 1999, start.Add(-24*time.Hour + time.Second), 999}, // 50% of 19.99, rounded down
		{"just before the start", p, 1000, start.Add(-time.Minute), 500},
		{"at the start", p, 1000, start, 0},
		{"after the start", p, 1000, start.Add(time.Hour), 0},
		{"nothing paid", p, 0, start.Add(-48 * time.Hour), 0},
		{"full refund until the start when the limit is 0", cloud.ReservationPolicy{LateRefundPercent: 10}, 1000, start.Add(-time.Second), 1000},
		{"no late refund", cloud.ReservationPolicy{FullRefundBefore: 2 * time.Hour}, 1000, start.Add(-time.Hour), 0},
		{"33% rounds down", cloud.ReservationPolicy{FullRefundBefore: 24 * time.Hour, LateRefundPercent: 33}, 1001, start.Add(-time.Hour), 330},
		{"100% late", cloud.ReservationPolicy{FullRefundBefore: 24 * time.Hour, LateRefundPercent: 100}, 1001, start.Add(-time.Hour), 1001},
		{"huge amount does not overflow", cloud.ReservationPolicy{FullRefundBefore: 24 * time.Hour, LateRefundPercent: 99}, 1 << 62, start.Add(-time.Hour), (1<<62)/100*99 + (1<<62)%100*99/100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Refund(tt.paid, start, tt.at); got != tt.want {
				t.Errorf("Refund(%d, %v, %v) = %d; want %d", tt.paid, start, tt.at, got, tt.want)
			}
		})
	}
}

func TestSlices(t *testing.T) {
	d := func(h, m int) time.Time { return time.Date(2026, 6, 1, h, m, 0, 0, time.UTC) }
	tests := []struct {
		from, until, first, end time.Time
	}{
		{d(10, 0), d(12, 0), d(10, 0), d(12, 0)},
		{d(10, 7), d(11, 50), d(10, 0), d(12, 0)},
		{d(10, 14), d(10, 16), d(10, 0), d(10, 30)},
	}
	for _, tt := range tests {
		first, end := cloud.Slices(tt.from, tt.until)
		if !first.Equal(tt.first) || !end.Equal(tt.end) {
			t.Errorf("Slices(%v, %v) = %v, %v; want %v, %v", tt.from, tt.until, first, end, tt.first, tt.end)
		}
	}
}

func TestReservationCode(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	id := "0b6d3a52-3c1e-4f7a-9a43-6f1f2d3c4b5a"
	code := cloud.ReservationCode(key, id)
	if len(code) != 54 || !strings.HasPrefix(code, "GHR1-0B6D3A523C1E4F7A9A436F1F2D3C4B5A-") {
		t.Fatalf("ReservationCode = %q", code)
	}
	for _, r := range code {
		if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r == '-') {
			t.Fatalf("ReservationCode = %q: %q is not in the QR alphanumeric set", code, r)
		}
	}
	if got, ok := cloud.ReservationCodeID(key, code); !ok || got != id {
		t.Errorf("ReservationCodeID(code) = %q, %v; want %q", got, ok, id)
	}
	forged := code[:len(code)-1] + string("0123456789ABCDEF"[(strings.IndexByte("0123456789ABCDEF", code[len(code)-1])+1)%16])
	for _, bad := range []string{forged, cloud.ReservationCode([]byte("another key, also 32 bytes long."), id), "GHR1-x-y", ""} {
		if _, ok := cloud.ReservationCodeID(key, bad); ok {
			t.Errorf("ReservationCodeID(%q) accepted a code not signed with the key", bad)
		}
	}
}
