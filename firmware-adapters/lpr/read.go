//go:build gocv

package lpr

import (
	"image"
	"image/color"
	"math"
	"slices"
	"sort"

	"gocv.io/x/gocv"
)

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
	h, q := make([]float32, r.net.scratch), make([]float32, r.net.out)
	// glyph is the features each reading classify returned was made from,
	// by the reading's first element: a reading kept keeps them, for the
	// second opinion (Recognizer.agreement).
	glyph := make(map[*float32][]float32)
	classify := func(x []float32) []float32 {
		p := make([]float32, r.net.out)
		r.net.forward(x, h, q, p)
		glyph[&p[0]] = x
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
			rd.insert(len(rd.boxes), p, glyph[&p[0]], boxes[k])
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
		p.glyphs = slices.Clone(rd.xs)
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
			c.insert(set[j].k, set[j].p, glyph[&set[j].p[0]], set[j].box)
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
				c.insert(0, endP[0][k], glyph[&endP[0][k][0]], c.boxes[0].Add(image.Pt(-int(gl.pitch), 0)))
			}
			for k := 0; k < nr; k++ {
				c.insert(len(c.boxes), endP[1][k], glyph[&endP[1][k][0]], c.boxes[len(c.boxes)-1].Add(image.Pt(int(gl.pitch), 0)))
			}
			if p := finish(c); p.score(r.country)-float64(nl+nr)*endCost > best.score(r.country) {
				best = p
			}
		}
	}
	return best, true
}

// reading is a line's characters as readLine keeps them: per character its
// character shares (probs, for decode), its glyph features, its box and its
// Reject share, and the sum of the logs of the shares that they are
// characters, which lowers the confidence.
type reading struct {
	probs [][]float32
	xs    [][]float32
	boxes []image.Rectangle
	rejs  []float64
	logp  float64
}

// insert puts the classifier's reading p of the glyph x in box in at k. p is
// not changed: its character shares are copied.
func (rd *reading) insert(k int, p, x []float32, box image.Rectangle) {
	cp, rej, logp := charShares(p)
	rd.probs = slices.Insert(rd.probs, k, cp)
	rd.xs = slices.Insert(rd.xs, k, x)
	rd.boxes = slices.Insert(rd.boxes, k, box)
	rd.rejs = slices.Insert(rd.rejs, k, rej)
	rd.logp += logp
}

// clone returns a copy of rd that insert may change without changing rd.
func (rd reading) clone() reading {
	return reading{slices.Clone(rd.probs), slices.Clone(rd.xs), slices.Clone(rd.boxes), slices.Clone(rd.rejs), rd.logp}
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
	g := newGrey(img)
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
