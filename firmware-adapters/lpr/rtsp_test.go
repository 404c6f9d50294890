//go:build gocv

package lpr

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"net"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// rtspCamera is a small RTSP server for tests, standing in for an IP camera:
// it serves one stream of JPEG frames as RTP (RFC 2435) interleaved in the
// RTSP connection (RTP over TCP, which every camera offers), 25 frames a
// second. A client asking for UDP is told 461 and retries over TCP, as
// FFmpeg does.
type rtspCamera struct {
	ln net.Listener

	frames []rtpJPEG // the frames served, in turn
	// sent is how many frames the latest stream has begun to send.
	sent atomic.Int64

	mu    sync.Mutex
	plays int // PLAY requests answered
	conns []net.Conn
	wg    sync.WaitGroup
}

// rtpJPEG is a baseline 4:2:0 JPEG split as RFC 2435 carries it.
type rtpJPEG struct {
	w8, h8 byte   // width and height in blocks of 8
	qt     []byte // the two quantization tables, 64 bytes each, zigzag
	scan   []byte // the entropy-coded data
}

// splitJPEG splits a JPEG written by image/jpeg (baseline, 4:2:0, the
// standard Huffman tables, no restart markers) for RFC 2435.
func splitJPEG(b []byte) (rtpJPEG, error) {
	var f rtpJPEG
	tables := map[byte][]byte{}
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return f, errors.New("not a JPEG")
	}
	for i := 2; i+4 <= len(b); {
		marker, n := b[i+1], int(binary.BigEndian.Uint16(b[i+2:]))
		seg := b[i+4 : i+2+n]
		switch marker {
		case 0xDB: // DQT: one or more 8-bit tables
			for len(seg) >= 65 {
				tables[seg[0]&0x0F] = seg[1:65]
				seg = seg[65:]
			}
		case 0xC0: // SOF0
			h, w := binary.BigEndian.Uint16(seg[1:]), binary.BigEndian.Uint16(seg[3:])
			if w%8 != 0 || h%8 != 0 || w > 2040 || h > 2040 {
				return f, fmt.Errorf("%d×%d: not in blocks of 8 up to 2040", w, h)
			}
			f.w8, f.h8 = byte(w/8), byte(h/8)
		case 0xDA: // SOS: the scan runs to EOI
			end := bytes.LastIndex(b, []byte{0xFF, 0xD9})
			if end < i+2+n {
				return f, errors.New("no EOI")
			}
			f.scan = b[i+2+n : end]
			if len(tables) != 2 {
				return f, fmt.Errorf("%d quantization tables", len(tables))
			}
			f.qt = append(append([]byte(nil), tables[0]...), tables[1]...)
			return f, nil
		}
		i += 2 + n
	}
	return f, errors.New("no scan")
}

// newRTSPCamera serves imgs in turn (their sizes in blocks of 8) at
// rtsp://ADDR/lane.
func newRTSPCamera(tb testing.TB, imgs ...image.Image) *rtspCamera {
	tb.Helper()
	var frames []rtpJPEG
	for _, img := range imgs {
		var buf bytes.Buffer
		if _, ok := img.(*image.Gray); ok {
			tb.Fatal("newRTSPCamera: a grey JPEG has one component; RFC 2435 carries three")
		}
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
			tb.Fatal(err)
		}
		f, err := splitJPEG(buf.Bytes())
		if err != nil {
			tb.Fatal(err)
		}
		frames = append(frames, f)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	c := &rtspCamera{ln: ln, frames: frames}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			c.conns = append(c.conns, conn)
			c.mu.Unlock()
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				c.serve(conn)
			}()
		}
	}()
	tb.Cleanup(c.close)
	return c
}

func (c *rtspCamera) url() string { return "rtsp://" + c.ln.Addr().String() + "/lane" }

