package camera

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// push posts n distinct Hikvision pushes (two images each) and returns their reads.
func pushN(tb testing.TB, g *rig, from, n int) []Read {
	tb.Helper()
	before := len(g.Reads())
	for i := from; i < from+n; i++ {
		body, ct := hikPush(tb, i)
		if status, _, resp := g.do(tb, "POST", "/camera/hikvision/hik-1", ct, body); status != 200 {
			tb.Fatalf("push %d = %d %s", i, status, resp)
		}
	}
	return g.Reads()[before:]
}

// exists reports whether every path exists under dir.
func exists(dir string, paths []string) bool {
	for _, p := range paths {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p))); err != nil {
			return false
		}
	}
	return true
}

// TestRetention removes images older than the retention time, and the directories
// they leave empty, and keeps the rest.
func TestRetention(t *testing.T) {
	g := newRig(t, func(c *Config) { c.ImageRetention = 48 * time.Hour })
	old := pushN(t, g, 1, 2)
	g.clock.Advance(30 * time.Hour)
	mid := pushN(t, g, 3, 1)
	g.clock.Advance(20 * time.Hour) // old: 50h, mid: 20h
	fresh := pushN(t, g, 4, 1)

	if n := g.r.images.sweep(g.clock.Now()); n != 4 {
		t.Errorf("sweep removed %d images; want 4 (two reads of two)", n)
	}
	for _, tt := range []struct {
		name  string
		reads []Read
		kept  bool
	}{{"old", old, false}, {"mid", mid, true}, {"fresh", fresh, true}} {
		for _, rd := range tt.reads {
			if len(rd.Images) != 2 {
				t.Fatalf("%s read has images %v; want 2", tt.name, rd.Images)
			}
			if got := exists(g.dir, rd.Images); got != tt.kept {
				t.Errorf("%s images exist = %v; want %v", tt.name, got, tt.kept)
			}
			if got := len(g.r.ImagePath(rd.EventID)) == 2; got != tt.kept {
				t.Errorf("%s ImagePath(%s) = %v; want kept %v", tt.name, rd.EventID, g.r.ImagePath(rd.EventID), tt.kept)
			}
			status, _, _ := g.do(t, "GET", "/camera/images/"+rd.Images[0], "", nil)
			if (status == 200) != tt.kept {
				t.Errorf("%s GET = %d; want kept %v", tt.name, status, tt.kept)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(g.dir, "2026-03-14")); !os.IsNotExist(err) {
		t.Errorf("the emptied date directory is still there (%v)", err)
	}
	if n, b := g.r.images.usage(); n != 4 || b <= 0 {
		t.Errorf("usage = %d images, %d bytes; want the 4 kept", n, b)
	}
}

// TestSizeCap removes the oldest images as soon as the cap is passed, without the
// sweeper.
func TestSizeCap(t *testing.T) {
	var size int64
	g0 := newRig(t, nil)
	for _, p := range pushN(t, g0, 1, 1)[0].Images {
		st, err := os.Stat(filepath.Join(g0.dir, p))
		if err != nil {
			t.Fatal(err)
		}
		size += st.Size()
	}
	// Room for three reads of two images, and a byte.
	g := newRig(t, func(c *Config) { c.MaxImageBytes = 3*size + 1 })
	var reads []Read
	for i := 1; i <= 5; i++ {
		reads = append(reads, pushN(t, g, i, 1)...)
		g.clock.Advance(time.Minute)
	}
	for i, rd := range reads {
		kept := i >= 2
		if got := exists(g.dir, rd.Images); got != kept {
			t.Errorf("read %d images exist = %v; want %v", i, got, kept)
		}
	}
	if n, b := g.r.images.usage(); n != 6 || b > 3*size+1 {
		t.Errorf("usage = %d images, %d bytes; want 6 images within %d", n, b, 3*size+1)
	}
	if c := g.r.Counters(); c["images"] != 6 {
		t.Errorf("Counters = %v; want images 6", c)
	}
}

// TestImagesSurviveRestart indexes an earlier run's images: ImagePath finds them,
// retention and the cap cover them, half-written files are cleared.
func TestImagesSurviveRestart(t *testing.T) {
	g := newRig(t, nil)
	rd := pushN(t, g, 1, 1)[0]
	g.r.Close()
	stray := filepath.Join(g.dir, filepath.FromSlash(rd.Images[0])+".7.tmp")
	if err := os.WriteFile(stray, []byte("half"), 0o640); err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{Devices: testDevices(), Sink: g.sink, ImageDir: g.dir, Now: g.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.ImagePath(rd.EventID); strings.Join(got, ",") != strings.Join(rd.Images, ",") {
		t.Errorf("after restart ImagePath = %v; want %v", got, rd.Images)
	}
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Errorf("half-written file kept (%v)", err)
	}
	// The files' times are the real clock's: a sweep far in the future ages them out.
	if n := r.images.sweep(time.Now().Add(DefaultImageRetention + time.Hour)); n != 2 {
		t.Errorf("sweep removed %d; want 2", n)
	}
}

// TestImagesReadOnly serves stored images and nothing else.
func TestImagesReadOnly(t *testing.T) {
	g := newRig(t, nil)
	rd := pushN(t, g, 1, 1)[0]
	secret := filepath.Join(filepath.Dir(g.dir), "secret.jpg")
	os.WriteFile(secret, []byte("\xff\xd8\xffsecret"), 0o644)
	t.Cleanup(func() { os.Remove(secret) })
	// A symlink inside the store that points out of it.
	link := filepath.Join(g.dir, "2026-03-14", "hik-1", "link-1.jpg")
	os.Symlink(secret, link)
	tests := []struct {
		path   string
		status int
	}{
		{rd.Images[0], 200},
		{rd.Images[1], 200},
		{"2026-03-14/hik-1/nope-1.jpg", 404},
		{"../secret.jpg", 404},
		{"..%2fsecret.jpg", 404},
		{"%2e%2e/%2e%2e/secret.jpg", 404},
		{"2026-03-14/hik-1/../../../secret.jpg", 404},
		{"2026-03-14/hik-1/link-1.jpg", 404},
		{"2026-03-14/hik-1", 404},
		{"2026-03-14/hik-1/" + strings.Repeat("a", 300) + "-1.jpg", 404},
		{"/etc/passwd", 404},
		{"", 404},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			status, h, body := g.do(t, "GET", "/camera/images/"+tt.path, "", nil)
			if status != tt.status {
				t.Fatalf("GET %s = %d; want %d", tt.path, status, tt.status)
			}
			if status == 200 && (!hasJPEGMarker(body) || h.Get("Content-Type") != "image/jpeg") {
				t.Errorf("GET %s = %s, %d bytes; want a JPEG", tt.path, h.Get("Content-Type"), len(body))
			}
			if bytes.Contains(body, []byte("\xff\xd8\xffsecret")) {
				t.Errorf("GET %s leaked a file outside the store", tt.path)
			}
		})
	}
	for _, method := range []string{"PUT", "DELETE", "POST"} {
		if status, _, _ := g.do(t, method, "/camera/images/"+rd.Images[0], "image/jpeg", []byte("\xff\xd8\xff")); status != 405 && status != 404 {
			t.Errorf("%s on an image = %d; want 404 or 405", method, status)
		}
	}
	if !exists(g.dir, rd.Images) {
		t.Error("an image went missing")
	}
}

