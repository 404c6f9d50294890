package natshub

import (
	"strings"
	"sync"
	"time"
)

// Presence: whether each garage's leaf node is connected to the hub, and since when
// it has not been.
//
// With the embedded server, a tracker polls the server's leaf connections (Leafz)
// every PresenceInterval and maps each to its facility by the user it authenticated
// as (FacilityUser); a garage that was connected and is no longer is recorded offline
// from the poll that noticed, so offline_since is at most one interval late. The
// tracker starts on the first call to Presence and stops when the hub shuts down.
//
// With an external cluster the hub has no view of the leaf connections (the $SYS
// account's leafnode events need system credentials the cloud does not hold), so
// Presence reports every garage offline with no time, and callers fall back to the
// garage's last contact.

// PresenceInterval is how often the embedded hub's leaf connections are polled.
const PresenceInterval = time.Second

type presenceState struct {
	online bool
	since  time.Time // when it went offline; zero while online
}

type presenceTracker struct {
	mu   sync.Mutex
	seen map[string]presenceState
}

// Presence reports whether the garage's leaf node is connected now and, when it is
// not, since when it has been offline: zero when the hub has not seen it connected
// since it started, and always with an external cluster. It implements the REST API's
// Hub.Presence.
func (h *Hub) Presence(facility string) (online bool, offlineSince time.Time) {
	t := h.presenceTracker()
	if t == nil {
		return false, time.Time{}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.seen[facility]
	return s.online, s.since
}

// presenceTracker returns the hub's tracker, started on the first call; nil with an
// external cluster.
func (h *Hub) presenceTracker() *presenceTracker {
	if h.srv == nil {
		return nil
	}
	h.presenceOnce.Do(func() {
		t := &presenceTracker{seen: map[string]presenceState{}}
		t.poll(h, time.Now())
		h.presence = t
		go t.run(h)
	})
	return h.presence
}

// run polls until the hub shuts down or its server stops; then every garage is
// offline from that moment (a stopped hub sees none connected).
func (t *presenceTracker) run(h *Hub) {
	tick := time.NewTicker(PresenceInterval)
	defer tick.Stop()
	defer func() { t.allOffline(time.Now()) }()
	for {
		select {
		case <-h.stopped:
			return
		case <-tick.C:
			if !h.srv.Running() {
				return
			}
			t.poll(h, time.Now())
		}
	}
}

// allOffline marks the garages still online offline since now.
func (t *presenceTracker) allOffline(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for fac, s := range t.seen {
		if s.online {
			t.seen[fac] = presenceState{since: now}
		}
	}
}

// poll records the garages connected now and marks offline, at now, those that were
// connected at the last poll and are not any more.
func (t *presenceTracker) poll(h *Hub, now time.Time) {
	lz, err := h.srv.Leafz(nil)
	if err != nil {
		h.log.Warn("listing leaf connections for presence", "err", err)
		return
	}
	connected := map[string]bool{}
	for _, l := range lz.Leafs {
		c := h.srv.GetLeafNode(l.ID)
		if c == nil {
			continue
		}
		if fac, ok := strings.CutPrefix(c.GetOpts().Username, FacilityUser("")); ok && fac != "" {
			connected[fac] = true
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for fac := range connected {
		t.seen[fac] = presenceState{online: true}
	}
	for fac, s := range t.seen {
		if s.online && !connected[fac] {
			t.seen[fac] = presenceState{since: now}
			h.log.Info("garage offline", "facility", fac)
		}
	}
}
