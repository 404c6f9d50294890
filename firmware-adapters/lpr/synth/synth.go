//go:build gocv

// Package synth renders licence plates with known text into scenes, under
// perspective, blur, noise and JPEG compression: training data for the glyph
// classifier (cmd/lprtrain) and test images for the recognizer, so that neither
// depends on real photographs.
package synth

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"gocv.io/x/gocv"
	"golang.org/x/image/font"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// Style is the kind of plate drawn.
type Style int

// Plate styles.
const (
	// EU is a long plate (520×110 mm) with a blue band on the left.
	EU Style = iota
	// US is a 12×6 in plate with a state name above the characters.
	US
)

// FontDirs are where Debian installs the fonts Fonts looks for.
var FontDirs = []string{"/usr/share/fonts/truetype", "/usr/share/fonts/opentype"}

// Fonts returns the paths of the installed sans-serif fonts whose names are
// listed, in that order; missing ones are skipped.
func Fonts(names ...string) []string {
	var out []string
	for _, n := range names {
	search:
		for _, d := range FontDirs {
			// Packages nest their fonts one to three folders deep
			// (truetype/roboto/unhinted/RobotoTTF/Roboto-Bold.ttf).
			for _, pat := range []string{"*", "*/*", "*/*/*"} {
				m, _ := filepath.Glob(filepath.Join(d, pat, n))
				if len(m) > 0 {
					out = append(out, m[0])
					break search
				}
			}
		}
	}
	return out
}

// LoadFont parses a TrueType, OpenType or WOFF 1.0 font file.
func LoadFont(path string) (*opentype.Font, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) >= 4 && string(b[:4]) == "wOFF" {
		if b, err = WOFFToSFNT(b); err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
	}
	return opentype.Parse(b)
}

// TestFontName is the font tests render their plates with: DejaVu Sans Bold,
// of Debian's fonts-dejavu-core, which .ci/install-deps installs.
const TestFontName = "DejaVuSans-Bold.ttf"

// TestFont loads TestFontName, or says which package to install.
func TestFont() (*opentype.Font, error) {
	paths := Fonts(TestFontName)
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s not found: apt-get install fonts-dejavu-core (make deps)", TestFontName)
	}
	return LoadFont(paths[0])
}

// Plate describes one rendering.
type Plate struct {
	Text  string // characters to draw; spaces leave a gap
	Style Style
	Font  *opentype.Font
	// CharHeight is the height of the characters in the final image, in pixels.
	CharHeight int
	// Tilt is the in-plane rotation in degrees; Perspective the corner jitter as
	// a share of the plate height; Blur the Gaussian sigma in final pixels; Noise
	// the standard deviation of added noise in grey levels; Quality the JPEG
	// quality (0: no JPEG round trip).
	Tilt, Perspective, Blur, Noise float64
	Quality                        int
	// Inverse draws light characters on a dark plate.
	Inverse bool
	// Squeeze scales the text's width (0: 1), for narrow and wide plate fonts;
	// Weight thickens (> 0) or thins (< 0) the strokes by that many pixels at
	// the 64-pixel drawing height.
	Squeeze float64
	Weight  int
	// Tracking is the space added between characters, as a share of their
	// height (negative: less than the font's own, so that they may touch).
	Tracking float64
	// Clutter adds what real scenes put near plates: screws beside the text,
	// a slogan under US characters, a radiator grille of bars in the scene,
	// a shadow across the plate and lower contrast.
	Clutter bool
	// Scene is the size of the whole image; zero: 3 × the plate.
	Scene image.Point
}

// Rendered is a scene with a plate.
type Rendered struct {
	Image gocv.Mat // BGR; the caller closes it
	// PlateBox and TextBox are the plate's and its characters' axis-aligned
	// bounding boxes in Image.
	PlateBox, TextBox image.Rectangle
	// CharBoxes are the characters' boxes in Image, in reading order,
	// spaces left out.
	CharBoxes []image.Rectangle
}

const drawH = 64 // character height at which plates are drawn before scaling

