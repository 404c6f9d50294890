package plate

import (
	"slices"
	"testing"
)

// newTestIndex builds an index from (plate, id) pairs.
func newTestIndex(pairs ...[2]string) *Index {
	x := NewIndex()
	for _, p := range pairs {
		x.Add(p[0], p[1])
	}
	return x
}

func TestIndexBest(t *testing.T) {
	x := newTestIndex(
		[2]string{"AB-1234", "permit-1"},
		[2]string{"AB 1234", "resv-9"}, // same plate, second record
		[2]string{"XY-9876", "permit-2"},
		[2]string{"CD1234", "permit-3"},
		[2]string{"CD1235", "permit-4"},
		[2]string{"EF5555", "permit-5"},
		[2]string{"EF5556", "permit-5"}, // one record, two plates
		[2]string{"GH1O0", "permit-6"},
		[2]string{"GH100", "permit-7"},
		[2]string{"K1", "permit-8"},
	)
	tests := []struct {
		name, read string
		want       Hit
		outcome    Outcome
	}{
		{"exact", "xy 9876", Hit{"permit-2", "XY9876", MatchResult{Kind: Exact}}, Found},
		{"exact with two ids picks lowest id", "AB1234", Hit{"permit-1", "AB1234", MatchResult{Kind: Exact}}, Found},
		{"one edit substitution", "XY-98T6", Hit{"permit-2", "XY9876", MatchResult{Kind: OneEdit, Distance: 1}}, Found},
		{"confusion unique", "XY-9B76", Hit{"permit-2", "XY9876", MatchResult{Kind: Confusion, Distance: 1}}, Found},
		{"one edit unique", "XY987", Hit{"permit-2", "XY9876", MatchResult{Kind: OneEdit, Distance: 1}}, Found},
		{"one edit ambiguous", "CD1236", Hit{}, Ambiguous},
		{"exact beats one edit neighbour", "CD1234", Hit{"permit-3", "CD1234", MatchResult{Kind: Exact}}, Found},
		{"one edit, same id twice is not ambiguous", "EF5557", Hit{"permit-5", "EF5555", MatchResult{Kind: OneEdit, Distance: 1}}, Found},
		{"confusion ambiguous", "GH10O", Hit{}, Ambiguous},
		{"short exact", "K-1", Hit{"permit-8", "K1", MatchResult{Kind: Exact}}, Found},
		{"short fuzzy does not match", "KI", Hit{}, NotFound},
		{"not found", "ZZ0000", Hit{}, NotFound},
		{"empty read", " - ", Hit{}, NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, outcome := x.Best(tt.read)
			if got != tt.want || outcome != tt.outcome {
				t.Errorf("Best(%q) = %v, %v; want %v, %v", tt.read, got, outcome, tt.want, tt.outcome)
			}
		})
	}
}

func TestIndexLookupOrder(t *testing.T) {
	x := newTestIndex(
		[2]string{"AB1234", "b"},
		[2]string{"AB1234", "a"},
		[2]string{"A81234", "c"},
		[2]string{"A8I234", "c"},
		[2]string{"AB1235", "d"},
		[2]string{"AB123", "e"},
		[2]string{"ZZ9999", "f"},
	)
	got := x.Lookup("AB1234")
	want := []Hit{
		{"a", "AB1234", MatchResult{Kind: Exact}},
		{"b", "AB1234", MatchResult{Kind: Exact}},
		{"c", "A81234", MatchResult{Kind: Confusion, Distance: 1}},
		{"c", "A8I234", MatchResult{Kind: Confusion, Distance: 2}},
		{"d", "AB1235", MatchResult{Kind: OneEdit, Distance: 1}},
		{"e", "AB123", MatchResult{Kind: OneEdit, Distance: 1}},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Lookup(%q) = %v; want %v", "AB1234", got, want)
	}
}

func TestIndexAddRemove(t *testing.T) {
	x := new(Index) // the zero value must work
	if got, o := x.Best("AB1234"); o != NotFound {
		t.Fatalf("Best on empty index = %v, %v; want NotFound", got, o)
	}
	x.Remove("AB1234", "p1") // removing from an empty index is a no-op
	x.Add("AB-1234", "p1")
	x.Add("ab1234", "p1") // duplicate after normalization
	x.Add("AB1235", "p2")
	x.Add("--", "p3") // no plate: ignored
	if got := x.Len(); got != 2 {
		t.Fatalf("Len() = %d; want 2", got)
	}

	if _, o := x.Best("AB1236"); o != Ambiguous {
		t.Errorf("Best(%q) outcome = %v; want Ambiguous", "AB1236", o)
	}

	steps := []struct {
		name        string
		plate, id   string
		wantLen     int
		read        string
		wantHit     Hit
		wantOutcome Outcome
	}{
		{"remove unknown id is a no-op", "AB1235", "nobody", 2, "AB1235", Hit{"p2", "AB1235", MatchResult{Kind: Exact}}, Found},
		{"remove one neighbour resolves ambiguity", "AB 1235", "p2", 1, "AB1236", Hit{"p1", "AB1234", MatchResult{Kind: OneEdit, Distance: 1}}, Found},
		{"removed plate is gone", "AB1235", "p2", 1, "AB1235", Hit{"p1", "AB1234", MatchResult{Kind: OneEdit, Distance: 1}}, Found},
		{"remove last", "ab-1234", "p1", 0, "AB1234", Hit{}, NotFound},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			x.Remove(st.plate, st.id)
			if got := x.Len(); got != st.wantLen {
				t.Errorf("Len() = %d; want %d", got, st.wantLen)
			}
			if got, o := x.Best(st.read); got != st.wantHit || o != st.wantOutcome {
				t.Errorf("Best(%q) = %v, %v; want %v, %v", st.read, got, o, st.wantHit, st.wantOutcome)
			}
		})
	}
	if len(x.byCanon) != 0 || len(x.byKey) != 0 {
		t.Errorf("after removing everything: %d canonical forms and %d keys left; want none", len(x.byCanon), len(x.byKey))
	}
}

func TestIndexRemoveKeepsSharedCanonical(t *testing.T) {
	// Two plates with one canonical form: removing one must keep the
	// deletion keys the other needs.
	x := newTestIndex([2]string{"AB1234", "p1"}, [2]string{"A81234", "p2"})
	x.Remove("AB1234", "p1")
	want := []Hit{{"p2", "A81234", MatchResult{Kind: OneEdit, Distance: 1}}}
	if got := x.Lookup("A8123"); !slices.Equal(got, want) {
		t.Errorf("Lookup(%q) = %v; want %v", "A8123", got, want)
	}
}

func TestOutcomeString(t *testing.T) {
	tests := []struct {
		o    Outcome
		want string
	}{
		{NotFound, "NotFound"}, {Found, "Found"}, {Ambiguous, "Ambiguous"}, {Outcome(7), "Outcome(7)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.o.String(); got != tt.want {
				t.Errorf("Outcome(%d).String() = %q; want %q", uint8(tt.o), got, tt.want)
			}
		})
	}
}
