package serial

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// health is a device's health as the driver sees it.
type health uint8

const (
	healthUnknown health = iota // not yet reported: waiting for the first frame
	healthUp
	healthDown
)

// device is one configured loop or barrier.
type device struct {
	cfg  edge.Device
	ep   Endpoint
	port *port

	// Guarded by port.mu.
	known    bool // state delivered since the last (re)connection or fault
	occupied bool
	fault    byte // loops: the channel's fault flag, FaultNone when healthy
	pos      edge.Position
	awaiting bool   // barriers: OPEN or CLOSE sent, its ARM report not yet seen
	reported health // last DeviceHealth delivered
	counters map[string]uint64
}

// controller is one line address on a port.
type controller struct {
	heard    bool      // a valid frame since the port was (re)opened
	last     time.Time // last valid frame
	channels int       // loop channels the detector reports; 0 until its first LS
}

type loopKey struct {
	addr    uint8
	channel int
}

// port is one serial port and the devices on it. Its goroutine (run) owns the
// connection: it reads, writes one command at a time and decides health.
type port struct {
	d    *Driver
	path string
	baud int
	log  *slog.Logger
	cmds chan *request

	devices  []*device
	loops    map[loopKey]*device
	barriers map[uint8]*device

	mu       sync.Mutex
	ctrls    map[uint8]*controller
	open     bool
	openedAt time.Time
	lastErr  string
	counters map[string]uint64

	// Used by the port's goroutine only.
	limits map[string]*limit
}

func newPort(d *Driver, path string, baud int) *port {
	return &port{
		d: d, path: path, baud: baud,
		log:      d.log.With("port", path),
		cmds:     make(chan *request),
		loops:    map[loopKey]*device{},
		barriers: map[uint8]*device{},
		ctrls:    map[uint8]*controller{},
		lastErr:  "not opened yet",
		counters: map[string]uint64{},
		limits:   map[string]*limit{},
	}
}

func (p *port) add(dev *device) error {
	switch dev.cfg.Kind {
	case edge.KindLoop:
		k := loopKey{dev.ep.Addr, dev.ep.Channel}
		if o := p.loops[k]; o != nil {
			return fmt.Errorf("channel %d of controller %02X on %s is already loop %s", k.channel, k.addr, p.path, o.cfg.ID)
		}
		p.loops[k] = dev
		dev.fault = FaultNone
	case edge.KindBarrier:
		if o := p.barriers[dev.ep.Addr]; o != nil {
			return fmt.Errorf("controller %02X on %s is already barrier %s", dev.ep.Addr, p.path, o.cfg.ID)
		}
		p.barriers[dev.ep.Addr] = dev
	}
	p.devices = append(p.devices, dev)
	if p.ctrls[dev.ep.Addr] == nil {
		p.ctrls[dev.ep.Addr] = &controller{}
	}
	return nil
}

// run opens the port and serves it until ctx ends, reopening it with backoff.
func (p *port) run(ctx context.Context) {
	backoff := minBackoff
	for {
		rw, err := p.d.open(p.path, p.baud)
		if err != nil {
			p.count("open_errors")
			p.down("cannot open: " + err.Error())
			p.limited(slog.LevelWarn, "open", "serial port cannot be opened", "err", err, "retry_in", backoff)
		} else {
			p.log.Info("serial port open", "baud", p.baud)
			heard, err := p.serve(ctx, rw)
			if ctx.Err() != nil {
				p.down("closed: driver stopped")
				return
			}
			p.count("reopen")
			p.down("lost: " + err.Error())
			p.limited(slog.LevelWarn, "lost", "serial port lost; reopening", "err", err)
			if heard {
				backoff = minBackoff
			}
		}
		if !p.pause(ctx, backoff) {
			p.down("closed: driver stopped")
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// pause waits d while the port is down, refusing commands. It reports false when
// ctx ended.
func (p *port) pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case req := <-p.cmds:
			req.done <- ErrPortDown
		}
	}
}

// down marks the port closed and its devices unhealthy.
func (p *port) down(why string) {
	now := time.Now()
	p.mu.Lock()
	p.open, p.lastErr = false, why
	evs := p.evaluate(now)
	p.mu.Unlock()
	p.d.events.push(evs...)
}

// writeTimeout bounds the write of one command: at 1200 baud a whole line takes about
// a second.
const writeTimeout = 2 * time.Second

// item is what the reader hands the port: a frame, a defect or the end.
type item struct {
	f    Frame
	err  error
	line []byte
}

