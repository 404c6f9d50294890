package modbussim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"sync"
	"time"

	mbserver "github.com/simonvetter/modbus"
)

// Each listen address is served in two layers. The Modbus server of
// github.com/simonvetter/modbus decodes requests and answers them from the units'
// memory; it listens on a private loopback port. In front of it, on the configured
// address, a small relay passes whole MBAP frames through one at a time, and is where
// faults are injected: it drops the requests of an offline unit and garbles the
// answers of a unit set to send garbage. (The server's handler can only answer or
// fail with an exception; a malformed frame needs the wire.)

const (
	mbapHeader  = 7
	maxFrameLen = 260 // MBAP header + the largest PDU
)

// readFrame reads one MBAP frame (header and PDU).
func readFrame(r io.Reader) ([]byte, error) {
	buf := make([]byte, mbapHeader, maxFrameLen)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	if pid := binary.BigEndian.Uint16(buf[2:]); pid != 0 {
		return nil, fmt.Errorf("modbussim: protocol id %d", pid)
	}
	n := int(binary.BigEndian.Uint16(buf[4:])) // unit id + PDU
	if n < 2 || mbapHeader-1+n > maxFrameLen {
		return nil, fmt.Errorf("modbussim: frame length %d", n)
	}
	buf = buf[:mbapHeader-1+n]
	if _, err := io.ReadFull(r, buf[mbapHeader:]); err != nil {
		return nil, err
	}
	return buf, nil
}

// frame builds an MBAP frame answering req with pdu.
func frame(req []byte, pdu []byte) []byte {
	out := make([]byte, mbapHeader+len(pdu))
	copy(out, req[:mbapHeader])
	binary.BigEndian.PutUint16(out[4:], uint16(1+len(pdu)))
	copy(out[mbapHeader:], pdu)
	return out
}

// garble turns a good response into garbage of the given kind (taken modulo 4).
func garble(kind uint32, req, resp []byte) []byte {
	fc := req[mbapHeader]
	pdu := append([]byte(nil), resp[mbapHeader:]...)
	switch kind % 4 {
	case 0: // an exception: server device failure
		return frame(req, []byte{fc | 0x80, 0x04})
	case 1: // a byte count that does not match the data
		if len(pdu) > 1 {
			pdu[1]++
		}
		return frame(req, pdu)
	case 2: // consistent but short: one register (or byte of bits) missing
		if (fc >= 1 && fc <= 4) && len(pdu) >= 2 {
			cut := 2
			if fc <= 2 {
				cut = 1
			}
			cut = min(cut, len(pdu)-2)
			pdu = pdu[:len(pdu)-cut]
			pdu[1] = byte(len(pdu) - 2)
			return frame(req, pdu)
		}
		return frame(req, pdu[:max(1, len(pdu)-1)])
	default: // the answer to some other request
		out := frame(req, pdu)
		out[0] ^= 0x5a
		out[1] ^= 0xa5
		return out
	}
}

// front serves one listen address: the relay and the Modbus server behind it.
type front struct {
	srv *server
	log *slog.Logger

	mu    sync.Mutex
	conns map[net.Conn]bool
}

// serve runs until ctx is done. ready is closed once the address accepts connections.
func (f *front) serve(ctx context.Context, ready chan<- error) error {
	backend, backAddr, err := f.startBackend()
	if err != nil {
		ready <- err
		return err
	}
	defer backend.Stop()
	ln, err := net.Listen("tcp", f.srv.addr)
	if err != nil {
		err = fmt.Errorf("modbussim: %w", err)
		ready <- err
		return err
	}
	ready <- nil
	f.conns = map[net.Conn]bool{}
	var wg sync.WaitGroup
	go func() {
		<-ctx.Done()
		ln.Close()
		f.mu.Lock()
		for c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				break
			}
			f.log.Warn("modbussim: accept", "addr", f.srv.addr, "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		f.mu.Lock()
		if ctx.Err() != nil {
			f.mu.Unlock()
			c.Close()
			break
		}
		f.conns[c] = true
		f.mu.Unlock()
		wg.Go(func() {
			f.relay(c, backAddr)
			f.mu.Lock()
			delete(f.conns, c)
			f.mu.Unlock()
			c.Close()
		})
	}
	wg.Wait()
	return nil
}

// startBackend starts the Modbus server on a free loopback port.
func (f *front) startBackend() (*mbserver.ModbusServer, string, error) {
	var lastErr error
	for range 10 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, "", fmt.Errorf("modbussim: %w", err)
		}
		addr := l.Addr().String()
		l.Close()
		ms, err := mbserver.NewServer(&mbserver.ServerConfiguration{
			URL:        "tcp://" + addr,
			Timeout:    time.Hour,
			MaxClients: 1024,
			Logger:     log.New(io.Discard, "", 0),
		}, handler{f.srv})
		if err != nil {
			return nil, "", fmt.Errorf("modbussim: %w", err)
		}
		if err := ms.Start(); err != nil {
			lastErr = err // taken in between: try another port
			continue
		}
		return ms, addr, nil
	}
	return nil, "", fmt.Errorf("modbussim: cannot start the Modbus server: %w", lastErr)
}

// relay passes the client's requests to the server one at a time, applying the
// faults of the addressed unit.
func (f *front) relay(c net.Conn, backAddr string) {
	var back net.Conn
	defer func() {
		if back != nil {
			back.Close()
		}
	}()
	for {
		req, err := readFrame(c)
		if err != nil {
			return // closed, or not Modbus TCP: drop the client as a device would
		}
		f.srv.requests.Add(1)
		f.srv.mu.Lock()
		u := f.srv.units[req[6]]
		f.srv.mu.Unlock()
		if u != nil && u.offline.Load() {
			continue // no answer at all
		}
		if back == nil {
			if back, err = net.DialTimeout("tcp", backAddr, time.Second); err != nil {
				f.log.Warn("modbussim: server unreachable", "err", err)
				return
			}
		}
		back.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := back.Write(req); err != nil {
			return
		}
		resp, err := readFrame(back)
		if err != nil {
			return // the server dropped a request it judged a protocol error
		}
		if u != nil && u.garbage.Load() {
			resp = garble(u.garbageKind.Add(1)-1, req, resp)
		}
		if _, err := c.Write(resp); err != nil {
			return
		}
	}
}
