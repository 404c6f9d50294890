package plate

import (
	"unicode"
	"unicode/utf8"
)

// foldLatin maps upper-case Latin letters with diacritics to their ASCII
// base letter. It covers Latin-1 and Latin Extended-A plus the Romanian
// comma-below letters, which is what European plates and OCR engines emit.
// Letters without a single base letter (Æ, Œ, ß, Þ) are deliberately absent,
// so Normalize drops them. It is an immutable table: never written after
// initialisation.
var foldLatin = func() map[rune]byte {
	groups := [...]struct {
		base    byte
		letters string
	}{
		{'A', "ÀÁÂÃÄÅĀĂĄǍ"},
		{'C', "ÇĆĈĊČ"},
		{'D', "ÐĎĐ"},
		{'E', "ÈÉÊËĒĔĖĘĚ"},
		{'G', "ĜĞĠĢ"},
		{'H', "ĤĦ"},
		{'I', "ÌÍÎÏĨĪĬĮİǏ"},
		{'J', "Ĵ"},
		{'K', "Ķ"},
		{'L', "ĹĻĽĿŁ"},
		{'N', "ÑŃŅŇ"},
		{'O', "ÒÓÔÕÖØŌŎŐǑ"},
		{'R', "ŔŖŘ"},
		{'S', "ŚŜŞŠȘ"},
		{'T', "ŢŤŦȚ"},
		{'U', "ÙÚÛÜŨŪŬŮŰŲǓ"},
		{'W', "Ŵ"},
		{'Y', "ÝŶŸ"},
		{'Z', "ŹŻŽ"},
	}
	m := make(map[rune]byte)
	for _, g := range groups {
		for _, r := range g.letters {
			m[r] = g.base
		}
	}
	return m
}()

// Normalize reduces s to the characters that identify a plate: it
// upper-cases, maps Latin letters with diacritics to their base letter
// (Ö→O, Ł→L), and drops everything else, including spaces, dashes, dots,
// middle dots, combining marks, emblems and non-Latin scripts. The result
// contains only A–Z and 0–9; an empty result means the text holds no plate.
// Normalize is idempotent.
func Normalize(s string) string {
	if isNormalized(s) {
		return s // the common case for reads that were normalized upstream
	}
	b := make([]byte, 0, len(s))
	for _, r := range s {
		switch {
		case 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
			b = append(b, byte(r))
		case 'a' <= r && r <= 'z':
			b = append(b, byte(r-'a'+'A'))
		case r < utf8.RuneSelf:
			// ASCII separator or punctuation: dropped.
		default:
			// ToUpper first so lower-case diacritics (ö) share the table
			// entry of their capital, and ı/ſ become plain I/S.
			u := unicode.ToUpper(r)
			if 'A' <= u && u <= 'Z' {
				b = append(b, byte(u))
			} else if base, ok := foldLatin[u]; ok {
				b = append(b, base)
			}
		}
	}
	return string(b)
}

// isNormalized reports whether s already consists only of A–Z and 0–9.
func isNormalized(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// Canonical maps every character of Normalize(s) to the representative of
// its OCR confusion class, so two plates that differ only by confusions
// share a canonical form. The classes are O/0, I/1, B/8, S/5, Z/2 and G/6;
// the letter is the representative. G/6 is included because ANPR engines
// confuse them about as often as S/5. D and Q are deliberately not
// confusable with O/0: they are distinct characters on many plates, and
// folding them would make unrelated plates collide.
//
// Canonical forms are only meant to be compared with each other; the choice
// of representative is not part of the contract.
func Canonical(s string) string {
	return canonicalOf(Normalize(s))
}

// canonicalOf is Canonical for input that is already normalized.
func canonicalOf(n string) string {
	i := 0
	for i < len(n) && confusionRep(n[i]) == n[i] {
		i++
	}
	if i == len(n) {
		return n // nothing to fold: avoid an allocation
	}
	b := []byte(n)
	for ; i < len(b); i++ {
		b[i] = confusionRep(b[i])
	}
	return string(b)
}

// confusionRep returns the representative of c's confusion class.
func confusionRep(c byte) byte {
	switch c {
	case '0':
		return 'O'
	case '1':
		return 'I'
	case '8':
		return 'B'
	case '5':
		return 'S'
	case '2':
		return 'Z'
	case '6':
		return 'G'
	}
	return c
}