// serve runs one connection until it fails (err says why) or ctx ends. heard says
// whether a valid frame arrived.
func (p *port) serve(ctx context.Context, rw io.ReadWriteCloser) (heard bool, err error) {
	p.mu.Lock()
	p.open, p.openedAt = true, time.Now()
	for _, c := range p.ctrls {
		c.heard, c.channels = false, 0
	}
	for _, dev := range p.devices {
		dev.known, dev.awaiting, dev.fault = false, false, FaultNone
	}
	p.mu.Unlock()

	items := make(chan item)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		rd := NewReader(rw)
		for {
			f, err := rd.Next()
			it := item{f: f, err: err, line: append([]byte(nil), rd.Line()...)}
			select {
			case items <- it:
			case <-stop:
				return
			}
			if err != nil && !IsDefect(err) {
				return
			}
		}
	})
	var pending *request
	var timeout <-chan time.Time
	defer func() {
		close(stop)
		rw.Close()
		wg.Wait()
		if pending != nil {
			if ctx.Err() != nil {
				pending.done <- ErrStopped
			} else {
				pending.done <- ErrPortDown
			}
		}
	}()
	tick := time.NewTicker(min(250*time.Millisecond, p.d.silence/4))
	defer tick.Stop()
	for {
		var cmds <-chan *request
		if pending == nil {
			cmds = p.cmds
		}
		select {
		case <-ctx.Done():
			return heard, ctx.Err()
		case it := <-items:
			if it.err != nil {
				if !IsDefect(it.err) {
					return heard, it.err
				}
				p.defect(it)
				continue
			}
			heard = true
			if p.handle(it.f, it.line, &pending) {
				timeout = nil
			}
		case req := <-cmds:
			if err := req.ctx.Err(); err != nil {
				req.done <- err
				continue
			}
			b, err := Frame{Addr: req.dev.ep.Addr, Code: req.code}.Append(nil)
			if err != nil {
				req.done <- err
				continue
			}
			p.mu.Lock()
			req.dev.counters["commands"]++
			req.dev.awaiting = true
			p.mu.Unlock()
			pending = req
			if w, ok := rw.(interface{ SetWriteDeadline(time.Time) error }); ok {
				// A line that does not drain must not hold the port forever.
				w.SetWriteDeadline(time.Now().Add(writeTimeout))
			}
			if _, err := rw.Write(b); err != nil {
				return heard, err
			}
			timeout = time.After(p.d.cmdTimeout)
		case <-timeout:
			p.mu.Lock()
			pending.dev.counters["timeouts"]++
			p.mu.Unlock()
			p.limited(slog.LevelWarn, "timeout", "command not answered", "device", pending.dev.cfg.ID, "command", pending.code)
			pending.done <- ErrTimeout
			pending, timeout = nil, nil
		case now := <-tick.C:
			p.mu.Lock()
			evs := p.evaluate(now)
			p.mu.Unlock()
			p.d.events.push(evs...)
		}
	}
}

// defect counts and logs a bad line.
func (p *port) defect(it item) {
	var key string
	n := uint64(1)
	switch {
	case errorIs(it.err, ErrGarbage):
		key, n = "garbage_bytes", uint64(it.err.(*LineError).N)
	case errorIs(it.err, ErrOverlong):
		key = "overlong"
	case errorIs(it.err, ErrChecksum):
		key = "bad_checksum"
	default: // ErrMalformed: a good checksum, but nothing this protocol says
		key = "unknown"
	}
	p.mu.Lock()
	p.counters[key] += n
	if key != "garbage_bytes" {
		p.counters["lines"]++
	}
	p.mu.Unlock()
	p.limited(slog.LevelWarn, key, "bad data on serial line", "defect", it.err.Error(), "line", quoteLine(it.line))
}

