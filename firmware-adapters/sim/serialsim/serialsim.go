// Package serialsim simulates gatehouse-sim's serial devices: loop detectors and
// barrier controllers speaking the protocol of docs/serial-protocol.md on pseudo-
// terminals it creates itself. Each configured port (a device's address) becomes a
// pty whose slave is linked at that path, so the edge opens it as it would open
// /dev/ttyUSB0. Devices sharing a path share the pty, as they would share an RS-485
// line; devices sharing a line address form one controller.
package serialsim

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/serial"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/sim"
)

// DefaultTravel is how long a simulated arm takes to go up or down, unless the
// barrier's travel option says otherwise.
const DefaultTravel = time.Second

// Sim is the simulated serial devices of a facility.
type Sim struct {
	ports    []*Port
	byPath   map[string]*Port
	loops    map[string]*Loop
	barriers map[string]*Barrier
	started  atomic.Bool
	close    sync.Once
}

// New creates a pty for every port of the serial devices among devices, linked at
// the port's path (parent directories are created; a stale link is replaced). Devices
// of other protocols are ignored. Call Run to serve them, or Close to drop them.
func New(devices []edge.Device) (*Sim, error) {
	s := &Sim{byPath: map[string]*Port{}, loops: map[string]*Loop{}, barriers: map[string]*Barrier{}}
	for _, d := range devices {
		if d.Protocol != "serial" {
			continue
		}
		if err := s.add(d); err != nil {
			s.Close()
			return nil, fmt.Errorf("serialsim: %w", err)
		}
	}
	for _, p := range s.ports {
		if err := p.create(); err != nil {
			s.Close()
			return nil, fmt.Errorf("serialsim: %w", err)
		}
	}
	return s, nil
}

func (s *Sim) add(d edge.Device) error {
	if s.loops[d.ID] != nil || s.barriers[d.ID] != nil {
		return fmt.Errorf("device %s: configured twice", d.ID)
	}
	ep, err := serial.ParseEndpoint(d)
	if err != nil {
		return err
	}
	p := s.byPath[ep.Path]
	if p == nil {
		p = &Port{path: ep.Path, baud: ep.Baud, ctrls: map[uint8]*controller{}, kick: make(chan struct{}, 1),
			rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
		s.byPath[ep.Path] = p
		s.ports = append(s.ports, p)
	}
	if p.baud != ep.Baud {
		return fmt.Errorf("device %s: baud %d, but another device on %s has %d", d.ID, ep.Baud, ep.Path, p.baud)
	}
	c := p.ctrls[ep.Addr]
	if c == nil {
		c = &controller{addr: ep.Addr, port: p}
		p.ctrls[ep.Addr] = c
		p.addrs = append(p.addrs, ep.Addr)
		slices.Sort(p.addrs)
	}
	switch d.Kind {
	case edge.KindLoop:
		for len(c.loops) < ep.Channel {
			c.loops = append(c.loops, &Loop{port: p, fault: serial.FaultNone}) // an unused channel
		}
		if c.loops[ep.Channel-1].id != "" {
			return fmt.Errorf("device %s: channel %d of %02X on %s is already %s", d.ID, ep.Channel, ep.Addr, ep.Path, c.loops[ep.Channel-1].id)
		}
		l := c.loops[ep.Channel-1]
		l.id, l.addr, l.channel = d.ID, ep.Addr, ep.Channel
		s.loops[d.ID] = l
	case edge.KindBarrier:
		if c.barrier != nil {
			return fmt.Errorf("device %s: %02X on %s is already barrier %s", d.ID, ep.Addr, ep.Path, c.barrier.id)
		}
		travel := DefaultTravel
		if v, ok := d.Options["travel"]; ok {
			if travel, err = time.ParseDuration(v); err != nil || travel <= 0 {
				return fmt.Errorf("device %s: travel %q: want a duration such as 1s", d.ID, v)
			}
		}
		c.barrier = &Barrier{id: d.ID, port: p, addr: ep.Addr, travel: travel, pos: edge.PositionDown}
		s.barriers[d.ID] = c.barrier
	}
	return nil
}

// Devices returns the simulated devices for the traffic model; its Run is s.Run.
// Faulty holds, for every device, its controller: offline takes that controller
// (all the channels of a detector) off the line, garbage makes its line noisy.
func (s *Sim) Devices() sim.Devices {
	out := sim.Devices{Loops: map[string]sim.Loop{}, Barriers: map[string]sim.Barrier{},
		Faulty: map[string]sim.Faulty{}, Run: s.Run}
	for id, l := range s.loops {
		out.Loops[id] = l
		out.Faulty[id] = l.port.ctrls[l.addr]
	}
	for id, b := range s.barriers {
		out.Barriers[id] = b
		out.Faulty[id] = b.port.ctrls[b.addr]
	}
	return out
}

// Loop returns the simulated loop with the given device id, or nil.
func (s *Sim) Loop(id string) *Loop { return s.loops[id] }

// Barrier returns the simulated barrier with the given device id, or nil.
func (s *Sim) Barrier(id string) *Barrier { return s.barriers[id] }

// Ports returns the simulated ports by path, for fault injection.
func (s *Sim) Ports() map[string]*Port {
	out := make(map[string]*Port, len(s.byPath))
	for k, p := range s.byPath {
		out[k] = p
	}
	return out
}

// PortOf returns the port that serves the device with the given id, or nil.
func (s *Sim) PortOf(id string) *Port {
	if l := s.loops[id]; l != nil {
		return l.port
	}
	if b := s.barriers[id]; b != nil {
		return b.port
	}
	return nil
}

// Run serves every port until ctx is done, then closes the ptys and removes their
// links. It may be called once.
func (s *Sim) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("serialsim: Run called twice")
	}
	var wg sync.WaitGroup
	for _, p := range s.ports {
		wg.Go(func() { p.serve() })
		wg.Go(func() { p.heartbeat(ctx) })
	}
	<-ctx.Done()
	s.Close()
	wg.Wait()
	return nil
}

