package lpr

import (
	"math"
	"sort"
	"strings"
)

// Country selects the plate formats the reader expects. Plates that fit none
// are still read, but a confusable character (O/0, I/1, B/8, S/5, Z/2, G/6)
// is then resolved towards a format.
type Country string

// Countries with format knowledge.
const (
	// CountryEU covers European plates: letters and digits in at most three
	// runs (DE "M AB 1234", FR "AB 123 CD", NL "12 ABC 3", UK "AB12 CDE").
	CountryEU Country = "eu"
	// CountryUS covers US plates: mostly "ABC1234", "1ABC234", "ABC123",
	// "123ABC"; vanity plates are read without the format.
	CountryUS Country = "us"
)

// formatsOf lists the letter/digit shapes (L letter, N digit) that country
// issues, each worth a bonus in nats over a shape it does not issue.
var formatsOf = map[Country]map[string]float64{
	CountryUS: {
		"LLLNNNN": 1.5, "NLLLNNN": 1.5, "LLLNNN": 1, "NNNLLL": 1, "NNNLLLL": 0.5,
		"LLNNNNN": 0.5, "NLLNNN": 0.5, "LLNNNN": 0.5, "NNNNLL": 0.5, "LLLNNNL": 0.5,
	},
	CountryEU: {
		"LLNNLLL": 1, "LLNNNLL": 1, "NNNNLLL": 1, "LLLNNNN": 0.5, "LLNNNNN": 0.5,
		"LNNNN": 0.3, "LLNNNN": 0.3, "LLLNNN": 0.3, "LNNNNN": 0.3,
	},
}

// runPenalty is what each letter/digit run beyond the second costs, in nats: a
// plate rarely alternates letters and digits more than twice, so a character
// that reads about as well as a letter as a digit goes with its neighbours.
const runPenalty = 1.2

// confusable are the pairs that look alike on plates; decode may swap a
// character for its partner when the shape of the plate asks for it.
var confusable = map[byte]byte{
	'0': 'O', 'O': '0', '1': 'I', 'I': '1', '8': 'B', 'B': '8',
	'5': 'S', 'S': '5', '2': 'Z', 'Z': '2', '6': 'G', 'G': '6',
}

// pairDoubt is, per character, how many nats the classifier's preference for
// it over its confusable partner counts at most (absent: no limit).
var pairDoubt = map[byte]float64{'0': 1, 'O': 1}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// choice is one alternative for one position of a plate.
type choice struct {
	c    byte
	logp float64
}

