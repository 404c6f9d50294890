package modbus

import (
	"fmt"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
)

func TestMergeSpans(t *testing.T) {
	type r = [2]int // start, count
	run := func(from, n int) []span {
		var out []span
		for i := range n {
			out = append(out, span{from + i, 1})
		}
		return out
	}
	tests := []struct {
		name  string
		spans []span
		limit int
		want  []r
	}{
		{"one", []span{{5, 1}}, 125, []r{{5, 1}}},
		{"adjacent", []span{{0, 1}, {1, 1}, {2, 1}}, 125, []r{{0, 3}}},
		{"unsorted", []span{{2, 1}, {0, 1}, {1, 1}}, 125, []r{{0, 3}}},
		{"duplicates", []span{{3, 1}, {3, 1}}, 125, []r{{3, 1}}},
		{"overlap of a 32-bit value", []span{{10, 2}, {11, 1}}, 125, []r{{10, 2}}},
		{"gap read through", []span{{0, 1}, {9, 1}}, 125, []r{{0, 10}}},                         // 8 unused addresses
		{"gap too wide", []span{{0, 1}, {10, 1}}, 125, []r{{0, 1}, {10, 1}}},                    // 9 unused
		{"limit splits", run(0, 126), 125, []r{{0, 125}, {125, 1}}},                             // 125 is the maximum
		{"32-bit fits exactly", append(run(0, 123), span{123, 2}), 125, []r{{0, 125}}},          //
		{"32-bit never split", append(run(0, 124), span{124, 2}), 125, []r{{0, 124}, {124, 2}}}, // would end at 126
		{"gaps and limit", []span{{0, 1}, {8, 1}, {16, 1}, {124, 1}, {130, 1}}, 125, []r{{0, 17}, {124, 7}}},
		{"bits limit", run(0, 2001), 2000, []r{{0, 2000}, {2000, 1}}},
		{"bits", []span{{0, 1}, {1999, 1}, {2000, 1}}, 2000, []r{{0, 1}, {1999, 2}}},     // gap too wide
		{"far apart", []span{{0, 1}, {1000, 1}, {1002, 1}}, 125, []r{{0, 1}, {1000, 3}}}, // a status block
		{"high addresses", []span{{65534, 2}, {65530, 1}}, 125, []r{{65530, 6}}},         // up to 65535
		{"empty", nil, 125, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []r
			covered := map[int]bool{}
			for _, e := range mergeSpans(tt.spans, tt.limit, ReadThroughGap) {
				got = append(got, r{e.start, e.count})
				if e.count > tt.limit {
					t.Errorf("extent %d+%d longer than %d", e.start, e.count, tt.limit)
				}
				for _, i := range e.spans {
					s := tt.spans[i]
					if s.addr < e.start || s.addr+s.n > e.start+e.count {
						t.Errorf("span %v not inside extent %d+%d", s, e.start, e.count)
					}
					covered[i] = true
				}
			}
			if len(covered) != len(tt.spans) {
				t.Errorf("%d of %d spans in an extent", len(covered), len(tt.spans))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("mergeSpans(%v) = %v; want %v", tt.spans, got, tt.want)
			}
		})
	}
}

// bindAll binds test devices against the built-in profiles.
func bindAll(tb testing.TB, devs []edge.Device) []*device {
	tb.Helper()
	var out []*device
	for _, d := range devs {
		b, err := Bind(d, BuiltinProfiles())
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, newDevice(b, "S-"+d.ID))
	}
	return out
}

