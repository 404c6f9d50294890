//go:build gocv

package lpr

import (
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"sort"

	"gocv.io/x/gocv"
)

//go:embed model.bin
var modelBin []byte

// Limits on the images the recognizer takes. Anything outside them is refused
// before it reaches OpenCV, whose C++ exceptions would abort the process.
const (
	MinImageSide  = 32
	MaxImageSide  = 8192
	MaxImageBytes = 32 << 20
)

// ErrInvalidImage is returned for an image the recognizer will not hand to
// OpenCV: empty, undecodable, of an unsupported type or outside the size limits.
var ErrInvalidImage = errors.New("lpr: invalid image")

// Options configure a Recognizer.
type Options struct {
	// Country selects the plate formats (CountryEU, CountryUS); "" uses none.
	Country Country
	// MaxCandidates is how many plates Recognize returns at most; 0 means 3.
	MaxCandidates int
}

// Recognizer finds and reads licence plates in still images. It is safe for
// concurrent use: it holds only the immutable classifier.
type Recognizer struct {
	net     *network
	country Country
	maxCand int
}

// NewRecognizer returns a Recognizer with the classifier built into the package.
func NewRecognizer(o Options) (*Recognizer, error) {
	n, err := decodeNetwork(modelBin)
	if err != nil {
		return nil, err
	}
	switch o.Country {
	case "", CountryEU, CountryUS:
	default:
		return nil, fmt.Errorf("lpr: country %q is not eu or us", o.Country)
	}
	if o.MaxCandidates <= 0 {
		o.MaxCandidates = 3
	}
	return &Recognizer{net: n, country: o.Country, maxCand: o.MaxCandidates}, nil
}

// Plate is one plate found in an image.
type Plate struct {
	// Text is the plate as read, normalized (A–Z, 0–9).
	Text string
	// Confidence is how far Text can be trusted, from 0 to 1.
	Confidence float64
	// Format is the country format Text fits ("LLLNNNN"), "" if none.
	Format string
	// Box is the plate's estimated outline in the image, axis-aligned.
	Box image.Rectangle
	// Chars are the boxes of the characters, in reading order.
	Chars []image.Rectangle
	// Angle is the skew of the character line in degrees (positive: rising).
	Angle float64
}

// checkMat validates m before any OpenCV call on it.
func checkMat(m gocv.Mat) error {
	if m.Ptr() == nil || m.Empty() {
		return fmt.Errorf("%w: empty", ErrInvalidImage)
	}
	r, c := m.Rows(), m.Cols()
	if r < MinImageSide || c < MinImageSide || r > MaxImageSide || c > MaxImageSide {
		return fmt.Errorf("%w: %d×%d is outside %d..%d pixels a side", ErrInvalidImage, c, r, MinImageSide, MaxImageSide)
	}
	switch m.Type() {
	case gocv.MatTypeCV8UC1, gocv.MatTypeCV8UC3, gocv.MatTypeCV8UC4:
	default:
		return fmt.Errorf("%w: pixel type %v is not 8-bit grey, BGR or BGRA", ErrInvalidImage, m.Type())
	}
	return nil
}

// RecognizeJPEG decodes a JPEG or PNG image and reads the plates in it. Data
// that is not such an image yields ErrInvalidImage.
func (r *Recognizer) RecognizeJPEG(data []byte) ([]Plate, error) {
	m, err := DecodeImage(data)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	return r.Recognize(m)
}

// DecodeImage decodes a JPEG or PNG into a BGR Mat, checking the header's
// dimensions before OpenCV sees the data. The caller closes the Mat.
func DecodeImage(data []byte) (gocv.Mat, error) {
	w, h, err := imageSize(data)
	if err != nil {
		return gocv.Mat{}, err
	}
	if w < MinImageSide || h < MinImageSide || w > MaxImageSide || h > MaxImageSide {
		return gocv.Mat{}, fmt.Errorf("%w: %d×%d is outside %d..%d pixels a side", ErrInvalidImage, w, h, MinImageSide, MaxImageSide)
	}
	m, err := gocv.IMDecode(data, gocv.IMReadColor)
	if err != nil || m.Empty() {
		m.Close()
		return gocv.Mat{}, fmt.Errorf("%w: cannot decode", ErrInvalidImage)
	}
	if err := checkMat(m); err != nil {
		m.Close()
		return gocv.Mat{}, err
	}
	return m, nil
}

