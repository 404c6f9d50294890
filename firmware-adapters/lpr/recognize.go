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
	"slices"
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
	net     *ensemble
	country Country
	maxCand int
}

// NewRecognizer returns a Recognizer with the classifier built into the package.
func NewRecognizer(o Options) (*Recognizer, error) {
	n, err := decodeEnsemble(modelBin)
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
	// Confidence is how far Text can be trusted, from 0 to 1: the
	// characters' probabilities, times the plate's share among the other
	// texts read in the image (two alike leave each unsure).
	Confidence float64
	// Format is the country format Text fits ("LLLNNNN"), "" if none.
	Format string
	// Box is the plate's estimated outline in the image, axis-aligned.
	Box image.Rectangle
	// Chars are the boxes of the characters, in reading order.
	Chars []image.Rectangle
	// Angle is the skew of the character line in degrees (positive: rising).
	Angle float64

	cut bool // the outline runs off the image and Box is clipped
	// rejects are the classifier's "not a character" shares of Chars.
	rejects []float64
	// also counts the other binarizations that found the same line.
	also int
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
	found, score := r.candidates(img)
	idx := make([]int, len(found))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return score[idx[a]] > score[idx[b]] })
	sorted := make([]Plate, len(found))
	for i, k := range idx {
		sorted[i] = found[k]
	}
	found = sorted
	// How sure the reader is of a plate depends also on what else it
	// read: two texts that rank about alike (the plate with or without
	// a character at its end, two plates in the picture) leave it
	// unsure which is the one. Each plate's confidence is multiplied by
	// its share of the candidates' ranking scores, as odds e^(score/T)
	// per distinct text (rankTemp).
	top := make(map[string]float64)
	for i, k := range idx {
		if s, ok := top[found[i].Text]; !ok || score[k] > s {
			top[found[i].Text] = score[k]
		}
	}
	share := func(text string) float64 {
		sum := 0.0
		for _, s := range top {
			sum += math.Exp((s - top[text]) / rankTemp)
		}
		return 1 / sum
	}
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
			p.Confidence *= share(p.Text)
			if n := len(p.Text); n < minPlateLen || n > maxPlateLen {
				p.Confidence *= oddLengthDoubt
			}
			out = append(out, p)
		}
		if len(out) == r.maxCand {
			break
		}
	}
	return out, nil
}

// candidates reads every line of img (checked by the caller) and returns the
// plates read with their ranking scores, unsorted.
func (r *Recognizer) candidates(img gocv.Mat) ([]Plate, []float64) {
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
	defer g.close()

	var found []Plate
	// The binarizations often find the same line with the same components;
	// it reads the same every time, so it is read once, and each other
	// binarization that found it counts as a second opinion (Plate.also).
	seen := make(map[string]int) // line key → index in found, -1: no plate
	for _, b := range passes {
		for _, dark := range []bool{true, false} {
			for _, ln := range g.lines(dark, b) {
				k := ln.key(dark)
				if i, ok := seen[k]; ok {
					if i >= 0 {
						found[i].also++
					}
					continue
				}
				seen[k] = -1
				if p, ok := r.readLine(g, ln, dark); ok {
					seen[k] = len(found)
					found = append(found, p)
				}
			}
		}
	}
	return found, r.rank(found)
}

// rank returns the ranking scores of the plates read in one image.
func (r *Recognizer) rank(found []Plate) []float64 {
	// Part of a line is on the same plate as the whole line: when the
	// whole runs off the image, so does the plate of the part, although
	// the part's own outline may fit.
	cut := make([]bool, len(found))
	for i, p := range found {
		cut[i] = p.cut
		if cut[i] {
			continue
		}
		hp := p.charHeight()
		u := p.charBox()
		for _, q := range found {
			if q.cut && u.In(q.Box) && similar(hp, q.charHeight()) {
				cut[i] = true
				break
			}
		}
	}
	// Small text beside taller characters is a state name, a slogan or a
	// sticker: it ranks below the plate it belongs to. Anywhere in the
	// image, smaller characters rank a little lower (sizeWeight): a
	// camera aimed at a lane frames the plate it reads largest, other
	// text (a phone number, a car farther off) comes out smaller.
	score := make([]float64, len(found))
	tallest := 0.0
	for _, p := range found {
		if p.Confidence > 0.3 {
			tallest = max(tallest, p.charHeight())
		}
	}
	for i, p := range found {
		score[i] = p.score(r.country)
		hp := p.charHeight()
		if hp > 0 && hp < tallest {
			score[i] += sizeWeight * math.Log(hp/tallest)
		}
		if cut[i] {
			score[i] -= cutCost
		}
		near := p.Box.Inset(-int(2 * hp))
		for _, q := range found {
			if q.Confidence > 0.3 && q.charHeight() > smallTextRatio*hp && near.Overlaps(q.Box) {
				score[i] -= smallTextCost
				break
			}
		}
		// Another binarization that found the same line, or cut the same
		// place into other components and read the same text, is a
		// second opinion. So is
		// one that read part of the text there: it saw the same
		// characters and found no component where this one found and
		// read one more (a character touching the frame or a bolt). The
		// part does not count the whole as its own second opinion, as a
		// missing component is weaker evidence than a character read.
		agree := p.also
		for j, q := range found {
			if j != i && iou(p.Box, q.Box) > 0.3 && (q.Text == p.Text || partOf(q, p)) {
				agree += 1 + q.also
			}
		}
		score[i] += agreeBonus * float64(min(agree, maxAgree))
	}
	return score
}

