package modbussim

import (
	"sync"
	"sync/atomic"

	mbserver "github.com/simonvetter/modbus"

	"github.com/gatehouse-parking/gatehouse/firmware-adapters/modbus"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/sim"
)

// unit is the memory of one Modbus unit (slave id) of a server: four sparse tables,
// every address not set reading as zero. Its fault switches act on every device of the
// unit.
type unit struct {
	id  uint8
	srv *server

	coils, inputs      map[uint16]bool   // guarded by srv.mu
	holding, inputRegs map[uint16]uint16 // guarded by srv.mu
	offline, garbage   atomic.Bool
	garbageKind        atomic.Uint32
}

var _ sim.Faulty = (*unit)(nil)

// SetOffline makes the unit stop answering: requests to it are dropped, so the
// master times out.
func (u *unit) SetOffline(off bool) { u.offline.Store(off) }

// SetGarbage makes the unit answer every request with garbage: by turns a Modbus
// exception, a wrong byte count, a short but consistent response and a wrong
// transaction id.
func (u *unit) SetGarbage(on bool) { u.garbage.Store(on) }

// watchKey names one bit or register that a simulated device watches for writes.
type watchKey struct {
	unit  uint8
	table modbus.Table
	addr  uint16
}

// server is the memory and the request handler of one listen address.
type server struct {
	addr     string
	requests atomic.Uint64 // received, answered or not

	mu       sync.Mutex
	units    map[uint8]*unit
	watchers map[watchKey][]func(v uint16)
}

func newServer(addr string) *server {
	return &server{addr: addr, units: map[uint8]*unit{}, watchers: map[watchKey][]func(uint16){}}
}

func (s *server) unit(id uint8) *unit {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.units[id]
	if !ok {
		u = &unit{id: id, srv: s, coils: map[uint16]bool{}, inputs: map[uint16]bool{},
			holding: map[uint16]uint16{}, inputRegs: map[uint16]uint16{}}
		s.units[id] = u
	}
	return u
}

// watch calls fn with every value written to the coil or holding register.
func (s *server) watch(u uint8, r *modbus.Resource, fn func(uint16)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := watchKey{u, r.Table, uint16(r.Address)}
	s.watchers[k] = append(s.watchers[k], fn)
}

// set stores a resource's value (the simulated device's side of the wire).
func (u *unit) set(r *modbus.Resource, v float64) {
	s := u.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	a := uint16(r.Address)
	switch r.Table {
	case modbus.Coil:
		u.coils[a] = v != 0
		return
	case modbus.DiscreteInput:
		u.inputs[a] = v != 0
		return
	}
	tbl := u.holding
	if r.Table == modbus.InputRegister {
		tbl = u.inputRegs
	}
	regs, err := r.Encode(v, []uint16{tbl[a]})
	if err != nil {
		return // the simulator's own values are in range; nothing to serve otherwise
	}
	for i, w := range regs {
		tbl[a+uint16(i)] = w
	}
}

// get reads a resource's value as the device sees it.
func (u *unit) get(r *modbus.Resource) float64 {
	s := u.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	a := uint16(r.Address)
	switch r.Table {
	case modbus.Coil:
		return b2f(u.coils[a])
	case modbus.DiscreteInput:
		return b2f(u.inputs[a])
	}
	tbl := u.holding
	if r.Table == modbus.InputRegister {
		tbl = u.inputRegs
	}
	v, _ := r.Decode([]uint16{tbl[a], tbl[a+1]})
	return v
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// handler answers the requests the Modbus server decoded. A unit the server does not
// simulate answers as a gateway would: target device failed to respond.
type handler struct{ s *server }

var _ mbserver.RequestHandler = handler{}

func (h handler) lookup(id uint8) *unit { return h.s.units[id] }

func (h handler) HandleCoils(req *mbserver.CoilsRequest) ([]bool, error) {
	s := h.s
	s.mu.Lock()
	u := h.lookup(req.UnitId)
	if u == nil {
		s.mu.Unlock()
		return nil, mbserver.ErrGWTargetFailedToRespond
	}
	if !req.IsWrite {
		out := make([]bool, req.Quantity)
		for i := range out {
			out[i] = u.coils[req.Addr+uint16(i)]
		}
		s.mu.Unlock()
		return out, nil
	}
	var notify []func()
	for i, v := range req.Args {
		a := req.Addr + uint16(i)
		u.coils[a] = v
		for _, fn := range s.watchers[watchKey{u.id, modbus.Coil, a}] {
			val := uint16(0)
			if v {
				val = 1
			}
			notify = append(notify, func() { fn(val) })
		}
	}
	s.mu.Unlock()
	for _, fn := range notify {
		fn() // outside the lock: the device writes its feedback back
	}
	return nil, nil
}

func (h handler) HandleDiscreteInputs(req *mbserver.DiscreteInputsRequest) ([]bool, error) {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	u := h.lookup(req.UnitId)
	if u == nil {
		return nil, mbserver.ErrGWTargetFailedToRespond
	}
	out := make([]bool, req.Quantity)
	for i := range out {
		out[i] = u.inputs[req.Addr+uint16(i)]
	}
	return out, nil
}

func (h handler) HandleHoldingRegisters(req *mbserver.HoldingRegistersRequest) ([]uint16, error) {
	s := h.s
	s.mu.Lock()
	u := h.lookup(req.UnitId)
	if u == nil {
		s.mu.Unlock()
		return nil, mbserver.ErrGWTargetFailedToRespond
	}
	if !req.IsWrite {
		out := make([]uint16, req.Quantity)
		for i := range out {
			out[i] = u.holding[req.Addr+uint16(i)]
		}
		s.mu.Unlock()
		return out, nil
	}
	var notify []func()
	for i, v := range req.Args {
		a := req.Addr + uint16(i)
		u.holding[a] = v
		for _, fn := range s.watchers[watchKey{u.id, modbus.HoldingRegister, a}] {
			notify = append(notify, func() { fn(v) })
		}
	}
	s.mu.Unlock()
	for _, fn := range notify {
		fn()
	}
	return nil, nil
}

func (h handler) HandleInputRegisters(req *mbserver.InputRegistersRequest) ([]uint16, error) {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	u := h.lookup(req.UnitId)
	if u == nil {
		return nil, mbserver.ErrGWTargetFailedToRespond
	}
	out := make([]uint16, req.Quantity)
	for i := range out {
		out[i] = u.inputRegs[req.Addr+uint16(i)]
	}
	return out, nil
}
