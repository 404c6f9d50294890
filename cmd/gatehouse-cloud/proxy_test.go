package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// tcpProxy forwards connections from a free port of 127.0.0.1 to a target address. Cut
// closes every connection and refuses new ones (accepted, then closed at once) until
// Restore: a network partition between a garage and the hub, as the garage sees it.
type tcpProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
	// accepted counts connections forwarded (not those refused while cut).
	accepted int
	// stripped counts hub INFOs whose leafnode_urls the proxy removed.
	stripped int
	log      []string
}

func startProxy(t testing.TB, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port.
func (p *tcpProxy) Addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.log = append(p.log, time.Now().Format("15:04:05.000")+" refused")
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.accepted++
		p.log = append(p.log, time.Now().Format("15:04:05.000")+" accept "+c.RemoteAddr().String())
		p.track(c)
		p.mu.Unlock()
		p.wg.Add(1)
		go p.forward(c)
	}
}

// track registers c; p.mu is held.
func (p *tcpProxy) track(c net.Conn) { p.conns[c] = struct{}{} }

func (p *tcpProxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
		c.Close()
	}
}

func (p *tcpProxy) forward(client net.Conn) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		p.untrack(client)
		return
	}
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		server.Close()
		p.untrack(client)
		return
	}
	p.track(server)
	p.mu.Unlock()
	var once sync.WaitGroup
	once.Add(2)
	pipe := func(dst, src net.Conn) {
		defer once.Done()
		io.Copy(dst, src)
		// One direction ended: end the other too, as a dropped link would.
		dst.Close()
		src.Close()
	}
	go pipe(server, client)
	go func() {
		defer once.Done()
		// The hub's INFOs (the first, and one after the garage's CONNECT) list its own
		// leafnode URL (leafnode_urls): a leaf remote adds those to the URLs it dials
		// and would reconnect around the proxy. Remove them, as nats-server's
		// leafnodes.no_advertise would; the rest of the protocol passes unchanged
		// (message payloads, whose sizes end their control lines, are copied as is).
		br := bufio.NewReaderSize(server, 64<<10)
		for {
			line, err := br.ReadBytes('\n')
			if err != nil {
				break
			}
			verb, _, _ := bytes.Cut(line, []byte(" "))
			if bytes.Equal(verb, []byte("INFO")) {
				line = p.stripLeafURLs(line)
			}
			if _, err := client.Write(line); err != nil {
				break
			}
			if bytes.HasSuffix(bytes.ToUpper(verb), []byte("MSG")) {
				f := bytes.Fields(line)
				n, err := strconv.Atoi(string(f[len(f)-1]))
				if err != nil {
					break
				}
				if _, err := io.CopyN(client, br, int64(n)+2); err != nil {
					break
				}
			}
		}
		client.Close()
		server.Close()
	}()
	once.Wait()
	p.untrack(client, server)
}

// stripLeafURLs removes leafnode_urls from an INFO line.
func (p *tcpProxy) stripLeafURLs(line []byte) []byte {
	rest, ok := bytes.CutPrefix(line, []byte("INFO "))
	if !ok {
		return line
	}
	var info map[string]json.RawMessage
	if json.Unmarshal(bytes.TrimSpace(rest), &info) != nil {
		return line
	}
	_, urls := info["leafnode_urls"]
	_, comp := info["compression"]
	if !urls && !comp {
		return line
	}
	// Without compression offered the rest of the stream stays readable, so that the
	// INFO sent after the garage's CONNECT can be stripped too.
	delete(info, "leafnode_urls")
	delete(info, "compression")
	b, err := json.Marshal(info)
	if err != nil {
		return line
	}
	p.mu.Lock()
	p.stripped++
	p.mu.Unlock()
	return append(append([]byte("INFO "), b...), '\r', '\n')
}

// Stripped is how many hub INFOs had their leafnode_urls removed.
func (p *tcpProxy) Stripped() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stripped
}

// Cut closes every forwarded connection and refuses new ones until Restore.
func (p *tcpProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// Restore accepts and forwards connections again.
func (p *tcpProxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// Accepted is the number of connections forwarded so far.
func (p *tcpProxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Close stops the proxy and ends its connections.
func (p *tcpProxy) Close() {
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}
