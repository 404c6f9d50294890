//go:build gocv

package main

import (
	"fmt"
	"image"
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
	f, err := synth.TestFont()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "us")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i, c := range []struct{ text, truth string }{{"ABC1234", "ABC1234"}, {"KLM5678", "KLM5678"}, {"XYZ2345", "XYZ2846"}} {
		r, err := synth.Render(synth.Plate{Text: c.text, Style: synth.US, Font: f, CharHeight: 40, Scene: image.Pt(640, 360)}, rng)
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
		line := fmt.Sprintf("%s.jpg\t%d\t%d\t%d\t%d\t%s\n", name, b.Min.X, b.Min.Y, b.Dx(), b.Dy(), c.truth)
		if err := os.WriteFile(filepath.Join(dir, name+".txt"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
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
