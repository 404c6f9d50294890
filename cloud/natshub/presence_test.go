package natshub_test

import (
	"testing"
	"time"
)

// TestPresence connects a garage's edge server as a leaf and disconnects it: the hub
// reports it online, then offline since about the time it went.
func TestPresence(t *testing.T) {
	h, _ := startHub(t, t.TempDir())
	if online, since := h.Presence("fac1"); online || !since.IsZero() {
		t.Fatalf("Presence before any garage = %v, %v; want offline, never seen", online, since)
	}
	user, secret := issue(t, h, "fac1")
	edge := startConnectedEdge(t, h, "fac1", user, secret)
	waitFor(t, "fac1 online", func() bool { online, _ := h.Presence("fac1"); return online })
	if online, _ := h.Presence("fac2"); online {
		t.Error("Presence(fac2) = online; want offline: another garage's leaf is not it")
	}
	before := time.Now()
	edge.Shutdown()
	edge.WaitForShutdown()
	waitFor(t, "fac1 offline", func() bool { online, _ := h.Presence("fac1"); return !online })
	_, since := h.Presence("fac1")
	if since.Before(before) || since.After(time.Now()) {
		t.Errorf("offline since %v; want between %v and now", since, before)
	}
}

// TestPresenceAfterShutdown: a hub that has shut down sees no garage connected, so
// one that was online is offline from then, not online forever.
func TestPresenceAfterShutdown(t *testing.T) {
	h, _ := startHub(t, t.TempDir())
	user, secret := issue(t, h, "fac1")
	startConnectedEdge(t, h, "fac1", user, secret)
	waitFor(t, "fac1 online", func() bool { online, _ := h.Presence("fac1"); return online })
	before := time.Now()
	h.Shutdown()
	waitFor(t, "fac1 offline after shutdown", func() bool { online, _ := h.Presence("fac1"); return !online })
	if _, since := h.Presence("fac1"); since.Before(before) || since.After(time.Now()) {
		t.Errorf("offline since %v; want between %v and now", since, before)
	}
}
