//go:build gocv

// Command lprbench measures the plate recognizer on photographs with ground
// truth: each subfolder of -data is a set of NAME.jpg images with NAME.txt
// beside them, one tab-separated line "image x y width height PLATE". A set
// named eu or us is read with that country's formats.
//
// For each set it reports detection recall (a returned plate box with IoU > 0.5
// against the true box), the exact-read rate (the best plate equals the truth),
// the matched rate (the best plate, looked up with plate.Index among all plates
// of the set, finds the true one and only it: the exit case), and the
// milliseconds per image on one core. With -calib it also prints, per set and
// confidence range, how many best reads were made and how many were exact;
// with -cpuprofile FILE it writes a CPU profile of the run (go tool pprof).
// With -tesseract it measures Tesseract instead (see runTesseract).
// Per set it prints how long single images took, the median, the 95th
// percentile and the slowest (a lane waits for the slow ones):
//
//	time set=NAME p50_ms=A p95_ms=B max_ms=C
//
// and it ends with one line per set:
//
//	lpr set=NAME images=N detected=X% exact=Y% matched=Z% ms_per_image=W
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"log"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge/plate"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/lpr"
	"gocv.io/x/gocv"
)

type truth struct {
	image string
	box   image.Rectangle
	plate string
}

func main() {
	data := flag.String("data", "../shared/data/alpr", "folder of sets")
	verbose := flag.Bool("v", false, "print every image's result")
	calib := flag.Bool("calib", false, "print how often reads are exact by confidence")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	tess := flag.Bool("tesseract", false, "read each true plate box with the tesseract command instead")
	flag.Parse()
	if *tess {
		if err := runTesseract(*data, *verbose, os.Stdout); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	// One core: Go here, OpenCV through OPENCV_FOR_THREADS_NUM=1 and taskset
	// (make bench-lpr sets both).
	runtime.GOMAXPROCS(1)
	if err := run(*data, *verbose, *calib, os.Stdout); err != nil {
		pprof.StopCPUProfile()
		log.Fatal(err)
	}
}

// confBins are the confidence ranges -calib reports, as lower bounds.
var confBins = []float64{0.9, 0.7, 0.5, 0.3, 0}

func run(data string, verbose, calib bool, w io.Writer) error {
	return forSets(data, w, func(set string, truths []truth) (string, error) {
		country := lpr.Country("")
		if set == "eu" || set == "us" {
			country = lpr.Country(set)
		}
		rec, err := lpr.NewRecognizer(lpr.Options{Country: country})
		if err != nil {
			return "", err
		}
		var known plate.Index
		for _, t := range truths {
			known.Add(t.plate, t.image)
		}
		var detected, exact, matched int
		took := make([]time.Duration, 0, len(truths))
		binReads, binExact := make([]int, len(confBins)), make([]int, len(confBins))
		for _, t := range truths {
			b, err := os.ReadFile(filepath.Join(data, set, t.image))
			if err != nil {
				return "", err
			}
			start := time.Now()
			plates, err := rec.RecognizeJPEG(b)
			took = append(took, time.Since(start))
			if err != nil {
				return "", fmt.Errorf("%s: %w", t.image, err)
			}
			det, read, hit := false, "", ""
			for _, p := range plates {
				det = det || lpr.IoU(p.Box, t.box) > 0.5
			}
			if len(plates) > 0 {
				read = plates[0].Text
				if h, out := known.Best(read); out == plate.Found {
					hit = h.Plate
				}
			}
			if det {
				detected++
			}
			if read == t.plate {
				exact++
			}
			if hit == t.plate {
				matched++
			}
			if len(plates) > 0 {
				for b, lo := range confBins {
					if plates[0].Confidence >= lo {
						binReads[b]++
						if read == t.plate {
							binExact[b]++
						}
						break
					}
				}
			}
			if verbose {
				conf := 0.0
				if len(plates) > 0 {
					conf = plates[0].Confidence
				}
				fmt.Fprintf(w, "%s/%s truth=%s read=%s conf=%.2f det=%v match=%s\n", set, t.image, t.plate, read, conf, det, hit)
			}
		}
		if calib {
			for b, lo := range confBins {
				span := fmt.Sprintf("[%.1f,1.0]", lo)
				if b > 0 {
					span = fmt.Sprintf("[%.1f,%.1f)", lo, confBins[b-1])
				}
				fmt.Fprintf(w, "calib set=%s conf=%s reads=%d exact=%d\n", set, span, binReads[b], binExact[b])
			}
		}
		var spent time.Duration
		for _, d := range took {
			spent += d
		}
		slices.Sort(took)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		fmt.Fprintf(w, "time set=%s p50_ms=%.1f p95_ms=%.1f max_ms=%.1f\n", set, ms(rank(took, 0.5)), ms(rank(took, 0.95)), ms(took[len(took)-1]))
		n := len(truths)
		pct := func(k int) string { return strconv.FormatFloat(100*float64(k)/float64(n), 'f', 1, 64) }
		return fmt.Sprintf("lpr set=%s images=%d detected=%s%% exact=%s%% matched=%s%% ms_per_image=%.1f",
			set, n, pct(detected), pct(exact), pct(matched), float64(spent.Microseconds())/1000/float64(n)), nil
	})
}

// rank returns the q-th quantile of the sorted, non-empty ds by the nearest
// rank: the smallest value at least q of them are no greater than.
func rank(ds []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(ds)))) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

