//go:build gocv

package lpr

import (
	"encoding/binary"
	"image"
	"image/color"
	"math"
	"sort"

	"gocv.io/x/gocv"
)

// grey is the greyscale image being read, with what its binarizations share.
type grey struct {
	w, h  int
	mat   gocv.Mat
	small *grey // mat reduced for a scaled binarization, made once
	lab   *labeller
	means map[int]gocv.Mat // local means by block size (localMean)
}

// localMean returns the mean of g's block×block neighbourhoods (block odd,
// the image's edge pixels repeated beyond it) as adaptiveThreshold computes
// it, once per size: twelve binarizations of a picture share three.
func (g *grey) localMean(block int) gocv.Mat {
	if m, ok := g.means[block]; ok {
		return m
	}
	r := block / 2
	padded, sum := gocv.NewMat(), gocv.NewMat()
	defer padded.Close()
	defer sum.Close()
	// boxFilter on the image padded by copies of its edge is, inside,
	// exactly adaptiveThreshold's box filter with BORDER_REPLICATE.
	gocv.CopyMakeBorder(g.mat, &padded, r, r, r, r, gocv.BorderReplicate, color.RGBA{})
	gocv.BoxFilter(padded, &sum, -1, image.Pt(block, block))
	inner := sum.Region(image.Rect(r, r, r+g.w, r+g.h))
	m := inner.Clone()
	inner.Close()
	if g.means == nil {
		g.means = make(map[int]gocv.Mat)
	}
	g.means[block] = m
	return m
}

// newGrey converts img (checked by the caller: 8-bit, one, three or four
// channels) to grey; the caller closes it.
func newGrey(img gocv.Mat) *grey {
	gray := gocv.NewMat()
	switch img.Type() {
	case gocv.MatTypeCV8UC3:
		gocv.CvtColor(img, &gray, gocv.ColorBGRToGray)
	case gocv.MatTypeCV8UC4:
		gocv.CvtColor(img, &gray, gocv.ColorBGRAToGray)
	default:
		img.CopyTo(&gray)
	}
	return &grey{w: gray.Cols(), h: gray.Rows(), mat: gray, lab: new(labeller)}
}

// close frees g's image, its means and its reduced copy, if any; a second
// close does nothing.
func (g *grey) close() {
	g.mat.Close()
	g.lab.free()
	for _, m := range g.means {
		m.Close()
	}
	g.means = nil
	if g.small != nil {
		g.small.close()
		g.small = nil
	}
}

// comp is one connected component: a character candidate.
type comp struct {
	r    image.Rectangle
	area int
	// halves are the two parts of a component two characters wide, cut
	// at its thinnest column (splitWide); readLine reads them instead of
	// the whole when they read better. Nil for most components.
	halves []image.Rectangle
}

func (c comp) cx() float64 { return float64(c.r.Min.X+c.r.Max.X) / 2 }
func (c comp) cy() float64 { return float64(c.r.Min.Y+c.r.Max.Y) / 2 }

// line is a run of similar components side by side: a plate's characters.
type line struct {
	chars []comp
	angle float64 // radians, image y down
	h     float64 // median character height
}

// components labels the foreground of bin and returns the components that
// could be characters.
func components(l *labeller, bin gocv.Mat, minH, maxH int) []comp {
	pix, err := bin.DataPtrUint8()
	if err != nil {
		return nil
	}
	var out []comp
	for _, b := range l.label(pix, bin.Cols(), bin.Rows(), bin.Cols(), minH) {
		x, y, w, h, a := b.x, b.y, b.w, b.h, b.area
		if h > maxH || w < 2 || w > h*5/4 || h > w*10 { // label kept those at least minH tall
			continue
		}
		fill := float64(a) / float64(w*h)
		if fill < 0.15 || fill > 0.95 && w > h/3 {
			continue
		}
		out = append(out, comp{r: image.Rect(x, y, x+w, y+h), area: a})
	}
	return out
}

// binarization is one way findLines thresholds an image: the adaptive
// threshold's block as a share of the default, its offset in grey levels, and
// the scale the image is reduced to first (0: none).
type binarization struct {
	block float64
	c     float32
	scale float64
	// unframe removes long horizontal runs of ink before the components are
	// labelled: a plate frame or a dealer's band that the characters touch
	// joins them all into one component, and no character has a horizontal
	// stroke as long as the frame.
	unframe bool
}

