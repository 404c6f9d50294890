package camera

import (
	"sync"
	"time"
)

// dedupe remembers the event ids seen within a window of time and of count, so that
// a camera retrying a push it thinks failed does not make a second read.
type dedupe struct {
	window time.Duration
	max    int

	mu    sync.Mutex
	seen  map[string]time.Time
	queue []seenID // oldest first, from head
	head  int
}

type seenID struct {
	key string
	at  time.Time
}

func newDedupe(window time.Duration, max int) *dedupe {
	return &dedupe{window: window, max: max, seen: make(map[string]time.Time, max)}
}

// first records key at now and reports whether it is new: not seen within the window.
func (d *dedupe) first(key string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.evict(func(e seenID) bool { return now.Sub(e.at) >= d.window })
	if at, ok := d.seen[key]; ok && now.Sub(at) < d.window {
		return false
	}
	d.evict(func(seenID) bool { return len(d.queue)-d.head >= d.max }) // room for one
	d.seen[key] = now
	d.queue = append(d.queue, seenID{key, now})
	return true
}

// evict forgets the oldest ids while old says so. The caller holds mu.
func (d *dedupe) evict(old func(seenID) bool) {
	for d.head < len(d.queue) && old(d.queue[d.head]) {
		e := d.queue[d.head]
		if d.seen[e.key].Equal(e.at) { // not seen again since
			delete(d.seen, e.key)
		}
		d.queue[d.head] = seenID{}
		d.head++
	}
	if d.head > 1024 && d.head*2 > len(d.queue) {
		d.queue = append(d.queue[:0], d.queue[d.head:]...)
		d.head = 0
	}
}
