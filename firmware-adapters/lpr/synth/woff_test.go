package synth

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"testing"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// toWOFF wraps an sfnt font in WOFF 1.0, compressing the tables that shrink.
func toWOFF(t testing.TB, sfnt []byte) []byte {
	n := int(binary.BigEndian.Uint16(sfnt[4:]))
	type entry struct {
		tag, sum  uint32
		data      []byte
		orig      int
		compessed bool
	}
	var es []entry
	for i := 0; i < n; i++ {
		r := sfnt[12+16*i:]
		off, ln := binary.BigEndian.Uint32(r[8:]), binary.BigEndian.Uint32(r[12:])
		data := sfnt[off : off+ln]
		var z bytes.Buffer
		w := zlib.NewWriter(&z)
		w.Write(data)
		w.Close()
		e := entry{tag: binary.BigEndian.Uint32(r), sum: binary.BigEndian.Uint32(r[4:]), data: data, orig: len(data)}
		if z.Len() < len(data) {
			e.data, e.compessed = z.Bytes(), true
		}
		es = append(es, e)
	}
	out := make([]byte, 44+20*n)
	copy(out, "wOFF")
	copy(out[4:], sfnt[:4])
	binary.BigEndian.PutUint16(out[12:], uint16(n))
	for i, e := range es {
		for len(out)%4 != 0 {
			out = append(out, 0)
		}
		d := out[44+20*i:]
		binary.BigEndian.PutUint32(d, e.tag)
		binary.BigEndian.PutUint32(d[4:], uint32(len(out)))
		binary.BigEndian.PutUint32(d[8:], uint32(len(e.data)))
		binary.BigEndian.PutUint32(d[12:], uint32(e.orig))
		binary.BigEndian.PutUint32(d[16:], e.sum)
		out = append(out, e.data...)
	}
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)))
	return out
}

func advance(t *testing.T, b []byte, s string) fixed.Int26_6 {
	t.Helper()
	f, err := opentype.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: 40, DPI: 72, Hinting: font.HintingNone})
	if err != nil {
		t.Fatal(err)
	}
	return font.MeasureString(face, s)
}

func TestWOFFToSFNT(t *testing.T) {
	w := toWOFF(t, goregular.TTF)
	if len(w) >= len(goregular.TTF) {
		t.Fatalf("the test's WOFF is not compressed: %d bytes of %d", len(w), len(goregular.TTF))
	}
	got, err := WOFFToSFNT(w)
	if err != nil {
		t.Fatal(err)
	}
	const text = "CWW 2245 RK260AR"
	if a, b := advance(t, got, text), advance(t, goregular.TTF, text); a != b || a == 0 {
		t.Errorf("unpacked font measures %v, the original %v", a, b)
	}
	// Every table comes back byte for byte.
	n := int(binary.BigEndian.Uint16(goregular.TTF[4:]))
	for i := 0; i < n; i++ {
		r := goregular.TTF[12+16*i:]
		tag := r[:4]
		orig := goregular.TTF[binary.BigEndian.Uint32(r[8:]):][:binary.BigEndian.Uint32(r[12:])]
		found := false
		for j := 0; j < n; j++ {
			q := got[12+16*j:]
			if bytes.Equal(q[:4], tag) {
				found = true
				if d := got[binary.BigEndian.Uint32(q[8:]):][:binary.BigEndian.Uint32(q[12:])]; !bytes.Equal(d, orig) {
					t.Errorf("table %s differs", tag)
				}
			}
		}
		if !found {
			t.Errorf("table %s lost", tag)
		}
	}
}

func TestWOFFToSFNTRefusesBrokenFiles(t *testing.T) {
	good := toWOFF(t, goregular.TTF)
	corrupt := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	for name, b := range map[string][]byte{
		"empty":           nil,
		"not woff":        goregular.TTF,
		"truncated":       good[:100],
		"no tables":       corrupt(func(b []byte) { binary.BigEndian.PutUint16(b[12:], 0) }),
		"table past end":  corrupt(func(b []byte) { binary.BigEndian.PutUint32(b[44+4:], uint32(len(b))) }),
		"huge table":      corrupt(func(b []byte) { binary.BigEndian.PutUint32(b[44+12:], 1<<30) }),
		"bad zlib stream": corrupt(func(b []byte) { off := binary.BigEndian.Uint32(b[44+20*3+4:]); copy(b[off:], "garbage!") }),
		"short inflate":   corrupt(func(b []byte) { binary.BigEndian.PutUint32(b[44+20*3+12:], binary.BigEndian.Uint32(b[44+20*3+12:])+10) }),
	} {
		if _, err := WOFFToSFNT(b); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func FuzzWOFFToSFNT(f *testing.F) {
	f.Add(toWOFF(f, goregular.TTF)[:4096])
	f.Add([]byte("wOFF"))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := WOFFToSFNT(b)
		if err != nil {
			return
		}
		// What comes out is a well-formed directory: as many tables as the
		// WOFF header says, each inside the file.
		if len(out) < 12 {
			t.Fatalf("%d bytes of sfnt without an error", len(out))
		}
		n := int(binary.BigEndian.Uint16(out[4:]))
		if n != int(binary.BigEndian.Uint16(b[12:])) || 12+16*n > len(out) {
			t.Fatalf("sfnt directory of %d tables in %d bytes", n, len(out))
		}
		for i := 0; i < n; i++ {
			r := out[12+16*i:]
			if off, ln := binary.BigEndian.Uint32(r[8:]), binary.BigEndian.Uint32(r[12:]); uint64(off)+uint64(ln) > uint64(len(out)) {
				t.Fatalf("table %d at %d+%d outside %d bytes", i, off, ln, len(out))
			}
		}
	})
}
