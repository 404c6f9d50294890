//go:build gocv

package synth

import (
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/opentype"
)

func TestRenderCharBoxes(t *testing.T) {
	f, err := opentype.Parse(gobold.TTF)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i, p := range []Plate{
		{Text: "AB 123", Style: EU, Font: f, CharHeight: 30},
		{Text: "7WWM421", Style: US, Font: f, CharHeight: 24, Tilt: 4, Perspective: 0.1, Tracking: 0.2},
		{Text: "M1I1W", Style: EU, Font: f, CharHeight: 40, Tracking: -0.05, Squeeze: 0.8},
		{Text: "KX 4821", Style: US, Font: f, CharHeight: 30, Weight: 3, Clutter: true, Tracking: 0.1},
		{Text: "HB6L0Z", Style: EU, Font: f, CharHeight: 20, Weight: -3, Clutter: true},
	} {
		r, err := Render(p, rng)
		if err != nil {
			t.Fatal(err)
		}
		r.Image.Close()
		chars := strings.ReplaceAll(p.Text, " ", "")
		if len(r.CharBoxes) != len(chars) {
			t.Fatalf("plate %d: %d character boxes for %q", i, len(r.CharBoxes), chars)
		}
		grown := r.TextBox.Inset(-r.TextBox.Dy() / 4)
		for k, b := range r.CharBoxes {
			if b.Empty() || !b.In(grown) {
				t.Errorf("plate %d: %c's box %v not within the text %v", i, chars[k], b, r.TextBox)
			}
			if k > 0 {
				prev := r.CharBoxes[k-1]
				if c, pc := b.Min.X+b.Max.X, prev.Min.X+prev.Max.X; c <= pc {
					t.Errorf("plate %d: %c's box %v is not right of %c's %v", i, chars[k], b, chars[k-1], prev)
				}
				// Neighbours share at most a sliver (tilt makes boxes overlap a little).
				if in := b.Intersect(prev); in.Dx() > b.Dx()/2 {
					t.Errorf("plate %d: %c and %c boxes overlap: %v %v", i, chars[k-1], chars[k], prev, b)
				}
			}
		}
		// The characters fill the text box: the first starts and the last ends there.
		first, last := r.CharBoxes[0], r.CharBoxes[len(r.CharBoxes)-1]
		if d := first.Min.X - r.TextBox.Min.X; d < -3 || d > 3 {
			t.Errorf("plate %d: first character starts %d px from the text box", i, d)
		}
		if d := r.TextBox.Max.X - last.Max.X; d < -3 || d > 3 {
			t.Errorf("plate %d: last character ends %d px from the text box", i, d)
		}
	}
}
