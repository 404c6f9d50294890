//go:build gocv

package lpr

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-parking/gatehouse/firmware-adapters/lpr/synth"
	"gocv.io/x/gocv"
)

// TestRecognizeRendered reads plates the test renders under perspective, tilt,
// blur, noise and JPEG compression. The classifier was trained on renderings
// too (other seeds, more fonts), so this checks the pipeline end to end, not
// accuracy on photographs: docs/BENCHMARKS.md has those figures.
func TestRecognizeRendered(t *testing.T) {
	font := testFont(t)
	rng := rand.New(rand.NewPCG(2026, 11))
	for _, tc := range []struct {
		name    string
		style   synth.Style
		country Country
	}{
		{"eu", synth.EU, CountryEU},
		{"us", synth.US, CountryUS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := NewRecognizer(Options{Country: tc.country})
			if err != nil {
				t.Fatal(err)
			}
			const n = 30
			exact, found := 0, 0
			for i := 0; i < n; i++ {
				text := randomPlate(rng, tc.style)
				data, r := renderJPEG(t, synth.Plate{Text: text, Style: tc.style, Font: font, CharHeight: 16 + rng.IntN(24),
					Tilt: rng.NormFloat64() * 4, Perspective: rng.Float64() * 0.12, Blur: rng.Float64(), Noise: rng.Float64() * 8,
					Quality: 50 + rng.IntN(40), Scene: image2(640, 480)}, rng)
				plates, err := rec.RecognizeJPEG(data)
				if err != nil {
					t.Fatalf("RecognizeJPEG(%s) = %v", text, err)
				}
				got := ""
				if len(plates) > 0 {
					got = plates[0].Text
					if IoU(plates[0].Box, r.PlateBox) > 0.5 {
						found++
					}
				}
				if got == text {
					exact++
				} else {
					t.Logf("Recognize(%s) = %q", text, got)
				}
			}
			t.Logf("%s: exact %s, plate box found %s", tc.name, pct(exact, n), pct(found, n))
			if exact < n*8/10 {
				t.Errorf("exact reads %s; want at least 80%%", pct(exact, n))
			}
			if found < n*7/10 {
				t.Errorf("plate boxes found %s; want at least 70%%", pct(found, n))
			}
		})
	}
}

// TestRecognizeRefusesBadInput checks that nothing malformed reaches OpenCV,
// whose C++ exceptions would abort the edge.
func TestRecognizeRefusesBadInput(t *testing.T) {
	rec, err := NewRecognizer(Options{})
	if err != nil {
		t.Fatal(err)
	}
	bigPNG := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x01\x00\x00\x00\x01\x00\x00\x08\x02\x00\x00\x00")
	bigJPEG := []byte{0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0x03, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"text", []byte("hello")},
		{"jpeg magic only", []byte{0xFF, 0xD8}},
		{"jpeg without frame", []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0, 0, 0xFF, 0xD9}},
		{"jpeg 65535 square", bigJPEG},
		{"png 65536 wide", bigPNG},
		{"tiny jpeg", tinyJPEG(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := rec.RecognizeJPEG(tc.data); !errors.Is(err, ErrInvalidImage) {
				t.Errorf("RecognizeJPEG(%s) = %v; want ErrInvalidImage", tc.name, err)
			}
		})
	}
	for _, tc := range []struct {
		name string
		mat  func() gocv.Mat
	}{
		{"empty mat", gocv.NewMat},
		{"float mat", func() gocv.Mat { return gocv.NewMatWithSize(100, 100, gocv.MatTypeCV32F) }},
		{"16-bit mat", func() gocv.Mat { return gocv.NewMatWithSize(100, 100, gocv.MatTypeCV16UC3) }},
		{"too small", func() gocv.Mat { return gocv.NewMatWithSize(10, 100, gocv.MatTypeCV8UC3) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.mat()
			defer m.Close()
			if _, err := rec.Recognize(m); !errors.Is(err, ErrInvalidImage) {
				t.Errorf("Recognize(%s) = %v; want ErrInvalidImage", tc.name, err)
			}
		})
	}
	// A plain grey image is valid and holds no plate.
	m := gocv.NewMatWithSize(200, 300, gocv.MatTypeCV8UC1)
	defer m.Close()
	if ps, err := rec.Recognize(m); err != nil || len(ps) != 0 {
		t.Errorf("Recognize(blank) = %v, %v; want no plates", ps, err)
	}
}

