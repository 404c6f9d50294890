package camera

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// addFixtures seeds f with every testdata/<vendor>/*.http push and its content type,
// beside the corpus in testdata/fuzz/<target>.
func addFixtures(f *testing.F, vendor string) {
	files, _ := filepath.Glob(filepath.Join("testdata", vendor, "*.http"))
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		ct, _ := os.ReadFile(strings.TrimSuffix(file, ".http") + ".content-type")
		f.Add(strings.TrimSpace(string(ct)), body)
	}
}

// checkPush is what every parser promises of any input: an error is a
// malformedError, and an accepted push is sane.
func checkPush(t *testing.T, name string, p *push, err error) {
	t.Helper()
	if err != nil {
		var m *malformedError
		if !errors.As(err, &m) || m.detail == "" {
			t.Fatalf("%s: error %v is not a malformed with a detail", name, err)
		}
		if p != nil {
			t.Fatalf("%s: a push and an error", name)
		}
		return
	}
	if p == nil {
		t.Fatalf("%s: no push and no error", name)
	}
	c := p.read.Confidence
	if math.IsNaN(c) || c < 0 || c > 1 {
		t.Errorf("%s: confidence %v outside 0..1", name, c)
	}
	if p.isRead && strings.TrimSpace(p.read.RawPlate) == "" {
		t.Errorf("%s: a read without plate text", name)
	}
	if !p.isRead && p.why == "" {
		t.Errorf("%s: not a read, and no reason why", name)
	}
	if d := p.read.Direction; d != "" && d != DirectionEntry && d != DirectionExit {
		t.Errorf("%s: direction %q", name, d)
	}
	if p.towards < -1 || p.towards > 1 {
		t.Errorf("%s: towards %d", name, p.towards)
	}
}

// FuzzHikvision feeds any content type and body to the Hikvision parser.
func FuzzHikvision(f *testing.F) {
	addFixtures(f, ProfileHikvision)
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		p, err := parseHikvision(contentType, body, time.UTC)
		checkPush(t, "parseHikvision", p, err)
		if err == nil && p.isRead && p.read.EventID == "" {
			t.Error("a Hikvision read without an event id")
		}
	})
}

// FuzzAxis feeds any content type and body to the Axis parser.
func FuzzAxis(f *testing.F) {
	addFixtures(f, ProfileAxis)
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		p, err := parseAxis(contentType, body, time.UTC)
		checkPush(t, "parseAxis", p, err)
		if err == nil && p.read.EventID == "" {
			t.Error("an Axis push without an event id")
		}
	})
}

// FuzzGeneric feeds any content type and body to the generic JSON parser.
func FuzzGeneric(f *testing.F) {
	addFixtures(f, ProfileJSON)
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		p, err := parseGeneric(contentType, body)
		checkPush(t, "parseGeneric", p, err)
	})
}

// FuzzSafeName checks that any id becomes one harmless file-name component and that
// distinct ids stay distinct.
func FuzzSafeName(f *testing.F) {
	for _, s := range []string{"", ".", "..", "a/b", "a0fe72d4-3652-464a-aebd-3f9190010236", "1087595-new-20260314 092651482", strings.Repeat("x", 100), "a\x00b", "ü"} {
		f.Add(s, s+"x")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		sa, sb := safeName(a), safeName(b)
		if sa == "" || sa == "." || sa == ".." || strings.HasPrefix(sa, ".") || len(sa) > 80 {
			t.Errorf("safeName(%q) = %q", a, sa)
		}
		for _, c := range []byte(sa) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '~') {
				t.Fatalf("safeName(%q) = %q has %q", a, sa, c)
			}
		}
		if a != b && sa == sb {
			t.Errorf("safeName(%q) = safeName(%q) = %q", a, b, sa)
		}
	})
}
