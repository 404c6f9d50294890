package serial

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll runs a Reader to the end and describes what it yielded, one word each:
// "LP" for a frame (its code), "garbage:N", "overlong:N", "checksum:N", "malformed:N".
func readAll(tb testing.TB, r io.Reader) []string {
	tb.Helper()
	rd := NewReader(r)
	var out []string
	for i := 0; ; i++ {
		if i > 10000 {
			tb.Fatal("Reader does not end")
		}
		f, err := rd.Next()
		var le *LineError
		switch {
		case err == nil:
			out = append(out, f.Code)
		case errors.As(err, &le):
			for name, d := range map[string]error{"garbage": ErrGarbage, "overlong": ErrOverlong, "checksum": ErrChecksum, "malformed": ErrMalformed} {
				if errors.Is(le, d) {
					out = append(out, fmt.Sprintf("%s:%d", name, le.N))
				}
			}
		case err == io.EOF:
			return out
		default:
			tb.Fatalf("Next() = %v", err)
		}
	}
}

func TestReader(t *testing.T) {
	lp := "$01,LP,1,1*31\r\n"
	ls := "$01,LS,4,1000,00O0*54\r\n"
	tests := []struct {
		name  string
		input string
		want  string
	}{
		{"frames", lp + ls, "LP LS"},
		{"LF only", "$01,LP,1,1*31\n$11,ARM,UP*5B\n", "LP ARM"},
		{"CR only", "$01,LP,1,1*31\r$11,ARM,UP*5B\r", "LP ARM"},
		{"blank lines", "\r\n\r\n" + lp + "\n\n", "LP"},
		{"garbage before", "\x00\xff~~" + lp, "garbage:4 LP"},
		{"garbage between", lp + "noise\r\n" + lp, "LP garbage:5 LP"},
		{"garbage glued", lp + "xx" + lp, "LP garbage:2 LP"},
		{"torn frame", "$01,LP,1" + lp, "garbage:8 LP"},
		{"torn at end", lp + "$01,LP", "LP garbage:6"},
		{"garbage at end", lp + "junk", "LP garbage:4"},
		{"bad checksum", "$01,LP,1,1*30\r\n" + lp, "checksum:13 LP"},
		{"no checksum", "$01,LP,1,1\r\n" + lp, "garbage:10 LP"},
		{"malformed", withSum("01,lp,1,1") + "\r\n" + lp, "malformed:13 LP"},
		{"overlong", "$" + strings.Repeat("A", 200) + "\r\n" + lp, "overlong:201 LP"},
		{"overlong swallows dollar", "$" + strings.Repeat("A", 200) + lp + lp, "overlong:214 LP"},
		{"longest frame", withSum("01,X,"+strings.Repeat("A", MaxLine-11)) + "\r\n", "X"},
		{"one too long", withSum("01,X,"+strings.Repeat("A", MaxLine-10)) + "\r\n", "overlong:127"},
		{"unknown code", "$01,XYZ*76\r\n", "XYZ"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, r := range map[string]io.Reader{
				"whole":    strings.NewReader(tt.input),
				"bytewise": iotest.OneByteReader(strings.NewReader(tt.input)),
			} {
				got := strings.Join(readAll(t, r), " ")
				if got != tt.want {
					t.Errorf("%s: Reader(%q) = %q; want %q", name, tt.input, got, tt.want)
				}
			}
		})
	}
}

func TestReaderLine(t *testing.T) {
	rd := NewReader(strings.NewReader("$01,LP,1,1*30\r\n$01,LP,1,1*31\r\n"))
	if _, err := rd.Next(); !errors.Is(err, ErrChecksum) {
		t.Fatalf("Next() = %v; want ErrChecksum", err)
	}
	if got := string(rd.Line()); got != "$01,LP,1,1*30" {
		t.Errorf("Line() after a bad checksum = %q; want the line", got)
	}
	if _, err := rd.Next(); err != nil {
		t.Fatalf("Next() = %v; want a frame", err)
	}
	if got := string(rd.Line()); got != "$01,LP,1,1*31" {
		t.Errorf("Line() = %q; want the frame", got)
	}
}

func TestReaderReadError(t *testing.T) {
	boom := errors.New("boom")
	rd := NewReader(io.MultiReader(strings.NewReader("$01,LP,1,1*31\r\n$01,L"), iotest.ErrReader(boom)))
	if _, err := rd.Next(); err != nil {
		t.Fatalf("Next() = %v; want the frame", err)
	}
	if _, err := rd.Next(); !errors.Is(err, ErrGarbage) {
		t.Fatalf("Next() = %v; want the torn frame as garbage", err)
	}
	for range 2 {
		if _, err := rd.Next(); err != boom {
			t.Fatalf("Next() = %v; want %v, again and again", err, boom)
		}
	}
}
