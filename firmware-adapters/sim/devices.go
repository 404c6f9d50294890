// Package sim is gatehouse-sim: a garage in software whose devices speak the same
// protocols as real ones (Modbus TCP, serial lines on pseudo-terminals, MQTT, camera
// HTTP pushes and snapshots), driven by a traffic model, so that the demo, the
// end-to-end tests and the benchmarks exercise the real gatehouse-edge over real
// wires.
//
// Each protocol has its own subpackage (modbussim, serialsim, mqttsim, camerasim) that
// builds the simulated devices of a facility's config for that protocol and returns
// them as the small interfaces below, which the traffic model drives.
package sim

import (
	"context"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// Loop is a simulated loop detector: the traffic model puts cars on it.
type Loop interface {
	SetOccupied(on bool)
}

// Barrier is a simulated barrier: it moves by itself when the edge commands it (arm
// travel takes about a second) and reports its position on its protocol.
type Barrier interface {
	// Position is where the arm is now.
	Position() edge.Position
	// SetStuck makes the arm ignore commands (fault injection).
	SetStuck(stuck bool)
}

// Spot is a simulated spot sensor.
type Spot interface {
	SetOccupied(on bool)
}

// Camera is a simulated ANPR camera that pushes its reads to the edge.
type Camera interface {
	// Push sends one plate read; direction is "entry" or "exit".
	Push(ctx context.Context, plate string, confidence float64, direction string) error
}

// Viewer is a simulated camera without ANPR of its own (protocol lpr): the edge
// fetches its pictures when the lane's arming loop triggers it and reads the
// plate itself. The traffic model puts each car in its view before the car
// reaches the arming loop and clears the view once the car has left; Push is
// not used for it.
type Viewer interface {
	Camera
	// Show puts a car with plate in view, its front (entry) or rear (exit)
	// towards the camera; "" shows the empty lane.
	Show(plate, direction string)
}

// Faulty is a simulated device that can be taken offline or made to send garbage
// (fault injection).
type Faulty interface {
	SetOffline(off bool)
	SetGarbage(on bool)
}

// Devices are the simulated devices of one protocol, by device id.
type Devices struct {
	Loops    map[string]Loop
	Barriers map[string]Barrier
	Spots    map[string]Spot
	Cameras  map[string]Camera
	// Faulty holds, by device id, the devices that can be taken offline or made to
	// send garbage, where the protocol's simulator supports it.
	Faulty map[string]Faulty
	// Run serves the devices (listeners, pumps) until ctx is done; nil if nothing runs.
	Run func(ctx context.Context) error
}
