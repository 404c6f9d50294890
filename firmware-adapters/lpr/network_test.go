package lpr

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
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

// convRef is a 3×3 convolution with zero padding and ReLU in float64, laid out
// as conv3x3's, written the plain way round: for each output, over the
// kernel.
func convRef(src []float32, h, w, ci, co int, wt, b []float32) []float64 {
	out := make([]float64, h*w*co)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for o := 0; o < co; o++ {
				s := float64(b[o])
				for ky := 0; ky < 3; ky++ {
					for kx := 0; kx < 3; kx++ {
						yy, xx := y+ky-1, x+kx-1
						if yy < 0 || yy >= h || xx < 0 || xx >= w {
							continue
						}
						for c := 0; c < ci; c++ {
							s += float64(wt[((ky*3+kx)*ci+c)*co+o]) * float64(src[(yy*w+xx)*ci+c])
						}
					}
				}
				out[(y*w+x)*co+o] = max(s, 0)
			}
		}
	}
	return out
}

// TestConv3x3 checks a convolution (in C in the gocv build, in Go without) and
// the Go one against convRef, for the shapes a convNet has and odd ones, and
// that short weights panic instead of being read beyond their end.
func TestConv3x3(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range [][4]int{{24, 16, 1, 8}, {12, 8, 8, 16}, {6, 4, 16, 32}, {1, 1, 3, 5}, {5, 7, 3, 17}} {
		h, w, ci, co := s[0], s[1], s[2], s[3]
		src, wt, b := make([]float32, h*w*ci), make([]float32, 9*ci*co), make([]float32, co)
		for i := range src {
			if rng.IntN(3) > 0 { // zeros too: the loops skip them
				src[i] = float32(rng.NormFloat64())
			}
		}
		for i := range wt {
			wt[i] = float32(rng.NormFloat64())
		}
		for i := range b {
			b[i] = float32(rng.NormFloat64())
		}
		want := convRef(src, h, w, ci, co, wt, b)
		for name, f := range map[string]func(dst, src []float32, h, w, ci, co int, wt, b []float32){"conv3x3": conv3x3, "conv3x3Go": conv3x3Go} {
			dst := make([]float32, h*w*co+1)
			dst[h*w*co] = 42
			f(dst[:h*w*co], src, h, w, ci, co, wt, b)
			for i, v := range want {
				if math.Abs(float64(dst[i])-v) > 1e-4*(1+math.Abs(v)) {
					t.Fatalf("%s %v: output %d = %v, want %v", name, s, i, dst[i], v)
				}
			}
			if dst[h*w*co] != 42 {
				t.Errorf("%s %v: wrote beyond the output", name, s)
			}
		}
	}
	// A slice shorter than its shape panics instead of being read or
	// written beyond its end by the C code.
	f := func(short int) []float32 { return make([]float32, short) }
	for name, call := range map[string]func(){
		"output":  func() { conv3x3(f(4*4*2-1), f(4*4*3), 4, 4, 3, 2, f(9*3*2), f(2)) },
		"input":   func() { conv3x3(f(4*4*2), f(4*4*3-1), 4, 4, 3, 2, f(9*3*2), f(2)) },
		"weights": func() { conv3x3(f(4*4*2), f(4*4*3), 4, 4, 3, 2, f(9*3*2-1), f(2)) },
		"biases":  func() { conv3x3(f(4*4*2), f(4*4*3), 4, 4, 3, 2, f(9*3*2), f(1)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s shorter than its shape: no panic", name)
				}
			}()
			call()
		}()
	}
}