func tinyJPEG(tb testing.TB) []byte {
	m := gocv.NewMatWithSize(8, 8, gocv.MatTypeCV8UC3)
	defer m.Close()
	buf, err := gocv.IMEncode(gocv.JPEGFileExt, m)
	if err != nil {
		tb.Fatal(err)
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...)
}

// TestPartOf checks when a reading of part of a line counts as a second opinion
// for the reading of the whole: a character one pitch beyond the part does, an
// edge just beside the last character does not.
func TestPartOf(t *testing.T) {
	row := func(x0 int, n int, gaps ...int) []image.Rectangle {
		var out []image.Rectangle
		x := x0
		for i := 0; i < n; i++ {
			out = append(out, image.Rect(x, 10, x+10, 30))
			x += 14
			if i < len(gaps) {
				x += gaps[i]
			}
		}
		return out
	}
	part := Plate{Text: "G3C8P", Chars: row(114, 5)}
	whole := Plate{Text: "DG3C8P", Chars: row(100, 6)}
	if !partOf(part, whole) {
		t.Errorf("partOf(G3C8P, DG3C8P one pitch before) = false; want true")
	}
	if partOf(whole, part) {
		t.Errorf("partOf(DG3C8P, G3C8P) = true; want false: the whole is no part")
	}
	edge := Plate{Text: "G3C8PI", Chars: append(row(114, 5), image.Rect(182, 10, 184, 30))}
	if partOf(part, edge) {
		t.Errorf("partOf(G3C8P, G3C8PI with the I just beside the P) = true; want false")
	}
	doubted := Plate{Text: "DG3C8P", Chars: row(100, 6), rejects: []float64{0.4, 0, 0, 0, 0, 0}}
	if partOf(part, doubted) {
		t.Errorf("partOf(G3C8P, DG3C8P with a doubtful D) = true; want false")
	}
	// A character lost in the middle (joined to an emblem): the reading
	// without it is part of the reading with it, where the rest read alike.
	w := row(100, 6)
	inner := Plate{Text: "DGC8P", Chars: append(append([]image.Rectangle(nil), w[:2]...), w[3:]...)}
	if !partOf(inner, whole) {
		t.Errorf("partOf(DGC8P, DG3C8P) = false; want true")
	}
	if other := (Plate{Text: "DGK8P", Chars: inner.Chars}); partOf(other, whole) {
		t.Errorf("partOf(DGK8P, DG3C8P) = true; want false: the K stands where the C does")
	}
	if doubtedInner := (Plate{Text: "DG3C8P", Chars: w, rejects: []float64{0, 0, 0.4, 0, 0, 0}}); partOf(inner, doubtedInner) {
		t.Errorf("partOf(DGC8P, DG3C8P with a doubtful 3) = true; want false")
	}
	// Every other character is not part of a plate: it saw half of it.
	long := Plate{Text: "ABCDEFGH", Chars: row(100, 8)}
	sparse := Plate{Text: "BDFH", Chars: []image.Rectangle{long.Chars[1], long.Chars[3], long.Chars[5], long.Chars[7]}}
	if partOf(sparse, long) {
		t.Errorf("partOf(BDFH, ABCDEFGH) = true; want false: three characters lost between")
	}
	// Nor is a reading a line above.
	above := Plate{Text: "DGC8P", Chars: append([]image.Rectangle(nil), inner.Chars...)}
	for i := range above.Chars {
		above.Chars[i] = above.Chars[i].Add(image.Pt(0, -15))
	}
	if partOf(above, whole) {
		t.Errorf("partOf(DGC8P 15 px above, DG3C8P) = true; want false")
	}
	elsewhere := Plate{Text: "DG3C8P", Chars: row(400, 6)}
	if partOf(part, elsewhere) {
		t.Errorf("partOf(G3C8P, DG3C8P elsewhere) = true; want false")
	}
}

