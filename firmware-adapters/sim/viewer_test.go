package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// laneLog records what the simulated devices of one lane were told, in order.
type laneLog struct {
	mu  sync.Mutex
	log []string
}

func (l *laneLog) add(s string) {
	l.mu.Lock()
	l.log = append(l.log, s)
	l.mu.Unlock()
}

func (l *laneLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.log, " ")
}

type fakeLoop struct {
	name string
	log  *laneLog
}

func (f fakeLoop) SetOccupied(on bool) { f.log.add(fmt.Sprintf("%s=%v", f.name, on)) }

// fakeBarrier is up once the edge has opened it.
type fakeBarrier struct{ up *atomic.Bool }

func (b fakeBarrier) Position() edge.Position {
	if b.up.Load() {
		return edge.PositionUp
	}
	return edge.PositionDown
}
func (b fakeBarrier) SetStuck(bool) {}

type fakeViewer struct{ log *laneLog }

func (v fakeViewer) Show(plate, direction string) { v.log.add("show=" + plate + "/" + direction) }
func (v fakeViewer) Push(context.Context, string, float64, string) error {
	v.log.add("push")
	return nil
}

// TestThroughViewer drives a car through an exit whose camera the edge reads
// itself (a Viewer): the car is in view before the arming loop goes on; the
// edge, unsure of the plate, is given a new trigger by the driver backing off
// the loop and pulling forward (the camera pushes nothing); once the arm is up
// the car passes, and the camera shows the empty lane after it left.
func TestThroughViewer(t *testing.T) {
	log := &laneLog{}
	up := &atomic.Bool{}
	var displays atomic.Int32
	edgeAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/lanes/x2/display" {
			http.NotFound(w, r)
			return
		}
		// Unsure of the plate twice, then the arm goes up.
		switch n := displays.Add(1); {
		case n <= 2:
			fmt.Fprint(w, `{"state":"armed","decision":{"allowed":false,"reason":"plate_unsure"}}`)
		default:
			up.Store(true)
			fmt.Fprint(w, `{"state":"open","decision":{"allowed":true}}`)
		}
	}))
	defer edgeAPI.Close()
	lane := edge.Lane{ID: "x2", Direction: edge.Exit, ArmingLoop: "x2-arm", SafetyLoop: "x2-safe", Barrier: "x2-bar", Cameras: []string{"x2-cam"}}
	g := NewGarage(Config{
		Facility: &edge.Facility{Lanes: []edge.Lane{lane}},
		Devices: Devices{
			Loops:    map[string]Loop{"x2-arm": fakeLoop{"arm", log}, "x2-safe": fakeLoop{"safe", log}},
			Barriers: map[string]Barrier{"x2-bar": fakeBarrier{up}},
			Cameras:  map[string]Camera{"x2-cam": fakeViewer{log}},
		},
		EdgeURL: edgeAPI.URL,
		Model:   Model{Pass: 0},
	})
	if !g.through(context.Background(), &car{plate: "KL467RT"}, lane, rand.New(rand.NewPCG(1, 2))) {
		t.Fatalf("the car did not get through: %s", log)
	}
	want := "show=KL467RT/exit arm=true " + // in view first, then on the loop
		"arm=false arm=true arm=false arm=true " + // two rereads: off the loop and on again
		"safe=true arm=false safe=false show=/exit" // through, then the lane is empty
	if got := log.String(); got != want {
		t.Fatalf("lane saw\n  %s\nwant\n  %s", got, want)
	}
}

// TestVisitStopsAtExit: a car waiting at an exit whose arm does not rise stays
// in when the simulator stops, at once, and the truth is settled (on no lane,
// still inside); before, the exit ignored the stop and kept the car trying for
// minutes.
func TestVisitStopsAtExit(t *testing.T) {
	log := &laneLog{}
	entryUp, exitUp := &atomic.Bool{}, &atomic.Bool{}
	atExit := make(chan struct{}, 100)
	edgeAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/lanes/in/display":
			entryUp.Store(true)
			fmt.Fprint(w, `{"state":"open","decision":{"allowed":true}}`)
		case "/v1/lanes/out/display":
			atExit <- struct{}{}
			fmt.Fprint(w, `{"state":"armed"}`) // the edge never decides
		default:
			http.NotFound(w, r)
		}
	}))
	defer edgeAPI.Close()
	in := edge.Lane{ID: "in", Direction: edge.Entry, Zone: "Z", ArmingLoop: "in-arm", SafetyLoop: "in-safe", Barrier: "in-bar"}
	out := edge.Lane{ID: "out", Direction: edge.Exit, Zone: "Z", ArmingLoop: "out-arm", SafetyLoop: "out-safe", Barrier: "out-bar"}
	g := NewGarage(Config{
		Facility: &edge.Facility{Lanes: []edge.Lane{in, out}, Zones: []edge.Zone{{ID: "Z", Capacity: 10}}},
		Devices: Devices{
			Loops: map[string]Loop{"in-arm": fakeLoop{"in-arm", log}, "in-safe": fakeLoop{"in-safe", log},
				"out-arm": fakeLoop{"out-arm", log}, "out-safe": fakeLoop{"out-safe", log}},
			Barriers: map[string]Barrier{"in-bar": fakeBarrier{entryUp}, "out-bar": fakeBarrier{exitUp}},
		},
		EdgeURL: edgeAPI.URL,
		Model:   Model{DwellMedian: time.Millisecond, Speedup: 1},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		// The entry's arm stays up: the car has passed it before it leaves.
		g.visit(ctx, &car{n: 1, plate: "KL467RT", entry: in}, 1)
		close(done)
	}()
	select {
	case <-atExit:
	case <-time.After(10 * time.Second):
		t.Fatalf("the car did not reach the exit: %s", log)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatalf("the car kept trying to leave after the simulator stopped: %s", log)
	}
	if tr := g.Truth(); tr.Entered != 1 || tr.Exited != 0 || tr.Inside != 1 || tr.InLane != 0 {
		t.Fatalf("truth = %+v; want entered 1, inside 1, on no lane", tr)
	}
	if !strings.HasSuffix(log.String(), "out-arm=false") {
		t.Errorf("the car did not back off the exit's loop: %s", log)
	}
}
