package serial

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strconv"
	"testing"
)

// validSum checks a line's checksum without the code under test.
func validSum(line []byte) bool {
	if len(line) < 4 || line[0] != '$' || line[len(line)-3] != '*' {
		return false
	}
	want, err := strconv.ParseUint(string(line[len(line)-2:]), 16, 8)
	if err != nil {
		return false
	}
	var x byte
	for _, c := range line[1 : len(line)-3] {
		x ^= c
	}
	return x == byte(want)
}

func isLineDefect(err error) bool {
	return errors.Is(err, ErrGarbage) || errors.Is(err, ErrOverlong) || errors.Is(err, ErrChecksum) || errors.Is(err, ErrMalformed)
}

// FuzzParseLine: any line either parses into a frame that carried a valid checksum
// and survives a round trip, or is refused with one of the four defects. Seeds are in
// testdata/fuzz/FuzzParseLine.
func FuzzParseLine(f *testing.F) {
	f.Add([]byte("$01,LP,1,1*31\r\n"))
	f.Fuzz(func(t *testing.T, line []byte) {
		fr, err := ParseLine(line)
		if err != nil {
			if !isLineDefect(err) {
				t.Fatalf("ParseLine(%q) = %v; want one of the line defects", line, err)
			}
			return
		}
		trimmed := bytes.TrimRight(line, "\r\n")
		if !validSum(trimmed) {
			t.Fatalf("ParseLine(%q) accepted a bad checksum", line)
		}
		if len(trimmed) > MaxLine-2 {
			t.Fatalf("ParseLine(%q) accepted %d bytes", line, len(trimmed))
		}
		b, err := fr.Append(nil)
		if err != nil {
			t.Fatalf("Append(ParseLine(%q)) = %v", line, err)
		}
		back, err := ParseLine(b)
		if err != nil || !reflect.DeepEqual(back, fr) {
			t.Fatalf("round trip of %q: %#v -> %q -> %#v, %v", line, fr, b, back, err)
		}
	})
}

// FuzzReader: no byte stream makes the Reader panic, loop or yield a frame with a bad
// checksum, and whatever came before, a newline and a good frame are read. Seeds are
// in testdata/fuzz/FuzzReader.
func FuzzReader(f *testing.F) {
	f.Add([]byte("$01,LP,1,1*31\r\n"))
	const probe = "$7E,AS,UP*65\r\n"
	f.Fuzz(func(t *testing.T, data []byte) {
		in := append(append(bytes.Clone(data), '\n'), probe...)
		rd := NewReader(bytes.NewReader(in))
		var last Frame
		for i := 0; ; i++ {
			if i > len(in)+2 {
				t.Fatalf("Reader yields more results than bytes in %q", in)
			}
			fr, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				var le *LineError
				if !errors.As(err, &le) || !isLineDefect(err) || le.N <= 0 {
					t.Fatalf("Next() = %v; want a line defect spanning bytes", err)
				}
				continue
			}
			line := rd.Line()
			if !validSum(line) {
				t.Fatalf("Next() yielded %v from %q with a bad checksum", fr, line)
			}
			if !bytes.Contains(in, line) {
				t.Fatalf("Line() = %q; not in the input", line)
			}
			last = fr
		}
		if want := (Frame{Addr: 0x7E, Code: "AS", Fields: []string{"UP"}}); !reflect.DeepEqual(last, want) {
			t.Fatalf("after %q the last frame is %v; want the probe %v", data, last, want)
		}
	})
}