// imageSize reads the width and height from a JPEG or PNG header, so that a
// header announcing a huge image is refused before it is decoded.
func imageSize(b []byte) (int, int, error) {
	if len(b) == 0 || len(b) > MaxImageBytes {
		return 0, 0, fmt.Errorf("%w: %d bytes", ErrInvalidImage, len(b))
	}
	if len(b) >= 24 && string(b[:8]) == "\x89PNG\r\n\x1a\n" && string(b[12:16]) == "IHDR" {
		return int(binary.BigEndian.Uint32(b[16:])), int(binary.BigEndian.Uint32(b[20:])), nil
	}
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return 0, 0, fmt.Errorf("%w: not a JPEG or PNG", ErrInvalidImage)
	}
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return 0, 0, fmt.Errorf("%w: broken JPEG markers", ErrInvalidImage)
		}
		marker := b[i+1]
		if marker == 0xFF { // fill byte
			i++
			continue
		}
		if marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7) {
			i += 2
			continue
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 || i+2+n > len(b) {
			break
		}
		// Start of frame: every SOFn except DHT (C4), JPG (C8) and DAC (CC).
		if marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC {
			if n < 7 {
				break
			}
			return int(binary.BigEndian.Uint16(b[i+7:])), int(binary.BigEndian.Uint16(b[i+5:])), nil
		}
		i += 2 + n
	}
	return 0, 0, fmt.Errorf("%w: JPEG without a frame header", ErrInvalidImage)
}

// Recognize reads the plates in img (8-bit grey, BGR or BGRA), best first. It
// returns no plates, not an error, for an image in which it finds none.
func (r *Recognizer) Recognize(img gocv.Mat) ([]Plate, error) {
	if err := checkMat(img); err != nil {
		return nil, err
	}
	gray := gocv.NewMat()
	defer gray.Close()
	switch img.Type() {
	case gocv.MatTypeCV8UC3:
		gocv.CvtColor(img, &gray, gocv.ColorBGRToGray)
	case gocv.MatTypeCV8UC4:
		gocv.CvtColor(img, &gray, gocv.ColorBGRAToGray)
	default:
		img.CopyTo(&gray)
	}
	g := &grey{w: gray.Cols(), h: gray.Rows(), mat: gray}

	var found []Plate
	for _, dark := range []bool{true, false} {
		for _, ln := range findLines(g, dark) {
			if p, ok := r.readLine(g, ln, dark); ok {
				found = append(found, p)
			}
		}
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].score() > found[j].score() })
	// One plate per place: drop candidates overlapping a better one.
	var out []Plate
	for _, p := range found {
		dup := false
		for _, q := range out {
			if iou(p.Box, q.Box) > 0.3 || p.Box.Intersect(q.Box) == p.Box {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, p)
		}
		if len(out) == r.maxCand {
			break
		}
	}
	return out, nil
}

// score ranks candidate plates: confident, format-fitting, of plate length.
func (p Plate) score() float64 {
	s := p.Confidence
	if p.Format != "" {
		s += 0.1
	}
	if n := len(p.Text); n < 5 || n > 8 {
		s -= 0.15
	}
	return s
}

// iou is the intersection over union of two rectangles.
func iou(a, b image.Rectangle) float64 {
	in := a.Intersect(b)
	if in.Empty() {
		return 0
	}
	ia := float64(in.Dx() * in.Dy())
	return ia / (float64(a.Dx()*a.Dy()+b.Dx()*b.Dy()) - ia)
}

// IoU is the intersection over union of two boxes, as the benchmark scores
// detections.
func IoU(a, b image.Rectangle) float64 { return iou(a, b) }

// grey is the greyscale image being read, with its pixels in Go memory.
type grey struct {
	w, h int
	mat  gocv.Mat
}