// TestScoreLength: a US reading of five characters ranks below the same
// reading with a sixth as sure (US series have six or seven), enough to pay
// for adding a character beyond an end; in Europe, five is a usual length.
func TestScoreLength(t *testing.T) {
	short, long := Plate{Text: "C4Z3X", Confidence: 1}, Plate{Text: "KC4Z3X", Confidence: 1}
	if d := long.score(CountryUS) - short.score(CountryUS); d <= endCost {
		t.Errorf("US: KC4Z3X scores %.2f more than C4Z3X; want more than endCost %.2f", d, endCost)
	}
	if d := long.score(CountryEU) - short.score(CountryEU); d != 0 {
		t.Errorf("EU: KC4Z3X scores %.2f more than C4Z3X; want the same", d)
	}
}

// TestRecognizeTouchingCharacters joins two characters of a rendered plate with
// a short bar (a hyphen, a dirt streak), which makes one component of them,
// two characters wide: the reader must cut it at the bar and read both.
func TestRecognizeTouchingCharacters(t *testing.T) {
	font := testFont(t)
	rng := rand.New(rand.NewPCG(7, 7))
	rec := usRecognizer(t)
	for _, tc := range []struct {
		text string
		join int // the bar joins characters join and join+1
	}{
		{"ABC1234", 2},
		{"KLM4821", 3},
		{"PRT6093", 1},
	} {
		got := readInked(t, rec, synth.Plate{Text: tc.text, Style: synth.US, Font: font, CharHeight: 30, Scene: image2(640, 480)}, rng,
			func(r synth.Rendered) image.Rectangle {
				a, b := r.CharBoxes[tc.join], r.CharBoxes[tc.join+1]
				mid := (a.Min.Y + a.Max.Y) / 2
				return image.Rect(a.Max.X-2, mid-3, b.Min.X+2, mid+3)
			})
		if got != tc.text {
			t.Errorf("Recognize(%s with %c and %c joined) = %q", tc.text, tc.text[tc.join], tc.text[tc.join+1], got)
		}
	}
}

// TestRecognizeCharacterInGap joins characters of a rendered plate to a
// blot above them (an emblem, a sticker), which makes them no
// character-shaped component: the reader must find them in the gap they
// leave between their neighbours, one character or two side by side.
func TestRecognizeCharacterInGap(t *testing.T) {
	font := testFont(t)
	rec := usRecognizer(t)
	for _, tc := range []struct {
		text        string
		first, last int // the characters joined to the blot
		deep        int // how far into them the blot reaches, in pixels
		seed        uint64
	}{
		{"ABC1234", 4, 4, 2, 8},
		{"KLM4821", 2, 2, 2, 8},
		{"KLM4821", 3, 4, 2, 8},
		// Two characters lost in every binarization: the windows a
		// third and two thirds across the gap find them.
		{"6RSE902", 1, 2, 6, 1},
		{"TRK2590", 1, 2, 6, 1},
		// The classifier is sure of the C but not of the 1 beside it:
		// no reading with the C alone, which would rank above the whole
		// plate another binarization read.
		{"ABC1234", 2, 3, 2, 2},
		// A wide space between the groups and the character beside it
		// lost: the window in the space holds no ink at all, so the
		// classifier is sure of the other one alone.
		{"KLM  4821", 3, 3, 2, 1},
		{"KLM  4821", 3, 3, 2, 2},
		// Not yet: a narrow 1 beside another character under the blot
		// (ABC1234, 3 and 4); its window holds blot across all its
		// columns, and the classifier is not sure of it.
	} {
		rng := rand.New(rand.NewPCG(7, tc.seed))
		got := readInked(t, rec, synth.Plate{Text: tc.text, Style: synth.US, Font: font, CharHeight: 30, Scene: image2(640, 480)}, rng,
			func(r synth.Rendered) image.Rectangle {
				a, b := r.CharBoxes[tc.first], r.CharBoxes[tc.last]
				return image.Rect(a.Min.X, a.Min.Y-a.Dy(), b.Max.X, a.Min.Y+tc.deep)
			})
		want := strings.ReplaceAll(tc.text, " ", "")
		if got != want {
			t.Errorf("Recognize(%s with %s under a blot) = %q", tc.text, want[tc.first:tc.last+1], got)
		}
	}
}

