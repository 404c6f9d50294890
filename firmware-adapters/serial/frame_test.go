package serial

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// The checksums below were computed by hand (python), not by Checksum.
func TestParseLine(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Frame
		err  error
	}{
		{"loop occupied", "$01,LP,1,1*31\r\n", Frame{Addr: 0x01, Code: "LP", Fields: []string{"1", "1"}}, nil},
		{"loop clear", "$01,LP,1,0*30", Frame{Addr: 0x01, Code: "LP", Fields: []string{"1", "0"}}, nil},
		{"loop status", "$01,LS,4,1000,00O0*54\r\n", Frame{Addr: 0x01, Code: "LS", Fields: []string{"4", "1000", "00O0"}}, nil},
		{"arm report", "$11,ARM,UP*5B\r\n", Frame{Addr: 0x11, Code: "ARM", Fields: []string{"UP"}}, nil},
		{"arm status", "$11,AS,DOWN*00\n", Frame{Addr: 0x11, Code: "AS", Fields: []string{"DOWN"}}, nil},
		{"ack", "$11,ACK,OPEN*5D\r\n", Frame{Addr: 0x11, Code: "ACK", Fields: []string{"OPEN"}}, nil},
		{"nak", "$11,NAK,CLOSE,FAULT*74\r\n", Frame{Addr: 0x11, Code: "NAK", Fields: []string{"CLOSE", "FAULT"}}, nil},
		{"open command", "$11,OPEN*38\r\n", Frame{Addr: 0x11, Code: "OPEN"}, nil},
		{"status query", "$11,STATUS?*07\r\n", Frame{Addr: 0x11, Code: "STATUS?"}, nil},
		{"lower-case hex", "$1f,LP,2,1*64\r\n", Frame{Addr: 0x1F, Code: "LP", Fields: []string{"2", "1"}}, nil},
		{"unknown code parses", "$01,XYZ*76", Frame{Addr: 0x01, Code: "XYZ"}, nil},

		{"empty", "", Frame{}, ErrGarbage},
		{"no dollar", "01,LP,1,1*31", Frame{}, ErrGarbage},
		{"no checksum", "$01,LP,1,1", Frame{}, ErrGarbage},
		{"short checksum", "$01,LP,1,1*3", Frame{}, ErrGarbage},
		{"non-hex checksum", "$01,LP,1,1*3G", Frame{}, ErrGarbage},
		{"bad checksum", "$01,LP,1,1*30", Frame{}, ErrChecksum},
		{"flipped bit", "$01,LP,1,0*31", Frame{}, ErrChecksum},
		{"overlong", "$01,LS," + strings.Repeat("A", 130) + "*00", Frame{}, ErrOverlong},
		{"no code", withSum("01"), Frame{}, ErrMalformed},
		{"empty code", withSum("01,"), Frame{}, ErrMalformed},
		{"lower-case code", withSum("01,lp,1,1"), Frame{}, ErrMalformed},
		{"bad address", withSum("0G,LP,1,1"), Frame{}, ErrMalformed},
		{"long address", withSum("001,LP,1,1"), Frame{}, ErrMalformed},
		{"control byte", withSum("01,LP,1\x07,1"), Frame{}, ErrMalformed},
		{"star inside", withSum("01,LP*,1,1"), Frame{}, ErrMalformed},
		{"high byte", withSum("01,LP,\xff,1"), Frame{}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLine([]byte(tt.line))
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("ParseLine(%q) error = %v; want %v", tt.line, err, tt.err)
			}
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseLine(%q) = %#v; want %#v", tt.line, got, tt.want)
			}
		})
	}
}

// withSum frames body with its correct checksum, so that only the body is wrong.
func withSum(body string) string {
	var x byte
	for i := 0; i < len(body); i++ {
		x ^= body[i]
	}
	return "$" + body + "*" + string(hexDigits[x>>4]) + string(hexDigits[x&0xF])
}

func TestAppend(t *testing.T) {
	tests := []struct {
		name    string
		f       Frame
		want    string
		wantErr bool
	}{
		{"loop", Frame{Addr: 1, Code: CodeLoop, Fields: []string{"1", "1"}}, "$01,LP,1,1*31\r\n", false},
		{"status", Frame{Addr: 1, Code: CodeLoopStatus, Fields: []string{"4", "1000", "00O0"}}, "$01,LS,4,1000,00O0*54\r\n", false},
		{"nak", Frame{Addr: 0x11, Code: CodeNak, Fields: []string{"CLOSE", "FAULT"}}, "$11,NAK,CLOSE,FAULT*74\r\n", false},
		{"command", Frame{Addr: 0x11, Code: CodeStatusQuery}, "$11,STATUS?*07\r\n", false},
		{"comma in field", Frame{Addr: 1, Code: "LP", Fields: []string{"1,2"}}, "", true},
		{"star in field", Frame{Addr: 1, Code: "LP", Fields: []string{"*"}}, "", true},
		{"newline in field", Frame{Addr: 1, Code: "LP", Fields: []string{"\n"}}, "", true},
		{"bad code", Frame{Addr: 1, Code: "lp"}, "", true},
		{"empty code", Frame{Addr: 1}, "", true},
		{"too long", Frame{Addr: 1, Code: "X", Fields: []string{strings.Repeat("A", 120)}}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.f.Append([]byte("pre"))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Append(%v) error = %v; want error %v", tt.f, err, tt.wantErr)
			}
			if err != nil {
				if string(got) != "pre" {
					t.Errorf("Append(%v) on error left %q; want dst unchanged", tt.f, got)
				}
				return
			}
			if string(got) != "pre"+tt.want {
				t.Errorf("Append(%v) = %q; want %q", tt.f, got, "pre"+tt.want)
			}
			back, err := ParseLine(got[3:])
			if err != nil || !reflect.DeepEqual(back, tt.f) {
				t.Errorf("ParseLine(Append(%v)) = %v, %v; want the frame back", tt.f, back, err)
			}
		})
	}
}

