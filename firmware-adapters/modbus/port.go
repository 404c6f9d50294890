package modbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/goburrow/modbus"
	"github.com/goburrow/serial"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// Backoff bounds: after a failure the port (no connection) or the block (no answer,
// bad answer) waits BackoffMin, doubling up to BackoffMax, each wait jittered by ±25%
// so that many ports do not reconnect in step.
const (
	BackoffMin = 100 * time.Millisecond
	BackoffMax = 5 * time.Second
)

// backoff is the wait after the n-th failure in a row (n ≥ 1).
func backoff(n int) time.Duration {
	d := BackoffMin
	for i := 1; i < n && d < BackoffMax; i++ {
		d *= 2
	}
	d = min(d, BackoffMax)
	return d*3/4 + rand.N(d/2+1)
}

// link is an open connection: a TCP socket or a serial port, with the client that
// speaks Modbus over it.
type link struct {
	client     modbus.Client
	setUnit    func(uint8)
	setTimeout func(time.Duration)
	close      func() error
}

// dialer opens a link; timeout bounds the connect.
type dialer func(timeout time.Duration) (*link, error)

func tcpDialer(addr string) dialer {
	return func(timeout time.Duration) (*link, error) {
		h := modbus.NewTCPClientHandler(addr)
		h.Timeout = timeout
		h.IdleTimeout = 0 // the port polls all the time; a timer goroutine only races us
		if err := h.Connect(); err != nil {
			return nil, err
		}
		return &link{
			client:     modbus.NewClient(h),
			setUnit:    func(u uint8) { h.SlaveId = u },
			setTimeout: func(t time.Duration) { h.Timeout = t },
			close:      h.Close,
		}, nil
	}
}

func rtuDialer(path string, s Serial) dialer {
	return func(timeout time.Duration) (*link, error) {
		h := modbus.NewRTUClientHandler(path)
		h.BaudRate, h.Parity, h.DataBits, h.StopBits = s.Baud, s.Parity, s.DataBits, s.StopBits
		h.Timeout = timeout // a serial port takes its read timeout when opened
		h.IdleTimeout = 0
		if err := h.Connect(); err != nil {
			return nil, err
		}
		return &link{
			client:     modbus.NewClient(h),
			setUnit:    func(u uint8) { h.SlaveId = u },
			setTimeout: func(time.Duration) {},
			close:      h.Close,
		}, nil
	}
}

// writeReq is a command for the port goroutine.
type writeReq struct {
	dev       *device
	res       *Resource
	value     uint16
	done      chan error // buffered
	abandoned atomic.Bool
}

// port owns one physical connection (TCP host:port or serial line) and serves every
// device on it, one request at a time: commands first, then whichever poll is due.
type port struct {
	key     string
	log     *slog.Logger
	dial    dialer
	timeout time.Duration // connect timeout: the longest of the devices'
	devices []*device
	blocks  []*block
	writes  chan *writeReq
	emit    func([]edge.DeviceEvent)

	link      *link
	connected bool // ever: later connects are reconnects
	dialFails int
	downUntil time.Time // no dial before (backoff)
}

func newPort(key string, dial dialer, devs []*device, log *slog.Logger, emit func([]edge.DeviceEvent)) *port {
	p := &port{key: key, dial: dial, devices: devs, log: log.With("port", key), writes: make(chan *writeReq), emit: emit}
	for _, d := range devs {
		p.timeout = max(p.timeout, d.bind.Timeout)
	}
	p.blocks = planBlocks(devs)
	return p
}

// run serves the port until ctx is done.
func (p *port) run(ctx context.Context) {
	defer p.closeLink()
	now := time.Now()
	for _, b := range p.blocks {
		b.next, b.fails = now, 0
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if ctx.Err() != nil {
			return
		}
		select {
		case w := <-p.writes:
			p.write(w)
			continue
		default:
		}
		b := p.due()
		var wake <-chan time.Time
		if b != nil {
			at := b.next
			if at.Before(p.downUntil) {
				at = p.downUntil
			}
			if d := time.Until(at); d > 0 {
				timer.Reset(d)
				wake = timer.C
			}
		} else {
			wake = nil // nothing to poll: wait for commands
		}
		if b == nil || wake != nil {
			select {
			case <-ctx.Done():
				return
			case w := <-p.writes:
				p.write(w)
				continue
			case <-wake:
			}
		}
		_ = p.read(b) // counted and logged; the port carries on
	}
}