// runTesseract measures Tesseract (the tesseract command, Debian's
// tesseract-ocr with tesseract-ocr-eng) as the plate reader the recognizer's
// own classifier was chosen over. It is given more than the recognizer: each
// true plate box, cut with a margin of a twentieth of its width and a tenth of
// its height, turned grey and scaled to 200 pixels high (Tesseract read more
// there than at 50 or 100), read as one line of
// text (--psm 7) with only A–Z and 0–9 allowed, on one thread. It ends with
// one line per set:
//
//	tesseract set=NAME crops=N exact=Y%
func runTesseract(data string, verbose bool, w io.Writer) error {
	tmp, err := os.MkdirTemp("", "lprbench-tesseract")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	return forSets(data, w, func(set string, truths []truth) (string, error) {
		exact := 0
		for i, t := range truths {
			crop := filepath.Join(tmp, fmt.Sprintf("%s-%d.png", strings.TrimSuffix(t.image, filepath.Ext(t.image)), i))
			if err := cropPlate(filepath.Join(data, set, t.image), t.box, crop); err != nil {
				return "", fmt.Errorf("%s/%s: %w", set, t.image, err)
			}
			cmd := exec.Command("tesseract", crop, "stdout", "--psm", "7",
				"-c", "tessedit_char_whitelist=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
			cmd.Env = append(os.Environ(), "OMP_THREAD_LIMIT=1")
			out, err := cmd.Output()
			if err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) && len(ee.Stderr) > 0 {
					err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
				}
				return "", fmt.Errorf("%s/%s: tesseract: %w", set, t.image, err)
			}
			read := plate.Normalize(string(out))
			if read == t.plate {
				exact++
			}
			if verbose {
				fmt.Fprintf(w, "%s/%s truth=%s read=%s\n", set, t.image, t.plate, read)
			}
		}
		return fmt.Sprintf("tesseract set=%s crops=%d exact=%.1f%%", set, len(truths), 100*float64(exact)/float64(len(truths))), nil
	})
}

// cropPlate writes the plate box of the image at src, with a margin, grey and
// 200 pixels high, to dst as PNG.
func cropPlate(src string, box image.Rectangle, dst string) error {
	img := gocv.IMRead(src, gocv.IMReadGrayScale)
	if img.Empty() {
		return fmt.Errorf("cannot read the image")
	}
	defer img.Close()
	mx, my := box.Dx()/20, box.Dy()/10
	r := image.Rect(box.Min.X-mx, box.Min.Y-my, box.Max.X+mx, box.Max.Y+my).Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
	if r.Dx() < 2 || r.Dy() < 2 {
		return fmt.Errorf("plate box %v is outside the image", box)
	}
	roi := img.Region(r)
	defer roi.Close()
	scaled := gocv.NewMat()
	defer scaled.Close()
	// OpenCV aborts the process on a zero size: a box of any shape keeps 1..4000.
	gocv.Resize(roi, &scaled, image.Pt(max(1, min(4000, r.Dx()*200/r.Dy())), 200), 0, 0, gocv.InterpolationCubic)
	if !gocv.IMWrite(dst, scaled) {
		return fmt.Errorf("cannot write %s", dst)
	}
	return nil
}

// forSets calls fn with the ground truth of every set in data, then writes the
// summary lines fn returned, one per set, in order.
func forSets(data string, w io.Writer, fn func(set string, truths []truth) (string, error)) error {
	sets, err := loadSets(data)
	if err != nil {
		return err
	}
	var summary []string
	for _, st := range sets {
		line, err := fn(st.name, st.truths)
		if err != nil {
			return err
		}
		summary = append(summary, line)
	}
	for _, s := range summary {
		fmt.Fprintln(w, s)
	}
	return nil
}

// set is one subfolder of the data: its name and ground truth.
type set struct {
	name   string
	truths []truth
}

// loadSets reads the ground truth of every subfolder of data that has some.
func loadSets(data string) ([]set, error) {
	ents, err := os.ReadDir(data)
	if err != nil {
		return nil, err
	}
	var sets []set
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		truths, err := loadSet(filepath.Join(data, e.Name()))
		if err != nil {
			return nil, err
		}
		if len(truths) > 0 {
			sets = append(sets, set{e.Name(), truths})
		}
	}
	return sets, nil
}

// loadSet reads the ground truth of one set.
func loadSet(dir string) ([]truth, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []truth
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fs := strings.Split(strings.TrimSpace(sc.Text()), "\t")
			if len(fs) < 6 {
				continue
			}
			v := make([]int, 4)
			for i := range v {
				v[i], err = strconv.Atoi(fs[i+1])
				if err != nil {
					fh.Close()
					return nil, fmt.Errorf("%s: %w", f, err)
				}
			}
			img := filepath.Base(strings.TrimSuffix(f, ".txt")) + filepath.Ext(fs[0])
			if _, err := os.Stat(filepath.Join(dir, img)); err != nil {
				img = fs[0]
			}
			out = append(out, truth{image: img, box: image.Rect(v[0], v[1], v[0]+v[2], v[1]+v[3]), plate: plate.Normalize(fs[5])})
		}
		fh.Close()
	}
	return out, nil
}