// Render draws p into a scene. rng decides the background and colours.
func Render(p Plate, rng *rand.Rand) (Rendered, error) {
	if p.Font == nil || p.Text == "" || p.CharHeight < 4 {
		return Rendered{}, errors.New("synth: a plate needs text, a font and a character height")
	}
	txt, spans, err := drawText(p.Text, p.Font, drawH, p.Tracking)
	if err != nil {
		return Rendered{}, err
	}
	if p.Weight != 0 {
		txt = embolden(txt, p.Weight)
	}
	var pw, ph int
	var charTop, textW int
	switch p.Style {
	case US:
		ph = drawH * 2
		pw = ph * 2
		charTop = ph/2 - drawH/2 + drawH/10
	default:
		ph = drawH * 110 / 75
		pw = ph * 520 / 110
		charTop = (ph - drawH) / 2
	}
	band := 0
	if p.Style == EU {
		band = pw * 4 / 52
	}
	avail := pw - band - drawH/2
	sq := p.Squeeze
	if sq <= 0 {
		sq = 1
	}
	textW = min(int(float64(txt.Bounds().Dx())*sq), avail)

	// The plate, on an image of its own.
	paper := color.RGBA{uint8(215 + rng.IntN(40)), uint8(215 + rng.IntN(40)), uint8(200 + rng.IntN(55)), 255}
	if p.Style == EU && rng.IntN(3) == 0 {
		paper = color.RGBA{uint8(220 + rng.IntN(35)), uint8(190 + rng.IntN(40)), uint8(20 + rng.IntN(40)), 255} // yellow plates
	}
	ink := color.RGBA{uint8(rng.IntN(50)), uint8(rng.IntN(50)), uint8(rng.IntN(90)), 255}
	if p.Inverse {
		paper, ink = color.RGBA{uint8(rng.IntN(50)), uint8(rng.IntN(50)), uint8(rng.IntN(60)), 255}, color.RGBA{235, 235, 235, 255}
	}
	if p.Clutter && rng.IntN(3) == 0 { // faded ink or a dull plate
		t := 0.2 + rng.Float64()*0.4
		mix := func(a, b uint8) uint8 { return uint8(float64(a)*(1-t) + float64(b)*t) }
		ink = color.RGBA{mix(ink.R, paper.R), mix(ink.G, paper.G), mix(ink.B, paper.B), 255}
	}
	plate := image.NewRGBA(image.Rect(0, 0, pw, ph))
	draw.Draw(plate, plate.Bounds(), image.NewUniform(ink), image.Point{}, draw.Src)
	bw := max(2, ph/30)
	draw.Draw(plate, plate.Bounds().Inset(bw), image.NewUniform(paper), image.Point{}, draw.Src)
	if band > 0 {
		draw.Draw(plate, image.Rect(bw, bw, band, ph-bw), image.NewUniform(color.RGBA{0, 51, 153, 255}), image.Point{}, draw.Src)
	}
	if p.Style == US {
		// A state name above, small: clutter the reader must ignore.
		state, _, err := drawText([]string{"OHIO", "TEXAS", "NEVADA", "IOWA", "MAINE"}[rng.IntN(5)], p.Font, ph/8, 0)
		if err == nil {
			at := image.Pt((pw-state.Bounds().Dx())/2, ph/12)
			draw.DrawMask(plate, state.Bounds().Add(at), image.NewUniform(ink), image.Point{}, state, image.Point{}, draw.Over)
		}
	}
	x0 := band + (pw-band-textW)/2
	if p.Clutter {
		// Picture plates: more than half of US ones, a sixth of others.
		if p.Style == US && rng.IntN(2) == 0 || rng.IntN(6) == 0 {
			pictorial(plate, rng, paper, ink, band, charTop)
		}
		clutterPlate(plate, p, rng, ink, band, x0, textW, charTop)
	}
	scaled := scaleAlpha(txt, textW, drawH)
	draw.DrawMask(plate, image.Rect(x0, charTop, x0+textW, charTop+drawH), image.NewUniform(ink), image.Point{}, scaled, image.Point{}, draw.Over)
	textBox := image.Rect(x0, charTop, x0+textW, charTop+drawH)

	// The scene: a noisy gradient with a few bars, the plate in it.
	sw, sh := p.Scene.X, p.Scene.Y
	k := float64(p.CharHeight) / drawH
	if sw == 0 {
		sw, sh = int(float64(pw*3)*k), int(float64(ph*3)*k)
	}
	sw, sh = max(sw, 64), max(sh, 64)
	scene := gocv.NewMatWithSize(sh, sw, gocv.MatTypeCV8UC3)
	base := 60 + rng.IntN(120)
	scene.SetTo(gocv.NewScalar(float64(base), float64(base+rng.IntN(20)), float64(base+rng.IntN(20)), 0))
	for i := 0; i < 6; i++ {
		v := float64(rng.IntN(256))
		r := image.Rect(rng.IntN(sw), rng.IntN(sh), rng.IntN(sw), rng.IntN(sh)).Canon()
		gocv.Rectangle(&scene, r, color.RGBA{uint8(v), uint8(v), uint8(v), 0}, 1+rng.IntN(4))
	}
	if p.Clutter && rng.IntN(2) == 0 {
		grille(&scene, p.CharHeight, rng)
	}
	src, err := gocv.ImageToMatRGB(plate)
	if err != nil {
		scene.Close()
		return Rendered{}, err
	}
	defer src.Close()
	// Where the plate's corners go: scaled, rotated, jittered, placed.
	cw, chh := float64(pw)*k, float64(ph)*k
	if cw > float64(sw)-4 || chh > float64(sh)-4 {
		scene.Close()
		return Rendered{}, fmt.Errorf("synth: the scene %d×%d is too small for the plate", sw, sh)
	}
	cx := cw/2 + 2 + rng.Float64()*(float64(sw)-cw-4)
	cy := chh/2 + 2 + rng.Float64()*(float64(sh)-chh-4)
	a := p.Tilt * math.Pi / 180
	corners := [4][2]float64{{-cw / 2, -chh / 2}, {cw / 2, -chh / 2}, {cw / 2, chh / 2}, {-cw / 2, chh / 2}}
	var dst gocv.PointVector = gocv.NewPointVector()
	defer dst.Close()
	var dstF []gocv.Point2f
	for _, c := range corners {
		jx := (rng.Float64()*2 - 1) * p.Perspective * chh
		jy := (rng.Float64()*2 - 1) * p.Perspective * chh
		x := c[0]*math.Cos(a) - c[1]*math.Sin(a) + cx + jx
		y := c[0]*math.Sin(a) + c[1]*math.Cos(a) + cy + jy
		dstF = append(dstF, gocv.Point2f{X: float32(x), Y: float32(y)})
	}
	srcPts := gocv.NewPoint2fVectorFromPoints([]gocv.Point2f{{X: 0, Y: 0}, {X: float32(pw), Y: 0}, {X: float32(pw), Y: float32(ph)}, {X: 0, Y: float32(ph)}})
	defer srcPts.Close()
	dstPts := gocv.NewPoint2fVectorFromPoints(dstF)
	defer dstPts.Close()
	m := gocv.GetPerspectiveTransform2f(srcPts, dstPts)
	defer m.Close()
	warped := gocv.NewMat()
	defer warped.Close()
	gocv.WarpPerspectiveWithParams(src, &warped, m, image.Pt(sw, sh), gocv.InterpolationArea, gocv.BorderConstant, color.RGBA{})
	mask := gocv.NewMatWithSize(ph, pw, gocv.MatTypeCV8U)
	mask.SetTo(gocv.NewScalar(255, 0, 0, 0))
	wmask := gocv.NewMat()
	gocv.WarpPerspectiveWithParams(mask, &wmask, m, image.Pt(sw, sh), gocv.InterpolationNearestNeighbor, gocv.BorderConstant, color.RGBA{})
	warped.CopyToWithMask(&scene, wmask)
	mask.Close()
	wmask.Close()

	if p.Blur > 0 {
		gocv.GaussianBlur(scene, &scene, image.Point{}, p.Blur, p.Blur, gocv.BorderReplicate)
	}
	if p.Noise > 0 {
		// Drawn from rng, not OpenCV's RNG, whose state is per thread: the
		// same seed must give the same plates (lprtrain is reproducible).
		pix, err := scene.DataPtrUint8()
		if err == nil {
			for i, v := range pix {
				pix[i] = uint8(max(0, min(255, float64(v)+rng.NormFloat64()*p.Noise+0.5)))
			}
		}
	}
	if p.Quality > 0 {
		buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, scene, []int{gocv.IMWriteJpegQuality, p.Quality})
		if err == nil {
			dec, derr := gocv.IMDecode(buf.GetBytes(), gocv.IMReadColor)
			buf.Close()
			if derr == nil && !dec.Empty() {
				scene.Close()
				scene = dec
			}
		}
	}
	mapPt := func(x, y float64) (float64, float64) {
		// Apply the 3×3 perspective matrix m.
		v := func(r, c int) float64 { return m.GetDoubleAt(r, c) }
		d := v(2, 0)*x + v(2, 1)*y + v(2, 2)
		return (v(0, 0)*x + v(0, 1)*y + v(0, 2)) / d, (v(1, 0)*x + v(1, 1)*y + v(1, 2)) / d
	}
	bbox := func(r image.Rectangle) image.Rectangle {
		minX, minY, maxX, maxY := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
		for _, c := range [][2]int{{r.Min.X, r.Min.Y}, {r.Max.X, r.Min.Y}, {r.Max.X, r.Max.Y}, {r.Min.X, r.Max.Y}} {
			x, y := mapPt(float64(c[0]), float64(c[1]))
			minX, minY, maxX, maxY = min(minX, x), min(minY, y), max(maxX, x), max(maxY, y)
		}
		return image.Rect(int(minX), int(minY), int(math.Ceil(maxX)), int(math.Ceil(maxY)))
	}
	out := Rendered{Image: scene, PlateBox: bbox(image.Rect(0, 0, pw, ph)), TextBox: bbox(textBox)}
	sx := float64(textW) / float64(txt.Bounds().Dx())
	for _, sp := range spans {
		r := image.Rect(x0+int(float64(sp[0])*sx), charTop, x0+int(math.Ceil(float64(sp[1])*sx)), charTop+drawH)
		out.CharBoxes = append(out.CharBoxes, bbox(r))
	}
	return out, nil
}

