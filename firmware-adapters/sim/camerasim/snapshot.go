package camerasim

import (
	"context"
	"fmt"
	"hash/fnv"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/sim"
)

// Snapshots are the simulated plain IP cameras of a facility: cameras without
// ANPR of their own, whose pictures the edge fetches and reads itself (protocol
// lpr with an http:// address, as from a Hikvision or Axis snapshot URL). The
// simulator serves every one of them at GET /snapshot/<device>, whatever host
// the address names. A camera shows an empty lane until a car is in view.
type Snapshots struct {
	cams map[string]*SnapshotCamera
}

// NewSnapshots builds a simulated camera for every device of kind camera and
// protocol lpr whose address is an http(s) URL; other devices (cameras that
// stream over RTSP or read files among them) are not its business.
func NewSnapshots(devices []edge.Device) *Snapshots {
	s := &Snapshots{cams: map[string]*SnapshotCamera{}}
	for _, d := range devices {
		if d.Kind != edge.KindCamera || d.Protocol != "lpr" {
			continue
		}
		if u, err := url.Parse(d.Address); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			continue
		}
		h := fnv.New64a()
		h.Write([]byte(d.ID))
		seed := h.Sum64()
		c := &SnapshotCamera{rng: mrand.New(mrand.NewPCG(seed, seed>>1))}
		c.show("", "")
		s.cams[d.ID] = c
	}
	return s
}

// Len returns how many cameras there are.
func (s *Snapshots) Len() int { return len(s.cams) }

// Camera returns the simulated camera with the given id, nil if there is none.
func (s *Snapshots) Camera(id string) *SnapshotCamera { return s.cams[id] }

// Devices returns the cameras for the traffic model (each is a sim.Viewer) and
// their fault injection. Nothing needs running: the simulator's HTTP server
// serves them (ServeHTTP).
func (s *Snapshots) Devices() sim.Devices {
	d := sim.Devices{Cameras: map[string]sim.Camera{}, Faulty: map[string]sim.Faulty{}}
	for id, c := range s.cams {
		d.Cameras[id] = c
		d.Faulty[id] = c
	}
	return d
}

// ServeHTTP answers GET /snapshot/<device> with the camera's picture, a JPEG.
// An offline camera drops the connection without an answer, as one without
// power or network does not answer; one sending garbage now and then answers
// with a picture cut short.
func (s *Snapshots) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := s.cams[r.PathValue("device")]
	if c == nil {
		http.Error(w, "no such camera", http.StatusNotFound)
		return
	}
	c.fetches.Add(1)
	if c.offline.Load() {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		http.Error(w, "camera offline", http.StatusServiceUnavailable)
		return
	}
	c.mu.Lock()
	pic := c.picture
	junk := c.garbage.Load() && c.rng.IntN(garbageEvery) == 0
	if junk {
		pic = pic[:c.rng.IntN(len(pic))]
	}
	c.mu.Unlock()
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(pic)
}

// SnapshotCamera is one simulated plain IP camera: a sim.Viewer.
type SnapshotCamera struct {
	offline, garbage atomic.Bool
	fetches          atomic.Uint64

	mu      sync.Mutex // guards the fields below
	rng     *mrand.Rand
	picture []byte // JPEG
	plate   string
}

var (
	_ sim.Viewer = (*SnapshotCamera)(nil)
	_ sim.Faulty = (*SnapshotCamera)(nil)
)

// Show puts a car with the plate in view, its front (entry) or rear (exit,
// yellow) plate towards the camera; "" shows the empty lane.
func (c *SnapshotCamera) Show(plate, direction string) { c.show(plate, direction) }

func (c *SnapshotCamera) show(plate, direction string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var pic []byte
	if plate == "" {
		pic = encodeJPEG(renderScene(nil, c.rng), 75)
	} else {
		pic = encodeJPEG(renderScene(renderPlate(plate, direction == "exit", c.rng), c.rng), 75)
	}
	c.picture, c.plate = pic, plate
}

// Push shows the car: a camera without ANPR pushes nothing, the edge fetches
// its picture when the lane's arming loop triggers it. confidence is not used:
// the edge's reader makes its own.
func (c *SnapshotCamera) Push(_ context.Context, plate string, _ float64, direction string) error {
	if plate == "" {
		return fmt.Errorf("camerasim: no plate to show")
	}
	c.show(plate, direction)
	return nil
}

// Showing returns the plate in view, "" for none.
func (c *SnapshotCamera) Showing() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.plate
}

// Fetches returns how many pictures were asked for.
func (c *SnapshotCamera) Fetches() uint64 { return c.fetches.Load() }

// SetOffline makes the camera drop every request unanswered.
func (c *SnapshotCamera) SetOffline(off bool) { c.offline.Store(off) }

// SetGarbage makes about one picture in three come cut short.
func (c *SnapshotCamera) SetGarbage(on bool) { c.garbage.Store(on) }
