package edge_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/edge/boltstore"
	"github.com/gatehouse-parking/gatehouse/edge/inmem"
	"github.com/gatehouse-parking/gatehouse/edge/plate"
)

// BenchmarkLaneDecision16 measures the latency from a credential reaching the garage
// to the barrier command, with 16 lanes (8 entry, 8 exit) busy at once on a real
// fsync'ed store. It reports p50 and p99. "paced" lanes leave 1 ms between the
// physical steps of a car (loop, arm, loop: a car every ~7 ms per lane, some 2,000 cars
// a second in all, hundreds of times any real garage); "saturated" lanes cycle with no
// pause at all, so that the two cores are the bottleneck and the figure includes
// waiting for the scheduler.
func BenchmarkLaneDecision16(b *testing.B) {
	b.Run("paced", func(b *testing.B) { laneDecisions(b, time.Millisecond) })
	b.Run("saturated", func(b *testing.B) { laneDecisions(b, 0) })
}

func laneDecisions(b *testing.B, pause time.Duration) {
	const pairs = 8
	f := testFacility()
	f.Zones[0].Capacity, f.Zones[0].HeldBack = 1_000_000, 0
	f.Lanes, f.Devices = nil, nil
	for i := range pairs * 2 {
		dir, name := edge.Entry, fmt.Sprintf("in%d", i)
		if i >= pairs {
			dir, name = edge.Exit, fmt.Sprintf("out%d", i-pairs)
		}
		f.Lanes = append(f.Lanes, edge.Lane{ID: name, Direction: dir, Zone: "Z", ArmingLoop: name + "-arm", SafetyLoop: name + "-safe", Barrier: name + "-bar", Cameras: []string{name + "-cam"}})
		for _, d := range []struct {
			s string
			k edge.DeviceKind
		}{{"-arm", edge.KindLoop}, {"-safe", edge.KindLoop}, {"-bar", edge.KindBarrier}, {"-cam", edge.KindCamera}} {
			f.Devices = append(f.Devices, edge.Device{ID: name + d.s, Kind: d.k, Protocol: "inmem"})
		}
	}
	st, err := boltstore.Open(filepath.Join(b.TempDir(), "g.db"), f.ID, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	bars := inmem.Barriers(f, 0)
	var (
		mu      sync.Mutex
		started = map[string]time.Time{} // lane -> when its credential was delivered
		lat     []time.Duration
	)
	for id, bar := range bars {
		lane := id[:len(id)-len("-bar")]
		bar.Manual = true
		bar.OnCommand = func(raise bool) {
			if !raise {
				return
			}
			mu.Lock()
			if t, ok := started[lane]; ok {
				lat = append(lat, time.Since(t))
				delete(started, lane)
			}
			mu.Unlock()
		}
	}
	g, err := edge.Open(edge.Config{Facility: f, Store: st, Barriers: inmem.Connect(bars, nil)})
	if err != nil {
		b.Fatal(err)
	}
	for _, bar := range bars {
		bar.Sink = g
	}
	inside := make(chan string, 1<<16)
	step := func(ev edge.DeviceEvent) {
		g.Deliver(ev)
		if pause > 0 {
			time.Sleep(pause)
		}
	}
	cycle := func(lane, p string) {
		step(edge.DeviceEvent{Device: lane + "-arm", Kind: edge.LoopChanged, Occupied: true})
		mu.Lock()
		started[lane] = time.Now()
		mu.Unlock()
		step(edge.DeviceEvent{Device: lane + "-cam", Kind: edge.PlateRead, Read: plate.Read{Text: p, Confidence: 0.9}})
		step(edge.DeviceEvent{Device: lane + "-bar", Kind: edge.ArmPosition, Position: edge.PositionUp})
		step(edge.DeviceEvent{Device: lane + "-safe", Kind: edge.LoopChanged, Occupied: true})
		g.Deliver(edge.DeviceEvent{Device: lane + "-arm", Kind: edge.LoopChanged, Occupied: false})
		step(edge.DeviceEvent{Device: lane + "-safe", Kind: edge.LoopChanged, Occupied: false})
		step(edge.DeviceEvent{Device: lane + "-bar", Kind: edge.ArmPosition, Position: edge.PositionDown})
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N/pairs + 1
	for i := range pairs {
		wg.Add(2)
		r := rand.New(rand.NewPCG(uint64(i), 1))
		go func() {
			defer wg.Done()
			for range per {
				p := fmt.Sprintf("%c%c%03d%c%c", 'A'+rune(r.IntN(26)), 'A'+rune(r.IntN(26)), r.IntN(1000), 'A'+rune(r.IntN(26)), 'A'+rune(r.IntN(26)))
				cycle(fmt.Sprintf("in%d", i), p)
				inside <- p
			}
		}()
		go func() {
			defer wg.Done()
			for range per {
				cycle(fmt.Sprintf("out%d", i), <-inside)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if err := g.Sync(); err != nil {
		b.Fatal(err)
	}
	slices.Sort(lat)
	if len(lat) < per {
		b.Fatalf("only %d decisions opened the barrier", len(lat))
	}
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(len(lat)), "decisions")
}
