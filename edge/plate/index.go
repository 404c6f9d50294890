package plate

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Outcome says whether Index.Best found a single plate to act on.
type Outcome uint8

// The outcomes of Index.Best. The zero value is NotFound.
const (
	// NotFound means no known plate matches the read.
	NotFound Outcome = iota
	// Found means one id is the best match.
	Found
	// Ambiguous means different ids match equally well and the lane must
	// not guess between them.
	Ambiguous
)

// String returns the name of o.
func (o Outcome) String() string {
	switch o {
	case NotFound:
		return "NotFound"
	case Found:
		return "Found"
	case Ambiguous:
		return "Ambiguous"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Hit is one known plate that matches a read.
type Hit struct {
	// ID identifies the record the plate was added with (permit, booking,
	// block-list entry, session, ...).
	ID string
	// Plate is the known plate, normalized.
	Plate string
	// Match grades the read against Plate.
	Match MatchResult
}

// entry is one (plate, id) pair stored in an Index.
type entry struct {
	plate, id string
}

// Index holds known plates, each with an ID, and finds those matching a read
// the same way Match would, without scanning every plate.
//
// Plates are grouped by canonical form, which answers Exact and Confusion in
// one map access. OneEdit uses symmetric deletion: every canonical form of
// at least MinFuzzyLen characters is filed under itself and under each
// string obtained by deleting one of its characters. Two strings within one
// substitution, insertion, deletion or adjacent transposition always share
// one such key, so a read only needs its own keys looked up, and each
// candidate is then verified with the same rules as Match.
//
// The zero value is an empty index ready to use. An Index is not safe for
// concurrent use when any goroutine mutates it: callers that Add or Remove
// while others Lookup must hold a lock (a sync.RWMutex suits: lookups
// only read).
type Index struct {
	// byCanon maps a canonical form to the entries whose plate has it.
	byCanon map[string][]entry
	// byKey maps a deletion key to the canonical forms filed under it.
	byKey map[string][]string
	n     int
}

// NewIndex returns an empty index; it is equivalent to new(Index).
func NewIndex() *Index {
	return new(Index)
}

// Len returns the number of distinct (plate, id) pairs in the index.
func (x *Index) Len() int {
	return x.n
}

// Add files plate under id. The plate is normalized first; a plate that
// normalizes to nothing is ignored, and adding a pair that is already present
// has no effect. One plate may carry several ids and one id several plates.
func (x *Index) Add(plate, id string) {
	p := Normalize(plate)
	if p == "" {
		return
	}
	if x.byCanon == nil {
		x.byCanon = make(map[string][]entry)
		x.byKey = make(map[string][]string)
	}
	c := canonicalOf(p)
	es, had := x.byCanon[c]
	for _, e := range es {
		if e.plate == p && e.id == id {
			return
		}
	}
	x.byCanon[c] = append(es, entry{plate: p, id: id})
	x.n++
	if !had && len(c) >= MinFuzzyLen {
		forEachKey(c, func(k string) {
			x.byKey[k] = append(x.byKey[k], c)
		})
	}
}

// Remove deletes the pair (plate, id) from the index; the plate is
// normalized first. Removing a pair that is not present has no effect.
func (x *Index) Remove(plate, id string) {
	p := Normalize(plate)
	c := canonicalOf(p)
	es := x.byCanon[c]
	i := slices.IndexFunc(es, func(e entry) bool { return e.plate == p && e.id == id })
	if i < 0 {
		return
	}
	x.n--
	if len(es) > 1 {
		x.byCanon[c] = slices.Delete(es, i, i+1)
		return
	}
	delete(x.byCanon, c)
	if len(c) >= MinFuzzyLen {
		forEachKey(c, func(k string) {
			cs := slices.DeleteFunc(x.byKey[k], func(s string) bool { return s == c })
			if len(cs) == 0 {
				delete(x.byKey, k)
			} else {
				x.byKey[k] = cs
			}
		})
	}
}

// forEachKey calls fn once for each distinct deletion key of c: c itself and
// every string with one character of c deleted. Deleting any character of a
// run yields the same string, so only the first of each run is used.
func forEachKey(c string, fn func(string)) {
	fn(c)
	for i := 0; i < len(c); i++ {
		if i > 0 && c[i] == c[i-1] {
			continue
		}
		fn(c[:i] + c[i+1:])
	}
}

// Lookup returns every known plate that matches read, best first: Exact,
// then Confusion, then OneEdit; within a kind by Distance, then by ID, then
// by plate, so the order is deterministic. The hits are exactly those for
// which Match(read, plate) is not None. Lookup returns nil for a read that
// normalizes to nothing.
func (x *Index) Lookup(read string) []Hit {
	r := Normalize(read)
	if r == "" || x.n == 0 {
		return nil
	}
	cr := canonicalOf(r)
	var hits []Hit
	collect := func(c string) {
		for _, e := range x.byCanon[c] {
			if m := matchNormalized(r, cr, e.plate, c); m.Kind != None {
				hits = append(hits, Hit{ID: e.id, Plate: e.plate, Match: m})
			}
		}
	}
	collect(cr)
	if len(r) >= MinFuzzyLen {
		// seen holds canonical forms already collected; it stays tiny
		// (a handful of neighbours), so a slice beats a map.
		seen := []string{cr}
		buf := make([]byte, 0, len(cr))
		visit := func(key []byte) {
			// string(key) in a map index does not allocate.
			for _, c := range x.byKey[string(key)] {
				if !slices.Contains(seen, c) {
					seen = append(seen, c)
					collect(c)
				}
			}
		}
		visit(append(buf, cr...))
		for i := 0; i < len(cr); i++ {
			if i > 0 && cr[i] == cr[i-1] {
				continue
			}
			buf = append(append(buf[:0], cr[:i]...), cr[i+1:]...)
			visit(buf)
		}
	}
	slices.SortFunc(hits, compareHits)
	return hits
}

// compareHits orders hits best first, breaking ties deterministically.
func compareHits(a, b Hit) int {
	return cmp.Or(
		cmp.Compare(a.Match.Kind.rank(), b.Match.Kind.rank()),
		cmp.Compare(a.Match.Distance, b.Match.Distance),
		strings.Compare(a.ID, b.ID),
		strings.Compare(a.Plate, b.Plate),
	)
}

// Best returns the single best hit for read and whether the lane may act on
// it. It reports NotFound when nothing matches, and Ambiguous when the best
// kind is Confusion or OneEdit and two different ids share it: a fuzzy read
// that fits two records must not be resolved by guessing. An Exact best is
// always Found, even when the plate carries several ids; the hit then has
// the lowest id, and callers that care about the others use Lookup. For
// NotFound and Ambiguous the returned Hit is the zero value; use Lookup to
// show the candidates.
func (x *Index) Best(read string) (Hit, Outcome) {
	hits := x.Lookup(read)
	if len(hits) == 0 {
		return Hit{}, NotFound
	}
	best := hits[0]
	if best.Match.Kind != Exact {
		for _, h := range hits[1:] {
			if h.Match.Kind != best.Match.Kind {
				break
			}
			if h.ID != best.ID {
				return Hit{}, Ambiguous
			}
		}
	}
	return best, Found
}