// Close closes the ptys and removes their links. Run does it when its context ends;
// Close is for a Sim that never ran.
func (s *Sim) Close() error {
	var errs []error
	s.close.Do(func() {
		for _, p := range s.ports {
			errs = append(errs, p.destroy())
		}
	})
	return errors.Join(errs...)
}

// Port is one simulated serial line with the controllers on it. It implements
// sim.Faulty.
type Port struct {
	path  string
	baud  int
	addrs []uint8 // sorted
	ctrls map[uint8]*controller
	kick  chan struct{} // send the status now

	master *os.File
	pty    string

	mu        sync.Mutex // guards what follows and the state of the port's devices
	offline   bool
	garbage   bool
	connected bool // the edge has the slave open
	closed    bool

	wmu sync.Mutex // one write at a time
	rng *rand.Rand // guarded by wmu
	// noisy counts the frames sent with noise, guarded by wmu: every fourth carries a
	// copy with a bad checksum, so a short noisy spell always shows one.
	noisy int
}

var _ sim.Faulty = (*Port)(nil)

// controller is the device at one line address: a detector, a barrier controller or
// both in one box. It implements sim.Faulty.
type controller struct {
	addr    uint8
	port    *Port
	loops   []*Loop // by channel - 1; unused channels have no id
	barrier *Barrier
	offline bool // guarded by port.mu
}

var _ sim.Faulty = (*controller)(nil)

// SetOffline takes the controller off the line (no answers, no reports); the others
// on the line go on.
func (c *controller) SetOffline(off bool) {
	c.port.mu.Lock()
	c.offline = off
	c.port.mu.Unlock()
	if !off {
		c.port.kickStatus()
	}
}

// SetGarbage makes the controller's line noisy, for every controller on it: noise is
// a property of the wire.
func (c *controller) SetGarbage(on bool) { c.port.SetGarbage(on) }

// Path is where the port is linked (the devices' address).
func (p *Port) Path() string { return p.path }

// PTY is the slave of the port's pseudo-terminal, such as /dev/pts/3.
func (p *Port) PTY() string { return p.pty }

// SetOffline makes every controller on the port stop answering and stop reporting,
// as a controller without power does; the port stays.
func (p *Port) SetOffline(off bool) {
	p.mu.Lock()
	p.offline = off
	p.mu.Unlock()
	if !off {
		p.kickStatus()
	}
}

// SetGarbage makes the line noisy: random bytes, torn frames and frames with bad
// checksums between the good frames (which all still arrive).
func (p *Port) SetGarbage(on bool) {
	p.mu.Lock()
	p.garbage = on
	p.mu.Unlock()
}

func (p *Port) create() error {
	m, pty, err := openPTY(p.baud)
	if err != nil {
		return err
	}
	p.master, p.pty = m, pty
	if err := os.MkdirAll(filepath.Dir(p.path), 0o755); err != nil {
		return err
	}
	if fi, err := os.Lstat(p.path); err == nil {
		if fi.Mode()&os.ModeSymlink == 0 {
			return fmt.Errorf("%s exists and is not a symlink", p.path)
		}
		os.Remove(p.path) // left by a simulator that did not stop cleanly
	}
	return os.Symlink(pty, p.path)
}

func (p *Port) destroy() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	if p.master == nil {
		return nil
	}
	err := p.master.Close()
	if target, lerr := os.Readlink(p.path); lerr == nil && target == p.pty {
		err = errors.Join(err, os.Remove(p.path))
	}
	return err
}

