package modbus

import (
	"cmp"
	"slices"
	"time"
)

// Read limits of the Modbus application protocol: one request reads at most this many
// registers or bits.
const (
	MaxReadRegisters = 125
	MaxReadBits      = 2000
)

// ReadThroughGap is how many unused addresses between two wanted ones are read rather
// than split into two requests: a request costs a round trip (and on RS-485 a frame
// gap), a few more registers cost almost nothing.
const ReadThroughGap = 8

// span is a run of addresses one resource occupies.
type span struct {
	addr, n int
}

// extent is a run of addresses read in one request, with the indexes of the spans it
// covers.
type extent struct {
	start, count int
	spans        []int
}

// mergeSpans sorts spans by address and merges them into as few extents as possible,
// each at most limit addresses long, reading through gaps of up to gap unused
// addresses. A span longer than limit gets an extent of its own (the caller never
// makes one: resources span at most two registers).
func mergeSpans(spans []span, limit, gap int) []extent {
	idx := make([]int, len(spans))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		return cmp.Or(cmp.Compare(spans[a].addr, spans[b].addr), cmp.Compare(spans[a].n, spans[b].n))
	})
	var out []extent
	for _, i := range idx {
		s := spans[i]
		end := s.addr + s.n // exclusive
		if k := len(out) - 1; k >= 0 {
			e := &out[k]
			eEnd := e.start + e.count
			if s.addr <= eEnd+gap && max(end, eEnd)-e.start <= limit {
				e.count = max(end, eEnd) - e.start
				e.spans = append(e.spans, i)
				continue
			}
		}
		out = append(out, extent{start: s.addr, count: s.n, spans: []int{i}})
	}
	return out
}

// member is one resource of one device inside a block.
type member struct {
	dev  *device
	slot int       // index into dev.values
	res  *Resource // absolute address
}

// block is one request the port repeats: a contiguous run of one table of one unit,
// polled at one interval.
type block struct {
	unit     uint8
	table    Table
	start    int
	count    int
	interval time.Duration
	timeout  time.Duration
	members  []member
	devices  []*device // distinct devices of members, in order

	next  time.Time // when it is due
	fails int       // consecutive failures, for backoff
}

// planBlocks groups the polled resources of the devices of one port by unit, table and
// poll interval and merges each group into blocks.
func planBlocks(devs []*device) []*block {
	type key struct {
		unit     uint8
		table    Table
		interval time.Duration
	}
	groups := map[key][]member{}
	var keys []key
	for _, d := range devs {
		for slot, r := range d.polled {
			k := key{d.bind.Unit, r.Table, d.bind.Poll}
			if _, ok := groups[k]; !ok {
				keys = append(keys, k)
			}
			groups[k] = append(groups[k], member{dev: d, slot: slot, res: r})
		}
	}
	var out []*block
	for _, k := range keys {
		ms := groups[k]
		spans := make([]span, len(ms))
		for i, m := range ms {
			spans[i] = span{m.res.Address, m.res.Words()}
		}
		limit := MaxReadRegisters
		if k.table.IsBit() {
			limit = MaxReadBits
		}
		for _, e := range mergeSpans(spans, limit, ReadThroughGap) {
			b := &block{unit: k.unit, table: k.table, start: e.start, count: e.count, interval: k.interval}
			for _, i := range e.spans {
				m := ms[i]
				b.members = append(b.members, m)
				b.timeout = max(b.timeout, m.dev.bind.Timeout)
				if !slices.Contains(b.devices, m.dev) {
					b.devices = append(b.devices, m.dev)
				}
			}
			out = append(out, b)
		}
	}
	return out
}
