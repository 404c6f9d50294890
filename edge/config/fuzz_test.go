package config

import (
	"errors"
	"os"
	"testing"
)

// FuzzParse feeds Parse arbitrary bytes: it must never panic, must return
// either a facility or problems, and must say the same thing twice.
func FuzzParse(f *testing.F) {
	for _, path := range []string{examplePath, "testdata/bad.yaml"} {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(base))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("permits:\n  - &p {id: p, plates: &pl [a, b]}\n  - {<<: *p, plates: [*pl, *pl]}\n"))
	f.Add([]byte("a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\nlevels: [*c, *c]\n"))
	f.Add([]byte("zones:\n  - &z {id: Z, spot_ranges: [{from: 0, to: 99999}]}\n  - *z\n  - *z\n"))
	f.Add([]byte("devices:\n  - &d {id: x}\n  - {<<: [*d, *d], kind: loop}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fac, err := Parse("f.yaml", data)
		if err == nil {
			if fac == nil {
				t.Fatal("Parse = nil, nil; want a facility or problems")
			}
			return
		}
		var ps *Problems
		if !errors.As(err, &ps) || len(ps.List) == 0 {
			t.Fatalf("Parse = %v; want *Problems with at least one problem", err)
		}
		if fac != nil {
			t.Errorf("Parse returned a facility with problems")
		}
		_, again := Parse("f.yaml", data)
		if again == nil || again.Error() != err.Error() {
			t.Errorf("Parse twice gave\n%v\nand\n%v", err, again)
		}
	})
}
