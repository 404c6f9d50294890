package serial

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// LineError is a defect on the line: garbage bytes, an overlong line, a frame with a
// bad checksum or a malformed frame. The Reader skips it and goes on; Err wraps one
// of ErrGarbage, ErrOverlong, ErrChecksum or ErrMalformed.
type LineError struct {
	Err error
	// N is how many bytes the defect spans, terminator not counted.
	N int
}

// Error implements the error interface.
func (e *LineError) Error() string { return fmt.Sprintf("%v (%d bytes)", e.Err, e.N) }

// Unwrap returns Err.
func (e *LineError) Unwrap() error { return e.Err }

// IsDefect reports whether err is a *LineError: a defect of the line after which the
// Reader can go on, as opposed to an error of the underlying reader.
func IsDefect(err error) bool {
	var le *LineError
	return errors.As(err, &le)
}

// Reader reads frames from a byte stream such as a serial port. It resynchronises on
// every '$', so noise between frames and torn frames cost nothing but themselves:
//
//   - bytes outside a frame are garbage, reported once per run;
//   - a '$' inside a frame abandons the frame so far (garbage) and starts a new one;
//   - CR or LF ends a frame; empty lines are ignored;
//   - a frame longer than MaxLine is overlong and discarded up to the next CR or LF,
//     '$' included.
type Reader struct {
	br         *bufio.Reader
	buf        []byte // the frame being read, from '$'
	line       []byte // the last frame or defect returned
	garbage    int    // garbage bytes not yet reported
	discarding bool
	discarded  int
	err        error // the underlying reader's, returned once the defects before it are
}

// NewReader returns a Reader reading from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 256), buf: make([]byte, 0, MaxLine)}
}

// Next returns the next valid frame. A defect comes back as a *LineError, after which
// Next may be called again; any other error is the underlying reader's and final.
func (r *Reader) Next() (Frame, error) {
	for {
		if r.err != nil {
			if err := r.flush(); err != nil {
				return Frame{}, err
			}
			return Frame{}, r.err
		}
		c, err := r.br.ReadByte()
		if err != nil {
			r.err = err
			if r.discarding {
				r.discarding = false
				r.line = nil
				return Frame{}, &LineError{Err: ErrOverlong, N: r.discarded}
			}
			r.garbage += len(r.buf)
			r.buf = r.buf[:0]
			continue
		}
		switch {
		case c == '\r' || c == '\n':
			if r.discarding {
				r.discarding = false
				r.line = nil
				return Frame{}, &LineError{Err: ErrOverlong, N: r.discarded}
			}
			if len(r.buf) == 0 {
				if err := r.flush(); err != nil {
					return Frame{}, err
				}
				continue
			}
			r.line = append(r.line[:0], r.buf...)
			r.buf = r.buf[:0]
			f, err := ParseLine(r.line)
			if err != nil {
				return Frame{}, &LineError{Err: err, N: len(r.line)}
			}
			return f, nil
		case r.discarding:
			r.discarded++
		case c == '$':
			r.garbage += len(r.buf)
			r.buf = append(r.buf[:0], '$')
			if err := r.flush(); err != nil {
				return Frame{}, err
			}
		case len(r.buf) == 0:
			r.garbage++
		case len(r.buf) == maxFrame:
			r.discarding, r.discarded = true, len(r.buf)+1
			r.buf = r.buf[:0]
		default:
			r.buf = append(r.buf, c)
		}
	}
}

// flush reports the garbage counted so far, if any.
func (r *Reader) flush() error {
	if r.garbage == 0 {
		return nil
	}
	n := r.garbage
	r.garbage = 0
	r.line = nil
	return &LineError{Err: ErrGarbage, N: n}
}

// Line returns the raw bytes, without terminator, of the frame or the bad frame Next
// returned last; nil after garbage or an overlong line. It is valid until the next
// call of Next.
func (r *Reader) Line() []byte { return r.line }
