//go:build gocv

package lpr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gocv.io/x/gocv"
)

// source delivers still frames of a camera as encoded images (JPEG or PNG).
type source interface {
	frame(ctx context.Context) ([]byte, error)
	close()
}

// newSource builds the frame source for a device address:
//
//   - http:// or https:// — a snapshot URL fetched once per frame (Hikvision
//     /ISAPI/Streaming/channels/101/picture, Axis /axis-cgi/jpg/image.cgi, ...);
//     user:password@ in the URL is sent as HTTP basic authentication;
//   - rtsp:// — a video stream opened with OpenCV's VideoCapture (FFmpeg) and read
//     continuously, so a frame is the latest one, not one from the buffer;
//   - file:///path or a plain path — an image file, or a folder whose images are
//     served in name order, one per frame (for tests and demonstrations).
func newSource(addr string, client *http.Client) (source, error) {
	u, err := url.Parse(addr)
	if err != nil || addr == "" {
		return nil, fmt.Errorf("address %q is not a URL or path", addr)
	}
	switch u.Scheme {
	case "http", "https":
		return &snapshotSource{url: addr, client: client}, nil
	case "rtsp", "rtsps":
		return &streamSource{url: addr}, nil
	case "file", "":
		p := u.Path
		if u.Scheme == "" {
			p = addr
		}
		info, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if info.IsDir() {
			var files []string
			for _, pat := range []string{"*.jpg", "*.jpeg", "*.png"} {
				m, _ := filepath.Glob(filepath.Join(p, pat))
				files = append(files, m...)
			}
			sort.Strings(files)
			if len(files) == 0 {
				return nil, fmt.Errorf("folder %s holds no .jpg or .png", p)
			}
			return &fileSource{files: files}, nil
		}
		return &fileSource{files: []string{p}}, nil
	}
	return nil, fmt.Errorf("address %q: scheme %q is not http, https, rtsp or file", addr, u.Scheme)
}

// fileSource serves image files in turn.
type fileSource struct {
	mu    sync.Mutex
	files []string
	next  int
}

func (s *fileSource) frame(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	f := s.files[s.next%len(s.files)]
	s.next++
	s.mu.Unlock()
	info, err := os.Stat(f)
	if err != nil {
		return nil, err
	}
	if info.Size() > MaxImageBytes {
		return nil, fmt.Errorf("%s: %d bytes is more than %d", f, info.Size(), MaxImageBytes)
	}
	return os.ReadFile(f)
}

func (s *fileSource) close() {}

// snapshotSource fetches a JPEG per frame over HTTP.
type snapshotSource struct {
	url    string
	client *http.Client
}

func (s *snapshotSource) frame(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("snapshot: %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxImageBytes+1))
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if len(b) > MaxImageBytes {
		return nil, fmt.Errorf("snapshot: more than %d bytes", MaxImageBytes)
	}
	return b, nil
}

func (s *snapshotSource) close() {}

// streamSource reads a video stream on a goroutine of its own, continuously,
// so that a frame asked for is the latest one, not one from the stream's
// buffer. Only the frames asked for are encoded: a camera sends 25 or more a
// second, and encoding them all to JPEG would keep a Raspberry Pi's core busy
// while no vehicle is in the lane.
type streamSource struct {
	url string

	mu      sync.Mutex
	started bool
	closed  bool
	err     error // why the stream is not delivering, nil while it is
	// asks carries each frame request to run, which answers with the
	// next frame it reads.
	asks chan chan<- encoded
	stop chan struct{}
	done chan struct{}
	// encodes counts the frames encoded (tests).
	encodes atomic.Int64
	// wait is how long a request waits for a frame; 0 means frameWait.
	wait time.Duration
}

// encoded is a frame encoded for a request, or why it could not be.
type encoded struct {
	b   []byte
	err error
}

// frameWait is how long a frame request waits for the stream.
const frameWait = 5 * time.Second

func (s *streamSource) frame(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errStreamClosed
	}
	if !s.started {
		s.started = true
		s.asks = make(chan chan<- encoded)
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.run()
	}
	done := s.done
	s.mu.Unlock()
	wait := s.wait
	if wait <= 0 {
		wait = frameWait
	}
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	reply := make(chan encoded, 1) // run never waits for the answer to be taken
	select {
	case s.asks <- reply:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timeout.C:
		return nil, s.failure()
	case <-done:
		return nil, errStreamClosed
	}
	select {
	case e := <-reply:
		return e.b, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timeout.C:
		return nil, s.failure()
	}
}

// errStreamClosed is a frame asked of a stream source after close.
var errStreamClosed = errors.New("stream closed")

// failure is why no frame came from the stream in time.
func (s *streamSource) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	return errors.New("no frame from the stream")
}

// run opens the stream and reads it until close, reopening after a failure.
// A request waiting when a frame has been read is answered with that frame.
func (s *streamSource) run() {
	defer close(s.done)
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		vc, err := gocv.OpenVideoCapture(s.url)
		if err != nil || !vc.IsOpened() {
			if vc != nil {
				vc.Close()
			}
			s.fail(fmt.Errorf("cannot open %s", redact(s.url)))
			select {
			case <-s.stop:
				return
			case <-time.After(5 * time.Second):
			}
			continue
		}
		m := gocv.NewMat()
		for {
			select {
			case <-s.stop:
				m.Close()
				vc.Close()
				return
			default:
			}
			if !vc.Read(&m) || m.Empty() {
				s.fail(errors.New("stream ended"))
				break
			}
			s.fail(nil)
			s.answer(m)
		}
		m.Close()
		vc.Close()
		select {
		case <-s.stop:
			return
		case <-time.After(time.Second):
		}
	}
}

// answer hands m, just read, to every request waiting.
func (s *streamSource) answer(m gocv.Mat) {
	for {
		select {
		case reply := <-s.asks:
			reply <- s.encode(m)
		default:
			return
		}
	}
}

// encode encodes a frame read from the stream as JPEG.
func (s *streamSource) encode(m gocv.Mat) encoded {
	if err := checkMat(m); err != nil {
		return encoded{err: err}
	}
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, m, []int{gocv.IMWriteJpegQuality, 92})
	if err != nil {
		return encoded{err: err}
	}
	defer buf.Close()
	s.encodes.Add(1)
	return encoded{b: append([]byte(nil), buf.GetBytes()...)}
}

func (s *streamSource) fail(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *streamSource) close() {
	s.mu.Lock()
	started, closed := s.started, s.closed
	s.closed = true
	s.mu.Unlock()
	if started && !closed {
		close(s.stop)
		<-s.done
	}
}

// redact drops the password from a URL for logs and status.
func redact(addr string) string {
	u, err := url.Parse(addr)
	if err != nil || u.User == nil {
		return addr
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxx")
	}
	return strings.Replace(u.String(), "%78%78%78", "xxx", 1)
}
