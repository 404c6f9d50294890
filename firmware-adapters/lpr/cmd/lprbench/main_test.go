//go:build gocv

package main

import (
	"fmt"
	"image"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/firmware-adapters/lpr/synth"
	"gocv.io/x/gocv"
)

// TestRun runs the benchmark on a set the test renders: three clear plates,
// one of them with a wrong truth. The set's lines count what the recognizer
// did (three detected, two exact and matched) in the documented format.
func TestRun(t *testing.T) {
	dir := writeSet(t, []string{"ABC1234", "KLM5678", "XYZ2345"}, []string{"ABC1234", "KLM5678", "XYZ2846"})
	var out strings.Builder
	if err := run(filepath.Dir(dir), true, true, &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		`(?m)^us/car2\.jpg truth=XYZ2846 read=XYZ2345 conf=\d\.\d\d det=true match=$`,
		`(?m)^calib set=us conf=\[0\.9,1\.0\] reads=\d exact=\d$`,
		`(?m)^time set=us p50_ms=\d+\.\d p95_ms=\d+\.\d max_ms=\d+\.\d$`,
		`lpr set=us images=3 detected=100\.0% exact=66\.7% matched=66\.7% ms_per_image=\d+\.\d\n$`,
	} {
		if !regexp.MustCompile(want).MatchString(got) {
			t.Errorf("output lacks %s:\n%s", want, got)
		}
	}
}

// writeSet renders a set named us of plates with the given texts, each with
// the given truth, and returns its folder.
func writeSet(t *testing.T, texts, truths []string) string {
	t.Helper()
	f, err := synth.TestFont()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "us")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i, text := range texts {
		r, err := synth.Render(synth.Plate{Text: text, Style: synth.US, Font: f, CharHeight: 40, Scene: image.Pt(640, 360)}, rng)
		if err != nil {
			t.Fatal(err)
		}
		buf, err := gocv.IMEncode(gocv.JPEGFileExt, r.Image)
		r.Image.Close()
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("car%d", i)
		err = os.WriteFile(filepath.Join(dir, name+".jpg"), buf.GetBytes(), 0o644)
		buf.Close()
		if err != nil {
			t.Fatal(err)
		}
		b := r.PlateBox
		line := fmt.Sprintf("%s.jpg\t%d\t%d\t%d\t%d\t%s\n", name, b.Min.X, b.Min.Y, b.Dx(), b.Dy(), truths[i])
		if err := os.WriteFile(filepath.Join(dir, name+".txt"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestRunTesseract runs the Tesseract measurement with a stand-in tesseract
// command that keeps the crops it is given and answers per image: the crops are
// 200 pixels high, grey, as wide as the box with its margin in proportion, and
// the answers are normalized before they are compared.
func TestRunTesseract(t *testing.T) {
	dir := writeSet(t, []string{"ABC1234", "KLM5678", "XYZ2345"}, []string{"ABC1234", "KLM5678", "XYZ2345"})
	bin, kept := t.TempDir(), t.TempDir()
	script := `#!/bin/sh
cp "$1" "` + kept + `/"
case $(basename "$1") in
car0-*) echo "abc-1234" ;;
car1-*) printf 'KLM 5678\n\n' ;;
*) echo "XYZ2346" ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "tesseract"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	var out strings.Builder
	if err := runTesseract(filepath.Dir(dir), true, &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		`(?m)^us/car0\.jpg truth=ABC1234 read=ABC1234$`,
		`(?m)^us/car2\.jpg truth=XYZ2345 read=XYZ2346$`,
		`tesseract set=us crops=3 exact=66\.7%\n$`,
	} {
		if !regexp.MustCompile(want).MatchString(got) {
			t.Errorf("output lacks %s:\n%s", want, got)
		}
	}
	crops, err := filepath.Glob(filepath.Join(kept, "*.png"))
	if err != nil || len(crops) != 3 {
		t.Fatalf("tesseract was given %d crops (%v), want 3", len(crops), err)
	}
	for _, c := range crops {
		m := gocv.IMRead(c, gocv.IMReadUnchanged)
		rows, cols, ch := m.Rows(), m.Cols(), m.Channels()
		m.Close()
		// A US plate is about twice as wide as high; the box's margin keeps that.
		if rows != 200 || ch != 1 || cols < 300 || cols > 500 {
			t.Errorf("%s: %dx%d with %d channels, want 200 high, grey, a plate's proportions", filepath.Base(c), cols, rows, ch)
		}
	}
	if err := os.WriteFile(filepath.Join(bin, "tesseract"), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := runTesseract(filepath.Dir(dir), false, io.Discard); err == nil {
		t.Error("a failing tesseract command is not reported")
	}
}

func TestRank(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var ds []time.Duration
		for _, x := range v {
			ds = append(ds, time.Duration(x)*time.Millisecond)
		}
		return ds
	}
	for _, c := range []struct {
		ds   []time.Duration
		q    float64
		want time.Duration
	}{
		{ms(7), 0.5, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{ms(1, 2, 3, 4, 5), 0.5, 3 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 100), 0.95, 19 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 100), 0.95, 20 * time.Millisecond},
		{ms(1, 2), 1, 2 * time.Millisecond},
		{ms(1, 2), 0, 1 * time.Millisecond},
	} {
		if got := rank(c.ds, c.q); got != c.want {
			t.Errorf("rank(%v, %v) = %v, want %v", c.ds, c.q, got, c.want)
		}
	}
}
