//go:build gocv

package lpr

import (
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"math"
	"sort"
	"strings"

	"gocv.io/x/gocv"
)

//go:embed model.bin
var modelBin []byte

// checkerBin is the second opinion's classifier (Recognizer.agreement): a
// convolutional network (convNet) trained on the same rendered glyphs by
// cmd/lprtrain/train-cnn.py.
//
//go:embed checker.bin
var checkerBin []byte

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
// concurrent use: it holds only the immutable classifiers.
type Recognizer struct {
	net     *ensemble // reads
	check   *ensemble // second opinion on what net read
	country Country
	maxCand int
}

// NewRecognizer returns a Recognizer with the classifier built into the package.
func NewRecognizer(o Options) (*Recognizer, error) {
	n, err := decodeEnsemble(modelBin)
	if err != nil {
		return nil, err
	}
	check, err := decodeEnsemble(checkerBin)
	if err != nil {
		return nil, fmt.Errorf("lpr: checker: %w", err)
	}
	switch o.Country {
	case "", CountryEU, CountryUS:
	default:
		return nil, fmt.Errorf("lpr: country %q is not eu or us", o.Country)
	}
	if o.MaxCandidates <= 0 {
		o.MaxCandidates = 3
	}
	return &Recognizer{net: n, check: check, country: o.Country, maxCand: o.MaxCandidates}, nil
}

// Plate is one plate found in an image.
type Plate struct {
	// Text is the plate as read, normalized (A–Z, 0–9).
	Text string
	// Confidence is how far Text can be trusted, from 0 to 1: the
	// characters' probabilities, times how far a second classifier agrees
	// with them, times the plate's share among the other texts read in
	// the image (two alike leave each unsure).
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
	// glyphs are the features the characters of Text were read from.
	glyphs [][]float32
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
			p.Confidence *= r.agreement(p)
			p.glyphs = nil // 2.5 KB a character, needed no more
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
	g := newGrey(img)
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

// agreement is how far the second opinion (r.check) agrees with the text read
// for p: the geometric mean over its characters of the share the checker
// gives that character, or its confusable partner (O/0, I/1, B/8 and the
// others; the plate's format decides between those, not the glyph). The
// reader's perceptrons see pixels and edge directions, the checker's
// convolutions local stroke shapes; on fonts neither was trained on they err
// on different characters, so a character the checker doubts is one to doubt
// (a W the reader took for an H, a California 6 for a K). Where the two
// agree it is about 1 and leaves the confidence as it is; one character the
// checker gives 5 % to takes a seven-character plate's confidence down by a
// third. The text itself is the reader's alone: the checker is no better a
// reader on its own (docs/BENCHMARKS.md).
func (r *Recognizer) agreement(p Plate) float64 {
	if len(p.glyphs) != len(p.Text) || len(p.Text) == 0 {
		// Cannot happen: every character is read from a glyph. Were it
		// to, the plate is unsure rather than unchecked.
		return 0
	}
	s, q, pr := make([]float32, r.check.scratch), make([]float32, r.check.out), make([]float32, r.check.out)
	var sum float64
	for i, x := range p.glyphs {
		if len(x) != GlyphFeatures {
			return 0 // cannot happen either
		}
		r.check.forward(x, s, q, pr)
		chars, _, _ := charShares(pr)
		c := p.Text[i]
		k := strings.IndexByte(Classes, c)
		if k < 0 {
			return 0 // cannot happen: decode writes Classes only
		}
		a := float64(chars[k])
		if o, ok := confusable[c]; ok {
			a += float64(chars[strings.IndexByte(Classes, o)])
		}
		sum += math.Log(max(a, 1e-6))
	}
	return math.Exp(sum / float64(len(p.glyphs)))
}
