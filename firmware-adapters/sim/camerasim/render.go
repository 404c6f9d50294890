package camerasim

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"math/rand/v2"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// Plate and scene geometry. The plate image comes out at about 40 KB, like the
// plate crop of a real ANPR camera; the scene is the wider overview.
const (
	plateText   = 120 // font size in pixels (Go Bold: capitals about 87 high)
	plateMargin = 28  // white (or yellow) space around the text, inside the border
	plateBorder = 5   // black border
	plateBand   = 48  // the blue band on the left
	plateWidth  = 720 // plates have one size whatever the text; longer text widens it
	plateNoise  = 13  // ± sensor noise per channel: what makes a photo weigh 40 KB
	sceneW      = 960 // overview image
	sceneH      = 540
	quality     = 90
)

var (
	plateWhite  = color.RGBA{0xf4, 0xf4, 0xf0, 0xff}
	plateYellow = color.RGBA{0xf7, 0xc8, 0x1e, 0xff}
	plateInk    = color.RGBA{0x10, 0x10, 0x10, 0xff}
	euBlue      = color.RGBA{0x00, 0x33, 0x99, 0xff}
)

// plateFont is Go Bold (golang.org/x/image/font/gofont), a sans-serif drawn
// smoothly at any size: a plate reader (protocol lpr) reads the simulator's
// pictures as it reads a camera's.
var plateFont = sync.OnceValue(func() *opentype.Font {
	f, err := opentype.Parse(gobold.TTF)
	if err != nil {
		panic("camerasim: Go Bold does not parse: " + err.Error()) // embedded: cannot happen
	}
	return f
})

// renderPlate draws text in black on a white (front) or yellow (rear) plate with a
// border and an EU band, with sensor noise.
func renderPlate(text string, yellow bool, rng *rand.Rand) *image.RGBA {
	face, err := opentype.NewFace(plateFont(), &opentype.FaceOptions{Size: plateText, DPI: 72, Hinting: font.HintingNone})
	if err != nil {
		panic("camerasim: " + err.Error()) // only for sizes out of range
	}
	defer face.Close()
	m := face.Metrics()
	tw, th := font.MeasureString(face, text).Ceil(), (m.Ascent + m.Descent).Ceil()
	w := max(plateWidth, plateBand+tw+2*plateMargin+2*plateBorder)
	h := th + 2*plateMargin + 2*plateBorder
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.Black, image.Point{}, draw.Src)
	bg := plateWhite
	if yellow {
		bg = plateYellow
	}
	inner := image.Rect(plateBorder, plateBorder, w-plateBorder, h-plateBorder)
	draw.Draw(img, inner, image.NewUniform(bg), image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(plateBorder, plateBorder, plateBorder+plateBand, h-plateBorder), image.NewUniform(euBlue), image.Point{}, draw.Src)
	d := font.Drawer{Dst: img, Src: image.NewUniform(plateInk), Face: face,
		Dot: fixed.P(plateBorder+plateBand+(w-2*plateBorder-plateBand-tw)/2, plateBorder+plateMargin+m.Ascent.Ceil())} // centred
	d.DrawString(text)
	addNoise(img, plateNoise, rng)
	return img
}

// renderScene draws the overview: a road in perspective light, a car body, and the
// plate on it; with no plate, the empty road.
func renderScene(p *image.RGBA, rng *rand.Rand) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, sceneW, sceneH))
	for y := 0; y < sceneH; y++ {
		g := uint8(60 + 90*y/sceneH) // asphalt lit from the camera
		for x := 0; x < sceneW; x++ {
			i := img.PixOffset(x, y)
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = g, g, g+6, 0xff
		}
	}
	if p == nil {
		addNoise(img, 6, rng)
		return img
	}
	car := image.Rect(sceneW/2-260, sceneH/2-150, sceneW/2+260, sceneH-40)
	draw.Draw(img, car, image.NewUniform(color.RGBA{0x2a, 0x3b, 0x55, 0xff}), image.Point{}, draw.Src)
	// The plate at half size, centred low on the car.
	pw, ph := p.Bounds().Dx()/2, p.Bounds().Dy()/2
	at := image.Pt(sceneW/2-pw/2, car.Max.Y-ph-40)
	for y := 0; y < ph; y++ {
		for x := 0; x < pw; x++ {
			img.SetRGBA(at.X+x, at.Y+y, p.RGBAAt(2*x, 2*y))
		}
	}
	addNoise(img, 6, rng)
	return img
}

// addNoise adds uniform noise of ±amp to every colour channel.
func addNoise(img *image.RGBA, amp int, rng *rand.Rand) {
	for i := 0; i < len(img.Pix); i += 4 {
		for c := 0; c < 3; c++ {
			v := int(img.Pix[i+c]) + rng.IntN(2*amp+1) - amp
			img.Pix[i+c] = uint8(min(255, max(0, v)))
		}
	}
}

// encodeJPEG encodes img at the simulator's quality.
func encodeJPEG(img image.Image, q int) []byte {
	var b bytes.Buffer
	jpeg.Encode(&b, img, &jpeg.Options{Quality: q}) // writes to memory: cannot fail
	return b.Bytes()
}
