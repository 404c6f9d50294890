package lpr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
)

// Classes are the characters the glyph classifier tells apart, in the order of
// its outputs.
const Classes = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// Reject is the classifier's extra output after Classes: "not a character"
// (plate frames, bolts, grille bars, parts and pairs of characters). It lets a
// row of bars score as what it is instead of as the nearest character.
const Reject = len(Classes)

// Glyph geometry: every character crop is scaled into a GlyphW×GlyphH grid
// (stretched to the full width unless it is narrower than FullWidthAspect,
// centred); the classifier sees those pixels, the crop's aspect ratio, its
// width relative to the line's median character and histograms of the grid's
// edge directions (orientationFeatures).
const (
	GlyphW = 16
	GlyphH = 24
	// FullWidthAspect is the width/height ratio from which a glyph fills the
	// grid's width: a narrow plate font's 0 (about 0.42) and a wide one's
	// (0.6 and more) then look alike; narrower glyphs (1, I) keep their
	// proportion to it, and the aspect feature tells the shapes apart.
	FullWidthAspect = 0.4
	// Edge directions are counted in cells of orientCell×orientCell pixels,
	// in orientBins directions (signed: ink is always high, so the side the
	// ink lies on is known).
	orientCell     = 4
	orientBins     = 8
	orientFeatures = (GlyphW / orientCell) * (GlyphH / orientCell) * orientBins
	// The features, in order: the pixels, the aspect ratio, the width
	// relative to the line's median character, the edge directions in fine
	// cells, then in coarse ones (orientationFeatures).
	featAspect    = GlyphW * GlyphH
	featWidth     = featAspect + 1
	featOrient    = featWidth + 1
	GlyphFeatures = featOrient + orientFeatures + orientFeatures/4
)

// orientationFeatures fills x[featOrient:] from the glyph's pixels in
// x[:GlyphW*GlyphH] (ink 1, paper 0): per cell, the gradient magnitude by
// direction, split linearly between the two nearest directions, in fine
// cells (orientCell) and in coarse ones (twice as large), each scale scaled
// to a fixed norm. They describe where strokes run rather than where ink is,
// which changes less with stroke weight, blur and a slightly shifted crop
// than the pixels do; the coarse cells change less still.
func orientationFeatures(x []float32) {
	pix := x[:GlyphW*GlyphH]
	fine := x[featOrient : featOrient+orientFeatures]
	coarse := x[featOrient+orientFeatures : GlyphFeatures]
	clear(fine)
	clear(coarse)
	at := func(xx, yy int) float32 {
		xx = max(0, min(xx, GlyphW-1))
		yy = max(0, min(yy, GlyphH-1))
		return pix[yy*GlyphW+xx]
	}
	const cellsX, coarseX = GlyphW / orientCell, GlyphW / (2 * orientCell)
	for yy := 0; yy < GlyphH; yy++ {
		for xx := 0; xx < GlyphW; xx++ {
			gx := float64(at(xx+1, yy) - at(xx-1, yy))
			gy := float64(at(xx, yy+1) - at(xx, yy-1))
			m := math.Hypot(gx, gy)
			if m < 1e-6 {
				continue
			}
			a := math.Atan2(gy, gx) // -π..π
			f := (a + math.Pi) / (2 * math.Pi) * orientBins
			b0 := int(f) % orientBins
			w1 := f - math.Floor(f)
			b1 := (b0 + 1) % orientBins
			cell := ((yy/orientCell)*cellsX + xx/orientCell) * orientBins
			fine[cell+b0] += float32(m * (1 - w1))
			fine[cell+b1] += float32(m * w1)
			cell = ((yy/(2*orientCell))*coarseX + xx/(2*orientCell)) * orientBins
			coarse[cell+b0] += float32(m * (1 - w1))
			coarse[cell+b1] += float32(m * w1)
		}
	}
	normalize(fine, 4)
	normalize(coarse, 2)
}

// normalize scales v to the norm n (entries then lie mostly between 0 and 1,
// like the pixels); an all-zero v stays so.
func normalize(v []float32, n float64) {
	var ss float64
	for _, f := range v {
		ss += float64(f) * float64(f)
	}
	if ss < 1e-12 {
		return
	}
	k := float32(n / math.Sqrt(ss))
	for i := range v {
		v[i] *= k
	}
}

