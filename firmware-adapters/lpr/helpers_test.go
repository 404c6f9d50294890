//go:build gocv

package lpr

import (
	"fmt"
	"image"
	"image/color"
	"math/rand/v2"
	"testing"

	"github.com/gatehouse-parking/gatehouse/firmware-adapters/lpr/synth"
	"gocv.io/x/gocv"
	"golang.org/x/image/font/opentype"
)

// testFont loads DejaVu Sans Bold (fonts-dejavu-core, which .ci/install-deps
// installs): the tests render their own plates and need no photographs.
func testFont(tb testing.TB) *opentype.Font {
	tb.Helper()
	f, err := synth.TestFont()
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// usRecognizer returns a recognizer for US plates.
func usRecognizer(tb testing.TB) *Recognizer {
	tb.Helper()
	rec, err := NewRecognizer(Options{Country: CountryUS})
	if err != nil {
		tb.Fatal(err)
	}
	return rec
}

// renderJPEG renders p and returns it as JPEG bytes with its plate box.
func renderJPEG(tb testing.TB, p synth.Plate, rng *rand.Rand) ([]byte, synth.Rendered) {
	tb.Helper()
	r, err := synth.Render(p, rng)
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Image.Close()
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, r.Image, []int{gocv.IMWriteJpegQuality, 90})
	if err != nil {
		tb.Fatal(err)
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...), r
}

// randomPlate returns a plate text of the style's most common shape.
func randomPlate(rng *rand.Rand, style synth.Style) string {
	const L, N = "ABCDEFGHJKLMNPRSTUVWXYZ", "0123456789"
	shape := "LLNNLLL"
	if style == synth.US {
		shape = "LLLNNNN"
	}
	b := make([]byte, len(shape))
	for i, c := range shape {
		if c == 'L' {
			b[i] = L[rng.IntN(len(L))]
		} else {
			b[i] = N[rng.IntN(len(N))]
		}
	}
	return string(b)
}

func pct(k, n int) string { return fmt.Sprintf("%d/%d", k, n) }

func image2(w, h int) image.Point { return image.Pt(w, h) }

// readEdited renders p, lets edit change the rendering (ink over it, a
// sticker beside it, less contrast) and returns what rec reads in it.
func readEdited(tb testing.TB, rec *Recognizer, p synth.Plate, rng *rand.Rand, edit func(*synth.Rendered)) []Plate {
	tb.Helper()
	r, err := synth.Render(p, rng)
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Image.Close()
	edit(&r)
	plates, err := rec.Recognize(r.Image)
	if err != nil {
		tb.Fatal(err)
	}
	return plates
}

// readInked renders p, fills the rectangle ink chooses from the rendering with
// black ink (a bar joining characters, a blot over one) and returns the best
// plate Recognize reads, "" for none.
func readInked(tb testing.TB, rec *Recognizer, p synth.Plate, rng *rand.Rand, ink func(synth.Rendered) image.Rectangle) string {
	tb.Helper()
	plates := readEdited(tb, rec, p, rng, func(r *synth.Rendered) {
		gocv.Rectangle(&r.Image, ink(*r), color.RGBA{0, 0, 0, 0}, -1)
	})
	if len(plates) == 0 {
		return ""
	}
	return plates[0].Text
}
