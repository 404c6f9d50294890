package plate

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Read is one plate reading from a camera or OCR engine.
type Read struct {
	// Text is the raw plate text as the reader produced it.
	Text string
	// Confidence is the reader's confidence in Text, from 0 to 1. Values
	// outside that range are clamped; NaN makes the read unusable.
	Confidence float64
	// At is when the image was taken.
	At time.Time
	// Source names the camera or engine that produced the read.
	Source string
	// Images are the stored images of the read (paths the camera adapter serves),
	// so that a session can link to the pictures of its vehicle.
	Images []string
}

// Result is the outcome of voting over several reads of one passage.
type Result struct {
	// Plate is the voted plate, normalized. It is empty when there is no
	// usable read or when the leading groups tie.
	Plate string
	// Confidence estimates how far Plate can be trusted, from 0 to 1:
	// share × mean, where share is the winning group's summed confidence
	// divided by the summed confidence of all usable reads, and mean is the
	// winning group's average confidence. Agreement alone thus cannot turn
	// weak reads into a strong result, nor strong reads outvoted by others.
	Confidence float64
	// Votes is the number of usable reads in the winning group.
	Votes int
	// Total is the number of usable reads: those at or above the minimum
	// confidence and with a non-empty normalized text.
	Total int
	// Unsure is set when there is no usable read, when the winning group
	// holds less than half of the total confidence, or when two groups tie.
	// The lane must not act on an unsure result without a human.
	Unsure bool
	// Reason explains an unsure result, and notes any arbitrary choice made
	// in a sure one (a tie between two characters of one confusion class).
	// It is empty when there is nothing to explain.
	Reason string
}

// member is a usable read inside a vote group.
type member struct {
	plate string  // normalized text
	w     float64 // clamped confidence
}

// group holds the usable reads that share a canonical form.
type group struct {
	canon   string
	weight  float64
	members []member
}

// Vote fuses reads of one passage into one plate. Reads with a confidence
// below minConfidence, or whose text normalizes to nothing, are dropped.
// The rest are grouped by canonical form, so reads differing only by OCR
// confusions support each other, and the group with the highest summed
// confidence wins. The winning plate is chosen character by character: at
// each position the character with the most confidence-weighted support
// wins, so "AB1234", "A81234" and "AB1234" give "AB1234" even if no single
// read were right everywhere. (Grouping by canonical form guarantees every
// read in a group has the same length.) Vote ignores At and Source: callers
// decide which reads belong to one passage.
//
// Vote never guesses silently: see Result.Unsure and Result.Reason.
func Vote(reads []Read, minConfidence float64) Result {
	var (
		groups     []*group
		byCanon    = make(map[string]*group)
		total      float64
		usable     int
		low, empty int
	)
	for _, rd := range reads {
		c := rd.Confidence
		if math.IsNaN(c) || c < minConfidence {
			low++
			continue
		}
		p := Normalize(rd.Text)
		if p == "" {
			empty++
			continue
		}
		c = min(max(c, 0), 1)
		cn := canonicalOf(p)
		g := byCanon[cn]
		if g == nil {
			g = &group{canon: cn}
			byCanon[cn] = g
			groups = append(groups, g)
		}
		g.weight += c
		g.members = append(g.members, member{plate: p, w: c})
		total += c
		usable++
	}

	res := Result{Total: usable}
	if usable == 0 {
		res.Unsure = true
		res.Reason = fmt.Sprintf("no usable reads: %d of %d below confidence %.2f, %d without plate text",
			low, len(reads), minConfidence, empty)
		return res
	}
	if total == 0 {
		res.Unsure = true
		res.Reason = fmt.Sprintf("all %d usable reads have zero confidence", usable)
		return res
	}

	slices.SortFunc(groups, func(a, b *group) int {
		return cmp.Or(cmp.Compare(b.weight, a.weight), strings.Compare(a.canon, b.canon))
	})
	win := groups[0]
	if len(groups) > 1 && nearlyEqual(groups[1].weight, win.weight) {
		a, _ := consensus(win.members)
		b, _ := consensus(groups[1].members)
		res.Unsure = true
		res.Reason = fmt.Sprintf("tie between %q and %q (summed confidence %.3f each)", a, b, win.weight)
		return res
	}

	var note string
	res.Plate, note = consensus(win.members)
	res.Votes = len(win.members)
	share := win.weight / total
	mean := win.weight / float64(len(win.members))
	res.Confidence = share * mean
	if share < 0.5 {
		res.Unsure = true
		res.Reason = fmt.Sprintf("%q holds only %.0f%% of the confidence (%d of %d reads)",
			res.Plate, 100*share, res.Votes, usable)
		if note != "" {
			res.Reason += "; " + note
		}
		return res
	}
	res.Reason = note
	return res
}

// consensus picks, per position, the character with the most
// confidence-weighted support among ms, which all have the same canonical
// form and hence the same length. Characters that tie are resolved towards
// the smaller byte, so the result does not depend on the order of reads;
// such a choice is described in the returned note.
func consensus(ms []member) (string, string) {
	if len(ms) == 1 {
		return ms[0].plate, ""
	}
	out := make([]byte, len(ms[0].plate))
	var notes []string
	for i := range out {
		// Only characters of one confusion class compete here (two today),
		// so small stack arrays suffice; append grows them if classes grow.
		var cb [4]byte
		var wb [4]float64
		chars, weights := cb[:0], wb[:0]
		for _, m := range ms {
			c := m.plate[i]
			j := slices.Index(chars, c)
			if j < 0 {
				j = len(chars)
				chars = append(chars, c)
				weights = append(weights, 0)
			}
			weights[j] += m.w
		}
		best, tied := 0, false
		for j := 1; j < len(chars); j++ {
			switch {
			case nearlyEqual(weights[j], weights[best]):
				tied = true
				if chars[j] < chars[best] {
					best = j
				}
			case weights[j] > weights[best]:
				best, tied = j, false
			}
		}
		out[i] = chars[best]
		if tied {
			sorted := slices.Clone(chars) // name the class in a fixed order
			slices.Sort(sorted)
			notes = append(notes, fmt.Sprintf("position %d: tie within %q, chose %q", i+1, sorted, out[i]))
		}
	}
	return string(out), strings.Join(notes, "; ")
}

// nearlyEqual compares summed confidences, which may differ in the last bits
// depending on summation order.
func nearlyEqual(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*max(math.Abs(a), math.Abs(b), 1)
}