// twoPlates renders the plate near with characters nearH pixels tall in an
// 800×600 scene, puts a second plate far (farH pixels; none if far is "")
// into a corner clear of it and returns what rec reads.
func twoPlates(t *testing.T, rec *Recognizer, rng *rand.Rand, near, far string, nearH, farH int) []Plate {
	t.Helper()
	font := testFont(t)
	big, err := synth.Render(synth.Plate{Text: near, Style: synth.US, Font: font, CharHeight: nearH, Scene: image2(800, 600)}, rng)
	if err != nil {
		t.Fatal(err)
	}
	defer big.Image.Close()
	if far != "" {
		small, err := synth.Render(synth.Plate{Text: far, Style: synth.US, Font: font, CharHeight: farH, Scene: image2(260, 160)}, rng)
		if err != nil {
			t.Fatal(err)
		}
		defer small.Image.Close()
		var fr image.Rectangle
		for _, at := range []image.Point{{0, 0}, {800 - 260, 0}, {0, 600 - 160}, {800 - 260, 600 - 160}} {
			if fr = (image.Rectangle{Min: at, Max: at.Add(image.Pt(260, 160))}); !fr.Overlaps(big.PlateBox) {
				break
			}
		}
		if fr.Overlaps(big.PlateBox) {
			t.Fatalf("no corner clear of the near plate at %v", big.PlateBox)
		}
		dst := big.Image.Region(fr)
		small.Image.CopyTo(&dst)
		dst.Close()
	}
	plates, err := rec.Recognize(big.Image)
	if err != nil {
		t.Fatal(err)
	}
	return plates
}

// readsOf lists what Recognize returned, text and confidence, for messages.
func readsOf(ps []Plate) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %.2f", p.Text, p.Confidence)
	}
	return "[" + b.String() + "]"
}

// TestRecognizeLargerPlateFirst puts a second, smaller plate (a car farther
// off) into the scene of the lane's plate, both read with full confidence:
// the larger one is the plate the camera is aimed at and comes first,
// wherever in the image either stands (the renderer places them).
func TestRecognizeLargerPlateFirst(t *testing.T) {
	rec := usRecognizer(t)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct{ near, far string }{{"ABC1234", "RTN5832"}, {"KLM4821", "HKP6297"}} {
		for range 2 {
			plates := twoPlates(t, rec, rng, tc.near, tc.far, 36, 22)
			far := slices.ContainsFunc(plates, func(p Plate) bool { return p.Text == tc.far })
			if len(plates) < 2 || plates[0].Text != tc.near || !far {
				t.Errorf("Recognize(%s near, %s far) = %s; want %s first, %s too", tc.near, tc.far, readsOf(plates), tc.near, tc.far)
			}
		}
	}
}