// handle applies one valid frame. It reports whether it answered the pending
// command (and cleared *pending).
func (p *port) handle(f Frame, line []byte, pending **request) (answered bool) {
	now := time.Now()
	p.mu.Lock()
	p.counters["lines"]++
	c := p.ctrls[f.Addr]
	key := ""
	switch {
	case f.Code == CodeOpen || f.Code == CodeClose || f.Code == CodeStatusQuery:
		// Our own command heard back on a line that echoes: no sign of life from
		// the controller.
		key = "echo"
	case c == nil:
		key = "foreign"
	}
	if key != "" {
		p.counters[key]++
		p.mu.Unlock()
		p.limited(slog.LevelDebug, key, "frame ignored", "line", quoteLine(line))
		return false
	}
	c.heard, c.last = true, now
	var state []edge.DeviceEvent
	ok := true
	switch f.Code {
	case CodeLoop:
		ok = p.loopReport(f, now, &state)
	case CodeLoopStatus:
		ok = p.loopStatus(f, c, now, &state)
	case CodeArm, CodeArmStatus:
		ok = p.armReport(f, now, &state)
	case CodeAck, CodeNak:
		req := *pending
		if req == nil || req.dev.ep.Addr != f.Addr || len(f.Fields) == 0 || f.Fields[0] != req.code {
			p.counters["stale"]++
			p.mu.Unlock()
			p.limited(slog.LevelInfo, "stale", "answer to no pending command", "line", quoteLine(line))
			return false
		}
		if f.Code == CodeNak {
			req.dev.counters["naks"]++
			req.dev.awaiting = false
			reason := "?"
			if len(f.Fields) > 1 {
				reason = f.Fields[1]
			}
			req.done <- &NAKError{Reason: reason}
		} else {
			req.done <- nil
		}
		*pending, answered = nil, true
	default:
		ok = false
	}
	if !ok {
		p.counters["unknown"]++
	}
	evs := append(p.evaluate(now), state...)
	p.mu.Unlock()
	if !ok {
		p.limited(slog.LevelWarn, "unknown", "frame not understood", "line", quoteLine(line))
	}
	p.d.events.push(evs...)
	return answered
}

// loopReport applies LP,<ch>,<0|1>.
func (p *port) loopReport(f Frame, now time.Time, evs *[]edge.DeviceEvent) bool {
	if len(f.Fields) != 2 {
		return false
	}
	ch, err := strconv.Atoi(f.Fields[0])
	if err != nil || ch < 1 || ch > MaxChannels || len(f.Fields[0]) > 2 {
		return false
	}
	occ, ok := bit(f.Fields[1])
	if !ok {
		return false
	}
	if dev := p.loops[loopKey{f.Addr, ch}]; dev != nil {
		p.setLoop(dev, occ, now, evs)
	}
	return true
}

// loopStatus applies LS,<n>,<occupancy>,<faults>.
func (p *port) loopStatus(f Frame, c *controller, now time.Time, evs *[]edge.DeviceEvent) bool {
	occ, faults, ok := parseLoopStatus(f)
	if !ok {
		return false
	}
	c.channels = len(occ)
	for _, dev := range p.devices {
		if dev.cfg.Kind != edge.KindLoop || dev.ep.Addr != f.Addr || dev.ep.Channel > len(occ) {
			continue
		}
		i := dev.ep.Channel - 1
		if dev.fault != faults[i] {
			dev.fault, dev.known = faults[i], false
		}
		p.setLoop(dev, occ[i], now, evs)
	}
	return true
}

// parseLoopStatus checks an LS frame: n channels, n occupancy digits, n fault flags.
func parseLoopStatus(f Frame) (occ []bool, faults []byte, ok bool) {
	if len(f.Fields) != 3 {
		return nil, nil, false
	}
	n, err := strconv.Atoi(f.Fields[0])
	if err != nil || n < 1 || n > MaxChannels || len(f.Fields[0]) > 2 || len(f.Fields[1]) != n || len(f.Fields[2]) != n {
		return nil, nil, false
	}
	occ = make([]bool, n)
	for i := range n {
		if occ[i], ok = bit(f.Fields[1][i : i+1]); !ok {
			return nil, nil, false
		}
		switch f.Fields[2][i] {
		case FaultNone, FaultOpen, FaultShort, FaultOther:
		default:
			return nil, nil, false
		}
	}
	return occ, []byte(f.Fields[2]), true
}

// setLoop records a channel's state and delivers it if it is news: changed, or the
// first since the device came (back).
func (p *port) setLoop(dev *device, occ bool, now time.Time, evs *[]edge.DeviceEvent) {
	news := !dev.known || dev.occupied != occ
	dev.occupied = occ
	if dev.fault != FaultNone {
		return // a faulty loop sees nothing; its state is delivered once it recovers
	}
	dev.known = true
	if news {
		*evs = append(*evs, edge.DeviceEvent{Device: dev.cfg.ID, Kind: edge.LoopChanged, At: now, Occupied: occ})
	}
}

