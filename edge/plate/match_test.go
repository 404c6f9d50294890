package plate

import (
	"math/rand/v2"
	"testing"
)

func TestMatch(t *testing.T) {
	none := MatchResult{}
	exact := MatchResult{Kind: Exact}
	conf := func(d int) MatchResult { return MatchResult{Kind: Confusion, Distance: d} }
	edit := MatchResult{Kind: OneEdit, Distance: 1}
	tests := []struct {
		name, read, known string
		want              MatchResult
	}{
		{"exact", "AB1234", "AB1234", exact},
		{"exact after normalization", "ab-12 34", "AB·1234", exact},
		{"confusion O/0", "AB0234", "ABO234", conf(1)},
		{"confusion I/1", "AB1234", "ABI234", conf(1)},
		{"confusion B/8", "A81234", "AB1234", conf(1)},
		{"confusion S/5", "AS1234", "A51234", conf(1)},
		{"confusion Z/2", "AB1Z34", "AB1234", conf(1)},
		{"confusion G/6", "AG1234", "A61234", conf(1)},
		{"several confusions", "A8I2S4", "AB1254", conf(3)},
		{"D is not O", "AD1234", "AO1234", edit},
		{"Q is not 0", "AQ1234", "A01234", edit},
		{"substitution", "AB1234", "AB1284", edit},
		{"transposition", "AB1234", "AB2134", edit},
		{"insertion", "AB12345", "AB1234", edit},
		{"deletion", "AB134", "AB1234", edit},
		{"insertion at front", "XAB1234", "AB1234", edit},
		{"deletion at end", "AB123", "AB1234", edit},
		{"one edit plus confusion", "A8I235", "AB1234", edit},
		{"two substitutions", "AB1299", "AB1234", none},
		{"two deletions", "AB12", "AB1234", none},
		{"substitution and transposition", "BA1299", "AB1234", none},
		{"non-adjacent swap", "AB4231", "AB1234", none},
		{"unrelated", "XY9876", "AB1234", none},
		{"empty read", "", "AB1234", none},
		{"empty known", "AB1234", "", none},
		{"both empty", "--", " ", none},
		{"short exact", "AB1", "ab-1", exact},
		{"short confusion", "A81", "AB1", none},
		{"short substitution", "AB1", "AB2", none},
		{"short known, long read", "AB12", "AB1", none},
		{"short read, long known", "AB1", "AB12", none},
		{"four characters fuzzy", "AB12", "A812", conf(1)},
		{"four characters one edit", "AB12", "AB13", edit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Match(tt.read, tt.known); got != tt.want {
				t.Errorf("Match(%q, %q) = %v; want %v", tt.read, tt.known, got, tt.want)
			}
			if got := Match(tt.known, tt.read); got != tt.want {
				t.Errorf("Match(%q, %q) = %v; want %v (symmetry)", tt.known, tt.read, got, tt.want)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	tests := []struct {
		k    Kind
		want string
	}{
		{None, "None"}, {Exact, "Exact"}, {Confusion, "Confusion"}, {OneEdit, "OneEdit"}, {Kind(9), "Kind(9)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.k.String(); got != tt.want {
				t.Errorf("Kind(%d).String() = %q; want %q", uint8(tt.k), got, tt.want)
			}
		})
	}
}

// osaDistance is the restricted Damerau–Levenshtein (optimal string
// alignment) distance, computed the slow, obvious way as a reference for
// withinOneEdit.
func osaDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

func TestWithinOneEditAgreesWithDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"", "", true},
		{"", "A", true},
		{"", "AB", false},
		{"AB", "BA", true},
		{"ABC", "CBA", false},
		{"ABCD", "ABDC", true},
		{"ABCD", "ACBD", true},
		{"ABCD", "ABC", true},
		{"ABCD", "BCD", true},
		{"ABCD", "AXCD", true},
		{"ABCD", "AXCX", false},
		{"ABCD", "BADC", false},
	}
	for _, tt := range tests {
		t.Run(tt.a+"/"+tt.b, func(t *testing.T) {
			if got := withinOneEdit(tt.a, tt.b); got != tt.want {
				t.Errorf("withinOneEdit(%q, %q) = %v; want %v", tt.a, tt.b, got, tt.want)
			}
		})
	}
	// A tiny alphabet makes repeated letters and near-misses common, which
	// is where an early-exit check goes wrong.
	rng := rand.New(rand.NewPCG(7, 11))
	for range 100_000 {
		a, b := randString(rng, "ABC", 0, 5), randString(rng, "ABC", 0, 5)
		if got, want := withinOneEdit(a, b), osaDistance(a, b) <= 1; got != want {
			t.Fatalf("withinOneEdit(%q, %q) = %v; want %v (distance %d)", a, b, got, want, osaDistance(a, b))
		}
	}
}
