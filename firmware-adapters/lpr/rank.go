//go:build gocv

package lpr

import (
	"image"
	"math"
	"sort"
)

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

// formatWeight converts a format's bonus in nats into ranking score.
const formatWeight = 0.1
