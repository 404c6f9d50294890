package lpr

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// imageStore keeps the images of reads exactly where and as the camera-push
// adapter keeps its own: dir/<date>/<device>/<event>-<n>.jpg, so that the
// edge serves both under /camera/images/ and a session's images look the same
// whichever reader made them. It ages out and caps only the files of its own
// devices; every access goes through an os.Root.
type imageStore struct {
	root      *os.Root
	retention time.Duration
	max       int64

	mu    sync.Mutex
	files []storedFile // oldest first
	total int64
	seq   uint64
}

type storedFile struct {
	path string
	size int64
	at   time.Time
}

// openImageStore opens dir and indexes the images an earlier run stored for
// devices.
func openImageStore(dir string, devices []string, retention time.Duration, max int64) (*imageStore, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("lpr: image dir: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("lpr: image dir: %w", err)
	}
	s := &imageStore{root: root, retention: retention, max: max}
	days, _ := fs.ReadDir(root.FS(), ".")
	for _, day := range days {
		for _, dev := range devices {
			p := path.Join(day.Name(), safeName(dev))
			ents, _ := fs.ReadDir(root.FS(), p)
			for _, e := range ents {
				if info, err := e.Info(); err == nil && info.Mode().IsRegular() && strings.HasSuffix(e.Name(), ".jpg") {
					s.files = append(s.files, storedFile{path: path.Join(p, e.Name()), size: info.Size(), at: info.ModTime()})
					s.total += info.Size()
				}
			}
		}
	}
	sort.SliceStable(s.files, func(i, j int) bool { return s.files[i].at.Before(s.files[j].at) })
	return s, nil
}

// save writes one image of an event and returns its path relative to the
// store, removing the oldest images when the store is over its cap.
func (s *imageStore) save(device, event string, n int, data []byte, now time.Time) (string, error) {
	if int64(len(data)) > s.max {
		return "", errors.New("image larger than the image store's cap")
	}
	dir := path.Join(now.UTC().Format(time.DateOnly), safeName(device))
	rel := path.Join(dir, safeName(event)+"-"+strconv.Itoa(n)+".jpg")
	if err := s.root.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	s.mu.Lock()
	s.seq++
	tmp := rel + "." + strconv.FormatUint(s.seq, 36) + ".tmp"
	s.mu.Unlock()
	// Write beside and rename, so that a reader never sees half an image.
	if err := s.root.WriteFile(tmp, data, 0o640); err != nil {
		s.root.Remove(tmp)
		return "", err
	}
	if err := s.root.Rename(tmp, rel); err != nil {
		s.root.Remove(tmp)
		return "", err
	}
	s.mu.Lock()
	s.files = append(s.files, storedFile{path: rel, size: int64(len(data)), at: now})
	s.total += int64(len(data))
	victims := s.takeLocked(time.Time{})
	s.mu.Unlock()
	s.remove(victims)
	return rel, nil
}

// takeLocked drops from the index the images older than cutoff (none for a zero
// cutoff) and, oldest first, those over the cap. The caller holds mu.
func (s *imageStore) takeLocked(cutoff time.Time) []storedFile {
	i := 0
	for i < len(s.files) && (s.total > s.max || !cutoff.IsZero() && s.files[i].at.Before(cutoff)) {
		s.total -= s.files[i].size
		i++
	}
	victims := append([]storedFile(nil), s.files[:i]...)
	s.files = append(s.files[:0], s.files[i:]...)
	return victims
}

func (s *imageStore) remove(victims []storedFile) {
	for _, v := range victims {
		s.root.Remove(v.path)
	}
}

// sweep removes the images older than the retention time.
func (s *imageStore) sweep(now time.Time) int {
	s.mu.Lock()
	victims := s.takeLocked(now.Add(-s.retention))
	s.mu.Unlock()
	s.remove(victims)
	return len(victims)
}

func (s *imageStore) close() error { return s.root.Close() }

// safeName makes s usable as one file-name component, as the camera adapter
// does: characters outside [A-Za-z0-9._-] become '_' and a leading dot goes.
func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			b[i] = '_'
		}
	}
	out := strings.TrimLeft(string(b), ".")
	if out == "" {
		out = "_"
	}
	if len(out) > 64 {
		out = out[:64]
	}
	return out
}
