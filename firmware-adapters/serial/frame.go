package serial

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// Protocol limits and timing (docs/serial-protocol.md).
const (
	// MaxLine is the longest line on the wire in bytes, from '$' to LF inclusive.
	MaxLine = 128
	// maxFrame is MaxLine without the CR LF terminator.
	maxFrame = MaxLine - 2
	// HeartbeatInterval is how often a controller sends its status unprompted.
	HeartbeatInterval = time.Second
	// SilenceTimeout is how long a controller may send nothing valid before its
	// devices are unhealthy.
	SilenceTimeout = 3 * time.Second
	// CommandTimeout is how long the edge waits for the ACK or NAK of a command.
	CommandTimeout = 500 * time.Millisecond
	// MaxChannels is the most loop channels one detector reports.
	MaxChannels = 16
)

// Message codes. Commands go from the edge to a controller; every other code is a
// report from a controller.
const (
	CodeLoop        = "LP"      // loop channel changed: <ch>,<0|1>
	CodeLoopStatus  = "LS"      // detector status: <n>,<occupancy>,<faults>
	CodeArm         = "ARM"     // arm position changed or commanded: <pos>
	CodeArmStatus   = "AS"      // barrier status: <pos>
	CodeAck         = "ACK"     // command accepted: <command>
	CodeNak         = "NAK"     // command refused: <command>,<reason>
	CodeOpen        = "OPEN"    // command: raise the arm
	CodeClose       = "CLOSE"   // command: lower the arm
	CodeStatusQuery = "STATUS?" // command: send status frames now
)

// Loop fault flags in an LS frame, one per channel.
const (
	FaultNone  = '0' // loop healthy
	FaultOpen  = 'O' // loop open circuit (broken wire)
	FaultShort = 'S' // loop short circuit
	FaultOther = 'F' // any other detector fault (frequency out of range, ...)
)

// NAK reasons.
const (
	ReasonUnknown     = "UNKNOWN"     // unknown command
	ReasonSyntax      = "SYNTAX"      // command with fields it does not take
	ReasonUnsupported = "UNSUPPORTED" // the controller has no arm
	ReasonFault       = "FAULT"       // the arm is in fault and cannot move
	ReasonBusy        = "BUSY"        // the controller cannot take the command now
)

// Line defects. Errors returned by ParseLine, and the Err of a *LineError from a
// Reader, wrap exactly one of these.
var (
	// ErrGarbage: bytes that are not a frame: no leading '$', or no "*hh" checksum
	// at the end of the line.
	ErrGarbage = errors.New("serial: garbage")
	// ErrOverlong: a line longer than MaxLine bytes.
	ErrOverlong = errors.New("serial: overlong line")
	// ErrChecksum: a frame whose checksum does not match its contents.
	ErrChecksum = errors.New("serial: bad checksum")
	// ErrMalformed: a frame with a good checksum but not the protocol's syntax (bad
	// address, bad code, bytes outside printable ASCII).
	ErrMalformed = errors.New("serial: malformed frame")
)

// Frame is one message: the controller's line address, a code and its fields.
type Frame struct {
	Addr   uint8
	Code   string
	Fields []string
}

// String returns the frame as it goes on the wire, without CR LF, or a description of
// why it cannot.
func (f Frame) String() string {
	b, err := f.Append(nil)
	if err != nil {
		return fmt.Sprintf("invalid frame (%v)", err)
	}
	return string(b[:len(b)-2])
}

// Append appends the frame as it goes on the wire, CR LF included, to dst. It fails
// if the code or a field holds a byte the protocol does not allow or the line would
// be longer than MaxLine.
func (f Frame) Append(dst []byte) ([]byte, error) {
	if !validCode(f.Code) {
		return dst, fmt.Errorf("serial: invalid code %q", f.Code)
	}
	start := len(dst)
	dst = append(dst, '$', hexDigits[f.Addr>>4], hexDigits[f.Addr&0xF], ',')
	dst = append(dst, f.Code...)
	for _, s := range f.Fields {
		for i := 0; i < len(s); i++ {
			if !fieldByte(s[i]) {
				return dst[:start], fmt.Errorf("serial: field %q: byte %#x not allowed", s, s[i])
			}
		}
		dst = append(dst, ',')
		dst = append(dst, s...)
	}
	sum := Checksum(dst[start+1:])
	dst = append(dst, '*', hexDigits[sum>>4], hexDigits[sum&0xF], '\r', '\n')
	if len(dst)-start > MaxLine {
		return dst[:start], fmt.Errorf("serial: frame of %d bytes exceeds %d", len(dst)-start, MaxLine)
	}
	return dst, nil
}

