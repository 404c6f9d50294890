package lpr

import (
	"strings"
	"testing"
)

// probsFor builds classifier outputs: each position's characters with their
// probabilities, the rest sharing what is left.
func probsFor(pos ...map[byte]float32) [][]float32 {
	out := make([][]float32, len(pos))
	for i, m := range pos {
		p := make([]float32, len(Classes))
		var sum float32
		for c, v := range m {
			p[strings.IndexByte(Classes, c)] = v
			sum += v
		}
		rest := (1 - sum) / float32(len(Classes)-len(m))
		for k := range p {
			if p[k] == 0 {
				p[k] = rest
			}
		}
		out[i] = p
	}
	return out
}

func sure(c byte) map[byte]float32 { return map[byte]float32{c: 0.97} }

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name     string
		probs    [][]float32
		country  Country
		want     string
		format   string
		minConf  float64
		maxConfB float64
	}{
		{"clear", probsFor(sure('A'), sure('B'), sure('1'), sure('2'), sure('C'), sure('D'), sure('E')), CountryEU, "AB12CDE", "LLNNLLL", 0.9, 1},
		{"O among digits is 0", probsFor(sure('A'), sure('B'), sure('C'), sure('1'), map[byte]float32{'O': 0.5, '0': 0.45}, sure('3'), sure('4')), CountryUS, "ABC1034", "LLLNNNN", 0.9, 1},
		{"8 among letters is B", probsFor(sure('X'), map[byte]float32{'8': 0.55, 'B': 0.4}, sure('1'), sure('2'), sure('C'), sure('D'), sure('E')), CountryEU, "XB12CDE", "LLNNLLL", 0.9, 1},
		{"a clear odd shape is kept", probsFor(sure('Y'), sure('G'), sure('9'), sure('X'), sure('2'), sure('G')), CountryUS, "YG9X2G", "", 0.9, 1},
		// A classifier sure of O where the plate's shape wants a digit: its
		// preference counts at most pairDoubt, the shape decides
		// (LLNNNLL, Slovak and Croatian fonts draw O and 0 alike).
		{"a sure O inside digits is still 0", probsFor(sure('R'), sure('K'), sure('6'), map[byte]float32{'O': 0.993, '0': 0.004}, sure('3'), sure('A'), sure('V')), CountryEU, "RK603AV", "LLNNNLL", 0.5, 1},
		// The limit is for O and 0 only: a sure B among digits stays B.
		{"a sure B among digits stays", probsFor(sure('1'), sure('2'), map[byte]float32{'B': 0.97, '8': 0.02}, sure('3'), sure('4')), CountryEU, "12B34", "", 0.5, 1},
		// Most US series leave out I, O and Q: where the shape is no help,
		// a near tie goes to the digit; in Europe it stays with the letter.
		{"US near tie is 1, not I", probsFor(sure('A'), sure('B'), sure('C'), sure('D'), map[byte]float32{'I': 0.5, '1': 0.47}), CountryUS, "ABCD1", "", 0, 1},
		// A US plate alternating letters and digits (HL0KTY1): the run
		// penalty would make its zero a letter, but US series draw O and 0
		// alike and issue no O, so it stays 0; in Europe the run wins.
		{"US zero among letters stays 0", probsFor(sure('H'), sure('L'), map[byte]float32{'O': 0.9, '0': 0.08}, sure('K'), sure('T'), sure('Y'), sure('1')), CountryUS, "HL0KTY1", "", 0.5, 1},
		// A classifier so sure of O that 0 is not among its top three:
		// the limited preference still leaves 0 second, and the country
		// rule takes it, sure (the glyph is O or 0, not D).
		{"US sure O among letters is 0", probsFor(sure('H'), sure('L'), map[byte]float32{'O': 0.9, 'D': 0.05, 'Q': 0.03, '0': 0.015}, sure('K'), sure('T'), sure('Y'), sure('1')), CountryUS, "HL0KTY1", "", 0.9, 1},
		{"EU zero among letters is O", probsFor(sure('H'), sure('L'), map[byte]float32{'O': 0.9, '0': 0.08}, sure('K'), sure('T'), sure('Y'), sure('1')), CountryEU, "HLOKTY1", "", 0.5, 1},
		{"EU near tie stays I", probsFor(sure('A'), sure('B'), sure('C'), sure('D'), map[byte]float32{'I': 0.5, '1': 0.47}), CountryEU, "ABCDI", "", 0, 1},
		{"a doubtful character lowers confidence", probsFor(sure('A'), map[byte]float32{'H': 0.4, 'M': 0.35}, sure('1'), sure('2'), sure('C')), CountryEU, "AH12C", "", 0, 0.9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, format, conf := decode(tc.probs, tc.country)
			if got != tc.want || format != tc.format || conf < tc.minConf || conf > tc.maxConfB {
				t.Errorf("decode = %q, %q, %.2f; want %q, %q, confidence in [%.2f, %.2f]", got, format, conf, tc.want, tc.format, tc.minConf, tc.maxConfB)
			}
		})
	}
	if got, _, conf := decode(nil, CountryEU); got != "" || conf != 0 {
		t.Errorf("decode(nil) = %q, %v", got, conf)
	}
}

func TestNetworkRoundTrip(t *testing.T) {
	var samples []GlyphSample
	for range 100 {
		samples = append(samples, GlyphSample{X: make([]float32, GlyphFeatures), Class: 3}, GlyphSample{X: ones(GlyphFeatures), Class: 10})
	}
	b, err := Train(samples, TrainOptions{Hidden: 8, Epochs: 5, Rate: 0.05, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	b2, err := Train(samples, TrainOptions{Hidden: 12, Epochs: 5, Rate: 0.05, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	n, err := decodeEnsemble(b)
	if err != nil || len(n.nets) != 1 {
		t.Fatalf("decodeEnsemble(one network) = %v, %v", n, err)
	}
	// Two networks in one file: the mean of their probabilities.
	both, err := decodeEnsemble(append(append([]byte(nil), b...), b2...))
	if err != nil || len(both.nets) != 2 || both.scratch != 12 {
		t.Fatalf("decodeEnsemble(two networks) = %v, %v", both, err)
	}
	h, q, p := make([]float32, both.scratch), make([]float32, both.out), make([]float32, both.out)
	p1, p2 := make([]float32, both.out), make([]float32, both.out)
	both.forward(samples[1].X, h, q, p)
	both.nets[0].forward(samples[1].X, h[:8], p1)
	both.nets[1].forward(samples[1].X, h, p2)
	for k := range p {
		if d := p[k] - (p1[k]+p2[k])/2; d > 1e-6 || d < -1e-6 {
			t.Fatalf("ensemble probability %d = %v, want the mean of %v and %v", k, p[k], p1[k], p2[k])
		}
	}
	for _, s := range samples {
		n.forward(s.X, h, q, p)
		best := 0
		for k := range p {
			if p[k] > p[best] {
				best = k
			}
		}
		if best != s.Class {
			t.Errorf("class of sample = %d; want %d", best, s.Class)
		}
	}
	for _, bad := range [][]byte{nil, []byte("LPRN1"), b[:len(b)-1], append([]byte("XXXXX"), b[5:]...), append(append([]byte(nil), b...), b2[:40]...)} {
		if _, err := decodeEnsemble(bad); err == nil {
			t.Errorf("decodeEnsemble(%d bytes) accepted a broken model", len(bad))
		}
	}
}

func ones(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 1
	}
	return v
}