// TestNoImageDir checks images but keeps none.
func TestNoImageDir(t *testing.T) {
	g := newRig(t, func(c *Config) { c.ImageDir = "" })
	rd := pushN(t, g, 1, 1)[0]
	if len(rd.Images) != 0 || g.r.ImagePath(rd.EventID) != nil {
		t.Errorf("images %v stored without an ImageDir", rd.Images)
	}
	if status, _, _ := g.do(t, "GET", "/camera/images/2026-03-14/hik-1/x-1.jpg", "", nil); status != 404 {
		t.Errorf("GET image = %d; want 404", status)
	}
}

// TestImageGuard runs the guard before serving an image.
func TestImageGuard(t *testing.T) {
	g := newRig(t, func(c *Config) {
		c.ImageGuard = func(c *fiberCtx) error {
			if c.Get("Authorization") != "Bearer op" {
				return writeProblem(c, 401, "operator token required")
			}
			return c.Next()
		}
	})
	rd := pushN(t, g, 1, 1)[0]
	if status, _, _ := g.do(t, "GET", "/camera/images/"+rd.Images[0], "", nil); status != 401 {
		t.Errorf("GET without the operator token = %d; want 401", status)
	}
	if status, _, _ := g.do(t, "GET", "/camera/images/"+rd.Images[0], "", nil, "Authorization", "Bearer op"); status != 200 {
		t.Errorf("GET with the operator token = %d; want 200", status)
	}
}