// network is a one-hidden-layer perceptron with ReLU and softmax: small enough
// to run in well under a millisecond per glyph on a Raspberry Pi, and trained
// on rendered glyphs only (cmd/lprtrain).
type network struct {
	in, hid, out int
	w1, b1       []float32 // hid×in, hid
	w2, b2       []float32 // out×hid, out
}

const netMagic = "LPRN1"

// classifier is one network of an ensemble: a perceptron (network) or a
// convolutional network (convNet).
type classifier interface {
	// forward computes the class probabilities of the glyph features x
	// into p, using s (len scratch()) as scratch.
	forward(x, s, p []float32)
	scratch() int
}

// ensemble is one or more networks of the same features, trained from
// different seeds or of different kinds; it classifies by their mean
// probabilities, which errs less than any one of them (their mistakes differ
// more than their right answers).
type ensemble struct {
	nets         []classifier
	scratch, out int // the largest scratch of a network; the outputs
}

// maxEnsemble bounds the networks a model file may hold.
const maxEnsemble = 8

// decodeEnsemble reads a model file: one or more networks written by their
// encode methods, one after the other.
func decodeEnsemble(b []byte) (*ensemble, error) {
	e := &ensemble{}
	for len(b) > 0 {
		if len(e.nets) == maxEnsemble {
			return nil, fmt.Errorf("lpr: classifier model: more than %d networks", maxEnsemble)
		}
		var (
			c   classifier
			err error
		)
		if len(b) >= len(convMagic) && string(b[:len(convMagic)]) == convMagic {
			var n *convNet
			n, b, err = decodeConvNet(b)
			c = n
		} else {
			var n *network
			n, b, err = decodeNetwork(b)
			c = n
		}
		if err != nil {
			return nil, err
		}
		e.nets = append(e.nets, c)
		// Both decoders refuse any other number of outputs.
		e.scratch, e.out = max(e.scratch, c.scratch()), len(Classes)+1
	}
	if len(e.nets) == 0 {
		return nil, errors.New("lpr: classifier model: empty")
	}
	return e, nil
}

// forward computes the mean class probabilities of x into p (len e.out), using
// s (len e.scratch) and q (len e.out) as scratch.
func (e *ensemble) forward(x, s, q, p []float32) {
	if len(e.nets) == 1 {
		e.nets[0].forward(x, s, p)
		return
	}
	clear(p)
	for _, n := range e.nets {
		n.forward(x, s, q)
		for k, v := range q {
			p[k] += v
		}
	}
	for k := range p {
		p[k] /= float32(len(e.nets))
	}
}

// decodeNetwork reads a network written by encode from the start of b and
// returns the bytes after it.
func decodeNetwork(b []byte) (*network, []byte, error) {
	if len(b) < len(netMagic)+12 || string(b[:len(netMagic)]) != netMagic {
		return nil, nil, errors.New("lpr: classifier model: bad header")
	}
	b = b[len(netMagic):]
	in, hid, out := int(binary.LittleEndian.Uint32(b)), int(binary.LittleEndian.Uint32(b[4:])), int(binary.LittleEndian.Uint32(b[8:]))
	b = b[12:]
	if in != GlyphFeatures || out != len(Classes)+1 || hid <= 0 || hid > 4096 {
		return nil, nil, fmt.Errorf("lpr: classifier model: shape %d×%d×%d does not fit this build", in, hid, out)
	}
	n := &network{in: in, hid: hid, out: out}
	want := 4 * (hid*in + hid + out*hid + out)
	if len(b) < want {
		return nil, nil, fmt.Errorf("lpr: classifier model: %d bytes of weights, want %d", len(b), want)
	}
	var w [][]float32
	w, b = readFloats(b, hid*in, hid, out*hid, out)
	n.w1, n.b1, n.w2, n.b2 = w[0], w[1], w[2], w[3]
	return n, b, nil
}

// encode writes n in the form decodeNetwork reads.
func (n *network) encode() []byte {
	out := []byte(netMagic)
	out = binary.LittleEndian.AppendUint32(out, uint32(n.in))
	out = binary.LittleEndian.AppendUint32(out, uint32(n.hid))
	out = binary.LittleEndian.AppendUint32(out, uint32(n.out))
	return appendFloats(out, n.w1, n.b1, n.w2, n.b2)
}

// readFloats reads arrays of the given lengths of little-endian float32 from
// the start of b (which the caller checked is long enough) and returns them
// and the bytes after them.
func readFloats(b []byte, lens ...int) ([][]float32, []byte) {
	out := make([][]float32, len(lens))
	for j, k := range lens {
		v := make([]float32, k)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b))
			b = b[4:]
		}
		out[j] = v
	}
	return out, b
}

