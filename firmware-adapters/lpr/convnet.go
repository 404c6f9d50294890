package lpr

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// convNet is a small convolutional network on the glyph's pixels: three 3×3
// convolutions (ReLU; 2×2 max pooling after the first two) over the
// GlyphH×GlyphW grid, then a hidden layer that also sees the first extra
// features after the pixels (the aspect ratio, the relative width, the edge
// directions), then the classes. A convolution learns stroke pieces
// wherever they stand in the grid, where the perceptron learns each pixel on
// its own: on plate fonts neither saw (US state fonts) they err about as
// often, but on different characters, which makes it the reader's second
// opinion (Recognizer.agreement). It is trained by cmd/lprtrain's
// train-cnn.py (PyTorch), which writes the weights in the layout forward
// reads.
//
// Activations are kept pixel by pixel with their channels together
// (height, width, channel), so the innermost loop of a convolution runs
// over output channels with contiguous weights.
type convNet struct {
	ch     [3]int       // channels of the three convolutions
	hid    int          // hidden units
	out    int          // outputs
	extra  int          // features after the pixels the hidden layer sees too
	cw, cb [3][]float32 // convolution weights [ky][kx][in][out], biases
	w1, b1 []float32    // hid × (flat + extra), hid
	w2, b2 []float32    // out × hid, out
}

const (
	convMagic = "LPRC1"
	// The grid after each pooling.
	convH1, convW1 = GlyphH / 2, GlyphW / 2
	convH2, convW2 = GlyphH / 4, GlyphW / 4
)

// flat is the length of the last convolution's output.
func (n *convNet) flat() int { return convH2 * convW2 * n.ch[2] }

// scratch is how many floats forward needs besides its input and output.
func (n *convNet) scratch() int {
	return GlyphH*GlyphW*n.ch[0] + convH1*convW1*n.ch[0] + convH1*convW1*n.ch[1] + convH2*convW2*n.ch[1] +
		n.flat() + n.extra + n.hid
}

// decodeConvNet reads a network in the form encode writes from the start of
// b and returns the bytes after it.
func decodeConvNet(b []byte) (*convNet, []byte, error) {
	if len(b) < len(convMagic)+24 || string(b[:len(convMagic)]) != convMagic {
		return nil, nil, errors.New("lpr: classifier model: bad header")
	}
	b = b[len(convMagic):]
	var dims [6]int
	for i := range dims {
		dims[i] = int(binary.LittleEndian.Uint32(b[4*i:]))
	}
	b = b[24:]
	n := &convNet{ch: [3]int{dims[0], dims[1], dims[2]}, hid: dims[3], out: dims[4], extra: dims[5]}
	for _, c := range append(n.ch[:], n.hid) {
		if c <= 0 || c > 512 {
			return nil, nil, fmt.Errorf("lpr: classifier model: convolutional shape %v does not fit this build", dims)
		}
	}
	if n.extra < 0 || n.extra > GlyphFeatures-featAspect {
		return nil, nil, fmt.Errorf("lpr: classifier model: %d features besides the pixels, at most %d", n.extra, GlyphFeatures-featAspect)
	}
	if n.out != len(Classes)+1 {
		return nil, nil, fmt.Errorf("lpr: classifier model: %d outputs, want %d", n.out, len(Classes)+1)
	}
	sizes := []int{}
	in := 1
	for _, c := range n.ch {
		sizes = append(sizes, 9*in*c, c)
		in = c
	}
	fin := n.flat() + n.extra
	sizes = append(sizes, n.hid*fin, n.hid, n.out*n.hid, n.out)
	want := 0
	for _, s := range sizes {
		want += 4 * s
	}
	if len(b) < want {
		return nil, nil, fmt.Errorf("lpr: classifier model: %d bytes of weights, want %d", len(b), want)
	}
	var w [][]float32
	w, b = readFloats(b, sizes...)
	for i := range n.ch {
		n.cw[i], n.cb[i] = w[2*i], w[2*i+1]
	}
	n.w1, n.b1, n.w2, n.b2 = w[6], w[7], w[8], w[9]
	return n, b, nil
}

