package plate

import "strconv"

// Kind grades how well a read matches a known plate. The zero value is None.
type Kind uint8

// The kinds of match. None is the zero value; among the others Exact is the
// best and OneEdit the weakest, which is the order Index.Lookup sorts by.
const (
	// None means the read does not match the plate.
	None Kind = iota
	// Exact means the normalized texts are identical.
	Exact
	// Confusion means the texts differ only by OCR confusions (see Canonical).
	Confusion
	// OneEdit means the canonical forms are at Damerau–Levenshtein distance
	// one: one substitution, insertion, deletion or adjacent transposition.
	OneEdit
)

// String returns the name of k.
func (k Kind) String() string {
	switch k {
	case None:
		return "None"
	case Exact:
		return "Exact"
	case Confusion:
		return "Confusion"
	case OneEdit:
		return "OneEdit"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// rank orders kinds best first; None sorts last.
func (k Kind) rank() int {
	switch k {
	case Exact:
		return 0
	case Confusion:
		return 1
	case OneEdit:
		return 2
	}
	return 3
}

// MinFuzzyLen is the shortest normalized plate that may match by Confusion
// or OneEdit. Shorter plates only match exactly: with three characters or
// fewer, one confusion or edit reaches a large share of all plates (and of
// OCR garbage such as a partial read of a bumper sticker), so fuzzy matching
// them would open gates for the wrong vehicles.
const MinFuzzyLen = 4

// MatchResult is the outcome of comparing a read with a known plate. The zero
// value means no match.
type MatchResult struct {
	// Kind is the grade of the match.
	Kind Kind
	// Distance is 0 for Exact and None, the number of positions holding
	// different (but confusable) characters for Confusion, and the edit
	// distance between canonical forms, always 1, for OneEdit.
	Distance int
}

// Match grades read against known after normalizing both. Empty plates never
// match, and plates shorter than MinFuzzyLen only match exactly. Match is
// symmetric in its arguments.
func Match(read, known string) MatchResult {
	r, k := Normalize(read), Normalize(known)
	return matchNormalized(r, canonicalOf(r), k, canonicalOf(k))
}

// matchNormalized is Match for normalized texts r and k with their canonical
// forms cr and ck precomputed, so Index does not redo that work per plate.
func matchNormalized(r, cr, k, ck string) MatchResult {
	switch {
	case r == "" || k == "":
		return MatchResult{}
	case r == k:
		return MatchResult{Kind: Exact}
	case len(r) < MinFuzzyLen || len(k) < MinFuzzyLen:
		return MatchResult{}
	case cr == ck:
		return MatchResult{Kind: Confusion, Distance: countDiff(r, k)}
	case withinOneEdit(cr, ck):
		return MatchResult{Kind: OneEdit, Distance: 1}
	}
	return MatchResult{}
}

// countDiff counts the positions at which equal-length a and b differ.
func countDiff(a, b string) int {
	n := 0
	for i := 0; i < len(a); i++ {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

// withinOneEdit reports whether the Damerau–Levenshtein distance between a
// and b is at most one. It runs in linear time without allocating, which is
// what Index needs to verify candidates; for distance ≤ 1 the restricted
// (optimal string alignment) and unrestricted distances agree.
func withinOneEdit(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	switch len(b) - len(a) {
	case 0:
		if i == len(a) {
			return true
		}
		if a[i+1:] == b[i+1:] {
			return true // substitution at i
		}
		return i+1 < len(a) && a[i] == b[i+1] && a[i+1] == b[i] && a[i+2:] == b[i+2:]
	case 1:
		return a[i:] == b[i+1:] // b has one extra character at i
	}
	return false
}