// close stops the camera and drops its clients.
func (c *rtspCamera) close() {
	c.ln.Close()
	c.mu.Lock()
	for _, conn := range c.conns {
		conn.Close()
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// serve answers one client's requests; after PLAY it sends frames until the
// client leaves. Interleaved data from the client (RTCP reports) is read and
// dropped.
func (c *rtspCamera) serve(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	var wmu sync.Mutex // the frames and the replies share the connection
	// reply answers a request with status, the header lines hdr and body.
	reply := func(cseq, status, body string, hdr ...string) error {
		wmu.Lock()
		defer wmu.Unlock()
		s := "RTSP/1.0 " + status + "\r\nCSeq: " + cseq + "\r\n"
		for _, h := range hdr {
			s += h + "\r\n"
		}
		if body != "" {
			s += "Content-Length: " + strconv.Itoa(len(body)) + "\r\n"
		}
		_, err := io.WriteString(conn, s+"\r\n"+body)
		return err
	}
	stop := make(chan struct{})
	defer close(stop)
	for {
		b, err := r.Peek(1)
		if err != nil {
			return
		}
		if b[0] == '$' { // interleaved data from the client
			var h [4]byte
			if _, err := io.ReadFull(r, h[:]); err != nil {
				return
			}
			if _, err := r.Discard(int(binary.BigEndian.Uint16(h[2:]))); err != nil {
				return
			}
			continue
		}
		tp := textproto.NewReader(r)
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		hdr, err := tp.ReadMIMEHeader()
		if err != nil {
			return
		}
		if n, _ := strconv.Atoi(hdr.Get("Content-Length")); n > 0 {
			r.Discard(n)
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue // a blank line between requests
		}
		method, cseq := fields[0], hdr.Get("Cseq")
		switch method {
		case "OPTIONS":
			err = reply(cseq, "200 OK", "", "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER")
		case "DESCRIBE":
			sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=lane\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n" +
				"m=video 0 RTP/AVP 26\r\na=control:track1\r\n"
			err = reply(cseq, "200 OK", sdp, "Content-Base: "+c.url()+"/", "Content-Type: application/sdp")
		case "SETUP":
			if !strings.Contains(hdr.Get("Transport"), "TCP") {
				err = reply(cseq, "461 Unsupported Transport", "")
				break
			}
			err = reply(cseq, "200 OK", "", "Transport: RTP/AVP/TCP;unicast;interleaved=0-1", "Session: 4711")
		case "PLAY":
			err = reply(cseq, "200 OK", "", "Session: 4711", "Range: npt=0.000-")
			c.mu.Lock()
			c.plays++
			c.mu.Unlock()
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				c.stream(conn, &wmu, stop)
			}()
		case "GET_PARAMETER", "TEARDOWN":
			err = reply(cseq, "200 OK", "", "Session: 4711")
		default:
			// RTSP's answer to a method a server does not offer
			// (RFC 2326, 11.3.2), as a camera gives it.
			err = reply(cseq, "501 Not Implemented", "")
		}
		if err != nil {
			return
		}
	}
}

// stream sends the frames in turn as RTP over the connection, 25 a second,
// until stop.
func (c *rtspCamera) stream(conn net.Conn, wmu *sync.Mutex, stop <-chan struct{}) {
	const mtu = 1400
	tick := time.NewTicker(40 * time.Millisecond)
	defer tick.Stop()
	var seq uint16
	var ts uint32
	for k := 0; ; k++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		f := c.frames[k%len(c.frames)]
		c.sent.Store(int64(k + 1)) // counted as it starts: the client may decode it before the last write returns
		for off := 0; off < len(f.scan); {
			// RFC 2435 main header: type-specific, fragment offset,
			// type 1 (4:2:0), Q 255 (tables in the first packet),
			// width and height in blocks of 8.
			hdr := []byte{0, byte(off >> 16), byte(off >> 8), byte(off), 1, 255, f.w8, f.h8}
			if off == 0 {
				hdr = append(hdr, 0, 0, 0, 128)
				hdr = append(hdr, f.qt...)
			}
			n := min(mtu, len(f.scan)-off)
			last := off+n == len(f.scan)
			rtp := make([]byte, 12, 12+len(hdr)+n)
			rtp[0] = 0x80 // version 2
			rtp[1] = 26   // JPEG
			if last {
				rtp[1] |= 0x80 // marker: the frame's last packet
			}
			binary.BigEndian.PutUint16(rtp[2:], seq)
			binary.BigEndian.PutUint32(rtp[4:], ts)
			binary.BigEndian.PutUint32(rtp[8:], 0x4711)
			rtp = append(append(rtp, hdr...), f.scan[off:off+n]...)
			frame := append([]byte{'$', 0, byte(len(rtp) >> 8), byte(len(rtp))}, rtp...)
			wmu.Lock()
			conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
			_, err := conn.Write(frame)
			wmu.Unlock()
			if err != nil {
				return
			}
			seq++
			off += n
		}
		ts += 90000 / 25
	}
}