// decode turns the classifier's probabilities for each character of a plate
// (probs[i][k] for Classes[k]) into plate text, using country's formats. It
// returns the text, the format it fits ("" if none) and a confidence in 0..1:
// the geometric mean of the per-character probabilities, where a character's
// probability includes its confusable partner only when the format decided
// between them.
func decode(probs [][]float32, country Country) (string, string, float64) {
	n := len(probs)
	if n == 0 {
		return "", "", 0
	}
	if fold := folded[country]; len(fold) > 0 {
		// A copy: probs belongs to the caller.
		fp := make([][]float32, n)
		for i, p := range probs {
			fp[i] = append([]float32(nil), p...)
			for from, to := range fold {
				fp[i][to] += fp[i][from]
				fp[i][from] = 0
			}
		}
		probs = fp
	}
	// Per position: the top three characters (enough for every confusable pair).
	alts := make([][]choice, n)
	for i, p := range probs {
		idx := make([]int, len(p))
		for k := range idx {
			idx[k] = k
		}
		sort.Slice(idx, func(a, b int) bool { return p[idx[a]] > p[idx[b]] })
		for _, k := range idx[:3] {
			alts[i] = append(alts[i], choice{Classes[k], math.Log(float64(max(p[k], 1e-6)))})
		}
		// The partner of the best character competes even when it is not in the top three.
		if q, ok := confusable[alts[i][0].c]; ok {
			k := strings.IndexByte(Classes, q)
			found := false
			for _, a := range alts[i] {
				found = found || a.c == q
			}
			if !found {
				alts[i] = append(alts[i], choice{q, math.Log(float64(max(p[k], 1e-6)))})
			}
			// Within the pair, the glyph's shape counts at most pairDoubt
			// nats: many plate fonts draw O and 0 nearly alike, and a
			// classifier trained on other fonts is sure of the wrong one.
			// The pair's total stays; the plate's shape decides the
			// split. (I/1, B/8 and the others differ enough in shape to
			// keep the classifier's word.)
			c := alts[i][0].c
			pc, pq := float64(p[strings.IndexByte(Classes, c)]), float64(p[k])
			if d, ok := pairDoubt[c]; ok && pc > 0 && pq > 0 && math.Log(pc/pq) > d {
				tot, share := pc+pq, 1/(1+math.Exp(-d))
				for j := range alts[i] {
					switch alts[i][j].c {
					case c:
						alts[i][j].logp = math.Log(tot * share)
					case q:
						alts[i][j].logp = math.Log(tot * (1 - share))
					}
				}
				// The partner may now rank above the third of the
				// top three, which the search below keeps.
				sort.SliceStable(alts[i], func(a, b int) bool { return alts[i][a].logp > alts[i][b].logp })
			}
		}
	}
	// Search the combinations of the alternatives within 4 nats (≈ 55 times) of
	// each position's best: positions whose runner-up is far behind keep their best.
	best, bestScore := "", math.Inf(-1)
	var walk func(i int, b []byte, score float64)
	walk = func(i int, b []byte, score float64) {
		if i == n {
			s := score + shapeScore(b, country)
			if s > bestScore {
				best, bestScore = string(b), s
			}
			return
		}
		for _, a := range alts[i] {
			walk(i+1, append(b, a.c), score+a.logp)
		}
	}
	for i := range alts { // at most three per position: 3^10 shapes at worst
		top := alts[i][0].logp
		kept := alts[i][:1]
		for _, a := range alts[i][1:] {
			if top-a.logp <= 4 && len(kept) < 3 {
				kept = append(kept, a)
			}
		}
		alts[i] = kept
	}
	walk(0, make([]byte, 0, n), 0)

	shape := shapeOf([]byte(best))
	format := ""
	if _, ok := formatsOf[country][shape]; ok {
		format = shape
	}
	var logConf float64
	for i, p := range probs {
		c := best[i]
		pc := float64(p[strings.IndexByte(Classes, c)])
		if q, ok := confusable[c]; ok && (format != "" || runs([]byte(best)) <= 2) {
			// The shape decided between c and q: both are evidence for this read.
			pc += float64(p[strings.IndexByte(Classes, q)])
		}
		logConf += math.Log(max(min(pc, 1), 1e-6))
	}
	return best, format, math.Exp(logConf / float64(n))
}

// shapeOf writes b as letters (L) and digits (N).
func shapeOf(b []byte) string {
	s := make([]byte, len(b))
	for i, c := range b {
		s[i] = 'L'
		if isDigit(c) {
			s[i] = 'N'
		}
	}
	return string(s)
}

// runs counts the letter and digit runs of b.
func runs(b []byte) int {
	r := 0
	for i := range b {
		if i == 0 || isDigit(b[i]) != isDigit(b[i-1]) {
			r++
		}
	}
	return r
}

// rareLetters are letters a country's standard series leave out, each costing
// that many nats: several US states leave out I and Q, but others issue them,
// so a clear one still wins. Vanity plates may have any letter.
var rareLetters = map[Country]map[byte]float64{CountryUS: {'I': 0.7, 'Q': 0.7}}

// folded are, per country, letters read as their look-alike digit: most US
// states issue no O on standard plates and draw their zero like it, so there
// the O/0 glyph is 0, whatever its shape and its neighbours (a vanity plate's
// O comes out as 0, which the fuzzy matcher treats alike).
var folded = map[Country]map[int]int{
	CountryUS: {strings.IndexByte(Classes, 'O'): strings.IndexByte(Classes, '0')},
}

// shapeScore is the prior of b in nats: the format bonus, less the run penalty
// and the cost of rare letters.
func shapeScore(b []byte, country Country) float64 {
	s := formatsOf[country][shapeOf(b)]
	if r := runs(b); r > 2 {
		s -= runPenalty * float64(r-2)
	}
	for _, c := range b {
		s -= rareLetters[country][c]
	}
	return s
}