// TestRecognizeUnsureBetweenPlates: two plates of one size in the picture
// leave the reader unsure which is the lane's, one alone does not.
func TestRecognizeUnsureBetweenPlates(t *testing.T) {
	rec := usRecognizer(t)
	rng := rand.New(rand.NewPCG(5, 6))
	alone := twoPlates(t, rec, rng, "ABC1234", "", 24, 24)
	if len(alone) == 0 || alone[0].Text != "ABC1234" || alone[0].Confidence < 0.9 {
		t.Fatalf("Recognize(ABC1234 alone) = %s; want it with confidence ≥ 0.9", readsOf(alone))
	}
	both := twoPlates(t, rec, rng, "ABC1234", "RTN5832", 24, 24)
	if len(both) < 2 || both[0].Confidence > 0.8 || both[1].Confidence > 0.8 {
		t.Errorf("Recognize(ABC1234 and RTN5832 alike) = %s; want both with confidence at most 0.8", readsOf(both))
	}
}

// TestRecognizeSmallCharactersTouchingFrame draws a frame's edge across the
// tops of small characters, which joins them all into one component: the
// fine binarization with long horizontal runs removed must free them.
func TestRecognizeSmallCharactersTouchingFrame(t *testing.T) {
	font := testFont(t)
	rec := usRecognizer(t)
	for _, tc := range []struct {
		text string
		h    int // character height in pixels
	}{{"KLM4821", 14}, {"4WDN345", 20}} {
		rng := rand.New(rand.NewPCG(9, uint64(tc.h)))
		got := readInked(t, rec, synth.Plate{Text: tc.text, Style: synth.US, Font: font, CharHeight: tc.h, Scene: image2(640, 480), Blur: 0.8, Noise: 4}, rng,
			func(r synth.Rendered) image.Rectangle {
				a, b := r.CharBoxes[0], r.CharBoxes[len(r.CharBoxes)-1]
				return image.Rect(a.Min.X-tc.h, a.Min.Y-2, b.Max.X+tc.h, a.Min.Y+1)
			})
		if got != tc.text {
			t.Errorf("Recognize(%s, %d pixels, a frame across the tops) = %q", tc.text, tc.h, got)
		}
	}
}

// TestRecognizeFaintPlate reads blurred plates with a twelfth of the usual
// contrast (a dirty plate, a dim lane at dusk): their strokes fall short of
// the usual threshold offset, and the reader must still find them (the
// low-offset pass of passes).
func TestRecognizeFaintPlate(t *testing.T) {
	font := testFont(t)
	rec := usRecognizer(t)
	rng := rand.New(rand.NewPCG(3, 3))
	const n, want = 12, 6
	read := 0
	for range n {
		text := randomPlate(rng, synth.US)
		plates := readEdited(t, rec, synth.Plate{Text: text, Style: synth.US, Font: font, CharHeight: 20, Blur: 1.5, Noise: 1, Scene: image2(640, 480)}, rng,
			func(r *synth.Rendered) {
				// Contrast ×0.08 around mid-grey.
				r.Image.ConvertToWithParams(&r.Image, gocv.MatTypeCV8UC3, 0.08, 128*0.92)
			})
		if len(plates) > 0 && plates[0].Text == text {
			read++
		}
	}
	if read < want {
		t.Errorf("read %d of %d faint plates exactly, want at least %d", read, n, want)
	}
}

// TestRecognizeStickerBeyondEnd draws a registration sticker's small digits
// one pitch beyond the last character (two thirds of its height, as on many
// US plates): they are no character of the plate, however sure the
// classifier is of them, and the read stays the plate's.
func TestRecognizeStickerBeyondEnd(t *testing.T) {
	font := testFont(t)
	rec := usRecognizer(t)
	for i, text := range []string{"10DTM", "KX482", "PRT609"} {
		rng := rand.New(rand.NewPCG(11, uint64(i)))
		plates := readEdited(t, rec, synth.Plate{Text: text, Style: synth.US, Font: font, CharHeight: 40, Squeeze: 0.55, Scene: image2(640, 480)}, rng,
			func(r *synth.Rendered) {
				last := r.CharBoxes[len(r.CharBoxes)-1]
				h := last.Dy()
				// The sticker's digits, bottom-aligned with the characters.
				gocv.PutText(&r.Image, "9", image.Pt(last.Max.X+h/4, last.Max.Y), gocv.FontHersheySimplex, float64(h)*0.65/22, color.RGBA{20, 20, 20, 0}, max(2, h/12))
			})
		if len(plates) == 0 || plates[0].Text != text {
			t.Errorf("Recognize(%s with a sticker's 9 beyond it) = %s, want %s first", text, readsOf(plates), text)
		}
	}
}