// lines finds the character lines of g with b, on g reduced to b.scale when
// it is set (large characters need no full resolution), in g's coordinates.
func (g *grey) lines(dark bool, b binarization) []line {
	if b.scale <= 0 || b.scale >= 1 {
		return findLines(g, dark, b)
	}
	if g.small == nil {
		m := gocv.NewMat()
		gocv.Resize(g.mat, &m, image.Pt(int(float64(g.w)*b.scale), int(float64(g.h)*b.scale)), 0, 0, gocv.InterpolationArea)
		g.small = &grey{w: m.Cols(), h: m.Rows(), mat: m, lab: new(labeller)}
	}
	if g.small.w < MinImageSide || g.small.h < MinImageSide {
		return nil
	}
	lns := findLines(g.small, dark, b)
	k := 1 / b.scale
	for i := range lns {
		chars := make([]comp, len(lns[i].chars))
		for j, c := range lns[i].chars {
			chars[j] = comp{r: scaleRect(c.r, k), area: int(float64(c.area) * k * k)}
			for _, h := range c.halves {
				chars[j].halves = append(chars[j].halves, scaleRect(h, k))
			}
		}
		lns[i] = newLine(chars)
	}
	return lns
}

// scaleRect multiplies r's corners by k.
func scaleRect(r image.Rectangle, k float64) image.Rectangle {
	return image.Rect(int(float64(r.Min.X)*k), int(float64(r.Min.Y)*k), int(float64(r.Max.X)*k), int(float64(r.Max.Y)*k))
}

// passes are the binarizations every image goes through: the first finds
// most plates; the second, with a smaller block and offset, keeps thin and
// faint strokes whole and cuts characters off a frame they touch; the third,
// with twice the block, keeps large characters whole; the fourth and the
// fifth are the first and the second with long horizontal runs of ink
// removed, which frees characters from a frame or a dealer band they touch
// (the fifth also small, faint ones); the sixth, with less than half the
// offset, finds plates of little contrast (dirty, dim, blurred), whose
// strokes the others lose.
var passes = []binarization{{1, 7, 0, false}, {0.5, 4, 0, false}, {2, 7, 0, false}, {1, 7, 0, true}, {0.5, 4, 0, true}, {1, 3, 0, false}}

// trainedPasses is how many of passes SegmentGlyphs uses: the committed
// model was trained on glyphs of the first four (the others came later), and
// make lpr-model must still make that model. A retrained model may use all.
const trainedPasses = 4

// findLines binarizes g for dark characters on a light plate (or the reverse)
// and groups the components into lines of four to ten characters.
func findLines(g *grey, dark bool, b binarization) []line {
	bin := binarize(g, dark, b)
	defer bin.Close()
	cs := components(g.lab, bin, 9, g.h/4)
	lns := groupLines(cs)
	for i := range lns {
		lns[i] = splitWide(bin, lns[i])
	}
	return lns
}

// A component of a line more than splitWidth times as wide as the line's
// median character may be two characters that touch (or a character and a
// hyphen, a bolt or a sticker's edge): it is cut in two at its thinnest
// column in its middle third when that column holds at most splitValley of
// the ink of the fullest column. It may also be one wide letter (W, M)
// among narrow digits, so the reader keeps the whole and its halves and
// reads whichever the classifier is surer of.
const (
	splitWidth  = 1.6
	splitValley = 0.35
)

