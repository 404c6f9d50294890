//go:build gocv

package lpr

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/gatehouse-parking/gatehouse/firmware-adapters/lpr/synth"
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
