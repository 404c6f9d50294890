// Package inmem provides devices that live in memory: a barrier whose arm reports its
// position after a travel time, and a store for tests that need no disk. They drive
// the garage in tests, benchmarks and the stand-alone demo, exactly as the real
// adapters in firmware-adapters do: commands in, DeviceEvents out.
package inmem

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// Barrier is an in-memory barrier. With Travel zero and Manual false it reports its
// new position at once, from within Raise or Lower.
type Barrier struct {
	ID     string
	Sink   edge.Sink
	Travel time.Duration
	// Manual: never report positions; the test delivers them.
	Manual bool
	// OnCommand, if set, is called with every command as it arrives (benchmarks time
	// decisions with it).
	OnCommand func(raise bool)

	mu       sync.Mutex
	stuck    bool
	failing  bool
	commands []bool // true = raise
	pos      edge.Position
}

var _ edge.Barrier = (*Barrier)(nil)

// ErrFailing is returned by a barrier set to fail its commands.
var ErrFailing = errors.New("inmem: barrier not answering")

// Raise implements edge.Barrier.
func (b *Barrier) Raise(ctx context.Context) error { return b.move(edge.PositionUp) }

// Lower implements edge.Barrier.
func (b *Barrier) Lower(ctx context.Context) error { return b.move(edge.PositionDown) }

func (b *Barrier) move(to edge.Position) error {
	if b.OnCommand != nil {
		b.OnCommand(to == edge.PositionUp)
	}
	b.mu.Lock()
	b.commands = append(b.commands, to == edge.PositionUp)
	if b.failing {
		b.mu.Unlock()
		return ErrFailing
	}
	report := !b.Manual && !b.stuck
	b.mu.Unlock()
	if !report {
		return nil
	}
	deliver := func() {
		b.mu.Lock()
		b.pos = to
		b.mu.Unlock()
		b.Sink.Deliver(edge.DeviceEvent{Device: b.ID, Kind: edge.ArmPosition, Position: to})
	}
	if b.Travel == 0 {
		deliver()
	} else {
		time.AfterFunc(b.Travel, deliver)
	}
	return nil
}

// SetStuck makes the arm ignore commands silently (no position report), as a jammed
// arm does.
func (b *Barrier) SetStuck(v bool) {
	b.mu.Lock()
	b.stuck = v
	b.mu.Unlock()
}

// SetFailing makes commands fail, as an unreachable controller does.
func (b *Barrier) SetFailing(v bool) {
	b.mu.Lock()
	b.failing = v
	b.mu.Unlock()
}

// Commands returns the commands received so far (true = raise).
func (b *Barrier) Commands() []bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]bool(nil), b.commands...)
}

// Position returns the last reported position.
func (b *Barrier) Position() edge.Position {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pos
}

// Barriers makes one in-memory barrier for every barrier device of f.
func Barriers(f *edge.Facility, travel time.Duration) map[string]*Barrier {
	out := map[string]*Barrier{}
	for _, d := range f.Devices {
		if d.Kind == edge.KindBarrier {
			out[d.ID] = &Barrier{ID: d.ID, Travel: travel}
		}
	}
	return out
}

// Connect points every barrier at sink and returns them as edge.Barriers.
func Connect(bs map[string]*Barrier, sink edge.Sink) map[string]edge.Barrier {
	out := map[string]edge.Barrier{}
	for id, b := range bs {
		b.Sink = sink
		out[id] = b
	}
	return out
}
