package lpr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// Classes are the characters the glyph classifier tells apart, in the order of
// its outputs.
const Classes = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// Reject is the classifier's extra output after Classes: "not a character"
// (plate frames, bolts, grille bars, parts and pairs of characters). It lets a
// row of bars score as what it is instead of as the nearest character.
const Reject = len(Classes)

// Glyph geometry: every character crop is scaled into a GlyphW×GlyphH grid
// (aspect kept, centred); the classifier sees those pixels plus the crop's
// aspect ratio.
const (
	GlyphW        = 16
	GlyphH        = 24
	GlyphFeatures = GlyphW*GlyphH + 1
)

// network is a one-hidden-layer perceptron with ReLU and softmax: small enough
// to run in well under a millisecond per glyph on a Raspberry Pi, and trained
// on rendered glyphs only (cmd/lprtrain).
type network struct {
	in, hid, out int
	w1, b1       []float32 // hid×in, hid
	w2, b2       []float32 // out×hid, out
}

const netMagic = "LPRN1"

// decodeNetwork reads a network written by encode.
func decodeNetwork(b []byte) (*network, error) {
	if len(b) < len(netMagic)+12 || string(b[:len(netMagic)]) != netMagic {
		return nil, errors.New("lpr: classifier model: bad header")
	}
	b = b[len(netMagic):]
	in, hid, out := int(binary.LittleEndian.Uint32(b)), int(binary.LittleEndian.Uint32(b[4:])), int(binary.LittleEndian.Uint32(b[8:]))
	b = b[12:]
	if in != GlyphFeatures || out != len(Classes)+1 || hid <= 0 || hid > 4096 {
		return nil, fmt.Errorf("lpr: classifier model: shape %d×%d×%d does not fit this build", in, hid, out)
	}
	n := &network{in: in, hid: hid, out: out}
	want := 4 * (hid*in + hid + out*hid + out)
	if len(b) != want {
		return nil, fmt.Errorf("lpr: classifier model: %d bytes of weights, want %d", len(b), want)
	}
	next := func(k int) []float32 {
		v := make([]float32, k)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b))
			b = b[4:]
		}
		return v
	}
	n.w1, n.b1, n.w2, n.b2 = next(hid*in), next(hid), next(out*hid), next(out)
	return n, nil
}

// encode writes n in the form decodeNetwork reads.
func (n *network) encode() []byte {
	out := []byte(netMagic)
	out = binary.LittleEndian.AppendUint32(out, uint32(n.in))
	out = binary.LittleEndian.AppendUint32(out, uint32(n.hid))
	out = binary.LittleEndian.AppendUint32(out, uint32(n.out))
	for _, v := range [][]float32{n.w1, n.b1, n.w2, n.b2} {
		for _, f := range v {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(f))
		}
	}
	return out
}

// forward computes the class probabilities of x into p (len out), using h
// (len hid) as scratch for the hidden layer.
func (n *network) forward(x, h, p []float32) {
	for j := 0; j < n.hid; j++ {
		w := n.w1[j*n.in : (j+1)*n.in]
		s := n.b1[j]
		for i, v := range x {
			s += w[i] * v
		}
		h[j] = max(s, 0)
	}
	m := float32(math.Inf(-1))
	for k := 0; k < n.out; k++ {
		w := n.w2[k*n.hid : (k+1)*n.hid]
		s := n.b2[k]
		for j, v := range h {
			s += w[j] * v
		}
		p[k] = s
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
	rng := rand.New(rand.NewPCG(o.Seed, 7))
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
	gw1, gb1 := make([]float32, len(n.w1)), make([]float32, len(n.b1))
	gw2, gb2 := make([]float32, len(n.w2)), make([]float32, len(n.b2))
	h, p, dh := make([]float32, n.hid), make([]float32, n.out), make([]float32, n.hid)
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
			clear(gw1)
			clear(gb1)
			clear(gw2)
			clear(gb2)
			for _, idx := range order[start:end] {
				s := samples[idx]
				n.forward(s.X, h, p)
				best := 0
				for k := range p {
					if p[k] > p[best] {
						best = k
					}
				}
				if best == s.Class {
					correct++
				}
				p[s.Class] -= 1 // dLoss/dlogits of softmax cross-entropy
				clear(dh)
				for k := 0; k < n.out; k++ {
					g := p[k]
					gb2[k] += g
					w := n.w2[k*n.hid : (k+1)*n.hid]
					gw := gw2[k*n.hid : (k+1)*n.hid]
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
					gb1[j] += g
					gw := gw1[j*n.in : (j+1)*n.in]
					for i, v := range s.X {
						gw[i] += g * v
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
			step(n.w1, vw1, gw1)
			step(n.b1, vb1, gb1)
			step(n.w2, vw2, gw2)
			step(n.b2, vb2, gb2)
		}
		if o.Progress != nil {
			o.Progress(ep+1, float64(correct)/float64(len(samples)))
		}
	}
	return n.encode(), nil
}