// splitWide finds the components of ln that are two characters wide (see
// splitWidth) and gives them their halves, cut at the thinnest column and
// trimmed to the columns that hold ink in bin.
func splitWide(bin gocv.Mat, ln line) line {
	ws := make([]int, len(ln.chars))
	for i, c := range ln.chars {
		ws[i] = c.r.Dx()
	}
	sort.Ints(ws)
	mw := float64(ws[len(ws)/2])
	pix, err := bin.DataPtrUint8()
	step := bin.Cols()
	if err != nil || len(pix) < bin.Rows()*step {
		return ln
	}
	for i, c := range ln.chars {
		w := c.r.Dx()
		if float64(w) <= splitWidth*mw || w < 6 {
			continue
		}
		ink := make([]int, w)
		full := 0
		for x := 0; x < w; x++ {
			for y := c.r.Min.Y; y < c.r.Max.Y; y++ {
				if pix[y*step+c.r.Min.X+x] != 0 {
					ink[x]++
				}
			}
			full = max(full, ink[x])
		}
		cut := -1
		for x := w / 3; x < w-w/3; x++ {
			if cut < 0 || ink[x] < ink[cut] || ink[x] == ink[cut] && abs(2*x-w) < abs(2*cut-w) {
				cut = x
			}
		}
		if cut < 0 || float64(ink[cut]) > splitValley*float64(full) {
			continue
		}
		// Each half keeps the columns with ink, the cut column excluded.
		trim := func(x0, x1 int) (image.Rectangle, bool) {
			for x0 < x1 && ink[x0] == 0 {
				x0++
			}
			for x1 > x0 && ink[x1-1] == 0 {
				x1--
			}
			return image.Rect(c.r.Min.X+x0, c.r.Min.Y, c.r.Min.X+x1, c.r.Max.Y), x1-x0 >= 2
		}
		l, okl := trim(0, cut)
		r, okr := trim(cut+1, w)
		if okl && okr {
			ln.chars[i].halves = []image.Rectangle{l, r}
		}
	}
	return ln
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// blockSize is the adaptive threshold's block for b on g: odd, in
// proportion to the image's shorter side, between 15×b.block and 41.
func (g *grey) blockSize(b binarization) int {
	block := 2*int(b.block*float64(min(g.w, g.h))/60) + 1
	return max(int(15*b.block)|1, min(block, 41))
}

// binarize thresholds g with b: ink (dark characters, or light ones with
// dark false) is 255. The caller closes the Mat.
func binarize(g *grey, dark bool, b binarization) gocv.Mat {
	block := g.blockSize(b)
	// adaptiveThreshold (mean) with the offset c: dark ink lies at least c
	// below the local mean (its offset rounded down), light ink more than c
	// above it (rounded up, as OpenCV does for the negated offset).
	idelta := int(math.Floor(float64(b.c)))
	if !dark {
		idelta = int(math.Ceil(float64(-b.c)))
	}
	bin := gocv.NewMatWithSize(g.h, g.w, gocv.MatTypeCV8U)
	mean := g.localMean(block)
	dst, err1 := bin.DataPtrUint8()
	src, err2 := g.mat.DataPtrUint8()
	avg, err3 := mean.DataPtrUint8()
	if err1 != nil || err2 != nil || err3 != nil {
		bin.SetTo(gocv.NewScalar(0, 0, 0, 0)) // cannot happen: all three are continuous 8-bit images
		return bin
	}
	threshold(dst, src, avg, idelta, dark)
	if b.unframe {
		// Runs longer than the block: characters as tall as the block (the
		// size this binarization finds best) are narrower. The runs are
		// widened by a pixel up and down so that the rough edge of a band
		// does not keep the characters joined.
		k := gocv.GetStructuringElement(gocv.MorphRect, image.Pt(block, 1))
		runs := gocv.NewMat()
		gocv.MorphologyEx(bin, &runs, gocv.MorphOpen, k)
		k.Close()
		k = gocv.GetStructuringElement(gocv.MorphRect, image.Pt(1, 3))
		gocv.Dilate(runs, &runs, k)
		k.Close()
		gocv.Subtract(bin, runs, &bin)
		runs.Close()
	}
	return bin
}

// groupLines chains components left to right: each one links to the nearest
// component on its right of similar height and baseline. Chains of four to ten
// are lines.
func groupLines(cs []comp) []line {
	sort.Slice(cs, func(i, j int) bool { return cs[i].r.Min.X < cs[j].r.Min.X })
	next := make([]int, len(cs))
	hasPrev := make([]bool, len(cs))
	for i := range next {
		next[i] = -1
	}
	for i, a := range cs {
		ha := float64(a.r.Dy())
		best, bestGap := -1, math.Inf(1)
		for j := i + 1; j < len(cs); j++ {
			b := cs[j]
			if float64(b.r.Min.X) > float64(a.r.Max.X)+1.2*ha {
				break
			}
			hb := float64(b.r.Dy())
			if min(ha, hb)/max(ha, hb) < 0.75 {
				continue
			}
			gap := float64(b.r.Min.X - a.r.Max.X)
			if gap < -0.2*ha || math.Abs(a.cy()-b.cy()) > 0.3*max(ha, hb) {
				continue
			}
			if gap < bestGap && !hasPrev[j] {
				best, bestGap = j, gap
			}
		}
		if best >= 0 {
			next[i], hasPrev[best] = best, true
		}
	}
	var out []line
	for i := range cs {
		if hasPrev[i] {
			continue
		}
		var ch []comp
		for k := i; k >= 0; k = next[k] {
			ch = append(ch, cs[k])
		}
		if len(ch) < 4 || len(ch) > 10 {
			continue
		}
		out = append(out, newLine(ch))
	}
	return out
}

// key identifies ln read in the polarity dark: its components' boxes.
func (ln line) key(dark bool) string {
	b := make([]byte, 0, 1+16*len(ln.chars))
	if dark {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	for _, c := range ln.chars {
		// The halves too: another binarization may cut the same
		// component elsewhere, or not at all.
		for _, r := range append([]image.Rectangle{c.r}, c.halves...) {
			for _, v := range []int{r.Min.X, r.Min.Y, r.Max.X, r.Max.Y} {
				b = binary.LittleEndian.AppendUint32(b, uint32(v))
			}
		}
		b = append(b, byte(len(c.halves)))
	}
	return string(b)
}

// newLine fits the baseline angle and the median height of chars.
func newLine(ch []comp) line {
	hs := make([]float64, len(ch))
	var mx, my float64
	for i, c := range ch {
		hs[i] = float64(c.r.Dy())
		mx += c.cx()
		my += c.cy()
	}
	sort.Float64s(hs)
	mx /= float64(len(ch))
	my /= float64(len(ch))
	var sxy, sxx float64
	for _, c := range ch {
		sxy += (c.cx() - mx) * (c.cy() - my)
		sxx += (c.cx() - mx) * (c.cx() - mx)
	}
	a := 0.0
	if sxx > 0 {
		a = math.Atan(sxy / sxx)
	}
	return line{chars: ch, angle: a, h: hs[len(hs)/2]}
}