// partOf reports whether q's reading is p's with characters left out, read in
// the same place: each of q's characters stands where one of p's does, in
// order, and reads the same; p has beyond q characters at its ends and at most
// one between two of q's (joined to an emblem), each about one pitch from its
// neighbours, as a plate's characters are, and one the classifier is fairly
// sure of (Reject at most partReject); an edge of the frame just beside the
// last character is no more character than q saw.
func partOf(q, p Plate) bool {
	if len(q.Text) < 4 || len(q.Text) >= len(p.Text) || len(p.Chars) != len(p.Text) || len(q.Chars) != len(q.Text) {
		return false
	}
	tol := p.charHeight()/4 + 1
	if !q.charBox().In(p.charBox().Inset(-int(tol))) {
		return false
	}
	cx := func(r image.Rectangle) float64 { return float64(r.Min.X+r.Max.X) / 2 }
	// Match q's characters to p's, left to right.
	matched := make([]bool, len(p.Chars))
	first, i := -1, 0
	for k, c := range q.Chars {
		for i < len(p.Chars) && cx(p.Chars[i]) < cx(c)-tol {
			i++
		}
		if i == len(p.Chars) || math.Abs(cx(p.Chars[i])-cx(c)) > tol || !p.Chars[i].Overlaps(c) || p.Text[i] != q.Text[k] {
			return false
		}
		if first < 0 {
			first = i
		}
		matched[i] = true
		i++
	}
	// Between q's first and last character (p's first..i-1), p has at most
	// one character more.
	if i-first-len(q.Chars) > 1 {
		return false
	}
	ps := make([]float64, 0, len(p.Chars)-1)
	for i := 1; i < len(p.Chars); i++ {
		ps = append(ps, cx(p.Chars[i])-cx(p.Chars[i-1]))
	}
	sort.Float64s(ps)
	pitch := ps[len(ps)/2]
	for i, c := range p.Chars {
		if matched[i] {
			continue
		}
		for _, j := range []int{i - 1, i + 1} {
			if j >= 0 && j < len(p.Chars) && math.Abs(cx(p.Chars[j])-cx(c)) < 0.75*pitch {
				return false
			}
		}
		// One the classifier doubts is a character (a plate's band, a
		// bolt) is no more character than q saw either.
		if i < len(p.rejects) && p.rejects[i] > partReject {
			return false
		}
	}
	return true
}

// score ranks candidate plates: confident, format-fitting, of plate length.
func (p Plate) score(country Country) float64 {
	s := p.Confidence
	if p.Format != "" {
		// A commoner format (its bonus in nats) is worth more: a sure
		// character at the end that completes "LLLNNNN" from "LLNNNN"
		// is kept.
		s += 0.1 + formatWeight*formatsOf[country][p.Format]
		if country == CountryUS { // US plates are full of words that are no plate
			s += 0.2
		}
	}
	if n := len(p.Text); n < minPlateLen || n > maxPlateLen {
		s -= 0.15
	} else if n < minUsual[country] {
		s -= shortCost
	}
	return s
}

// Standard plates have minPlateLen to maxPlateLen characters. A reading of
// another length is most likely a plate with characters lost (joined to the
// frame or to a dealer's text, too faint) or with others added (a sticker's
// digits, a bolt), and the classifier may be sure of each character it has:
// its confidence is multiplied by oddLengthDoubt, which leaves it at most 0.5,
// below the lanes' default plate_confidence (0.6). Real plates of four
// characters (Germany's shortest, US vanity plates) are then unsure too: a
// lane reads them with another credential. (On the benchmark's photographs,
// every reading of four characters was wrong, 3 of 13 with a confidence above
// 0.9.)
const (
	minPlateLen    = 5
	maxPlateLen    = 8
	oddLengthDoubt = 0.5
)

// minUsual is the fewest characters a country's standard plates have; a
// shorter reading (a vanity plate, or a plate with a character lost at its
// end) costs shortCost, more than adding a sure character costs (endCost).
// US series have six or seven; Europe's run from five (Germany's "M AB 12"
// and shorter ones exist) to eight.
var minUsual = map[Country]int{CountryUS: 6}