// Checksum is the XOR of the bytes of body: everything between '$' and '*'.
func Checksum(body []byte) byte {
	var x byte
	for _, c := range body {
		x ^= c
	}
	return x
}

// ParseLine parses one line, with or without its CR LF terminator. Errors wrap
// ErrGarbage, ErrOverlong, ErrChecksum or ErrMalformed.
func ParseLine(line []byte) (Frame, error) {
	for len(line) > 0 && (line[len(line)-1] == '\n' || line[len(line)-1] == '\r') {
		line = line[:len(line)-1]
	}
	switch {
	case len(line) > maxFrame:
		return Frame{}, ErrOverlong
	case len(line) < 4 || line[0] != '$' || line[len(line)-3] != '*':
		return Frame{}, ErrGarbage
	}
	hi, ok1 := unhex(line[len(line)-2])
	lo, ok2 := unhex(line[len(line)-1])
	if !ok1 || !ok2 {
		return Frame{}, ErrGarbage
	}
	body := line[1 : len(line)-3]
	if Checksum(body) != hi<<4|lo {
		return Frame{}, ErrChecksum
	}
	for _, c := range body {
		if c < 0x20 || c > 0x7E || c == '$' || c == '*' {
			return Frame{}, fmt.Errorf("%w: byte %#x", ErrMalformed, c)
		}
	}
	parts := strings.Split(string(body), ",")
	if len(parts) < 2 || len(parts[0]) != 2 {
		return Frame{}, fmt.Errorf("%w: no address and code", ErrMalformed)
	}
	ah, ok1 := unhex(parts[0][0])
	al, ok2 := unhex(parts[0][1])
	if !ok1 || !ok2 {
		return Frame{}, fmt.Errorf("%w: address %q", ErrMalformed, parts[0])
	}
	if !validCode(parts[1]) {
		return Frame{}, fmt.Errorf("%w: code %q", ErrMalformed, parts[1])
	}
	f := Frame{Addr: ah<<4 | al, Code: parts[1]}
	if len(parts) > 2 {
		f.Fields = parts[2:]
	}
	return f, nil
}

// ParseAddr parses a two-hex-digit line address such as "01" or "1F".
func ParseAddr(s string) (uint8, error) {
	if len(s) != 2 {
		return 0, fmt.Errorf("line address %q: want two hex digits", s)
	}
	hi, ok1 := unhex(s[0])
	lo, ok2 := unhex(s[1])
	if !ok1 || !ok2 {
		return 0, fmt.Errorf("line address %q: want two hex digits", s)
	}
	return hi<<4 | lo, nil
}

var positionCodes = map[edge.Position]string{
	edge.PositionUp:     "UP",
	edge.PositionDown:   "DOWN",
	edge.PositionMoving: "MOVING",
	edge.PositionFault:  "FAULT",
}

// PositionCode is the wire word for an arm position: UP, DOWN, MOVING or FAULT; ""
// for PositionUnknown, which is never sent.
func PositionCode(p edge.Position) string { return positionCodes[p] }

// ParsePosition parses the wire word for an arm position.
func ParsePosition(s string) (edge.Position, bool) {
	for p, c := range positionCodes {
		if c == s {
			return p, true
		}
	}
	return edge.PositionUnknown, false
}

const hexDigits = "0123456789ABCDEF"

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// validCode: 1 to 8 of A-Z, 0-9 and '?'.
func validCode(s string) bool {
	if len(s) == 0 || len(s) > 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '?') {
			return false
		}
	}
	return true
}

// fieldByte: printable ASCII except the delimiters.
func fieldByte(c byte) bool {
	return c >= 0x20 && c <= 0x7E && c != '$' && c != '*' && c != ','
}
