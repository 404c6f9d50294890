package plate

import "testing"

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"", "ab-12 cd", "B·AB 123", "Ö-XY 1", "Łódź ŠŽ", "O\u0308", "ıſ", "ÆŒß",
		"🇩🇪 D-AB 12", "А123ВС", "AB\xff12", "\u0130stanbul",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := Normalize(s)
		if again := Normalize(n); again != n {
			t.Errorf("Normalize(Normalize(%q)) = %q; want %q", s, again, n)
		}
		for i := 0; i < len(n); i++ {
			if c := n[i]; !('A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
				t.Fatalf("Normalize(%q) = %q; contains %q, want only A-Z0-9", s, n, c)
			}
		}
		c := Canonical(s)
		if len(c) != len(n) {
			t.Errorf("Canonical(%q) = %q; want the length of Normalize, %d", s, c, len(n))
		}
		if again := Canonical(c); again != c {
			t.Errorf("Canonical(Canonical(%q)) = %q; want %q", s, again, c)
		}
	})
}

func FuzzMatch(f *testing.F) {
	seeds := [][2]string{
		{"AB1234", "AB1234"}, {"AB1234", "A81234"}, {"AB1234", "AB2134"},
		{"AB1234", "AB123"}, {"AB1234", "XY9876"}, {"", ""}, {"AB1", "A81"},
		{"ab-12 cd", "AB 12 CD"}, {"Ö-XY 1", "0XY1"}, {"AAAA", "AAA"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		m, back := Match(a, b), Match(b, a)
		if m.Kind != back.Kind {
			t.Fatalf("Match(%q, %q) = %v but Match(%q, %q) = %v; want the same Kind", a, b, m, b, a, back)
		}
		na, nb := Normalize(a), Normalize(b)
		switch m.Kind {
		case Exact:
			if na != nb {
				t.Errorf("Match(%q, %q) = %v; want Exact only for equal normalized plates", a, b, m)
			}
		case Confusion:
			if na == nb || Canonical(a) != Canonical(b) {
				t.Errorf("Match(%q, %q) = %v; want Confusion only for equal canonical forms", a, b, m)
			}
		case OneEdit:
			if d := osaDistance(Canonical(a), Canonical(b)); d != 1 {
				t.Errorf("Match(%q, %q) = %v; canonical distance is %d", a, b, m, d)
			}
		}
		if m.Kind != Exact && m.Kind != None && (len(na) < MinFuzzyLen || len(nb) < MinFuzzyLen) {
			t.Errorf("Match(%q, %q) = %v; want only Exact or None for short plates", a, b, m)
		}
	})
}