// comp is one connected component: a character candidate.
type comp struct {
	r    image.Rectangle
	area int
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
func components(bin gocv.Mat, minH, maxH int) []comp {
	labels, stats, cents := gocv.NewMat(), gocv.NewMat(), gocv.NewMat()
	defer labels.Close()
	defer stats.Close()
	defer cents.Close()
	n := gocv.ConnectedComponentsWithStats(bin, &labels, &stats, &cents)
	raw := stats.ToBytes() // n×5 int32: x, y, w, h, area
	var out []comp
	for i := 1; i < n && (i+1)*20 <= len(raw); i++ {
		v := func(k int) int { return int(int32(binary.LittleEndian.Uint32(raw[i*20+4*k:]))) }
		x, y, w, h, a := v(0), v(1), v(2), v(3), v(4)
		if h < minH || h > maxH || w < 2 || w > h*5/4 || h > w*10 {
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

// findLines binarizes g for dark characters on a light plate (or the reverse)
// and groups the components into lines of four to ten characters.
func findLines(g *grey, dark bool) []line {
	bin := gocv.NewMat()
	defer bin.Close()
	typ := gocv.ThresholdBinaryInv
	if !dark {
		typ = gocv.ThresholdBinary
	}
	block := 2*int(float64(min(g.w, g.h))/60) + 1
	block = max(15, min(block, 41))
	c := float32(7)
	if !dark {
		c = -7
	}
	gocv.AdaptiveThreshold(g.mat, &bin, 255, gocv.AdaptiveThresholdMean, typ, block, c)
	cs := components(bin, 9, g.h/4)
	return groupLines(cs)
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

// color0 fills nothing: borders are replicated.
var color0 color.RGBA

// readLine deskews the line, classifies its characters and decodes them.
func (r *Recognizer) readLine(g *grey, ln line, dark bool) (Plate, bool) {
	xs, u, ok := lineGlyphs(g, ln, dark)
	if !ok {
		return Plate{}, false
	}
	probs := make([][]float32, len(xs))
	h := make([]float32, r.net.hid)
	for i, x := range xs {
		probs[i] = make([]float32, r.net.out)
		r.net.forward(x, h, probs[i])
	}
	text, format, conf := decode(probs, r.country)
	chars := make([]image.Rectangle, len(ln.chars))
	for i, c := range ln.chars {
		chars[i] = c.r
	}
	return Plate{Text: text, Confidence: conf, Format: format, Box: plateBox(u, ln, r.country, g), Chars: chars, Angle: -ln.angle * 180 / math.Pi}, true
}

// LineGlyphs is one line of character candidates as the recognizer segments it,
// for the trainer.
type LineGlyphs struct {
	// Box is the union of the characters' boxes.
	Box image.Rectangle
	// Features are each character's glyph features, left to right.
	Features [][]float32
}

// SegmentGlyphs finds the character lines of img and returns their glyph
// features exactly as Recognize would classify them. cmd/lprtrain labels them
// on rendered plates whose text it knows.
func SegmentGlyphs(img gocv.Mat) ([]LineGlyphs, error) {
	if err := checkMat(img); err != nil {
		return nil, err
	}
	gray := gocv.NewMat()
	defer gray.Close()
	if img.Type() == gocv.MatTypeCV8UC3 {
		gocv.CvtColor(img, &gray, gocv.ColorBGRToGray)
	} else if img.Type() == gocv.MatTypeCV8UC4 {
		gocv.CvtColor(img, &gray, gocv.ColorBGRAToGray)
	} else {
		img.CopyTo(&gray)
	}
	g := &grey{w: gray.Cols(), h: gray.Rows(), mat: gray}
	var out []LineGlyphs
	for _, dark := range []bool{true, false} {
		for _, ln := range findLines(g, dark) {
			if xs, u, ok := lineGlyphs(g, ln, dark); ok {
				out = append(out, LineGlyphs{Box: u, Features: xs})
			}
		}
	}
	return out, nil
}

// lineGlyphs deskews a line and returns its characters' glyph features and the
// union of their boxes.
func lineGlyphs(g *grey, ln line, dark bool) ([][]float32, image.Rectangle, bool) {
	var u image.Rectangle
	for _, c := range ln.chars {
		u = u.Union(c.r)
	}
	pad := int(ln.h*0.6) + 2
	crop := u.Inset(-pad).Intersect(image.Rect(0, 0, g.w, g.h))
	if crop.Dx() < 8 || crop.Dy() < 8 {
		return nil, u, false
	}
	region := g.mat.Region(crop)
	defer region.Close()
	deg := ln.angle * 180 / math.Pi
	center := image.Pt(crop.Dx()/2, crop.Dy()/2)
	rot := gocv.GetRotationMatrix2D(center, deg, 1)
	defer rot.Close()
	straight := gocv.NewMat()
	defer straight.Close()
	gocv.WarpAffineWithParams(region, &straight, rot, image.Pt(crop.Dx(), crop.Dy()), gocv.InterpolationLinear, gocv.BorderReplicate, color0)
	// Where each character's centre went: rotate about the crop centre.
	sin, cos := math.Sin(-ln.angle), math.Cos(-ln.angle)
	xs := make([][]float32, 0, len(ln.chars))
	for _, c := range ln.chars {
		dx, dy := c.cx()-float64(crop.Min.X)-float64(center.X), c.cy()-float64(crop.Min.Y)-float64(center.Y)
		nx := cos*dx - sin*dy + float64(center.X)
		ny := sin*dx + cos*dy + float64(center.Y)
		w, hh := float64(c.r.Dx()), float64(c.r.Dy())
		box := image.Rect(int(nx-w/2-0.5), int(ny-hh/2-0.5), int(nx+w/2+1.5), int(ny+hh/2+1.5))
		x := make([]float32, GlyphFeatures)
		if !glyphFeatures(straight, box, dark, x) {
			return nil, u, false
		}
		xs = append(xs, x)
	}
	return xs, u, true
}

// plateBox estimates the plate's outline from its characters' union u: plates
// are larger than their text by a margin that depends on the country.
func plateBox(u image.Rectangle, ln line, country Country, g *grey) image.Rectangle {
	var top, bottom, side float64
	switch country {
	case CountryUS: // characters fill about half the height of a 12×6 in plate
		top, bottom, side = 0.55, 0.55, 0.35
	default: // EU: 75 mm characters on a 110 mm plate, a blue band on the left
		top, bottom, side = 0.22, 0.22, 0.3
	}
	h := float64(u.Dy())
	w := float64(u.Dx())
	left := side * ln.h
	if country != CountryUS {
		left = 0.12*w + side*ln.h
	}
	b := image.Rect(u.Min.X-int(left), u.Min.Y-int(top*h), u.Max.X+int(side*ln.h), u.Max.Y+int(bottom*h))
	return b.Intersect(image.Rect(0, 0, g.w, g.h))
}

// glyphFeatures fills x with the features of the character in box of img (a
// deskewed grey crop): its pixels scaled into GlyphW×GlyphH with the aspect kept,
// ink 1 and paper 0, and its aspect ratio. It reports false for a box outside img.
func glyphFeatures(img gocv.Mat, box image.Rectangle, dark bool, x []float32) bool {
	box = box.Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
	if box.Dx() < 2 || box.Dy() < 4 {
		return false
	}
	sub := img.Region(box)
	defer sub.Close()
	tw := int(math.Round(float64(box.Dx()) * GlyphH / float64(box.Dy())))
	tw = max(1, min(tw, GlyphW))
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(sub, &small, image.Pt(tw, GlyphH), 0, 0, gocv.InterpolationArea)
	pix := small.ToBytes()
	if len(pix) != tw*GlyphH {
		return false
	}
	lo, hi := uint8(255), uint8(0)
	for _, v := range pix {
		lo, hi = min(lo, v), max(hi, v)
	}
	span := max(float32(hi)-float32(lo), 16)
	clear(x)
	off := (GlyphW - tw) / 2
	for yy := 0; yy < GlyphH; yy++ {
		for xx := 0; xx < tw; xx++ {
			v := (float32(pix[yy*tw+xx]) - float32(lo)) / span
			if dark {
				v = 1 - v
			}
			x[yy*GlyphW+off+xx] = v
		}
	}
	x[GlyphW*GlyphH] = float32(box.Dx()) / float32(box.Dy())
	return true
}
