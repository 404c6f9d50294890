//go:build gocv

package lpr

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gatehouse-parking/gatehouse/firmware-adapters/lpr/synth"
	"gocv.io/x/gocv"
)

// openCVBlobs is what connectedComponentsWithStats finds in bin (8-connected),
// without the background.
func openCVBlobs(t *testing.T, bin gocv.Mat) []blob {
	t.Helper()
	labels, stats, cents := gocv.NewMat(), gocv.NewMat(), gocv.NewMat()
	defer labels.Close()
	defer stats.Close()
	defer cents.Close()
	n := gocv.ConnectedComponentsWithStats(bin, &labels, &stats, &cents)
	raw := stats.ToBytes()
	var out []blob
	for i := 1; i < n; i++ {
		v := func(k int) int { return int(int32(binary.LittleEndian.Uint32(raw[i*20+4*k:]))) }
		out = append(out, blob{v(0), v(1), v(2), v(3), v(4)})
	}
	return out
}

// TestLabellerMatchesOpenCV: the run labeller finds the same components, in
// the same order, as OpenCV's labelling with stats, on random images of every
// density (odd sizes, ink touching the borders, runs longer than a word) and
// on the binarizations of rendered plates.
func TestLabellerMatchesOpenCV(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	var l labeller
	defer l.free()
	check := func(name string, bin gocv.Mat) {
		t.Helper()
		pix, err := bin.DataPtrUint8()
		if err != nil {
			t.Fatal(err)
		}
		got := l.label(pix, bin.Cols(), bin.Rows(), bin.Cols(), 1)
		want := openCVBlobs(t, bin)
		if !slices.Equal(got, want) {
			n := min(len(got), len(want))
			for i := 0; i < n; i++ {
				if got[i] != want[i] {
					t.Fatalf("%s: %d components (OpenCV %d); first difference at %d: %+v, OpenCV %+v", name, len(got), len(want), i, got[i], want[i])
				}
			}
			t.Fatalf("%s: %d components, OpenCV %d", name, len(got), len(want))
		}
		// Only the tall ones, in the same order.
		want = slices.DeleteFunc(want, func(b blob) bool { return b.h < 9 })
		if got := l.label(pix, bin.Cols(), bin.Rows(), bin.Cols(), 9); !slices.Equal(got, want) {
			t.Fatalf("%s: %d components at least 9 tall, OpenCV %d", name, len(got), len(want))
		}
	}
	for _, size := range [][2]int{{1, 1}, {1, 9}, {9, 1}, {2, 2}, {3, 5}, {17, 13}, {64, 48}, {131, 77}, {640, 360}} {
		for _, density := range []float64{0, 0.05, 0.3, 0.5, 0.7, 0.97, 1} {
			w, h := size[0], size[1]
			pix := make([]byte, w*h)
			for i := range pix {
				if rng.Float64() < density {
					pix[i] = 255
				}
			}
			// Long runs too, so that word-at-a-time scanning is exercised.
			if w > 20 && density > 0 && density < 1 {
				for k := 0; k < h/4; k++ {
					y, x := rng.IntN(h), rng.IntN(w-10)
					for j := x; j < min(w, x+10+rng.IntN(w)); j++ {
						pix[y*w+j] = 255
					}
				}
			}
			m, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8U, pix)
			if err != nil {
				t.Fatal(err)
			}
			check(fmt.Sprintf("%dx%d density %.2f", w, h, density), m)
			m.Close()
		}
	}
	f := testFont(t)
	for i := 0; i < 4; i++ {
		style := synth.EU
		if i%2 == 1 {
			style = synth.US
		}
		r, err := synth.Render(synth.Plate{Text: randomPlate(rng, style), Style: style, Font: f, CharHeight: 20 + 8*i, Tilt: 3, Blur: 0.7, Noise: 4, Scene: image2(480, 320)}, rng)
		if err != nil {
			t.Fatal(err)
		}
		g := newGrey(r.Image)
		for _, b := range passes {
			for _, dark := range []bool{true, false} {
				bin := binarize(g, dark, b)
				check(fmt.Sprintf("plate %d pass %+v dark %v", i, b, dark), bin)
				bin.Close()
			}
		}
		g.close()
		r.Image.Close()
	}
}

// TestLabellerStride: rows stride bytes apart (a view into a wider image)
// label as the same image copied tight, and a short buffer gives nothing
// instead of reading past it.
func TestLabellerStride(t *testing.T) {
	const w, h, stride = 5, 3, 8
	tight := []byte{
		255, 0, 0, 255, 255,
		0, 255, 0, 0, 0,
		0, 0, 0, 0, 255,
	}
	wide := make([]byte, h*stride)
	for y := 0; y < h; y++ {
		copy(wide[y*stride:], tight[y*w:(y+1)*w])
		for x := w; x < stride; x++ {
			wide[y*stride+x] = 255 // ink beyond the row's end belongs to no row
		}
	}
	var l labeller
	defer l.free()
	want := []blob{{0, 0, 2, 2, 2}, {3, 0, 2, 1, 2}, {4, 2, 1, 1, 1}}
	if got := l.label(tight, w, h, w, 1); !slices.Equal(got, want) {
		t.Fatalf("tight: %+v, want %+v", got, want)
	}
	if got := l.label(wide, w, h, stride, 1); !slices.Equal(got, want) {
		t.Fatalf("stride %d: %+v, want %+v", stride, got, want)
	}
	if got := l.label(tight[:len(tight)-1], w, h, w, 1); got != nil {
		t.Fatalf("short buffer: %+v, want nothing", got)
	}
}

// TestBinarizeMatchesOpenCV: thresholding against a local mean shared between
// binarizations gives, pixel for pixel, what OpenCV's adaptiveThreshold gives,
// for dark and light ink, every block size and offset the passes use (and
// odd offsets OpenCV rounds), on pictures with edges, gradients and noise.
func TestBinarizeMatchesOpenCV(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for _, size := range [][2]int{{40, 40}, {333, 211}, {1280, 720}} {
		w, h := size[0], size[1]
		pix := make([]byte, w*h)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				v := 60 + 120*x/w + rng.IntN(40)
				if (x/17+y/23)%3 == 0 {
					v = 255 - v // blocks of the reverse contrast, edges at the borders too
				}
				pix[y*w+x] = byte(v)
			}
		}
		m, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8U, pix)
		if err != nil {
			t.Fatal(err)
		}
		g := newGrey(m)
		m.Close()
		bs := append(slices.Clone(passes), binarization{1, 2.5, 0, false}, binarization{0.5, -1.5, 0, false})
		for _, b := range bs {
			for _, dark := range []bool{true, false} {
				b.unframe = false
				got := binarize(g, dark, b)
				block := g.blockSize(b)
				typ, c := gocv.ThresholdBinaryInv, b.c
				if !dark {
					typ, c = gocv.ThresholdBinary, -c
				}
				want := gocv.NewMat()
				gocv.AdaptiveThreshold(g.mat, &want, 255, gocv.AdaptiveThresholdMean, typ, block, c)
				diff := gocv.NewMat()
				gocv.AbsDiff(got, want, &diff)
				if n := gocv.CountNonZero(diff); n != 0 {
					t.Errorf("%dx%d block %d offset %v dark %v: %d pixels differ from adaptiveThreshold", w, h, block, b.c, dark, n)
				}
				diff.Close()
				want.Close()
				got.Close()
			}
		}
		if len(g.means) > 3 {
			t.Errorf("%dx%d: %d means computed, want at most 3 (one per block size)", w, h, len(g.means))
		}
		g.close()
	}
}