func TestMaxLine(t *testing.T) {
	// A frame of exactly MaxLine bytes with its CR LF goes; one more byte does not.
	fill := strings.Repeat("A", MaxLine-len("$01,X,*hh\r\n"))
	b, err := Frame{Addr: 1, Code: "X", Fields: []string{fill}}.Append(nil)
	if err != nil || len(b) != MaxLine {
		t.Fatalf("Append of a %d-byte frame = %d bytes, %v; want %d, nil", MaxLine, len(b), err, MaxLine)
	}
	if _, err := ParseLine(b); err != nil {
		t.Errorf("ParseLine(%d-byte line) = %v; want nil", MaxLine, err)
	}
	if _, err := (Frame{Addr: 1, Code: "X", Fields: []string{fill + "A"}}).Append(nil); err == nil {
		t.Errorf("Append of a %d-byte frame succeeded; want an error", MaxLine+1)
	}
	if _, err := ParseLine(append([]byte(withSum("01,X,"+fill+"A")), '\r', '\n')); !errors.Is(err, ErrOverlong) {
		t.Errorf("ParseLine(%d-byte line) = %v; want ErrOverlong", MaxLine+1, err)
	}
}

func TestPosition(t *testing.T) {
	for _, p := range []edge.Position{edge.PositionUp, edge.PositionDown, edge.PositionMoving, edge.PositionFault} {
		t.Run(p.String(), func(t *testing.T) {
			code := PositionCode(p)
			got, ok := ParsePosition(code)
			if !ok || got != p {
				t.Errorf("ParsePosition(%q) = %v, %v; want %v, true", code, got, ok, p)
			}
		})
	}
	if _, ok := ParsePosition("up"); ok {
		t.Errorf(`ParsePosition("up") ok; want false (the wire is upper case)`)
	}
	if c := PositionCode(edge.PositionUnknown); c != "" {
		t.Errorf("PositionCode(unknown) = %q; want empty", c)
	}
}

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		name    string
		dev     edge.Device
		want    Endpoint
		wantErr string
	}{
		{"loop defaults", edge.Device{ID: "l", Kind: edge.KindLoop, Address: "/dev/ttyUSB0"},
			Endpoint{Path: "/dev/ttyUSB0", Baud: 9600, Addr: 1, Channel: 1}, ""},
		{"loop options", edge.Device{ID: "l", Kind: edge.KindLoop, Address: "/x", Options: map[string]string{"baud": "19200", "line_address": "1f", "channel": "4"}},
			Endpoint{Path: "/x", Baud: 19200, Addr: 0x1F, Channel: 4}, ""},
		{"barrier", edge.Device{ID: "b", Kind: edge.KindBarrier, Address: "/x", Options: map[string]string{"line_address": "11", "travel": "2s"}},
			Endpoint{Path: "/x", Baud: 9600, Addr: 0x11}, ""},
		{"no address", edge.Device{ID: "l", Kind: edge.KindLoop}, Endpoint{}, "address"},
		{"camera", edge.Device{ID: "c", Kind: edge.KindCamera, Address: "/x"}, Endpoint{}, "kind"},
		{"ticket reader", edge.Device{ID: "t", Kind: edge.KindTicketReader, Address: "/x"}, Endpoint{}, "kind"},
		{"odd baud", edge.Device{ID: "l", Kind: edge.KindLoop, Address: "/x", Options: map[string]string{"baud": "9601"}}, Endpoint{}, "baud"},
		{"address 00", edge.Device{ID: "l", Kind: edge.KindLoop, Address: "/x", Options: map[string]string{"line_address": "00"}}, Endpoint{}, "line_address"},
		{"address FF", edge.Device{ID: "l", Kind: edge.KindLoop, Address: "/x", Options: map[string]string{"line_address": "FF"}}, Endpoint{}, "line_address"},
		{"address 1", edge.Device{ID: "l", Kind: edge.KindLoop, Address: "/x", Options: map[string]string{"line_address": "1"}}, Endpoint{}, "line_address"},
		{"channel 0", edge.Device{ID: "l", Kind: edge.KindLoop, Address: "/x", Options: map[string]string{"channel": "0"}}, Endpoint{}, "channel"},
		{"channel 17", edge.Device{ID: "l", Kind: edge.KindLoop, Address: "/x", Options: map[string]string{"channel": "17"}}, Endpoint{}, "channel"},
		{"barrier channel", edge.Device{ID: "b", Kind: edge.KindBarrier, Address: "/x", Options: map[string]string{"channel": "1"}}, Endpoint{}, "channel"},
		{"typo", edge.Device{ID: "l", Kind: edge.KindLoop, Address: "/x", Options: map[string]string{"chanel": "2"}}, Endpoint{}, "unknown option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEndpoint(tt.dev)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseEndpoint(%v) error = %v; want one about %q", tt.dev, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseEndpoint(%v) = %+v, %v; want %+v", tt.dev, got, err, tt.want)
			}
		})
	}
}