const shortCost = 0.1

// charBox is the union of p's characters.
func (p Plate) charBox() image.Rectangle {
	var u image.Rectangle
	for _, c := range p.Chars {
		u = u.Union(c)
	}
	return u
}

// similar reports whether two character heights are within a quarter of
// each other, as groupLines chains them.
func similar(a, b float64) bool { return min(a, b) >= 0.75*max(a, b) }

// charHeight is the median height of p's characters.
func (p Plate) charHeight() float64 {
	if len(p.Chars) == 0 {
		return 0
	}
	hs := make([]int, len(p.Chars))
	for i, c := range p.Chars {
		hs[i] = c.Dy()
	}
	sort.Ints(hs)
	return float64(hs[len(hs)/2])
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
	w, h  int
	mat   gocv.Mat
	small *grey // mat reduced for a scaled binarization, made once
}

// close frees the reduced copy of g, if any.
func (g *grey) close() {
	if g.small != nil {
		g.small.mat.Close()
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
		g.small = &grey{w: m.Cols(), h: m.Rows(), mat: m}
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
	cs := components(bin, 9, g.h/4)
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

// binarize thresholds g with b: ink (dark characters, or light ones with
// dark false) is 255. The caller closes the Mat.
func binarize(g *grey, dark bool, b binarization) gocv.Mat {
	bin := gocv.NewMat()
	typ := gocv.ThresholdBinaryInv
	if !dark {
		typ = gocv.ThresholdBinary
	}
	block := 2*int(b.block*float64(min(g.w, g.h))/60) + 1
	block = max(int(15*b.block)|1, min(block, 41))
	c := b.c
	if !dark {
		c = -c
	}
	gocv.AdaptiveThreshold(g.mat, &bin, 255, gocv.AdaptiveThresholdMean, typ, block, c)
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

// color0 fills nothing: borders are replicated.
var color0 color.RGBA

// How readLine treats "not a character": a character is dropped when the
// classifier gives Reject more than rejectEnd at either end of the line, more
// than rejectInner inside it (a seal or a hyphen between characters).
const (
	rejectEnd   = 0.8
	rejectInner = 0.95
)

// A window beyond either end of a line is read as one more character when
// the classifier is sure of it (below endMaxReject for Reject, at least
// endMinProb for a character); the reading with it must score endCost more
// than the reading without.
const (
	endMaxReject = 0.05
	endMinProb   = 0.6
	endCost      = 0.03
)

// A candidate whose plate outline (plateBox) runs off the image costs cutCost:
// a plate has a rim around its characters, so text without room for one is
// either a plate the picture cuts off, which cannot be read whole, or a
// caption the camera prints near the border (a date and time). Either way the
// lane cannot use it: cutCost is a whole confidence, so that a caption read
// with certainty ranks below a plate inside the picture read with half of it
// (0.5 before: captions such as "20140513" came first over small plates read
// unsurely, 4 of 222 US photographs).
const cutCost = 1.0

// partReject is the largest "not a character" share a character may have
// for a reading without it to count as part of the reading with it.
const partReject = 0.2

// rankTemp converts ranking scores into odds between candidates: a text
// scoring rankTemp more than another is e times as likely the plate.
const rankTemp = 0.1

// A candidate whose characters are k times as tall as the tallest read
// (confidence above 0.3) scores sizeWeight·ln k (k < 1: less): small beside
// the other terms, it decides between readings as sure and as well formed.
const sizeWeight = 0.1

// Each other reading of the same text at the same place adds agreeBonus to a
// candidate's score, up to maxAgree of them.
const (
	agreeBonus = 0.1
	maxAgree   = 3
)

// A candidate near characters smallTextRatio times as tall as its own is
// small text (a state name, a slogan, a sticker) and costs smallTextCost.
const (
	smallTextRatio = 1.6
	smallTextCost  = 0.3
)

// readLine deskews the line, classifies its characters and decodes them.
// Characters the classifier calls "not a character" are dropped; a line left
// with fewer than four is no plate. A component two characters wide may be
// read as its halves; characters found where no component was (one or two
// pitches beyond either end, halfway across a gap of two pitches, a third and
// two thirds across one of about three) are added when the reading with them
// scores better.
func (r *Recognizer) readLine(g *grey, ln line, dark bool) (Plate, bool) {
	gl, ok := lineGlyphs(g, ln, dark, false)
	if !ok {
		return Plate{}, false
	}
	xs := gl.xs
	h, q := make([]float32, r.net.hid), make([]float32, r.net.out)
	classify := func(x []float32) []float32 {
		p := make([]float32, r.net.out)
		r.net.forward(x, h, q, p)
		return p
	}
	var rd reading
	// charSure is how sure the classifier is that p is its likeliest
	// character; sureness is how sure it is of what p says, that
	// character or "not a character".
	charSure := func(p []float32) float64 {
		return (1 - float64(p[Reject])) * float64(max32(p[:Reject]))
	}
	sureness := func(p []float32) float64 { return max(float64(p[Reject]), charSure(p)) }
	dropped := 0
	// pos[i] is how many characters were kept up to and with character i.
	pos := make([]int, len(xs))
	for i, x := range xs {
		p := classify(x)
		reads := [][]float32{p}
		boxes := []image.Rectangle{ln.chars[i].r}
		// A component two characters wide is read as its two halves
		// when the classifier is surer of what both halves are (a
		// character, or a hyphen that is none) than that the whole is
		// a character, and one half at least is a character.
		if hx := gl.halves[i]; hx != nil {
			a, b := classify(hx[0]), classify(hx[1])
			if min(sureness(a), sureness(b)) > charSure(p) && max(charSure(a), charSure(b)) > 0.5 {
				reads, boxes = [][]float32{a, b}, ln.chars[i].halves
			}
		}
		before := len(rd.boxes)
		for k, p := range reads {
			rej := float64(p[Reject])
			end := i == 0 && k == 0 || i == len(xs)-1 && k == len(reads)-1 || len(rd.boxes) == 0
			if rej > rejectInner || end && rej > rejectEnd {
				continue
			}
			rd.insert(len(rd.boxes), p, boxes[k])
		}
		// A component counts as dropped when nothing of it was kept: the
		// hyphen half of a split one was never a character.
		if len(rd.boxes) == before {
			dropped++
		}
		pos[i] = len(rd.boxes)
	}
	if len(rd.boxes) < 4 {
		return Plate{}, false
	}
	base := Plate{Angle: -ln.angle * 180 / math.Pi}
	finish := func(rd reading) Plate {
		p := base
		p.Text, p.Format, p.Confidence = decode(rd.probs, r.country)
		p.Confidence *= math.Exp(rd.logp / float64(len(rd.boxes)))
		if dropped > 0 {
			p.Confidence *= math.Pow(0.97, float64(dropped))
		}
		var u image.Rectangle
		for _, c := range rd.boxes {
			u = u.Union(c)
		}
		out := plateBox(u, ln.h, r.country)
		bounds := image.Rect(0, 0, g.w, g.h)
		p.Box, p.cut = out.Intersect(bounds), !out.In(bounds.Inset(1))
		// A character added beyond an end may stand partly outside the
		// image; the boxes handed out are clipped to it.
		p.Chars = make([]image.Rectangle, len(rd.boxes))
		for i, c := range rd.boxes {
			p.Chars[i] = c.Intersect(bounds)
		}
		p.rejects = append([]float64(nil), rd.rejs...)
		return p
	}
	best := finish(rd)
	// classifyAll classifies a window's alternatives.
	classifyAll := func(alts [][]float32) [][]float32 {
		ps := make([][]float32, len(alts))
		for i, x := range alts {
			ps[i] = classify(x)
		}
		return ps
	}
	// sure returns the reading of a window, among its alternatives' ps,
	// that the classifier is surest is a character, or nil if it is sure
	// of none.
	sure := func(ps [][]float32) []float32 {
		var surest []float32
		for _, p := range ps {
			if float64(p[Reject]) < endMaxReject && max32(p[:Reject]) >= endMinProb && (surest == nil || p[Reject] < surest[Reject]) {
				surest = p
			}
		}
		return surest
	}
	// A character between two neighbours two pitches apart that is no
	// component of its own: the reading with it competes with the
	// reading without, as one beyond an end does. Neighbours farther
	// apart lost two characters, or one beside an emblem: the reading
	// with both windows competes when the classifier is sure of both,
	// the one with one window when it is sure the other holds no
	// character. A reading that takes one of two lost characters would
	// rank above the whole plate read elsewhere.
	base0 := best
	// insert is a sure window's reading p to go in at k.
	type insert struct {
		k   int
		p   []float32
		box image.Rectangle
	}
	// blank reports whether the classifier is sure no alternative of
	// a window (its readings ps) is a character (true for a window with no
	// ink, or with less contrast than inkColumns takes for ink).
	blank := func(ps [][]float32) bool {
		for _, p := range ps {
			if float64(p[Reject]) < blankReject {
				return false
			}
		}
		return true
	}
	// Each window is classified once.
	gapReads := make([][][]float32, len(gl.gaps))
	ins := make([]*insert, len(gl.gaps))
	for i, gw := range gl.gaps {
		gapReads[i] = classifyAll(gw.alts)
		p := sure(gapReads[i])
		k := pos[gw.after]
		if p == nil || k == 0 || k >= len(rd.boxes) {
			continue
		}
		ins[i] = &insert{k, p, gw.box}
	}
	bestScore := best.score(r.country)
	try := func(set ...*insert) {
		c := rd.clone()
		// From the right, so that each k still points where it did.
		for j := len(set) - 1; j >= 0; j-- {
			c.insert(set[j].k, set[j].p, set[j].box)
		}
		// Each addition costs endCost, the best reading's own included.
		if p := finish(c); p.score(r.country)-float64(len(set))*endCost > bestScore {
			best, bestScore = p, p.score(r.country)-float64(len(set))*endCost
		}
	}
	for i, gw := range gl.gaps {
		switch {
		case gw.third == 0 && ins[i] != nil:
			try(ins[i])
		case gw.third == 1 && i+1 < len(gl.gaps) && gl.gaps[i+1].third == 2:
			a, b := ins[i], ins[i+1]
			switch {
			case a != nil && b != nil:
				try(a, b)
			case a != nil && blank(gapReads[i+1]):
				try(a)
			case b != nil && blank(gapReads[i]):
				try(b)
			}
		}
	}
	// A line that lost a component to the classifier, or that already
	// gained one in a gap, is not also extended at its ends: one
	// addition per reading keeps guesses from piling up.
	if dropped > 0 || best.Text != base0.Text {
		return best, true
	}
	// A character at either end that is no component of its own: the
	// reading with it competes with the reading without.
	// endP[side][k] is the sure reading k+1 pitches beyond that end; one
	// farther out counts only after the nearer one.
	var endP [2][][]float32
	for side := range gl.ends {
		for _, alts := range gl.ends[side] {
			p := sure(classifyAll(alts))
			if p == nil {
				break
			}
			endP[side] = append(endP[side], p)
		}
	}
	for nl := 0; nl <= len(endP[0]); nl++ {
		for nr := 0; nr <= len(endP[1]); nr++ {
			if nl+nr == 0 {
				continue
			}
			c := rd.clone()
			for k := 0; k < nl; k++ {
				c.insert(0, endP[0][k], c.boxes[0].Add(image.Pt(-int(gl.pitch), 0)))
			}
			for k := 0; k < nr; k++ {
				c.insert(len(c.boxes), endP[1][k], c.boxes[len(c.boxes)-1].Add(image.Pt(int(gl.pitch), 0)))
			}
			if p := finish(c); p.score(r.country)-float64(nl+nr)*endCost > best.score(r.country) {
				best = p
			}
		}
	}
	return best, true
}

// reading is a line's characters as readLine keeps them: per character its
// character shares (probs, for decode), its box and its Reject share, and the
// sum of the logs of the shares that they are characters, which lowers the
// confidence.
type reading struct {
	probs [][]float32
	boxes []image.Rectangle
	rejs  []float64
	logp  float64
}

// insert puts the classifier's reading p of box in at k. p is not changed:
// its character shares are copied.
func (rd *reading) insert(k int, p []float32, box image.Rectangle) {
	cp, rej, logp := charShares(p)
	rd.probs = slices.Insert(rd.probs, k, cp)
	rd.boxes = slices.Insert(rd.boxes, k, box)
	rd.rejs = slices.Insert(rd.rejs, k, rej)
	rd.logp += logp
}

// clone returns a copy of rd that insert may change without changing rd.
func (rd reading) clone() reading {
	return reading{slices.Clone(rd.probs), slices.Clone(rd.boxes), slices.Clone(rd.rejs), rd.logp}
}

// charShares splits a classifier reading p: the character classes, rescaled
// to sum to one in a copy (decoding looks at them alone), the Reject share,
// and the log of the share that is a character, which lowers the confidence.
func charShares(p []float32) (chars []float32, rej, logp float64) {
	rej = float64(p[Reject])
	chars = slices.Clone(p[:Reject])
	for k := range chars {
		chars[k] /= float32(1 - rej)
	}
	return chars, rej, math.Log(max(1-rej, 1e-6))
}

func max32(v []float32) float32 {
	m := v[0]
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// LineGlyphs is one line of character candidates as the recognizer segments it,
// for the trainer.
type LineGlyphs struct {
	// Box is the union of the characters' boxes.
	Box image.Rectangle
	// Chars are the characters' boxes in the image, left to right.
	Chars []image.Rectangle
	// Features are each character's glyph features, left to right.
	Features [][]float32
	// Parts are glyph features of what is not a character: each two
	// neighbours taken together.
	Parts [][]float32
}

// SegmentGlyphs finds the character lines of img and returns their glyph
// features exactly as Recognize would classify them, from the first
// trainedPasses binarizations. cmd/lprtrain labels them
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
	defer g.close()
	var out []LineGlyphs
	for _, b := range passes[:trainedPasses] {
		for _, dark := range []bool{true, false} {
			for _, ln := range g.lines(dark, b) {
				if gl, ok := lineGlyphs(g, ln, dark, true); ok {
					xs, u, n := gl.xs, gl.u, len(ln.chars)
					chars := make([]image.Rectangle, n)
					for i, c := range ln.chars {
						chars[i] = c.r
					}
					out = append(out, LineGlyphs{Box: u, Chars: chars, Features: xs[:n], Parts: xs[n:]})
				}
			}
		}
	}
	return out, nil
}

// glyphs is a line as the classifier sees it.
type glyphs struct {
	xs [][]float32     // the characters' features, left to right
	u  image.Rectangle // the union of the characters' boxes in the image
	// ends are the features of where one more character would stand left
	// (ends[0]) and right (ends[1]) of the line, one and two pitches out
	// (ends[side][0], [1]), a few widths each: a character touching the
	// plate frame or a screw is not a component of its own, but it is
	// still there.
	ends [2][maxEnds][][]float32
	// pitch is the median distance between character centres.
	pitch float64
	// halves[i] are the features of the halves of character i when it
	// has any (comp.halves), nil otherwise.
	halves [][][]float32
	// gaps are windows between neighbours two or three pitches apart,
	// where a character the components missed would stand.
	gaps []gapWindow
}

// gapWindow is where one more character would stand between characters
// after and after+1 of a line: box in the image, alts its features at a
// few widths.
type gapWindow struct {
	after int
	box   image.Rectangle
	alts  [][]float32
	// third is 0 for the window halfway across a gap of two pitches, 1
	// and 2 for the windows a third and two thirds across a wider one.
	third int
}

// lineGlyphs deskews a line and returns its characters' glyph features. With
// parts, the features of the non-characters LineGlyphs.Parts describes follow
// the characters'.
func lineGlyphs(g *grey, ln line, dark, parts bool) (glyphs, bool) {
	var gl glyphs
	for _, c := range ln.chars {
		gl.u = gl.u.Union(c.r)
	}
	u := gl.u
	pad := int(ln.h*1.2) + 2
	crop := u.Inset(-pad).Intersect(image.Rect(0, 0, g.w, g.h))
	if crop.Dx() < 8 || crop.Dy() < 8 {
		return gl, false
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
	boxes := make([]image.Rectangle, 0, len(ln.chars))
	straighten := func(r image.Rectangle) image.Rectangle {
		c := comp{r: r}
		dx, dy := c.cx()-float64(crop.Min.X)-float64(center.X), c.cy()-float64(crop.Min.Y)-float64(center.Y)
		nx := cos*dx - sin*dy + float64(center.X)
		ny := sin*dx + cos*dy + float64(center.Y)
		w, hh := float64(r.Dx()), float64(r.Dy())
		return image.Rect(int(nx-w/2-0.5), int(ny-hh/2-0.5), int(nx+w/2+1.5), int(ny+hh/2+1.5))
	}
	for _, c := range ln.chars {
		boxes = append(boxes, straighten(c.r))
	}
	// Characters of one line share a top and a bottom: a box shorter than
	// the line's (a broken stroke, a faint curl the threshold lost) grows
	// to the line's median top and bottom, so that its glyph is not
	// stretched into another shape.
	var ws, tops, bottoms []float64
	for _, b := range boxes {
		ws = append(ws, float64(b.Dx()))
		tops = append(tops, float64(b.Min.Y))
		bottoms = append(bottoms, float64(b.Max.Y))
	}
	sort.Float64s(ws)
	sort.Float64s(tops)
	sort.Float64s(bottoms)
	mw := ws[len(ws)/2]
	top, bottom := int(tops[len(tops)/2]), int(bottoms[len(bottoms)/2])
	for i := range boxes {
		boxes[i].Min.Y, boxes[i].Max.Y = min(boxes[i].Min.Y, top), max(boxes[i].Max.Y, bottom)
	}
	for _, box := range boxes {
		x := make([]float32, GlyphFeatures)
		if !glyphFeatures(straight, box, dark, mw, x) {
			return gl, false
		}
		xs = append(xs, x)
	}
	gl.xs = xs
	// The halves of a component two characters wide, grown to the line's
	// band like the rest. The trainer labels whole components only.
	if !parts {
		gl.halves = make([][][]float32, len(ln.chars))
		for i, c := range ln.chars {
			if len(c.halves) != 2 {
				continue
			}
			var hx [][]float32
			for _, h := range c.halves {
				b := straighten(h)
				b.Min.Y, b.Max.Y = min(b.Min.Y, top), max(b.Max.Y, bottom)
				x := make([]float32, GlyphFeatures)
				if !glyphFeatures(straight, b, dark, mw, x) {
					break
				}
				hx = append(hx, x)
			}
			if len(hx) == 2 {
				gl.halves[i] = hx
			}
		}
	}
	if parts {
		for i := 0; i+1 < len(boxes); i++ {
			pair := boxes[i].Union(boxes[i+1])
			x := make([]float32, GlyphFeatures)
			if glyphFeatures(straight, pair, dark, mw, x) {
				gl.xs = append(gl.xs, x)
			}
		}
		return gl, true
	}
	// The end windows: one pitch beyond the first and the last character, as
	// high as the line, trimmed to the ink they hold.
	var ps []float64
	for i := 1; i < len(boxes); i++ {
		ps = append(ps, float64(boxes[i].Min.X+boxes[i].Max.X-boxes[i-1].Min.X-boxes[i-1].Max.X)/2)
	}
	sort.Float64s(ps)
	gl.pitch = ps[len(ps)/2]
	first, last := boxes[0], boxes[len(boxes)-1]
	for side, b := range []image.Rectangle{first, last} {
		dir := float64(2*side - 1)
		for n := 1; n <= maxEnds; n++ {
			// Keep clear of the character (or window) before it: a window
			// overlapping it is half a character.
			edge := float64(b.Min.X-1) - float64(n-1)*gl.pitch
			if side == 1 {
				edge = float64(b.Max.X+1) + float64(n-1)*gl.pitch
			}
			for _, k := range []float64{1, 1.3} {
				cx := float64(b.Min.X+b.Max.X)/2 + dir*float64(n)*gl.pitch
				half := k * mw / 2
				win := image.Rect(int(cx-half), b.Min.Y, int(math.Ceil(cx+half)), b.Max.Y)
				if side == 0 {
					win.Max.X = min(win.Max.X, int(edge))
				} else {
					win.Min.X = max(win.Min.X, int(edge))
				}
				win, tall := inkColumns(straight, win, dark)
				if win.Dx() < 2 || float64(win.Dx()) > 1.6*mw || tall < endMinInk {
					continue
				}
				x := make([]float32, GlyphFeatures)
				if glyphFeatures(straight, win, dark, mw, x) {
					gl.ends[side][n-1] = append(gl.ends[side][n-1], x)
				}
			}
		}
	}
	// The gap windows: neighbours about two pitches apart leave room for
	// one character the components missed (one touching an emblem or a
	// sticker between the groups); the window is halfway, kept clear of
	// both neighbours. Neighbours farther apart may have lost two, or one
	// beside an emblem: a window a third of the way and one two thirds.
	for i := 0; i+1 < len(boxes); i++ {
		a, b := boxes[i], boxes[i+1]
		d := float64(b.Min.X+b.Max.X-a.Min.X-a.Max.X) / 2
		if d < gapMin*gl.pitch || d > gapWide*gl.pitch {
			continue
		}
		ac, bc := float64(a.Min.X+a.Max.X)/2, float64(b.Min.X+b.Max.X)/2
		// at are the window centres as offsets from a's centre.
		at := []float64{d / 2}
		if d > gapMax*gl.pitch {
			at = []float64{d / 3, 2 * d / 3}
		}
		for n, off := range at {
			cx := ac + off
			gw := gapWindow{after: i}
			if len(at) == 2 {
				gw.third = n + 1
			}
			for _, k := range []float64{1, 1.3} {
				half := k * mw / 2
				// A literal, not image.Rect: where the neighbours leave no room
				// the window must come out empty, not be flipped onto one.
				lo, hi := a.Max.X+1, b.Min.X-1
				// The two windows of a wide gap keep to their halves
				// of it, so that no character is read by both.
				switch gw.third {
				case 1:
					hi = min(hi, int(ac+d/2))
				case 2:
					lo = max(lo, int(ac+d/2)+1)
				}
				win := image.Rectangle{Min: image.Pt(max(int(cx-half), lo), a.Min.Y), Max: image.Pt(min(int(math.Ceil(cx+half)), hi), a.Max.Y)}
				if win.Empty() {
					continue
				}
				win, _ = inkColumns(straight, win, dark)
				if win.Dx() < 2 || float64(win.Dx()) > 1.6*mw {
					continue
				}
				x := make([]float32, GlyphFeatures)
				if glyphFeatures(straight, win, dark, mw, x) {
					gw.alts = append(gw.alts, x)
				}
			}
			// A window with no ink is kept as well when it has a
			// partner: it is sure to hold no character.
			if len(gw.alts) > 0 || gw.third > 0 {
				// The box in the image: as far along the unrotated
				// line as the window is along the straightened one.
				ca, cb := ln.chars[i].r, ln.chars[i+1].r
				mx := (ca.Min.X + ca.Max.X) / 2
				if bc > ac {
					mx += int(off / (bc - ac) * float64((cb.Min.X+cb.Max.X)/2-mx))
				}
				gw.box = image.Rect(mx-int(mw/2), ca.Min.Y, mx+int(mw/2)+1, ca.Max.Y)
				gl.gaps = append(gl.gaps, gw)
			}
		}
	}
	return gl, true
}

// blankReject is how sure of "not a character" the classifier must be of a
// window beside a lost character for that character alone to be added.
const blankReject = 0.9

// Neighbours whose centres are gapMin to gapMax pitches apart have room for
// one character between them; up to gapWide, for two, or for one beside an
// emblem.
const (
	gapMin  = 1.7
	gapMax  = 2.5
	gapWide = 3.6
)

// endMinInk is the least share of the end character's height (grown to the
// line's band) that the ink in a window beyond that end must span: a
// character there does; a sticker's small digits, a bolt or a frame's
// lettering does not.
const endMinInk = 0.8

// maxEnds is how many characters readLine looks for beyond either end of a
// line.
const maxEnds = 2

// formatWeight converts a format's bonus in nats into ranking score.
const formatWeight = 0.1

// inkColumns narrows box of img to the columns that hold ink: pixels on the
// ink side of the middle grey between the box's darkest and lightest. It also
// returns the share of the box's height that the ink in those columns spans.
func inkColumns(img gocv.Mat, box image.Rectangle, dark bool) (image.Rectangle, float64) {
	box = box.Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
	if box.Dx() < 2 || box.Dy() < 4 {
		return image.Rectangle{}, 0
	}
	all, err := img.DataPtrUint8() // img is a whole, continuous Mat
	step := img.Cols()
	if err != nil || len(all) < img.Rows()*step {
		return image.Rectangle{}, 0
	}
	pix := all[box.Min.Y*step+box.Min.X:]
	w, h := box.Dx(), box.Dy()
	lo, hi := uint8(255), uint8(0)
	for y := 0; y < h; y++ {
		for _, v := range pix[y*step : y*step+w] {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	if hi-lo < 24 {
		return image.Rectangle{}, 0
	}
	mid := (int(lo) + int(hi)) / 2
	need := max(2, h/8)
	ink := func(x int) bool {
		n := 0
		for y := 0; y < h; y++ {
			v := int(pix[y*step+x])
			if dark && v < mid || !dark && v > mid {
				n++
			}
		}
		return n >= need
	}
	x0, x1 := 0, w
	for x0 < x1 && !ink(x0) {
		x0++
	}
	for x1 > x0 && !ink(x1-1) {
		x1--
	}
	// The rows with ink in the columns kept.
	row := func(y int) bool {
		for _, v := range pix[y*step+x0 : y*step+x1] {
			if dark && int(v) < mid || !dark && int(v) > mid {
				return true
			}
		}
		return false
	}
	y0, y1 := 0, h
	for y0 < y1 && !row(y0) {
		y0++
	}
	for y1 > y0 && !row(y1-1) {
		y1--
	}
	return image.Rect(box.Min.X+x0, box.Min.Y, box.Min.X+x1, box.Max.Y), float64(y1-y0) / float64(h)
}

// plateBox estimates the plate's outline from its characters' union u: plates
// are larger than their text by a margin that depends on the country. The
// outline may run off the image; the caller clips it.
func plateBox(u image.Rectangle, lineH float64, country Country) image.Rectangle {
	var top, bottom, side float64
	switch country {
	case CountryUS: // characters fill about half the height of a 12×6 in plate
		top, bottom, side = 0.55, 0.55, 0.35
	default: // EU: 75 mm characters on a 110 mm plate, a blue band on the left
		top, bottom, side = 0.22, 0.22, 0.3
	}
	h := float64(u.Dy())
	w := float64(u.Dx())
	left := side * lineH
	if country != CountryUS {
		left = 0.12*w + side*lineH
	}
	return image.Rect(u.Min.X-int(left), u.Min.Y-int(top*h), u.Max.X+int(side*lineH), u.Max.Y+int(bottom*h))
}

// glyphFeatures fills x with the features of the character in box of img (a
// deskewed grey crop): its pixels scaled into GlyphW×GlyphH (see
// FullWidthAspect), ink 1 and paper 0, its aspect ratio, its width relative to
// lineWidth (the line's median character width) and the pixels' edge
// directions. It reports false for a box outside img.
func glyphFeatures(img gocv.Mat, box image.Rectangle, dark bool, lineWidth float64, x []float32) bool {
	box = box.Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
	if box.Dx() < 2 || box.Dy() < 4 {
		return false
	}
	sub := img.Region(box)
	defer sub.Close()
	aspect := float64(box.Dx()) / float64(box.Dy())
	tw := int(math.Round(GlyphW * aspect / FullWidthAspect))
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
	x[featAspect] = float32(aspect)
	x[featWidth] = float32(float64(box.Dx()) / max(lineWidth, 1))
	orientationFeatures(x)
	return true
}