// TestRecognizeOddLengthUnsure: a reading shorter or longer than plates are
// (characters lost or added) is unsure however sure the classifier is of each
// character; a whole plate of the same characters is not.
func TestRecognizeOddLengthUnsure(t *testing.T) {
	font := testFont(t)
	rec := usRecognizer(t)
	rng := rand.New(rand.NewPCG(8, 9))
	for _, tc := range []struct {
		text   string
		unsure bool
	}{
		{"KRX4926", false},
		{"7PLM", true},
		{"HW3K", true},
		{"KRX492638", true},
	} {
		plates := readEdited(t, rec, synth.Plate{Text: tc.text, Style: synth.US, Font: font, CharHeight: 30, Scene: image2(640, 480)}, rng, func(*synth.Rendered) {})
		if len(plates) == 0 || plates[0].Text != tc.text {
			t.Errorf("Recognize(%s) = %s; want it read", tc.text, readsOf(plates))
			continue
		}
		// At most 0.5, below the lanes' default plate_confidence (0.6); the whole plate above.
		if c := plates[0].Confidence; tc.unsure && c > 0.5 || !tc.unsure && c < 0.8 {
			t.Errorf("Recognize(%s): confidence %.2f; want unsure %v (at most 0.5)", tc.text, c, tc.unsure)
		}
	}
}

// TestRankCaptionLast: the date and time a camera prints into the top of its
// pictures is read as text, but text with no room for a plate's rim inside
// the picture is no plate the lane can use: a plate read whole ranks first,
// also one the reader is far from sure of. (Boxes and characters as read in
// one of the benchmark's photographs.)
func TestRankCaptionLast(t *testing.T) {
	rec := usRecognizer(t)
	chars := func(x, y, h, n int) []image.Rectangle {
		var cs []image.Rectangle
		for i := range n {
			cs = append(cs, image.Rect(x+i*8, y, x+i*8+6, y+h))
		}
		return cs
	}
	caption := Plate{Text: "20140513", Confidence: 0.95, Box: image.Rect(53, 0, 123, 21), Chars: chars(56, 4, 11, 8), cut: true}
	plate := Plate{Text: "HK057", Confidence: 0.46, Box: image.Rect(326, 123, 379, 166), Chars: chars(332, 136, 16, 5)}
	score := rec.rank([]Plate{caption, plate})
	if score[1] <= score[0] {
		t.Errorf("rank: caption %s %.2f, plate %s %.2f; want the plate first", caption.Text, score[0], plate.Text, score[1])
	}
}

