//go:build gocv

// Command lprtrain trains the recognizer's glyph classifier on plates it renders
// itself, and writes firmware-adapters/lpr/model.bin. No photograph is used.
// The fonts are Debian's (fonts-dejavu, fonts-liberation2, fonts-freefont-ttf,
// fonts-urw-base35, fonts-croscore, fonts-roboto-unhinted, fonts-bebas-neue,
// fonts-b612, fonts-open-sans, fonts-league-spartan, fonts-cantarell,
// fonts-opendin, fonts-cabin, fonts-yanone-kaffeesatz, fonts-lato, fonts-jura,
// fonts-clear-sans, fonts-manrope: .ci/install-deps installs them; a missing
// one is skipped with a log line) and, with -webfonts, the web fonts
// fetch-fonts.sh takes from npm. Everything random is drawn from the seed, so
// the same flags and the same fonts give the same model.
//
// The model is an ensemble of -models networks; the k-th (from 0) is trained
// from seed+k on plates of its own. Each rendered plate is segmented by the
// recognizer's own segmentation (lpr.SegmentGlyphs: the first four
// binarizations, those the committed model was trained on), so the
// classifier learns the crops it will be shown; a component that covers one character's
// box (synth.Rendered's CharBoxes, intersection over union at least labelIoU)
// and not a third of another's is that character, also where its neighbours
// were broken or merged. Components outside the plate, or beside the text on it
// (band, screws, frame), and each two neighbouring characters taken together
// (on lines whose characters are all whole) are the "not a character" samples,
// at most a quarter of all.
//
// With -samples it also writes the samples of each network to a file, on which
// train-cnn.py (PyTorch) trains the recognizer's second opinion, a small
// convolutional network (checker.bin).
//
//	make lpr-model
//
// runs both as the committed models were made.
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"image"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gatehouse-parking/gatehouse/firmware-adapters/lpr"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/lpr/synth"
	"golang.org/x/image/font/opentype"
)

// TrainFonts are the fonts lprtrain draws with, by file name.
var TrainFonts = []string{
	"DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansCondensed.ttf", "DejaVuSansCondensed-Bold.ttf",
	"DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf",
	"LiberationMono-Regular.ttf", "FreeSans.ttf", "FreeSansBold.ttf", "NimbusSans-Regular.otf", "NimbusSans-Bold.otf",
	"NimbusSansNarrow-Regular.otf", "NimbusSansNarrow-Bold.otf", "URWGothic-Book.otf", "URWGothic-Demi.otf",
	"Cousine-Regular.ttf", "Cousine-Bold.ttf", "RobotoCondensed-Regular.ttf", "RobotoCondensed-Bold.ttf",
	"Roboto-Regular.ttf", "Roboto-Medium.ttf", "Roboto-Bold.ttf",
	// Narrow capitals like US plate fonts, and plain legible shapes like DIN.
	"BebasNeue-Regular.otf", "BebasNeue-Bold.otf", "OpenSans-CondBold.ttf", "OpenSans-Semibold.ttf",
	"B612-Regular.otf", "B612-Bold.otf", "LeagueSpartan-Bold.otf", "Cantarell-Bold.otf",
	// DIN 1451 (German and many other European plates), humanist and
	// condensed shapes.
	"OSP-DIN.ttf", "Cabin-Medium.otf", "Cabin-Bold.otf", "YanoneKaffeesatz-Regular.otf", "YanoneKaffeesatz-Bold.otf",
	"Lato-Medium.ttf", "Lato-Bold.ttf", "Jura-Medium.otf", "Jura-Bold.otf", "ClearSans-Medium.ttf", "ClearSans-Bold.ttf",
	"Manrope-Medium.ttf", "Manrope-Bold.ttf",
}