// encode writes n in the form decodeConvNet reads.
func (n *convNet) encode() []byte {
	out := []byte(convMagic)
	for _, d := range []int{n.ch[0], n.ch[1], n.ch[2], n.hid, n.out, n.extra} {
		out = binary.LittleEndian.AppendUint32(out, uint32(d))
	}
	return appendFloats(out, n.cw[0], n.cb[0], n.cw[1], n.cb[1], n.cw[2], n.cb[2], n.w1, n.b1, n.w2, n.b2)
}

// forward computes the class probabilities of the glyph features x into p
// (len n.out), using s (len n.scratch()) as scratch.
func (n *convNet) forward(x, s, p []float32) {
	take := func(k int) []float32 {
		v := s[:k:k]
		s = s[k:]
		return v
	}
	c0, c1, c2 := n.ch[0], n.ch[1], n.ch[2]
	a1 := take(GlyphH * GlyphW * c0)
	p1 := take(convH1 * convW1 * c0)
	a2 := take(convH1 * convW1 * c1)
	p2 := take(convH2 * convW2 * c1)
	a3 := take(n.flat() + n.extra)
	h := take(n.hid)
	conv3x3(a1, x[:GlyphH*GlyphW], GlyphH, GlyphW, 1, c0, n.cw[0], n.cb[0])
	pool2(p1, a1, GlyphH, GlyphW, c0)
	conv3x3(a2, p1, convH1, convW1, c0, c1, n.cw[1], n.cb[1])
	pool2(p2, a2, convH1, convW1, c1)
	conv3x3(a3[:n.flat()], p2, convH2, convW2, c1, c2, n.cw[2], n.cb[2])
	copy(a3[n.flat():], x[featAspect:featAspect+n.extra])
	matvec(h, n.w1, n.b1, a3, true)
	matvec(p[:n.out], n.w2, n.b2, h, false)
	softmax(p[:n.out])
}

// conv3x3Go is conv3x3 in Go: dst (h×w×co) is the ReLU of the 3×3
// convolution of src (h×w×ci, zero beyond its edges) with w
// ([ky][kx][ci][co]) plus b.
func conv3x3Go(dst, src []float32, h, w, ci, co int, wt, b []float32) {
	_ = dst[h*w*co-1]
	_ = src[h*w*ci-1]
	_ = wt[9*ci*co-1]
	_ = b[co-1]
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			acc := dst[(y*w+x)*co : (y*w+x+1)*co]
			copy(acc, b)
			for ky := -1; ky <= 1; ky++ {
				if y+ky < 0 || y+ky >= h {
					continue
				}
				for kx := -1; kx <= 1; kx++ {
					if x+kx < 0 || x+kx >= w {
						continue
					}
					in := src[((y+ky)*w+x+kx)*ci : ((y+ky)*w+x+kx+1)*ci]
					k := wt[((ky+1)*3+kx+1)*ci*co:]
					for c, v := range in {
						if v == 0 {
							continue
						}
						row := k[c*co : (c+1)*co]
						for o := range acc {
							acc[o] += row[o] * v
						}
					}
				}
			}
			for o := range acc {
				acc[o] = max(acc[o], 0)
			}
		}
	}
}

// pool2 sets dst ((h/2)×(w/2)×c) to the maxima of src's (h×w×c) 2×2 blocks.
func pool2(dst, src []float32, h, w, c int) {
	for y := 0; y < h/2; y++ {
		for x := 0; x < w/2; x++ {
			d := dst[(y*(w/2)+x)*c : (y*(w/2)+x+1)*c]
			a := src[((2*y)*w+2*x)*c:]
			b := src[((2*y)*w+2*x+1)*c:]
			e := src[((2*y+1)*w+2*x)*c:]
			f := src[((2*y+1)*w+2*x+1)*c:]
			for k := range d {
				d[k] = max(a[k], b[k], e[k], f[k])
			}
		}
	}
}