// TestReaderRTSP reads a vehicle's plate from an RTSP camera: the stream is
// opened with OpenCV's FFmpeg backend, as on site.
func TestReaderRTSP(t *testing.T) {
	frames := t.TempDir()
	writeFrames(t, frames, "RT58KLM")
	img, err := decodeJPEGFile(frames + "/fa.jpg")
	if err != nil {
		t.Fatal(err)
	}
	cam := newRTSPCamera(t, img)
	r, s, _ := startReader(t, cam.url(), map[string]string{"country": "eu", "frames": "2", "interval": "50ms"})
	r.LoopChanged("e1-loop", true)
	ev := s.next(t, edge.PlateRead)
	if ev.Read.Text != "RT58KLM" || ev.Detail != "" {
		t.Fatalf("PlateRead = %+v; want RT58KLM, sure", ev)
	}
	// The camera restarts: its connections drop. The reader opens the
	// stream again (a second after it ended) and reads the next vehicle:
	// a frame request waits for the stream up to frameWait.
	cam.mu.Lock()
	for _, conn := range cam.conns {
		conn.Close()
	}
	cam.mu.Unlock()
	r.LoopChanged("e1-loop", false)
	r.LoopChanged("e1-loop", true)
	if ev = s.next(t, edge.PlateRead); ev.Read.Text != "RT58KLM" || ev.Detail != "" {
		t.Fatalf("after the restart: PlateRead = %+v; want RT58KLM, sure", ev)
	}
	cam.mu.Lock()
	plays := cam.plays
	cam.mu.Unlock()
	if plays < 2 {
		t.Errorf("PLAY asked %d times; want again after the restart", plays)
	}
}

// decodeJPEGFile decodes the JPEG file at path.
func decodeJPEGFile(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return jpeg.Decode(f)
}

// TestStreamSourceLatest asks an RTSP camera's stream for frames while it runs
// and checks that each is one the camera sent just then, not one from a
// buffer: the frames carry their number as the grey of a corner square.
func TestStreamSourceLatest(t *testing.T) {
	const n = 50 // two seconds of frames before they repeat
	var imgs []image.Image
	for i := range n {
		// In colour: RFC 2435 carries 4:2:0 YCbCr, not grey.
		img := image.NewRGBA(image.Rect(0, 0, 320, 240))
		for p := range img.Pix {
			img.Pix[p] = 200
		}
		for y := 0; y < 32; y++ {
			for x := 0; x < 32; x++ {
				v := byte(2 + 5*i)
				copy(img.Pix[y*img.Stride+4*x:], []byte{v, v, v, 255})
			}
		}
		imgs = append(imgs, img)
	}
	cam := newRTSPCamera(t, imgs...)
	s := &streamSource{url: cam.url()}
	defer s.close()
	// number reads a frame's number from its corner.
	number := func(b []byte) int {
		img, err := jpeg.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r, _, _, _ := img.At(16, 16).RGBA()
		return (int(r>>8) - 2 + 2) / 5
	}
	if _, err := s.frame(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		time.Sleep(500 * time.Millisecond) // the stream runs on, read and not kept
		before := int(cam.sent.Load())
		b, err := s.frame(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		after := int(cam.sent.Load())
		// The frame was sent at most five frames (200 ms) before the request
		// (the decoder's latency), and not after the answer.
		got := number(b)
		ok := false
		for k := before - 5; k <= after; k++ {
			ok = ok || got == ((k-1)%n+n)%n
		}
		if !ok {
			t.Errorf("frame number %d; the camera was sending frames %d to %d (mod %d)", got, before-1, after-1, n)
		}
	}
	s.close()
	if _, err := s.frame(context.Background()); !errors.Is(err, errStreamClosed) {
		t.Errorf("frame after close: %v; want errStreamClosed", err)
	}
}
