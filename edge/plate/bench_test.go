package plate

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

func BenchmarkIndexLookup(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	x := NewIndex()
	plates := make([]string, 100_000)
	for i := range plates {
		plates[i] = randString(rng, plateAlphabet, 5, 8)
		x.Add(plates[i], "id-"+strconv.Itoa(i))
	}
	// A mix of what a lane sees: exact reads, confusions, one edit, strangers.
	reads := make([]string, 1024)
	for i := range reads {
		p := plates[rng.IntN(len(plates))]
		switch i % 4 {
		case 0:
			reads[i] = p
		case 1:
			reads[i] = Canonical(p)
		case 2:
			reads[i] = randEdit(rng, p)
		default:
			reads[i] = randString(rng, plateAlphabet, 5, 8)
		}
	}
	i := 0
	for b.Loop() {
		x.Lookup(reads[i%len(reads)])
		i++
	}
}

func BenchmarkVote(b *testing.B) {
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	reads := []Read{
		{Text: "AB-1234", Confidence: 0.91, At: t0, Source: "cam-1"},
		{Text: "A8 1234", Confidence: 0.72, At: t0.Add(80 * time.Millisecond), Source: "cam-1"},
		{Text: "AB 1234", Confidence: 0.88, At: t0.Add(160 * time.Millisecond), Source: "cam-2"},
		{Text: "AB I234", Confidence: 0.65, At: t0.Add(240 * time.Millisecond), Source: "cam-2"},
		{Text: "XB 1234", Confidence: 0.40, At: t0.Add(320 * time.Millisecond), Source: "cam-1"},
	}
	for b.Loop() {
		Vote(reads, 0.5)
	}
}