func TestPlanBlocks(t *testing.T) {
	dev := func(id string, kind edge.DeviceKind, profile string, opts ...string) edge.Device {
		o := map[string]string{}
		for i := 0; i+1 < len(opts); i += 2 {
			o[opts[i]] = opts[i+1]
		}
		return edge.Device{ID: id, Kind: kind, Protocol: ProtocolTCP, Address: "127.0.0.1:502", Profile: profile, Options: o}
	}
	bank := func(n int, extra ...string) []edge.Device {
		var out []edge.Device
		for i := range n {
			out = append(out, dev(fmt.Sprintf("s%03d", i), edge.KindSpotSensor, "ultrasonic-spot", append([]string{"offset", strconv.Itoa(i)}, extra...)...))
		}
		return out
	}
	type want struct {
		unit        uint8
		table       Table
		start, cnt  int
		interval    time.Duration
		nmembers    int
		ndevices    int
		wantTimeout time.Duration
	}
	tests := []struct {
		name string
		devs []edge.Device
		want []want
	}{
		{"500 ultrasonic sensors: 4 reads", bank(500), []want{
			{1, InputRegister, 0, 125, time.Second, 125, 125, DefaultTimeout},
			{1, InputRegister, 125, 125, time.Second, 125, 125, DefaultTimeout},
			{1, InputRegister, 250, 125, time.Second, 125, 125, DefaultTimeout},
			{1, InputRegister, 375, 125, time.Second, 125, 125, DefaultTimeout},
		}},
		{"loops of one I/O module: one read", []edge.Device{
			dev("a", edge.KindLoop, "io-module-8di", "resource", "di0"),
			dev("b", edge.KindLoop, "io-module-8di", "resource", "di3"),
			dev("c", edge.KindLoop, "io-module-8di", "resource", "di7", "timeout", "900ms"),
		}, []want{{1, DiscreteInput, 0, 8, 100 * time.Millisecond, 3, 3, 900 * time.Millisecond}}},
		{"barrier: end stops and fault in one read", []edge.Device{dev("b", edge.KindBarrier, "barrier-generic")},
			[]want{{1, DiscreteInput, 0, 3, 100 * time.Millisecond, 3, 1, DefaultTimeout}}},
		{"units and intervals apart", []edge.Device{
			dev("b1", edge.KindBarrier, "barrier-generic", "unit", "1"),
			dev("b2", edge.KindBarrier, "barrier-generic", "unit", "2"),
			dev("l1", edge.KindLoop, "io-module-8di", "unit", "2", "resource", "di5", "poll", "50ms"),
		}, []want{
			{1, DiscreteInput, 0, 3, 100 * time.Millisecond, 3, 1, DefaultTimeout},
			{2, DiscreteInput, 0, 3, 100 * time.Millisecond, 3, 1, DefaultTimeout},
			{2, DiscreteInput, 5, 1, 50 * time.Millisecond, 1, 1, DefaultTimeout},
		}},
		{"magnetic sensors: bits of one register", []edge.Device{
			dev("m0", edge.KindSpotSensor, "magnetic-spot", "offset", "0"),
			dev("m1", edge.KindSpotSensor, "magnetic-spot", "offset", "1"),
		}, []want{{1, HoldingRegister, 0, 2, time.Second, 4, 2, DefaultTimeout}}},
		{"sensors with a status bank", bank(3, "poll", "1s"), []want{{1, InputRegister, 0, 3, time.Second, 3, 3, DefaultTimeout}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blocks := planBlocks(bindAll(t, tt.devs))
			var got []want
			for _, b := range blocks {
				got = append(got, want{b.unit, b.table, b.start, b.count, b.interval, len(b.members), len(b.devices), b.timeout})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("planBlocks() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}

	t.Run("status registers far away", func(t *testing.T) {
		var devs []edge.Device
		for i := range 10 {
			devs = append(devs, dev(fmt.Sprint(i), edge.KindSpotSensor, "ultrasonic-spot-status", "offset", strconv.Itoa(i)))
		}
		blocks := planBlocks(bindAll(t, devs))
		if len(blocks) != 2 || blocks[0].start != 0 || blocks[0].count != 10 || blocks[1].start != 1000 || blocks[1].count != 10 {
			for _, b := range blocks {
				t.Logf("block %s %d+%d", b.table, b.start, b.count)
			}
			t.Errorf("planBlocks() = %d blocks; want distances 0+10 and statuses 1000+10", len(blocks))
		}
	})
}