// armReport applies ARM,<pos> and AS,<pos>. An ARM after a command is delivered even
// if the arm was there already: the lane waits for it.
func (p *port) armReport(f Frame, now time.Time, evs *[]edge.DeviceEvent) bool {
	if len(f.Fields) != 1 {
		return false
	}
	pos, ok := ParsePosition(f.Fields[0])
	if !ok {
		return false
	}
	dev := p.barriers[f.Addr]
	if dev == nil {
		return true // the controller at this address is a detector we know; ignore
	}
	news := !dev.known || dev.pos != pos || (f.Code == CodeArm && dev.awaiting)
	dev.pos, dev.known = pos, true
	if f.Code == CodeArm {
		dev.awaiting = false
	}
	if news {
		*evs = append(*evs, edge.DeviceEvent{Device: dev.cfg.ID, Kind: edge.ArmPosition, At: now, Position: pos})
	}
	return true
}

// healthOf decides a device's health now. Called with p.mu held.
func (p *port) healthOf(dev *device, now time.Time) (health, string) {
	if !p.open {
		return healthDown, "serial port " + p.lastErr
	}
	c := p.ctrls[dev.ep.Addr]
	switch {
	case !c.heard && now.Sub(p.openedAt) >= p.d.silence:
		return healthDown, fmt.Sprintf("no report from controller %02X since the port opened", dev.ep.Addr)
	case !c.heard:
		return healthUnknown, "waiting for the first report"
	case now.Sub(c.last) >= p.d.silence:
		return healthDown, fmt.Sprintf("controller %02X silent for %v", dev.ep.Addr, now.Sub(c.last).Round(100*time.Millisecond))
	}
	if dev.cfg.Kind == edge.KindLoop {
		if c.channels > 0 && dev.ep.Channel > c.channels {
			return healthDown, fmt.Sprintf("channel %d not fitted: detector %02X reports %d", dev.ep.Channel, dev.ep.Addr, c.channels)
		}
		switch dev.fault {
		case FaultOpen:
			return healthDown, fmt.Sprintf("loop open circuit (detector %02X channel %d)", dev.ep.Addr, dev.ep.Channel)
		case FaultShort:
			return healthDown, fmt.Sprintf("loop short circuit (detector %02X channel %d)", dev.ep.Addr, dev.ep.Channel)
		case FaultOther:
			return healthDown, fmt.Sprintf("detector fault (detector %02X channel %d)", dev.ep.Addr, dev.ep.Channel)
		}
	}
	return healthUp, ""
}

// evaluate returns a DeviceHealth event for every device whose health changed.
// Called with p.mu held.
func (p *port) evaluate(now time.Time) []edge.DeviceEvent {
	var evs []edge.DeviceEvent
	for _, dev := range p.devices {
		h, detail := p.healthOf(dev, now)
		if h == healthUnknown || h == dev.reported {
			continue
		}
		dev.reported = h
		if h == healthDown {
			dev.known = false // deliver the state again once it is back
			p.log.Warn("device unhealthy", "device", dev.cfg.ID, "detail", detail)
		} else {
			p.log.Info("device healthy", "device", dev.cfg.ID)
		}
		evs = append(evs, edge.DeviceEvent{Device: dev.cfg.ID, Kind: edge.DeviceHealth, At: now, Healthy: h == healthUp, Detail: detail})
	}
	return evs
}

func (p *port) count(key string) {
	p.mu.Lock()
	p.counters[key]++
	p.mu.Unlock()
}

// logEvery is how often each kind of trouble is logged at most; what happens in
// between is counted and summed up in the next log line.
const logEvery = 10 * time.Second

type limit struct {
	last       time.Time
	suppressed int
}

// limited logs msg unless a message of the same key was logged within logEvery.
func (p *port) limited(level slog.Level, key, msg string, args ...any) {
	now := time.Now()
	l := p.limits[key]
	if l == nil {
		l = &limit{}
		p.limits[key] = l
	}
	if !l.last.IsZero() && now.Sub(l.last) < logEvery {
		l.suppressed++
		return
	}
	if l.suppressed > 0 {
		args = append(args, "suppressed", l.suppressed)
	}
	l.last, l.suppressed = now, 0
	p.log.Log(context.Background(), level, msg, args...)
}

func bit(s string) (bool, bool) {
	switch s {
	case "0":
		return false, true
	case "1":
		return true, true
	}
	return false, false
}

func errorIs(err, target error) bool {
	le, ok := err.(*LineError)
	return ok && le.Err == target
}

// quoteLine shows a line in a log, escaped.
func quoteLine(b []byte) string { return strconv.QuoteToASCII(string(b)) }
