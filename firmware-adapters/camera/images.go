package camera

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// imageStore keeps the images of reads in dir/<date>/<device>/<event>-<n>.jpg and
// removes them again: by age (retention) and, oldest first, when they take more
// than max bytes. Every access goes through an os.Root, so no name can escape dir.
type imageStore struct {
	root      *os.Root
	retention time.Duration
	max       int64
	log       *slog.Logger
	tmpSeq    atomic.Uint64

	mu      sync.Mutex
	queue   []*storedImage // in order of storing, oldest first, from head
	head    int
	byPath  map[string]*storedImage
	byEvent map[string][]string // safeName(event id) -> relative paths
	total   int64
}

type storedImage struct {
	path, event string
	size        int64
	at          time.Time
	gone        bool
}

// imagePathRE is the form of every stored image's relative path.
var imagePathRE = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}/[A-Za-z0-9._~-]+/[A-Za-z0-9._~-]+-[0-9]+\.jpg$`)

// openImageStore opens (creating it) dir and indexes the images already in it, so
// that retention and the cap also cover what an earlier run stored.
func openImageStore(dir string, retention time.Duration, max int64, log *slog.Logger) (*imageStore, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("camera: image dir: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("camera: image dir: %w", err)
	}
	s := &imageStore{root: root, retention: retention, max: max, log: log, byPath: map[string]*storedImage{}, byEvent: map[string][]string{}}
	var found []*storedImage
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil // an unreadable corner is not a reason to refuse to start
		}
		if strings.HasSuffix(p, ".tmp") { // a write cut short by a crash
			root.Remove(p)
			return nil
		}
		if !imagePathRE.MatchString(p) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		found = append(found, &storedImage{path: p, event: eventOfFile(p), size: info.Size(), at: info.ModTime()})
		return nil
	})
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("camera: image dir: %w", err)
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].at.Before(found[j].at) })
	for _, im := range found {
		s.add(im)
	}
	return s, nil
}

// eventOfFile returns the event part of a stored image's name: "<event>-<n>.jpg".
func eventOfFile(p string) string {
	base := strings.TrimSuffix(path.Base(p), ".jpg")
	if i := strings.LastIndexByte(base, '-'); i > 0 {
		return base[:i]
	}
	return base
}

// add indexes im; the caller holds mu or owns s alone.
func (s *imageStore) add(im *storedImage) {
	if old := s.byPath[im.path]; old != nil { // rewritten: the old bytes are gone
		old.gone = true
		s.total -= old.size
	} else {
		s.byEvent[im.event] = append(s.byEvent[im.event], im.path)
	}
	s.byPath[im.path] = im
	s.queue = append(s.queue, im)
	s.total += im.size
}

// drop unindexes im; the caller holds mu.
func (s *imageStore) drop(im *storedImage) {
	im.gone = true
	s.total -= im.size
	delete(s.byPath, im.path)
	paths := s.byEvent[im.event]
	for i, p := range paths {
		if p == im.path {
			paths = append(paths[:i], paths[i+1:]...)
			break
		}
	}
	if len(paths) == 0 {
		delete(s.byEvent, im.event)
	} else {
		s.byEvent[im.event] = paths
	}
}

// save writes one image of an event and returns its relative path. When the images
// then take more than the cap, the oldest are removed at once, so the cap holds
// whether or not the sweeper runs.
func (s *imageStore) save(device, event string, n int, data []byte, now time.Time) (string, error) {
	if int64(len(data)) > s.max {
		return "", errors.New("image larger than the image store's cap")
	}
	dir := path.Join(now.UTC().Format(time.DateOnly), safeName(device))
	key := safeName(event)
	rel := path.Join(dir, key+"-"+strconv.Itoa(n)+".jpg")
	if err := s.root.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	// Write beside and rename, so that a reader never sees half an image.
	tmp := rel + "." + strconv.FormatUint(s.tmpSeq.Add(1), 36) + ".tmp"
	if err := s.root.WriteFile(tmp, data, 0o640); err != nil {
		s.root.Remove(tmp)
		return "", err
	}
	if err := s.root.Rename(tmp, rel); err != nil {
		s.root.Remove(tmp)
		return "", err
	}
	s.mu.Lock()
	s.add(&storedImage{path: rel, event: key, size: int64(len(data)), at: now})
	victims := s.takeLocked(time.Time{})
	s.mu.Unlock()
	s.remove(victims, false)
	return rel, nil
}

// takeLocked unindexes and returns the images stored before cutoff (none for a
// zero cutoff) and, oldest first, those over the cap. The caller holds mu.
func (s *imageStore) takeLocked(cutoff time.Time) []*storedImage {
	var victims []*storedImage
	for s.head < len(s.queue) {
		im := s.queue[s.head]
		if !im.gone {
			if s.total <= s.max && (cutoff.IsZero() || !im.at.Before(cutoff)) {
				break
			}
			s.drop(im)
			victims = append(victims, im)
		}
		s.queue[s.head] = nil
		s.head++
	}
	if s.head > 1024 && s.head*2 > len(s.queue) {
		s.queue = append(s.queue[:0], s.queue[s.head:]...)
		s.head = 0
	}
	return victims
}

// remove deletes the files of victims and, when tidy, the directories that are left
// empty.
func (s *imageStore) remove(victims []*storedImage, tidy bool) {
	dirs := map[string]bool{}
	for _, im := range victims {
		if err := s.root.Remove(im.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("camera: cannot remove an old image", "path", im.path, "err", err)
		}
		dirs[path.Dir(im.path)] = true
	}
	if !tidy {
		return
	}
	for d := range dirs {
		// Remove fails on a directory that still holds files: that is the test.
		if s.root.Remove(d) == nil {
			s.root.Remove(path.Dir(d))
		}
	}
}

// sweep removes the images older than the retention time and any over the cap.
func (s *imageStore) sweep(now time.Time) int {
	s.mu.Lock()
	victims := s.takeLocked(now.Add(-s.retention))
	s.mu.Unlock()
	s.remove(victims, true)
	return len(victims)
}

// paths returns the relative paths of the stored images of an event.
func (s *imageStore) paths(event string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.byEvent[safeName(event)]...)
}

// usage returns the number of stored images and their bytes.
func (s *imageStore) usage() (int, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byPath), s.total
}

// read returns a stored image by its relative path; fs.ErrNotExist for anything
// that is not one.
func (s *imageStore) read(rel string) ([]byte, error) {
	if !imagePathRE.MatchString(rel) || strings.Contains(rel, "..") {
		return nil, fs.ErrNotExist
	}
	info, err := s.root.Stat(rel)
	if err != nil {
		return nil, fs.ErrNotExist
	}
	if !info.Mode().IsRegular() || info.Size() > s.max {
		return nil, fs.ErrNotExist
	}
	return s.root.ReadFile(rel)
}

func (s *imageStore) close() error { return s.root.Close() }