func main() {
	out := flag.String("out", "firmware-adapters/lpr/model.bin", "where to write the model")
	plates := flag.Int("plates", 24000, "plates to render")
	hidden := flag.Int("hidden", 256, "hidden units")
	epochs := flag.Int("epochs", 14, "training epochs")
	seed := flag.Uint64("seed", 1, "random seed of the first network")
	models := flag.Int("models", 2, "networks in the ensemble, from seed, seed+1, …")
	webfonts := flag.String("webfonts", "", "folder fetch-fonts.sh filled: its */*.woff are drawn with too")
	samplesOut := flag.String("samples", "", "also write each network's samples to SAMPLES.SEED, for train-cnn.py")
	flag.Parse()
	if *models < 1 || *models > 8 {
		log.Fatalf("lprtrain: -models %d: an ensemble has 1 to 8 networks", *models)
	}

	for _, n := range TrainFonts {
		if len(synth.Fonts(n)) == 0 {
			log.Printf("font %s is not installed: skipped (the model will not be the committed one)", n)
		}
	}
	paths := synth.Fonts(TrainFonts...)
	if *webfonts != "" {
		m, err := filepath.Glob(filepath.Join(*webfonts, "*", "*.woff"))
		if err != nil || len(m) == 0 {
			log.Fatalf("lprtrain: no fonts in %s: run fetch-fonts.sh %[1]s", *webfonts)
		}
		sort.Strings(m)
		paths = append(paths, m...)
	}
	var fonts []*opentype.Font
	for _, p := range paths {
		f, err := synth.LoadFont(p)
		if err != nil {
			log.Printf("skip %s: %v", p, err)
			continue
		}
		fonts = append(fonts, f)
	}
	if len(fonts) == 0 {
		log.Fatal("lprtrain: no fonts found: apt-get install fonts-dejavu-core")
	}
	log.Printf("%d fonts", len(fonts))
	// The model is an ensemble: network k is trained from seed+k on plates of
	// its own, and the recognizer averages their outputs.
	var model []byte
	for k := range *models {
		model = append(model, trainOne(fonts, *plates, *hidden, *epochs, *seed+uint64(k), *samplesOut)...)
	}
	if err := os.WriteFile(*out, model, 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("wrote %s (%d bytes)\n", *out, len(model))
}

// labelIoU is how much of a character's box (intersection over union) a
// component must cover to be labelled that character.
const labelIoU = 0.5

// trainOne renders plates with fonts from seed and trains one network on them.
func trainOne(fonts []*opentype.Font, plates, hidden, epochs int, seed uint64, samplesOut string) []byte {
	// Plates are rendered and segmented by as many workers as there are
	// cores; plate i draws everything from its own generator, and the
	// results are gathered in plate order, so the data do not depend on the
	// number of workers.
	type result struct {
		samples, rejects []lpr.GlyphSample
		ok               bool
	}
	results := make([]result, plates)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= plates {
					return
				}
				rng := rand.New(rand.NewPCG(seed, uint64(i)))
				results[i].samples, results[i].rejects, results[i].ok = renderPlate(fonts, rng)
			}
		}()
	}
	wg.Wait()
	rng := rand.New(rand.NewPCG(seed, 1<<63|99)) // not a plate's stream
	var samples, rejects []lpr.GlyphSample
	used, skipped := 0, 0
	for _, r := range results {
		samples = append(samples, r.samples...)
		rejects = append(rejects, r.rejects...)
		if r.ok {
			used++
		} else {
			skipped++
		}
	}
	// Not-a-character samples: at most a quarter of the whole, drawn evenly.
	rng.Shuffle(len(rejects), func(i, j int) { rejects[i], rejects[j] = rejects[j], rejects[i] })
	rejects = rejects[:min(len(rejects), len(samples)/3)]
	log.Printf("%d not-a-character samples", len(rejects))
	samples = append(samples, rejects...)
	log.Printf("%d plates gave characters, %d none; %d glyphs", used, skipped, len(samples))
	if samplesOut != "" {
		writeSamples(fmt.Sprintf("%s.%d", samplesOut, seed), samples)
	}
	model, err := lpr.Train(samples, lpr.TrainOptions{Hidden: hidden, Epochs: epochs, Rate: 0.05, Seed: seed, Workers: 2,
		Progress: func(ep int, acc float64) { log.Printf("epoch %d: training accuracy %.4f", ep, acc) }})
	if err != nil {
		log.Fatal(err)
	}
	return model
}