// clutterPlate draws screws beside the text (touching it or not), a slogan
// under US characters and a shadow edge across the plate.
func clutterPlate(plate *image.RGBA, p Plate, rng *rand.Rand, ink color.RGBA, band, x0, textW, charTop int) {
	pw, ph := plate.Rect.Dx(), plate.Rect.Dy()
	screw := color.RGBA{uint8(90 + rng.IntN(120)), uint8(90 + rng.IntN(120)), uint8(90 + rng.IntN(120)), 255}
	if rng.IntN(2) == 0 {
		screw = ink
	}
	rad := drawH/10 + rng.IntN(drawH/8)
	for _, cx := range []int{band + (x0-band)/2, x0 + textW + (pw-x0-textW)/2} {
		cy := charTop + drawH/2
		if rng.IntN(3) == 0 {
			cy = ph/10 + rng.IntN(ph/8)
		}
		if rng.IntN(3) > 0 {
			disc(plate, cx, cy, rad, screw)
		}
	}
	if p.Style == US && rng.IntN(2) == 0 {
		slogans := []string{"LAND OF LINCOLN", "SUNSHINE STATE", "GREAT LAKES", "2014", "DEALER", "EMPIRE STATE"}
		if s, _, err := drawText(slogans[rng.IntN(len(slogans))], p.Font, ph/10+rng.IntN(ph/16), 0); err == nil {
			at := image.Pt((pw-s.Bounds().Dx())/2, charTop+drawH+(ph-charTop-drawH-s.Bounds().Dy())/2)
			draw.DrawMask(plate, s.Bounds().Add(at), image.NewUniform(ink), image.Point{}, s, image.Point{}, draw.Over)
		}
	}
	if rng.IntN(3) == 0 { // a shadow edge: one side darker
		edge := rng.IntN(pw)
		k := 0.45 + rng.Float64()*0.35
		for y := 0; y < ph; y++ {
			for x := edge; x < pw; x++ {
				c := plate.RGBAAt(x, y)
				plate.SetRGBA(x, y, color.RGBA{uint8(float64(c.R) * k), uint8(float64(c.G) * k), uint8(float64(c.B) * k), 255})
			}
		}
	}
}

