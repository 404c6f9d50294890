package plate

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const (
	plateAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	// denseAlphabet is rich in confusion pairs and small enough that random
	// plates have many one-edit neighbours, which stresses the index.
	denseAlphabet = "AB8O0I1"
	confusables   = "O0I1B8S5Z2G6"
)

// randString returns a random string over alphabet with a length in
// [minLen, maxLen].
func randString(rng *rand.Rand, alphabet string, minLen, maxLen int) string {
	b := make([]byte, minLen+rng.IntN(maxLen-minLen+1))
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

// partner returns the other member of c's confusion pair.
func partner(c byte) byte {
	return confusables[strings.IndexByte(confusables, c)^1]
}

// randEdit applies one random substitution, insertion, deletion or adjacent
// transposition to p. Plates too short for the chosen edit get an insertion.
func randEdit(rng *rand.Rand, p string) string {
	b := []byte(p)
	i := rng.IntN(len(b) + 1)
	c := plateAlphabet[rng.IntN(len(plateAlphabet))]
	op := rng.IntN(4)
	if len(b) < 2 {
		op = 1
	}
	switch op {
	case 0:
		i = min(i, len(b)-1)
		b[i] = c
	case 1:
		b = slices.Insert(b, i, c)
	case 2:
		i = min(i, len(b)-1)
		b = slices.Delete(b, i, i+1)
	default:
		i = rng.IntN(len(b) - 1)
		b[i], b[i+1] = b[i+1], b[i]
	}
	return string(b)
}

func TestMatchProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(2026, 1))
	for n := range 20_000 {
		// Length ≥ 5 so a deletion still leaves a fuzzy-matchable plate.
		p := randString(rng, plateAlphabet, 5, 8)
		if got := Match(p, p); got != (MatchResult{Kind: Exact}) {
			t.Fatalf("Match(%q, %q) = %v; want Exact", p, p, got)
		}

		b := []byte(p)
		i := rng.IntN(len(b))
		b[i] = confusables[rng.IntN(len(confusables))]
		q := string(b)
		b[i] = partner(b[i])
		conf := string(b)
		if got := Match(q, conf); got.Kind != Exact && got.Kind != Confusion {
			t.Fatalf("#%d: Match(%q, %q) = %v; want Exact or Confusion", n, q, conf, got)
		}

		e := randEdit(rng, p)
		if got := Match(e, p); got.Kind == None {
			t.Fatalf("#%d: Match(%q, %q) = %v; want at least OneEdit", n, e, p, got)
		}
	}
}

// bruteLookup is Index.Lookup by scanning every (plate, id) with Match.
func bruteLookup(pairs [][2]string, read string) []Hit {
	var hits []Hit
	for _, p := range pairs {
		if m := Match(read, p[0]); m.Kind != None {
			hits = append(hits, Hit{ID: p[1], Plate: Normalize(p[0]), Match: m})
		}
	}
	slices.SortFunc(hits, compareHits)
	return hits
}

func TestIndexAgreesWithBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 7))
	var pairs [][2]string
	for n := range 5_000 {
		var p string
		switch n % 4 {
		case 0, 1:
			p = randString(rng, plateAlphabet, 5, 8)
		case 2:
			p = randString(rng, denseAlphabet, 2, 6) // includes short plates
		default:
			if len(pairs) > 0 { // a second record for an existing plate
				p = pairs[rng.IntN(len(pairs))][0]
			} else {
				p = randString(rng, plateAlphabet, 5, 8)
			}
		}
		pairs = append(pairs, [2]string{p, "id-" + strconv.Itoa(rng.IntN(4_000))})
	}
	slices.SortFunc(pairs, func(a, b [2]string) int {
		return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
	})
	pairs = slices.Compact(pairs) // the index stores each pair once

	reads := make([]string, 2_000)
	for i := range reads {
		base := pairs[rng.IntN(len(pairs))][0]
		switch rng.IntN(6) {
		case 0:
			reads[i] = base
		case 1:
			reads[i] = Canonical(base) // every confusion at once
		case 2, 3:
			reads[i] = randEdit(rng, base)
		case 4:
			reads[i] = randEdit(rng, randEdit(rng, base))
		default:
			reads[i] = randString(rng, denseAlphabet, 1, 7)
		}
	}

	x := NewIndex()
	for _, p := range pairs {
		x.Add(p[0], p[1])
	}
	check := func(t *testing.T, pairs [][2]string) {
		t.Helper()
		if got := x.Len(); got != len(pairs) {
			t.Fatalf("Len() = %d; want %d", got, len(pairs))
		}
		hits := 0
		for _, r := range reads {
			got, want := x.Lookup(r), bruteLookup(pairs, r)
			if !slices.Equal(got, want) {
				t.Fatalf("Lookup(%q) = %v; want %v", r, got, want)
			}
			hits += len(got)
		}
		if hits < len(reads) {
			t.Fatalf("only %d hits for %d reads: the test data no longer exercises the index", hits, len(reads))
		}
	}
	t.Run("after Add", func(t *testing.T) { check(t, pairs) })

	// Remove a random fifth and check that no stale keys or entries remain.
	var kept [][2]string
	for _, p := range pairs {
		if rng.IntN(5) == 0 {
			x.Remove(p[0], p[1])
		} else {
			kept = append(kept, p)
		}
	}
	t.Run("after Remove", func(t *testing.T) { check(t, kept) })
}