// due is the block polled next.
func (p *port) due() *block {
	var next *block
	for _, b := range p.blocks {
		if next == nil || b.next.Before(next.next) {
			next = b
		}
	}
	return next
}

// ensureLink connects if there is no connection; a failure fails every device on the
// port and backs the port off.
func (p *port) ensureLink() error {
	if p.link != nil {
		return nil
	}
	l, err := p.dial(p.timeout)
	now := time.Now()
	if err != nil {
		p.dialFails++
		p.downUntil = now.Add(backoff(p.dialFails))
		if p.dialFails == 1 {
			p.log.Warn("modbus: cannot connect", "err", err)
		} else {
			p.log.Debug("modbus: cannot connect", "err", err, "attempt", p.dialFails)
		}
		var evs []edge.DeviceEvent
		for _, d := range p.devices {
			evs = append(evs, d.failed(now, failLink, "cannot connect: "+err.Error())...)
		}
		p.emit(evs)
		return err
	}
	if p.connected {
		for _, d := range p.devices {
			d.stats.reconnects.Add(1)
		}
		if p.dialFails > 0 {
			p.log.Info("modbus: reconnected", "after_attempts", p.dialFails+1)
		} else {
			p.log.Debug("modbus: reconnected") // after dropping a connection that timed out or sent garbage
		}
	}
	p.connected, p.dialFails, p.downUntil, p.link = true, 0, time.Time{}, l
	return nil
}

func (p *port) closeLink() {
	if p.link != nil {
		_ = p.link.close()
		p.link = nil
	}
}

// request sends one request. Any failure but an exception drops the connection: after
// a timeout a late answer would otherwise be read as the answer to the next request,
// and after garbage the stream may be out of step.
func (p *port) request(unit uint8, timeout time.Duration, fn func(modbus.Client) ([]byte, error)) ([]byte, failure, error) {
	p.link.setUnit(unit)
	p.link.setTimeout(timeout)
	data, err := call(fn, p.link.client)
	if err == nil {
		return data, 0, nil
	}
	f := classify(err)
	if f != failException {
		p.closeLink()
	}
	return nil, f, err
}

// call runs fn, turning a panic inside the client library (on a response it did not
// expect) into a malformed-response error.
func call(fn func(modbus.Client) ([]byte, error), c modbus.Client) (data []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			data, err = nil, fmt.Errorf("%w: client library panicked: %v", ErrMalformed, r)
		}
	}()
	return fn(c)
}

// classify says how a request failed.
func classify(err error) failure {
	var me *modbus.ModbusError
	var ne net.Error
	var errno syscall.Errno
	switch {
	case errors.As(err, &me):
		return failException
	case errors.Is(err, ErrMalformed):
		return failMalformed
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, serial.ErrTimeout),
		errors.As(err, &ne) && ne.Timeout():
		return failTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.As(err, &ne), errors.As(err, &errno):
		return failLink
	}
	// What is left are the client's complaints about a response: wrong transaction
	// id, length, byte count or echo.
	return failMalformed
}