// serve reads the edge's commands and answers them until the port is closed.
func (p *Port) serve() {
	rd := serial.NewReader(ptyReader{p})
	for {
		f, err := rd.Next()
		if err != nil {
			if serial.IsDefect(err) {
				continue // a controller ignores what it cannot read
			}
			return
		}
		p.handle(f)
	}
}

// ptyReader reads the master, noting whether the edge has the slave open: a read
// fails with EIO while no one has.
type ptyReader struct{ p *Port }

// Read returns what the edge wrote, waiting through the time it is not there, and
// io.EOF once the port is closed.
func (r ptyReader) Read(b []byte) (int, error) {
	for {
		r.p.master.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := r.p.master.Read(b)
		switch {
		case n > 0:
			r.p.setConnected(true)
			return n, nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			r.p.setConnected(true)
		case errors.Is(err, os.ErrClosed):
			return 0, io.EOF
		case errors.Is(err, syscall.EIO):
			r.p.setConnected(false)
			time.Sleep(50 * time.Millisecond)
		default:
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func (p *Port) setConnected(on bool) {
	p.mu.Lock()
	was := p.connected
	p.connected = on
	p.mu.Unlock()
	if on && !was {
		p.kickStatus() // as a device does at power-up: no need to wait for the next second
	}
}

func (p *Port) kickStatus() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// heartbeat sends every controller's status every second.
func (p *Port) heartbeat(ctx context.Context) {
	t := time.NewTicker(serial.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.kick:
		}
		p.mu.Lock()
		var frames []serial.Frame
		for _, a := range p.addrs {
			frames = append(frames, p.ctrls[a].status()...)
		}
		p.mu.Unlock()
		p.send(frames...)
	}
}

// handle answers one command. Commands to addresses not on this port are someone
// else's; bad frames were dropped by the reader, as a controller drops them.
func (p *Port) handle(f serial.Frame) {
	c := p.ctrls[f.Addr]
	if c == nil {
		return
	}
	p.mu.Lock()
	if p.offline || c.offline {
		p.mu.Unlock()
		return
	}
	nak := func(reason string) []serial.Frame {
		return []serial.Frame{{Addr: f.Addr, Code: serial.CodeNak, Fields: []string{f.Code, reason}}}
	}
	var out []serial.Frame
	switch {
	case f.Code != serial.CodeOpen && f.Code != serial.CodeClose && f.Code != serial.CodeStatusQuery:
		out = nak(serial.ReasonUnknown)
	case len(f.Fields) > 0:
		out = nak(serial.ReasonSyntax)
	case f.Code == serial.CodeStatusQuery:
		out = append([]serial.Frame{{Addr: f.Addr, Code: serial.CodeAck, Fields: []string{f.Code}}}, c.status()...)
	case c.barrier == nil:
		out = nak(serial.ReasonUnsupported)
	case f.Code == serial.CodeOpen:
		out = c.barrier.command(edge.PositionUp)
	default:
		out = c.barrier.command(edge.PositionDown)
	}
	p.mu.Unlock()
	p.send(out...)
}

// status is the controller's heartbeat. Called with the port's mu held.
func (c *controller) status() []serial.Frame {
	var out []serial.Frame
	if n := len(c.loops); n > 0 {
		occ, flt := make([]byte, n), make([]byte, n)
		for i, l := range c.loops {
			occ[i], flt[i] = '0', l.fault
			if l.occupied {
				occ[i] = '1'
			}
		}
		out = append(out, serial.Frame{Addr: c.addr, Code: serial.CodeLoopStatus, Fields: []string{strconv.Itoa(n), string(occ), string(flt)}})
	}
	if b := c.barrier; b != nil {
		out = append(out, serial.Frame{Addr: c.addr, Code: serial.CodeArmStatus, Fields: []string{serial.PositionCode(b.pos)}})
	}
	return out
}

// send writes frames to the edge, with noise in garbage mode. Nothing goes while the
// port is offline or the edge is not there (a pty keeps what is written to it for
// the next reader, who would take it for news), nor from a controller that is offline.
func (p *Port) send(frames ...serial.Frame) {
	p.mu.Lock()
	quiet := p.offline || !p.connected || p.closed
	garbage := p.garbage
	frames = slices.DeleteFunc(frames, func(f serial.Frame) bool { return p.ctrls[f.Addr].offline })
	p.mu.Unlock()
	if quiet || len(frames) == 0 {
		return
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	var buf []byte
	for _, f := range frames {
		line, err := f.Append(nil)
		if err != nil {
			continue // cannot happen: the simulator builds its frames
		}
		if garbage {
			buf = p.noise(buf, line)
		}
		buf = append(buf, line...)
	}
	p.master.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
	p.master.Write(buf) // an edge that stopped reading loses frames, as on a wire
}

// noise appends line noise to put before line: random bytes, a copy of line with a
// bad checksum, a torn start of line. None of it can hide line: the Reader restarts
// at line's '$', and the noise before it is far shorter than MaxLine.
func (p *Port) noise(buf, line []byte) []byte {
	if p.rng.IntN(2) == 0 {
		for range 1 + p.rng.IntN(16) {
			c := byte(p.rng.IntN(256))
			if c == '$' {
				c = '#'
			}
			buf = append(buf, c)
		}
	}
	p.noisy++
	if p.noisy%4 == 1 || p.rng.IntN(5) == 0 {
		bad := slices.Clone(line)
		i := len(bad) - 4 // first checksum digit, before "h\r\n"
		bad[i] = "0123456789ABCDEF"[(hexValue(bad[i])+1+p.rng.IntN(15))%16]
		buf = append(buf, bad...)
	}
	if p.rng.IntN(4) == 0 {
		buf = append(buf, line[:1+p.rng.IntN(len(line)-3)]...)
	}
	return buf
}

func hexValue(c byte) int {
	if c >= 'A' {
		return int(c-'A') + 10
	}
	return int(c - '0')
}

// Loop is a simulated loop detector channel. It implements sim.Loop.
type Loop struct {
	id      string
	port    *Port
	addr    uint8
	channel int
	// Guarded by port.mu.
	occupied bool
	fault    byte
}

var _ sim.Loop = (*Loop)(nil)

// SetOccupied puts a car on the loop or takes it off; a change is reported at once
// (LP) and in every status.
func (l *Loop) SetOccupied(on bool) {
	p := l.port
	p.mu.Lock()
	changed := l.occupied != on
	l.occupied = on
	report := changed && l.fault == serial.FaultNone
	p.mu.Unlock()
	if report {
		bit := "0"
		if on {
			bit = "1"
		}
		p.send(serial.Frame{Addr: l.addr, Code: serial.CodeLoop, Fields: []string{strconv.Itoa(l.channel), bit}})
	}
}

// SetFault sets the channel's fault flag (serial.FaultOpen, FaultShort, FaultOther,
// or FaultNone to clear it), reported in the detector's status.
func (l *Loop) SetFault(flag byte) {
	l.port.mu.Lock()
	l.fault = cmp.Or(flag, serial.FaultNone)
	l.port.mu.Unlock()
	l.port.kickStatus()
}

// Barrier is a simulated barrier controller's arm. It implements sim.Barrier.
type Barrier struct {
	id     string
	port   *Port
	addr   uint8
	travel time.Duration
	// Guarded by port.mu.
	pos    edge.Position
	target edge.Position
	stuck  bool
	moves  int // counts moves, so a superseded one does not land
}

var _ sim.Barrier = (*Barrier)(nil)

// Position is where the arm is now; PositionMoving while it travels.
func (b *Barrier) Position() edge.Position {
	b.port.mu.Lock()
	defer b.port.mu.Unlock()
	return b.pos
}

// SetStuck jams the arm: commands are acknowledged, and nothing moves.
func (b *Barrier) SetStuck(stuck bool) {
	b.port.mu.Lock()
	b.stuck = stuck
	b.port.mu.Unlock()
}

// command starts the arm towards to and returns the answer. Called with the port's
// mu held.
func (b *Barrier) command(to edge.Position) []serial.Frame {
	ack := serial.Frame{Addr: b.addr, Code: serial.CodeAck, Fields: []string{openOrClose(to)}}
	arm := func(p edge.Position) serial.Frame {
		return serial.Frame{Addr: b.addr, Code: serial.CodeArm, Fields: []string{serial.PositionCode(p)}}
	}
	switch {
	case b.stuck:
		return []serial.Frame{ack}
	case b.pos == to:
		return []serial.Frame{ack, arm(to)} // there already: say so, the edge waits for it
	case b.pos == edge.PositionMoving && b.target == to:
		return []serial.Frame{ack}
	}
	b.pos, b.target = edge.PositionMoving, to
	b.moves++
	move := b.moves
	time.AfterFunc(b.travel, func() {
		b.port.mu.Lock()
		if b.moves != move {
			b.port.mu.Unlock()
			return
		}
		b.pos = to
		b.port.mu.Unlock()
		b.port.send(arm(to))
	})
	return []serial.Frame{ack, arm(edge.PositionMoving)}
}

func openOrClose(to edge.Position) string {
	if to == edge.PositionUp {
		return serial.CodeOpen
	}
	return serial.CodeClose
}
