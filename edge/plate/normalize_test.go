package plate

import "testing"

func TestNormalize(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"already normalized", "AB12CD", "AB12CD"},
		{"lower case with dash and space", "ab-12 cd", "AB12CD"},
		{"middle dot", "B·AB 123", "BAB123"},
		{"diacritic", "Ö-XY 1", "OXY1"},
		{"dots and slashes", "m.ü/4711", "MU4711"},
		{"tabs, newlines, no-break and thin spaces", "AB\t12\n\u00a0CD\u2009E", "AB12CDE"},
		{"en dash, em dash, underscore", "AB–12—CD_3", "AB12CD3"},
		{"Latin Extended-A", "Łódź-ŠŽ 1", "LODZSZ1"},
		{"Romanian comma below", "ȘȚ 12 ABC", "ST12ABC"},
		{"lower-case diacritics", "çéñøå", "CENOA"},
		{"combining diaeresis is dropped, base kept", "O\u0308XY1", "OXY1"},
		{"dotless i and long s", "ıſ1", "IS1"},
		{"letters without a single base are dropped", "ÆŒßÞ1", "1"},
		{"emblem and emoji dropped", "🇩🇪 D-AB 12", "DAB12"},
		{"non-Latin script dropped", "А123ВС", "123"},
		{"only separators", " - . · ", ""},
		{"invalid UTF-8 dropped", "AB\xff12", "AB12"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Normalize(tt.in); got != tt.want {
				t.Errorf("Normalize(%q) = %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestCanonical(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"no confusable characters", "ACDEF347", "ACDEF347"},
		{"O and 0", "O0", "OO"},
		{"I and 1", "I1", "II"},
		{"B and 8", "B8", "BB"},
		{"S and 5", "S5", "SS"},
		{"Z and 2", "Z2", "ZZ"},
		{"G and 6", "G6", "GG"},
		{"D and Q are not confusable", "DQ", "DQ"},
		{"normalizes first", "ab-12 cd", "ABIZCD"},
		{"diacritics then classes", "Ö-5 1", "OSI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Canonical(tt.in); got != tt.want {
				t.Errorf("Canonical(%q) = %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestCanonicalClasses checks that plates differing only by each required
// confusion pair share a canonical form, and that D and Q do not join O/0.
func TestCanonicalClasses(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		{"AO123", "A0123", true},
		{"AI234", "A1234", true},
		{"AB123", "A8123", true},
		{"AS123", "A5123", true},
		{"AZ123", "A2123", true},
		{"AG123", "A6123", true},
		{"AD123", "AO123", false},
		{"AQ123", "AO123", false},
		{"AD123", "A0123", false},
		{"AQ123", "A0123", false},
	}
	for _, tt := range tests {
		t.Run(tt.a+"/"+tt.b, func(t *testing.T) {
			if got := Canonical(tt.a) == Canonical(tt.b); got != tt.same {
				t.Errorf("Canonical(%q) == Canonical(%q) is %v; want %v", tt.a, tt.b, got, tt.same)
			}
		})
	}
}