// read polls one block and reports what changed.
func (p *port) read(b *block) error {
	if err := p.ensureLink(); err != nil {
		return err
	}
	for _, d := range b.devices {
		d.stats.requests.Add(1)
	}
	addr, n := uint16(b.start), uint16(b.count)
	data, f, err := p.request(b.unit, b.timeout, func(c modbus.Client) ([]byte, error) {
		switch b.table {
		case Coil:
			return c.ReadCoils(addr, n)
		case DiscreteInput:
			return c.ReadDiscreteInputs(addr, n)
		case HoldingRegister:
			return c.ReadHoldingRegisters(addr, n)
		default:
			return c.ReadInputRegisters(addr, n)
		}
	})
	now := time.Now()
	var regs []uint16
	var bits []bool
	if err == nil {
		if b.table.IsBit() {
			bits, err = Bits(data, b.count)
		} else {
			regs, err = Registers(data, b.count)
		}
		if err != nil {
			f = failMalformed
			p.closeLink()
		}
	}
	if err != nil {
		p.blockFailed(b, now, f, err)
		return err
	}
	if b.fails > 0 {
		p.log.Info("modbus: answering again", "unit", b.unit, "table", b.table, "start", b.start, "after_failures", b.fails)
	}
	b.fails = 0
	b.next = b.next.Add(b.interval)
	if b.next.Before(now) {
		b.next = now // late (a slow device or a command came first): do not run to catch up
	}
	var bad []*device
	for _, m := range b.members {
		off := m.res.Address - b.start
		if bits != nil {
			m.dev.set(m.slot, b2f(bits[off]))
			continue
		}
		v, err := m.res.Decode(regs[off:])
		if err != nil {
			if !slices.Contains(bad, m.dev) {
				bad = append(bad, m.dev)
				p.log.Warn("modbus: undecodable value", "device", m.dev.id(), "err", err)
			}
			continue
		}
		m.dev.set(m.slot, v)
	}
	var evs []edge.DeviceEvent
	for _, d := range b.devices {
		if slices.Contains(bad, d) {
			evs = append(evs, d.failed(now, failMalformed, "undecodable value")...)
			continue
		}
		evs = append(evs, d.succeeded(now)...)
		evs = append(evs, d.evaluate(now)...)
	}
	p.emit(evs)
	return nil
}

// pollOnce reads every block once, in address order.
func (p *port) pollOnce(ctx context.Context) error {
	var errs []error
	for _, b := range p.blocks {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := p.read(b); err != nil {
			errs = append(errs, fmt.Errorf("modbus: %s: unit %d %s %d+%d: %w", p.key, b.unit, b.table, b.start, b.count, err))
		}
	}
	return errors.Join(errs...)
}

func (p *port) blockFailed(b *block, now time.Time, f failure, err error) {
	b.fails++
	b.next = now.Add(max(b.interval, backoff(b.fails)))
	detail := f.String() + ": " + err.Error()
	if b.fails == 1 || b.fails == UnhealthyAfter {
		p.log.Warn("modbus: poll failed", "unit", b.unit, "table", b.table, "start", b.start, "count", b.count,
			"failure", f.String(), "err", err, "in_a_row", b.fails)
	} else {
		p.log.Debug("modbus: poll failed", "unit", b.unit, "table", b.table, "start", b.start,
			"failure", f.String(), "err", err, "in_a_row", b.fails)
	}
	var evs []edge.DeviceEvent
	for _, d := range b.devices {
		evs = append(evs, d.failed(now, f, detail)...)
	}
	p.emit(evs)
}

// write sends a command. It then polls the device at once, so that the arm's
// movement is seen without waiting for the next poll.
func (p *port) write(w *writeReq) {
	if w.abandoned.Load() {
		return
	}
	if err := p.ensureLink(); err != nil {
		w.done <- fmt.Errorf("modbus: %s: %w", w.dev.id(), err)
		return
	}
	d := w.dev
	d.stats.requests.Add(1)
	addr, v := uint16(w.res.Address), w.value
	_, f, err := p.request(d.bind.Unit, d.bind.Timeout, func(c modbus.Client) ([]byte, error) {
		if w.res.Table == Coil {
			if v != 0 {
				return c.WriteSingleCoil(addr, 0xFF00)
			}
			return c.WriteSingleCoil(addr, 0)
		}
		return c.WriteSingleRegister(addr, v)
	})
	now := time.Now()
	if err != nil {
		p.log.Warn("modbus: command failed", "device", d.id(), "failure", f.String(), "err", err)
		p.emit(d.failed(now, f, "command: "+f.String()+": "+err.Error()))
		w.done <- fmt.Errorf("modbus: %s: command: %w", d.id(), err)
		return
	}
	p.emit(d.succeeded(now))
	w.done <- nil
	for _, b := range p.blocks {
		if slices.Contains(b.devices, d) {
			b.next = now
		}
	}
}
