//go:build linux

package modbus_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/modbus"
)

// openPTY returns the master side of a new pseudo-terminal and the path of its
// slave side, which the driver opens as its serial line.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatalf("TIOCGPTN: %v", e)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatalf("TIOCSPTLCK: %v", e)
	}
	return m, fmt.Sprintf("/dev/pts/%d", n)
}

func crc16(b []byte) uint16 {
	crc := uint16(0xffff)
	for _, c := range b {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xa001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// rtuSlave answers Modbus RTU requests (function codes 1, 2 and 5) on the master
// side of a pseudo-terminal, from bit tables per unit.
type rtuSlave struct {
	mu     sync.Mutex
	coils  map[byte]map[uint16]bool
	inputs map[byte]map[uint16]bool
}

func (s *rtuSlave) set(tbl map[byte]map[uint16]bool, unit byte, a uint16, v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tbl[unit] == nil {
		tbl[unit] = map[uint16]bool{}
	}
	tbl[unit][a] = v
}

func (s *rtuSlave) serve(rw io.ReadWriter) {
	req := make([]byte, 8) // every request the driver sends here is 8 bytes long
	for {
		if _, err := io.ReadFull(rw, req); err != nil {
			return
		}
		if crc16(req[:6]) != binary.LittleEndian.Uint16(req[6:]) {
			continue
		}
		unit, fc := req[0], req[1]
		a, n := binary.BigEndian.Uint16(req[2:]), binary.BigEndian.Uint16(req[4:])
		var resp []byte
		s.mu.Lock()
		switch fc {
		case 1, 2:
			tbl := s.coils
			if fc == 2 {
				tbl = s.inputs
			}
			data := make([]byte, (n+7)/8)
			for i := range n {
				if tbl[unit][a+i] {
					data[i/8] |= 1 << (i % 8)
				}
			}
			resp = append([]byte{unit, fc, byte(len(data))}, data...)
		case 5:
			if s.coils[unit] == nil {
				s.coils[unit] = map[uint16]bool{}
			}
			s.coils[unit][a] = n == 0xff00
			resp = append([]byte(nil), req[:6]...)
		default:
			resp = []byte{unit, fc | 0x80, 1}
		}
		s.mu.Unlock()
		resp = binary.LittleEndian.AppendUint16(resp, crc16(resp))
		if _, err := rw.Write(resp); err != nil {
			return
		}
	}
}

// TestRTU runs the driver over a serial line (a pseudo-terminal): two units on one
// line, a loop on an I/O module and a barrier.
func TestRTU(t *testing.T) {
	m, path := openPTY(t)
	slave := &rtuSlave{coils: map[byte]map[uint16]bool{}, inputs: map[byte]map[uint16]bool{}}
	slave.set(slave.inputs, 2, 1, true) // gate down
	go slave.serve(m)

	opts := map[string]string{"baud": "115200", "parity": "N", "poll": "20ms", "timeout": "300ms"}
	devs := []edge.Device{
		{ID: "loop", Kind: edge.KindLoop, Protocol: modbus.ProtocolRTU, Address: path, Profile: "io-module-8di", Options: with(opts, "unit", "1", "resource", "di2")},
		{ID: "gate", Kind: edge.KindBarrier, Protocol: modbus.ProtocolRTU, Address: path, Profile: "barrier-generic", Options: with(opts, "unit", "2")},
	}
	rec := newRecorder()
	drv := startDriver(t, modbus.Config{Devices: devs, Sink: rec, Logger: testLogger(t)})
	const wait = 5 * time.Second
	rec.waitFor(t, 0, wait, "loop clear", loopIs("loop", false))
	rec.waitFor(t, 0, wait, "gate down", armIs("gate", edge.PositionDown))

	from := rec.len()
	slave.set(slave.inputs, 1, 2, true)
	rec.waitFor(t, from, wait, "loop occupied", loopIs("loop", true))

	if err := drv.Barriers()["gate"].Raise(context.Background()); err != nil {
		t.Fatalf("Raise() = %v", err)
	}
	slave.mu.Lock()
	coil := slave.coils[2][0]
	slave.mu.Unlock()
	if !coil {
		t.Error("command coil not set by Raise()")
	}
	slave.set(slave.inputs, 2, 1, false)
	slave.set(slave.inputs, 2, 0, true)
	rec.waitFor(t, from, wait, "gate up", armIs("gate", edge.PositionUp))
	for _, st := range drv.Status() {
		if !st.Healthy || st.Counters["errors"] != 0 || st.Protocol != modbus.ProtocolRTU {
			t.Errorf("Status(%s) = %+v", st.ID, st)
		}
	}
}

func with(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}