// embolden grows (k > 0) or shrinks (k < 0) the ink of m by |k| pixels: a
// square max or min filter.
func embolden(m *image.Alpha, k int) *image.Alpha {
	r := k
	if r < 0 {
		r = -r
	}
	b := m.Bounds()
	out := image.NewAlpha(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			v := m.AlphaAt(x, y).A
			for dy := -r; dy <= r; dy++ {
				for dx := -r; dx <= r; dx++ {
					w := m.AlphaAt(x+dx, y+dy).A // 0 outside
					if k > 0 {
						v = max(v, w)
					} else {
						v = min(v, w)
					}
				}
			}
			out.SetAlpha(x, y, color.Alpha{v})
		}
	}
	return out
}

// disc fills a circle.
func disc(img *image.RGBA, cx, cy, r int, c color.RGBA) {
	for y := cy - r; y <= cy+r; y++ {
		for x := cx - r; x <= cx+r; x++ {
			if (x-cx)*(x-cx)+(y-cy)*(y-cy) <= r*r && image.Pt(x, y).In(img.Rect) {
				img.SetRGBA(x, y, c)
			}
		}
	}
}

// pictorial paints what picture plates put behind their characters: a tinted
// gradient (a sky, a sunset), a pale emblem, and hills or a skyline along the
// bottom, darker, which the characters may stand in, so that they are no
// longer components of their own.
func pictorial(plate *image.RGBA, rng *rand.Rand, paper, ink color.RGBA, band, charTop int) {
	pw, ph := plate.Rect.Dx(), plate.Rect.Dy()
	tint := color.RGBA{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256)), 255}
	blend := func(a, b color.RGBA, t float64) color.RGBA {
		m := func(x, y uint8) uint8 { return uint8(float64(x)*(1-t) + float64(y)*t) }
		return color.RGBA{m(a.R, b.R), m(a.G, b.G), m(a.B, b.B), 255}
	}
	inside := image.Rect(band, 0, pw, ph).Inset(max(2, ph/30))
	if rng.IntN(2) == 0 {
		top, k := rng.IntN(2) == 0, 0.2+rng.Float64()*0.4
		for y := inside.Min.Y; y < inside.Max.Y; y++ {
			t := k * float64(y) / float64(ph)
			if top {
				t = k - t
			}
			for x := inside.Min.X; x < inside.Max.X; x++ {
				plate.SetRGBA(x, y, blend(plate.RGBAAt(x, y), tint, t))
			}
		}
	}
	if rng.IntN(2) == 0 {
		c := blend(paper, tint, 0.15+rng.Float64()*0.25)
		cx, cy := inside.Min.X+rng.IntN(inside.Dx()), inside.Min.Y+rng.IntN(inside.Dy())
		rx, ry := ph/4+rng.IntN(ph/3), ph/5+rng.IntN(ph/4)
		for y := cy - ry; y <= cy+ry; y++ {
			for x := cx - rx; x <= cx+rx; x++ {
				dx, dy := float64(x-cx)/float64(rx), float64(y-cy)/float64(ry)
				if dx*dx+dy*dy <= 1 && image.Pt(x, y).In(inside) {
					plate.SetRGBA(x, y, c)
				}
			}
		}
	}
	if rng.IntN(2) == 0 {
		// Hills: a sum of two waves along a base that reaches up to a
		// third of the way into the characters; the crests may rise to
		// three quarters of their height.
		c := blend(blend(paper, tint, 0.5), ink, 0.25+rng.Float64()*0.45)
		base := float64(ph - (charTop + drawH) + rng.IntN(drawH/3))
		a1, a2 := rng.Float64()*float64(drawH)/4, rng.Float64()*float64(drawH)/6
		f1, f2 := (1+rng.Float64()*3)*2*math.Pi/float64(pw), (4+rng.Float64()*8)*2*math.Pi/float64(pw)
		p1, p2 := rng.Float64()*2*math.Pi, rng.Float64()*2*math.Pi
		for x := inside.Min.X; x < inside.Max.X; x++ {
			h := base + a1*math.Sin(f1*float64(x)+p1) + a2*math.Sin(f2*float64(x)+p2)
			for y := max(inside.Min.Y, ph-int(h)); y < inside.Max.Y; y++ {
				plate.SetRGBA(x, y, c)
			}
		}
	}
}

