package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/pgtest"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
)

// BenchmarkBookings measures bookings per second with 100 concurrent clients, each
// booking random windows (1 to 4 hours, starting on a quarter hour within 30 days)
// in one zone of 20 bookable spaces, on a fresh cluster with fsync on and a pool of
// 16 connections. b.N is the number of booking attempts; as the zone fills, more of
// them are refused with a conflict. It reports successful bookings/s, attempts/s and
// the share refused, and fails unless, at the end, no slice holds more bookings than
// the zone's bookable space (counted from the bookings themselves) and every slice
// count equals the bookings holding it. Run it with -benchtime=5000x.
func BenchmarkBookings(b *testing.B) {
	const clients, bookable = 100, 20
	ctx := context.Background()
	c, err := pgtest.Start(ctx, pgtest.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Stop()
	db := openDSN(b, c.URL()+"&pool_max_conns=16")
	bookingGarage(b, db, "g1", bookable)

	var next, booked, refused atomic.Int64
	errs := make(chan error, clients)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			for n := next.Add(1); n <= int64(b.N); n = next.Add(1) {
				from := resAt.Add(time.Duration(rng.IntN(30*24*4)) * 15 * time.Minute)
				until := from.Add(time.Duration(4+rng.IntN(13)) * 15 * time.Minute)
				// A driver per attempt: each may hold only a few unpaid bookings.
				_, _, err := db.Book(ctx, bookReq(fmt.Sprint("u", n), "AB123", from, until))
				switch cloud.ErrorCode(err) {
				case "":
					booked.Add(1)
				case cloud.ECONFLICT:
					refused.Add(1)
				default:
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	if err := db.CheckReservationCounts(ctx); err != nil {
		b.Fatal(err)
	}
	most := maxOverlap(b, db)
	if most > bookable {
		b.Fatalf("overbooked: a slice is held by %d bookings; %d are bookable", most, bookable)
	}
	b.ReportMetric(float64(most), "max-held")
	b.ReportMetric(float64(booked.Load())/elapsed, "bookings/s")
	b.ReportMetric(float64(b.N)/elapsed, "attempts/s")
	b.ReportMetric(100*float64(refused.Load())/float64(b.N), "%refused")
	b.ReportMetric(0, "ns/op")
}

// maxOverlap counts, from the bookings themselves (not the slice counters), the
// most active ones that hold any one slice.
func maxOverlap(tb testing.TB, db *postgres.DB) int {
	tb.Helper()
	var n int
	err := db.Pool().QueryRow(context.Background(), `SELECT coalesce(max(c), 0) FROM (
		SELECT count(*) AS c FROM reservations r,
			generate_series(date_bin('15 minutes', lower(r.period), 'epoch'), upper(r.period) - interval '1 microsecond', interval '15 minutes') s
		WHERE r.status IN ('held', 'confirmed', 'checked_in') GROUP BY r.facility_id, r.zone_id, s) x`).Scan(&n)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}
