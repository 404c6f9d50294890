package lpr

import (
	"math"
	"testing"
)

func norm(v []float32) float64 {
	var ss float64
	for _, f := range v {
		ss += float64(f) * float64(f)
	}
	return math.Sqrt(ss)
}

func TestOrientationFeatures(t *testing.T) {
	// A vertical bar from top to bottom: its edges run up and down, so
	// every gradient points left or right (directions π and 0, bins 0 and 4).
	x := make([]float32, GlyphFeatures)
	for y := 0; y < GlyphH; y++ {
		for xx := 6; xx < 9; xx++ {
			x[y*GlyphW+xx] = 1
		}
	}
	orientationFeatures(x)
	fine := x[featOrient : featOrient+orientFeatures]
	coarse := x[featOrient+orientFeatures:]
	for i, v := range fine {
		if b := i % orientBins; b != 0 && b != orientBins/2 && v > 1e-6 {
			t.Errorf("fine cell %d: %v in direction bin %d", i/orientBins, v, b)
		}
	}
	if n := norm(fine); math.Abs(n-4) > 1e-4 {
		t.Errorf("fine features' norm %v, want 4", n)
	}
	if n := norm(coarse); math.Abs(n-2) > 1e-4 {
		t.Errorf("coarse features' norm %v, want 2", n)
	}
	// The bar's edges (pixel columns 5 to 9) lie in the second and third
	// columns of fine cells: the first and last columns stay empty.
	for cy := 0; cy < GlyphH/orientCell; cy++ {
		for _, cx := range []int{0, GlyphW/orientCell - 1} {
			c := (cy*(GlyphW/orientCell) + cx) * orientBins
			if s := norm(fine[c : c+orientBins]); s > 1e-6 {
				t.Errorf("fine cell (%d,%d) has %v, want nothing", cx, cy, s)
			}
		}
	}
	// The pixels and the other features are left alone.
	if x[featAspect] != 0 || x[featWidth] != 0 || x[7*GlyphW+7] != 1 {
		t.Error("orientationFeatures changed the pixels or the aspect features")
	}

	// A blank glyph has no edges: all zero, no NaN.
	blank := make([]float32, GlyphFeatures)
	orientationFeatures(blank)
	for i, v := range blank {
		if v != 0 {
			t.Fatalf("blank glyph: feature %d = %v", i, v)
		}
	}
}

// Training shares each minibatch among goroutines; the same samples, options
// and number of workers must give the same model, byte for byte.
func TestTrainWorkersDeterministic(t *testing.T) {
	var samples []GlyphSample
	for i := range 300 {
		x := make([]float32, GlyphFeatures)
		for k := range x {
			x[k] = float32((i*31+k*17)%97) / 97
		}
		samples = append(samples, GlyphSample{X: x, Class: i % (Reject + 1)})
	}
	train := func(workers int) []byte {
		b, err := Train(samples, TrainOptions{Hidden: 16, Epochs: 3, Rate: 0.05, Seed: 3, Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b := train(3), train(3)
	if string(a) != string(b) {
		t.Error("two trainings with 3 workers gave different models")
	}
}

// TestDot checks the four-sum dot product and the in-order one against a
// plain one in float64, for lengths with and without a remainder, and that
// they read no further than a.
func TestDot(t *testing.T) {
	for n := 0; n <= 13; n++ {
		a, b := make([]float32, n), make([]float32, n+3)
		var want float64
		for i := range a {
			a[i] = float32(i%5) - 1.5
			b[i] = float32(i%3) + 0.25
			want += float64(a[i]) * float64(b[i])
		}
		b[n], b[n+1], b[n+2] = 1e9, 1e9, 1e9 // beyond a: must not count
		for name, dp := range map[string]func(float32, []float32, []float32) float32{"dot": dot, "inOrder": inOrder} {
			if got := dp(0.5, a, b); math.Abs(float64(got)-0.5-want) > 1e-4 {
				t.Errorf("%s of %d: %v, want %v", name, n, got, want+0.5)
			}
		}
	}
}

// TestMatvec checks a layer (in C in the gocv build, in Go without) against
// sums in float64, for widths around the C code's sixteen running sums, with
// and without the ReLU, and that short weights panic instead of being read
// beyond their end.
func TestMatvec(t *testing.T) {
	for _, cols := range []int{0, 1, 15, 16, 17, 33, 626} {
		for _, relu := range []bool{false, true} {
			const rows = 5
			w, b, x := make([]float32, rows*cols), make([]float32, rows), make([]float32, cols)
			for i := range w {
				w[i] = float32(i%7) - 3.25
			}
			for i := range x {
				x[i] = float32(i%4)*0.5 - 0.5
			}
			for j := range b {
				b[j] = float32(j) - 2
			}
			dst := make([]float32, rows+1)
			dst[rows] = 42 // beyond the rows: must stay
			matvec(dst[:rows], w, b, x, relu)
			for j := 0; j < rows; j++ {
				want := float64(b[j])
				for i := 0; i < cols; i++ {
					want += float64(w[j*cols+i]) * float64(x[i])
				}
				if relu {
					want = max(want, 0)
				}
				if math.Abs(float64(dst[j])-want) > 1e-3 {
					t.Errorf("cols %d relu %v row %d: %v, want %v", cols, relu, j, dst[j], want)
				}
			}
			if dst[rows] != 42 {
				t.Errorf("cols %d: wrote beyond the rows", cols)
			}
		}
	}
	for name, short := range map[string]func(){
		"weights shorter than rows×cols": func() {
			matvec(make([]float32, 3), make([]float32, 3*8-1), make([]float32, 3), make([]float32, 8), false)
		},
		"biases shorter than rows": func() {
			matvec(make([]float32, 3), make([]float32, 3*8), make([]float32, 2), make([]float32, 8), false)
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			short()
		}()
	}
}