// renderPlate renders one random plate and segments it as the recognizer
// would. It returns the glyphs of the components that are one of its
// characters, labelled (ok when there is one), and the glyphs that are not a
// character.
func renderPlate(fonts []*opentype.Font, rng *rand.Rand) (samples, rejects []lpr.GlyphSample, ok bool) {
	text := randomText(rng)
	p := synth.Plate{
		Text: text, Style: synth.Style(rng.IntN(2)), Font: fonts[rng.IntN(len(fonts))],
		CharHeight: 12 + rng.IntN(30), Tilt: rng.NormFloat64() * 4, Perspective: rng.Float64() * 0.15,
		Blur: rng.Float64() * 1.4, Noise: rng.Float64() * 12, Quality: 25 + rng.IntN(65), Inverse: rng.IntN(8) == 0,
		Clutter: rng.IntN(4) > 0, Squeeze: 0.75 + rng.Float64()*0.45, Weight: rng.IntN(7) - 3,
		Tracking: rng.Float64()*0.3 - 0.05,
	}
	r, err := synth.Render(p, rng)
	if err != nil {
		return nil, nil, false
	}
	lines, err := lpr.SegmentGlyphs(r.Image)
	r.Image.Close()
	if err != nil {
		return nil, nil, false
	}
	chars := strings.ReplaceAll(text, " ", "")
	if len(r.CharBoxes) != len(chars) {
		return nil, nil, false
	}
	tb := r.TextBox.Inset(-max(2, r.TextBox.Dy()/8))
	for _, ln := range lines {
		// A component that covers one character's box, and no more than a
		// sliver of another's, is that character, even where the line's
		// other characters were broken or merged: those plates are the
		// hard ones. Two characters merged into one component are no
		// character, and a second component on a character already
		// labelled is a piece: both are left out, as is any other piece
		// inside the text. What lies outside the plate, or beside the text
		// on it, is not a character. Small text above and below US
		// characters is real text: left out too.
		inText, whole := 0, true
		used := make([]bool, len(chars))
		for k, c := range ln.Chars {
			ctr := image.Pt((c.Min.X+c.Max.X)/2, (c.Min.Y+c.Max.Y)/2)
			j, best := -1, labelIoU
			for i, cb := range r.CharBoxes {
				if v := lpr.IoU(c, cb); v >= best && ctr.In(cb) {
					j, best = i, v
				}
			}
			for i, cb := range r.CharBoxes {
				if in := c.Intersect(cb); j >= 0 && i != j && in.Dx()*in.Dy()*3 > cb.Dx()*cb.Dy() {
					j = -1 // it holds much of a neighbour too
				}
			}
			switch {
			case j >= 0 && !used[j]:
				inText++
				used[j] = true
				samples = append(samples, lpr.GlyphSample{X: ln.Features[k], Class: strings.IndexByte(lpr.Classes, chars[j])})
				ok = true
			case j >= 0 || ctr.In(tb) && c.In(tb):
				inText++
				whole = false
			case !ctr.In(r.PlateBox) || (ctr.Y >= r.TextBox.Min.Y && ctr.Y < r.TextBox.Max.Y):
				rejects = append(rejects, lpr.GlyphSample{X: ln.Features[k], Class: lpr.Reject})
			}
		}
		// Two neighbours taken together are not a character when each of
		// them is one.
		if inText > 0 && whole {
			for _, x := range ln.Parts {
				rejects = append(rejects, lpr.GlyphSample{X: x, Class: lpr.Reject})
			}
		}
	}
	return samples, rejects, ok
}

// randomText draws plate text: every character equally often, in plate-like
// runs of letters and digits, sometimes with a space.
func randomText(rng *rand.Rand) string {
	const letters, digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789"
	n := 5 + rng.IntN(4)
	var b strings.Builder
	for i := 0; i < n; i++ {
		if rng.IntN(2) == 0 {
			b.WriteByte(letters[rng.IntN(len(letters))])
		} else {
			b.WriteByte(digits[rng.IntN(len(digits))])
		}
		if i > 0 && i < n-1 && rng.IntN(8) == 0 {
			b.WriteByte(' ')
		}
	}
	return b.String()
}

// writeSamples writes samples to path, in the order the network is trained on
// them before shuffling: per sample its class as one byte (its index in
// lpr.Classes, or lpr.Reject), then its lpr.GlyphFeatures features as
// little-endian float32. train-cnn.py trains the checker on them.
func writeSamples(path string, samples []lpr.GlyphSample) {
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var rec []byte
	for _, s := range samples {
		rec = append(rec[:0], byte(s.Class))
		for _, v := range s.X {
			rec = binary.LittleEndian.AppendUint32(rec, math.Float32bits(v))
		}
		if _, err := w.Write(rec); err != nil {
			log.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	log.Printf("wrote %d samples to %s", len(samples), path)
}