// appendFloats appends vs to out as little-endian float32, in the form
// readFloats reads.
func appendFloats(out []byte, vs ...[]float32) []byte {
	for _, v := range vs {
		for _, f := range v {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(f))
		}
	}
	return out
}

// scratch is the hidden layer's length: forward's scratch.
func (n *network) scratch() int { return n.hid }

// forward computes the class probabilities of x into p (len out), using h
// (len hid) as scratch for the hidden layer. Its layers are matvec's, which
// in the gocv build runs in C with the processor's vector instructions.
func (n *network) forward(x, h, p []float32) {
	matvec(h[:n.hid], n.w1, n.b1, x[:n.in], true)
	matvec(p[:n.out], n.w2, n.b2, h[:n.hid], false)
	softmax(p[:n.out])
}

// forwardWith is forward in Go with the dot product dp (s plus a·b). The
// trainer sums in order (inOrder), as the committed model was trained:
// matvec rounds differently in the last bits, and make lpr-model must write
// that model again bit for bit.
func (n *network) forwardWith(dp func(s float32, a, b []float32) float32, x, h, p []float32) {
	matvecWith(dp, h[:n.hid], n.w1, n.b1, x[:n.in], true)
	matvecWith(dp, p[:n.out], n.w2, n.b2, h[:n.hid], false)
	softmax(p[:n.out])
}

// matvecWith is matvec in Go with the dot product dp (s plus a·b).
func matvecWith(dp func(s float32, a, b []float32) float32, dst, w, b, x []float32, relu bool) {
	n := len(x)
	for j := range dst {
		s := dp(b[j], w[j*n:(j+1)*n], x)
		if relu {
			s = max(s, 0)
		}
		dst[j] = s
	}
}

// softmax turns the scores p into probabilities in place.
func softmax(p []float32) {
	m := float32(math.Inf(-1))
	for _, s := range p {
		m = max(m, s)
	}
	var sum float32
	for k := range p {
		p[k] = float32(math.Exp(float64(p[k] - m)))
		sum += p[k]
	}
	for k := range p {
		p[k] /= sum
	}
}

// dot is s plus the dot product of a and b (len(b) ≥ len(a)), in four running
// sums: the adds of one sum wait for each other, those of four overlap, which
// makes the pure Go matvec about twice as fast as one sum.
func dot(s float32, a, b []float32) float32 {
	if len(a) == 0 {
		return s
	}
	_ = b[len(a)-1] // b as long as a: a shorter one panics here
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s + ((s0 + s1) + (s2 + s3))
}