// TestAgreement checks the second opinion: the checker agrees with a plate
// read right, doubts one whose character was changed to another (not its
// confusable partner, which the plate's format decides), and a checker that
// agrees with nothing leaves Recognize's text as it was but its confidence
// near 0.
func TestAgreement(t *testing.T) {
	rec := usRecognizer(t)
	rng := rand.New(rand.NewPCG(7, 7))
	data, _ := renderJPEG(t, synth.Plate{Text: "KWX4829", Style: synth.US, Font: testFont(t), CharHeight: 30, Scene: image2(640, 480)}, rng)
	plates, err := rec.RecognizeJPEG(data)
	if err != nil || len(plates) == 0 || plates[0].Text != "KWX4829" {
		t.Fatalf("RecognizeJPEG = %v, %v; want KWX4829 first", plates, err)
	}
	if plates[0].glyphs != nil {
		t.Error("a plate handed out still holds its glyphs")
	}
	// The candidate behind it, glyphs and all.
	img, err := DecodeImage(data)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	found, _ := rec.candidates(img)
	i := slices.IndexFunc(found, func(p Plate) bool { return p.Text == "KWX4829" })
	if i < 0 {
		t.Fatal("no candidate reads KWX4829")
	}
	p := found[i]
	if len(p.glyphs) != len(p.Text) {
		t.Fatalf("%d glyphs kept for %d characters", len(p.glyphs), len(p.Text))
	}
	right := rec.agreement(p)
	if right < 0.9 {
		t.Errorf("agreement with the right read = %.3f, want at least 0.9", right)
	}
	wrong := p
	wrong.Text = "KHX4829" // W read as H: what the reader does with narrow US fonts
	if a := rec.agreement(wrong); a > 0.75 || a > right*0.8 {
		t.Errorf("agreement with %s = %.3f (right read %.3f); want it well below", wrong.Text, a, right)
	}
	partner := p
	partner.Text = "KWX4B29" // 8 and B: the format's call, not the glyph's
	if a := rec.agreement(partner); a < right*0.99 {
		t.Errorf("agreement with %s = %.3f, want that of the right read (%.3f)", partner.Text, a, right)
	}

	// A checker sure that every glyph is a Q.
	q := testConvNet([3]int{1, 1, 1}, 1, 0, func([]float32) {})
	q.b2[strings.IndexByte(Classes, 'Q')] = 20
	doubting := *rec
	doubting.check = &ensemble{nets: []classifier{q}, scratch: q.scratch(), out: q.out}
	again, err := doubting.RecognizeJPEG(data)
	if err != nil || len(again) == 0 || again[0].Text != p.Text {
		t.Fatalf("with a doubting checker: %v, %v; want the same text %s", again, err, p.Text)
	}
	if again[0].Confidence > 0.01 || plates[0].Confidence < 0.5 {
		t.Errorf("confidence %.3f with the checker, %.3f with one that agrees with nothing; want it near 0", plates[0].Confidence, again[0].Confidence)
	}
}

// TestAgreementInsertedCharacters checks that the second opinion sees the
// glyph of every character of a reading, also of characters that were no
// component of their own: read as a wide component's halves (two characters
// joined by a bar) or found in a gap window (two characters joined to a blot
// above them). A glyph missing or misplaced would leave the plate unsure
// although the checker agrees with its characters.
func TestAgreementInsertedCharacters(t *testing.T) {
	font := testFont(t)
	rec := usRecognizer(t)
	for _, tc := range []struct {
		name, text string
		seed       uint64
		ink        func(r synth.Rendered) image.Rectangle
	}{
		{"halves", "ABC1234", 1, func(r synth.Rendered) image.Rectangle {
			a, b := r.CharBoxes[4], r.CharBoxes[5]
			mid := (a.Min.Y + a.Max.Y) / 2
			return image.Rect(a.Max.X-2, mid-8, b.Min.X+2, mid+8)
		}},
		{"gap", "6RSE902", 1, func(r synth.Rendered) image.Rectangle {
			a, b := r.CharBoxes[1], r.CharBoxes[2]
			return image.Rect(a.Min.X, a.Min.Y-a.Dy(), b.Max.X, a.Min.Y+6)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := synth.Render(synth.Plate{Text: tc.text, Style: synth.US, Font: font, CharHeight: 30, Scene: image2(640, 480)}, rand.New(rand.NewPCG(7, tc.seed)))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Image.Close()
			gocv.Rectangle(&r.Image, tc.ink(r), color.RGBA{0, 0, 0, 0}, -1)
			found, _ := rec.candidates(r.Image)
			n := 0
			for _, p := range found {
				if p.Text != tc.text {
					continue
				}
				n++
				if len(p.glyphs) != len(p.Text) {
					t.Fatalf("%s read with %d glyphs", p.Text, len(p.glyphs))
				}
				if a := rec.agreement(p); a < 0.8 {
					t.Errorf("agreement with %s = %.3f, want at least 0.8", p.Text, a)
				}
			}
			if n == 0 {
				t.Fatalf("no candidate reads %s", tc.text)
			}
		})
	}
}