// TestConvNet builds a convolutional network with known weights, checks that
// it survives encode and decodeEnsemble unchanged, that its forward is the
// layers computed one by one the plain way, and that a model file cut short
// or of a shape this build cannot use is refused.
func TestConvNet(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	n := testConvNet([3]int{4, 6, 5}, 7, 5, func(v []float32) {
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 0.5)
		}
	})
	fin := n.flat() + n.extra
	enc := n.encode()
	e, err := decodeEnsemble(enc)
	if err != nil || len(e.nets) != 1 {
		t.Fatalf("decodeEnsemble = %v, %v", e, err)
	}
	x := make([]float32, GlyphFeatures)
	for i := range x {
		x[i] = rng.Float32()
	}
	p := make([]float32, e.out)
	e.forward(x, make([]float32, e.scratch), make([]float32, e.out), p)

	// The same layers, one by one.
	f32 := func(v []float64) []float32 {
		o := make([]float32, len(v))
		for i := range v {
			o[i] = float32(v[i])
		}
		return o
	}
	pool := func(a []float32, h, w, c int) []float32 {
		o := make([]float32, h/2*w/2*c)
		pool2(o, a, h, w, c)
		return o
	}
	a := f32(convRef(x[:GlyphH*GlyphW], GlyphH, GlyphW, 1, 4, n.cw[0], n.cb[0]))
	a = f32(convRef(pool(a, GlyphH, GlyphW, 4), GlyphH/2, GlyphW/2, 4, 6, n.cw[1], n.cb[1]))
	a = f32(convRef(pool(a, GlyphH/2, GlyphW/2, 6), GlyphH/4, GlyphW/4, 6, 5, n.cw[2], n.cb[2]))
	a = append(a, x[featAspect:featAspect+n.extra]...)
	hid := make([]float64, n.hid)
	for j := range hid {
		s := float64(n.b1[j])
		for i, v := range a {
			s += float64(n.w1[j*fin+i]) * float64(v)
		}
		hid[j] = max(s, 0)
	}
	want := make([]float64, n.out)
	var sum float64
	for k := range want {
		s := float64(n.b2[k])
		for j, v := range hid {
			s += float64(n.w2[k*n.hid+j]) * v
		}
		want[k] = math.Exp(s)
		sum += want[k]
	}
	for k := range want {
		if d := math.Abs(float64(p[k]) - want[k]/sum); d > 1e-5 {
			t.Fatalf("probability %d = %v, want %v", k, p[k], want[k]/sum)
		}
	}
	if _, err := decodeEnsemble(enc[:len(enc)-1]); err == nil {
		t.Error("a model cut short: no error")
	}
	// The shapes, in the order of the header: three convolutions'
	// channels, hidden units, outputs, extra features.
	for _, bad := range []struct {
		field int
		v     uint32
		why   string
	}{
		{0, 0, "a convolution of 0 channels"},
		{2, 513, "a convolution of 513 channels"},
		{3, 0, "no hidden units"},
		{4, 36, "36 outputs"},
		{5, GlyphFeatures - featAspect + 1, "more extra features than the glyph has"},
		{5, 1 << 31, "a negative number of extra features on 32 bits"},
	} {
		b := append([]byte(nil), enc...)
		binary.LittleEndian.PutUint32(b[len(convMagic)+4*bad.field:], bad.v)
		if _, err := decodeEnsemble(b); err == nil {
			t.Errorf("%s: no error", bad.why)
		}
	}
}

// FuzzDecodeEnsemble feeds model files of any bytes to decodeEnsemble: it
// returns an error or an ensemble whose forward runs within its buffers,
// never a panic.
func FuzzDecodeEnsemble(f *testing.F) {
	n := testConvNet([3]int{2, 3, 2}, 4, 2, func([]float32) {})
	f.Add(n.encode())
	mlp := &network{in: GlyphFeatures, hid: 3, out: len(Classes) + 1}
	mlp.w1, mlp.b1 = make([]float32, mlp.hid*mlp.in), make([]float32, mlp.hid)
	mlp.w2, mlp.b2 = make([]float32, mlp.out*mlp.hid), make([]float32, mlp.out)
	f.Add(append(mlp.encode(), n.encode()...))
	f.Add([]byte("LPRC1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEnsemble(b)
		if err != nil {
			return
		}
		x := make([]float32, GlyphFeatures)
		p := make([]float32, e.out)
		e.forward(x, make([]float32, e.scratch), make([]float32, e.out), p)
	})
}

// testConvNet returns a convolutional network of the given shape whose
// weights and biases, each slice of them, fill sets (zero if it sets none).
func testConvNet(ch [3]int, hid, extra int, fill func([]float32)) *convNet {
	n := &convNet{ch: ch, hid: hid, out: len(Classes) + 1, extra: extra}
	alloc := func(k int) []float32 {
		v := make([]float32, k)
		fill(v)
		return v
	}
	in := 1
	for i, c := range n.ch {
		n.cw[i], n.cb[i] = alloc(9*in*c), alloc(c)
		in = c
	}
	n.w1, n.b1 = alloc(n.hid*(n.flat()+n.extra)), alloc(n.hid)
	n.w2, n.b2 = alloc(n.out*n.hid), alloc(n.out)
	return n
}