// inOrder is s plus the dot product of a and b (len(b) ≥ len(a)), summed in
// order.
func inOrder(s float32, a, b []float32) float32 {
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

// GlyphSample is one labelled glyph for training: its features and the index of
// its character in Classes, or Reject.
type GlyphSample struct {
	X     []float32
	Class int
}

// TrainOptions steer Train.
type TrainOptions struct {
	Hidden, Epochs int
	Rate           float32
	Seed           uint64
	// Workers is how many goroutines share each minibatch; 0 means 1. The
	// same samples, options and Workers give the same model.
	Workers int
	// Progress, if set, is called after every epoch with the training accuracy.
	Progress func(epoch int, acc float64)
}

// Train fits a classifier to samples by minibatch SGD with momentum and returns
// the model in the form the recognizer embeds (model.bin).
func Train(samples []GlyphSample, o TrainOptions) ([]byte, error) {
	if len(samples) == 0 {
		return nil, errors.New("lpr: no training samples")
	}
	for _, s := range samples {
		if len(s.X) != GlyphFeatures || s.Class < 0 || s.Class > Reject {
			return nil, errors.New("lpr: malformed training sample")
		}
	}
	// The second word keeps this stream apart from lprtrain's per-plate
	// streams (seed, 0…plates-1) of the same seed.
	rng := rand.New(rand.NewPCG(o.Seed, 1<<63|7))
	n := &network{in: GlyphFeatures, hid: o.Hidden, out: len(Classes) + 1}
	n.w1, n.b1 = make([]float32, n.hid*n.in), make([]float32, n.hid)
	n.w2, n.b2 = make([]float32, n.out*n.hid), make([]float32, n.out)
	for i := range n.w1 {
		n.w1[i] = float32(rng.NormFloat64() * math.Sqrt(2/float64(n.in)))
	}
	for i := range n.w2 {
		n.w2[i] = float32(rng.NormFloat64() * math.Sqrt(2/float64(n.hid)))
	}
	vw1, vb1 := make([]float32, len(n.w1)), make([]float32, len(n.b1))
	vw2, vb2 := make([]float32, len(n.w2)), make([]float32, len(n.b2))
	workers := make([]*trainer, max(1, o.Workers))
	for i := range workers {
		workers[i] = newTrainer(n)
	}
	order := make([]int, len(samples))
	for i := range order {
		order[i] = i
	}
	const batch = 32
	const momentum = 0.9
	for ep := 0; ep < o.Epochs; ep++ {
		rate := o.Rate * float32(math.Pow(0.7, float64(ep)/2))
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		correct := 0
		for start := 0; start < len(order); start += batch {
			end := min(start+batch, len(order))
			// Each worker takes an equal share of the batch; their gradients
			// are summed in worker order, so the model does not depend on
			// which goroutine finished first.
			var wg sync.WaitGroup
			share := (end - start + len(workers) - 1) / len(workers)
			for w, t := range workers {
				lo, hi := min(start+w*share, end), min(start+(w+1)*share, end)
				wg.Add(1)
				go func() {
					defer wg.Done()
					t.gradients(samples, order[lo:hi])
				}()
			}
			wg.Wait()
			g := workers[0]
			correct += g.correct
			for _, t := range workers[1:] {
				correct += t.correct
				for _, p := range [][2][]float32{{g.gw1, t.gw1}, {g.gb1, t.gb1}, {g.gw2, t.gw2}, {g.gb2, t.gb2}} {
					for i, v := range p[1] {
						p[0][i] += v
					}
				}
			}
			scale := rate / float32(end-start)
			step := func(w, v, g []float32) {
				for i := range w {
					v[i] = momentum*v[i] - scale*(g[i]+1e-4*w[i])
					w[i] += v[i]
				}
			}
			step(n.w1, vw1, g.gw1)
			step(n.b1, vb1, g.gb1)
			step(n.w2, vw2, g.gw2)
			step(n.b2, vb2, g.gb2)
		}
		if o.Progress != nil {
			o.Progress(ep+1, float64(correct)/float64(len(samples)))
		}
	}
	return n.encode(), nil
}

// trainer holds one goroutine's share of a minibatch: its gradients and its
// scratch space.
type trainer struct {
	n                  *network
	gw1, gb1, gw2, gb2 []float32
	h, p, dh           []float32
	correct            int
}

func newTrainer(n *network) *trainer {
	return &trainer{n: n,
		gw1: make([]float32, len(n.w1)), gb1: make([]float32, len(n.b1)),
		gw2: make([]float32, len(n.w2)), gb2: make([]float32, len(n.b2)),
		h: make([]float32, n.hid), p: make([]float32, n.out), dh: make([]float32, n.hid)}
}

// gradients sets t's gradients to the sum over samples[idx] of the softmax
// cross-entropy loss's gradient, and t.correct to how many were classified right.
func (t *trainer) gradients(samples []GlyphSample, idx []int) {
	n, h, p, dh := t.n, t.h, t.p, t.dh
	clear(t.gw1)
	clear(t.gb1)
	clear(t.gw2)
	clear(t.gb2)
	t.correct = 0
	for _, i := range idx {
		s := samples[i]
		n.forwardWith(inOrder, s.X, h, p)
		best := 0
		for k := range p {
			if p[k] > p[best] {
				best = k
			}
		}
		if best == s.Class {
			t.correct++
		}
		p[s.Class] -= 1 // dLoss/dlogits of softmax cross-entropy
		clear(dh)
		for k := 0; k < n.out; k++ {
			g := p[k]
			t.gb2[k] += g
			w := n.w2[k*n.hid : (k+1)*n.hid]
			gw := t.gw2[k*n.hid : (k+1)*n.hid]
			for j := range h {
				gw[j] += g * h[j]
				dh[j] += g * w[j]
			}
		}
		for j := 0; j < n.hid; j++ {
			if h[j] <= 0 {
				continue
			}
			g := dh[j]
			t.gb1[j] += g
			gw := t.gw1[j*n.in : (j+1)*n.in]
			for i, v := range s.X {
				gw[i] += g * v
			}
		}
	}
}
