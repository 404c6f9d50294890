//go:build gocv

package lpr

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gatehouse-parking/gatehouse/firmware-adapters/lpr/synth"
	"gocv.io/x/gocv"
)

// FuzzRecognizeJPEG feeds arbitrary bytes to the recognizer's entry point: it
// must answer with plates or ErrInvalidImage, never abort in OpenCV.
func FuzzRecognizeJPEG(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 2))
	data, _ := renderJPEG(f, synth.Plate{Text: "AB12CDE", Style: synth.EU, Font: testFont(f), CharHeight: 14, Scene: image2(160, 90)}, rng)
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add(tinyJPEG(f))
	f.Add([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x40\x00\x00\x00\x40\x08\x00\x00\x00\x00"))
	rec, err := NewRecognizer(Options{Country: CountryEU})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		plates, err := rec.RecognizeJPEG(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidImage) {
				t.Fatalf("RecognizeJPEG = %v; want ErrInvalidImage", err)
			}
			return
		}
		for _, p := range plates {
			if p.Confidence < 0 || p.Confidence > 1 || p.Text == "" {
				t.Fatalf("plate %+v", p)
			}
		}
	})
}

// FuzzLabeller: on any binary image (the bytes as pixels, zero paper and any
// other value ink, rows of the given width) the run labeller finds what
// OpenCV's connectedComponentsWithStats finds, in its order, and reads
// nothing beyond the image.
func FuzzLabeller(f *testing.F) {
	f.Add(uint8(7), []byte{0, 255, 255, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 9, 9, 0, 0, 0, 0, 0})
	f.Add(uint8(1), []byte{1, 0, 1})
	f.Add(uint8(16), bytes.Repeat([]byte{255, 255, 255, 255, 255, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 255}, 9))
	var l labeller
	defer l.free()
	f.Fuzz(func(t *testing.T, w uint8, pix []byte) {
		if w == 0 || len(pix) < int(w) {
			return
		}
		h := len(pix) / int(w)
		img := pix[:h*int(w)]
		bin := make([]byte, len(img)) // OpenCV's ink is any non-zero byte too, but keep its input plain
		for i, v := range img {
			if v != 0 {
				bin[i] = 255
			}
		}
		m, err := gocv.NewMatFromBytes(h, int(w), gocv.MatTypeCV8U, bin)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		want := openCVBlobs(t, m)
		// The labeller gets the raw bytes, in a slice no longer than the image.
		if got := l.label(img[:len(img):len(img)], int(w), h, int(w), 1); !slices.Equal(got, want) {
			t.Fatalf("%dx%d: %+v, OpenCV %+v", w, h, got, want)
		}
	})
}