// grille draws a row of bars about as tall as the characters: radiator grilles
// and fences are what a character finder mistakes for plates.
func grille(scene *gocv.Mat, charH int, rng *rand.Rand) {
	sw, sh := scene.Cols(), scene.Rows()
	h := int(float64(charH) * (0.8 + rng.Float64()*0.8))
	w := max(2, int(float64(charH)*(0.1+rng.Float64()*0.3)))
	gap := w + max(2, int(float64(charH)*(0.15+rng.Float64()*0.6)))
	n := 5 + rng.IntN(10)
	x0, y0 := rng.IntN(max(1, sw-n*gap)), rng.IntN(max(1, sh-h))
	v := uint8(rng.IntN(256))
	for i := 0; i < n; i++ {
		r := image.Rect(x0+i*gap, y0, x0+i*gap+w, y0+h)
		if rng.IntN(4) == 0 { // slanted or split bars
			r.Max.Y -= h / 3
		}
		gocv.Rectangle(scene, r, color.RGBA{v, v, v, 0}, -1)
	}
}

// drawText renders s with f so that capitals are h pixels high, as an alpha mask
// cropped to the ink, with track×h pixels added after every character. It also
// returns the columns each character other than a space spans in the mask.
// Characters are drawn one at a time, so pairs the font kerns are not kerned
// (the mask may be a little wider than the ink needs).
func drawText(s string, f *opentype.Font, h int, track float64) (*image.Alpha, [][2]int, error) {
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: float64(h) * 1.4, DPI: 72, Hinting: font.HintingNone})
	if err != nil {
		return nil, nil, err
	}
	defer face.Close()
	// Scale the size so that the cap height of "H" is h.
	b, _, ok := face.GlyphBounds('H')
	if !ok {
		return nil, nil, errors.New("synth: font has no H")
	}
	capH := float64(b.Max.Y-b.Min.Y) / 64
	if capH <= 0 {
		return nil, nil, errors.New("synth: font has an empty H")
	}
	face2, err := opentype.NewFace(f, &opentype.FaceOptions{Size: float64(h) * 1.4 * float64(h) / capH, DPI: 72, Hinting: font.HintingNone})
	if err != nil {
		return nil, nil, err
	}
	defer face2.Close()
	d := &font.Drawer{Face: face2}
	extra := fixed.Int26_6(track * float64(h) * 64)
	w := (d.MeasureString(s) + extra*fixed.Int26_6(len(s))).Ceil() + h
	img := image.NewAlpha(image.Rect(0, 0, max(w, h), h*2))
	d.Dst, d.Src = img, image.Opaque
	d.Dot = fixed.P(h/2, h*3/2)
	var spans [][2]int
	for _, r := range s {
		if r != ' ' {
			b, _ := font.BoundString(face2, string(r))
			spans = append(spans, [2]int{(d.Dot.X + b.Min.X).Floor(), (d.Dot.X + b.Max.X).Ceil()})
		}
		d.DrawString(string(r))
		d.Dot.X += extra
	}
	// Crop to the ink.
	ink := image.Rectangle{}
	for y := 0; y < img.Rect.Dy(); y++ {
		for x := 0; x < img.Rect.Dx(); x++ {
			if img.AlphaAt(x, y).A > 64 {
				ink = ink.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	if ink.Empty() {
		return nil, nil, errors.New("synth: nothing drawn")
	}
	out := image.NewAlpha(image.Rect(0, 0, ink.Dx(), ink.Dy()))
	draw.Draw(out, out.Bounds(), img, ink.Min, draw.Src)
	for i := range spans {
		spans[i][0] -= ink.Min.X
		spans[i][1] -= ink.Min.X
	}
	return out, spans, nil
}

// scaleAlpha resizes a mask to w×h (nearest sample of a box average).
func scaleAlpha(src *image.Alpha, w, h int) *image.Alpha {
	out := image.NewAlpha(image.Rect(0, 0, w, h))
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	for y := 0; y < h; y++ {
		y0, y1 := y*sh/h, max((y+1)*sh/h, y*sh/h+1)
		for x := 0; x < w; x++ {
			x0, x1 := x*sw/w, max((x+1)*sw/w, x*sw/w+1)
			sum, n := 0, 0
			for yy := y0; yy < y1 && yy < sh; yy++ {
				for xx := x0; xx < x1 && xx < sw; xx++ {
					sum += int(src.AlphaAt(xx, yy).A)
					n++
				}
			}
			if n > 0 {
				out.SetAlpha(x, y, color.Alpha{uint8(sum / n)})
			}
		}
	}
	return out
}
