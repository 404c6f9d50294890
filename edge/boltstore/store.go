// Package boltstore keeps a garage's state and outbox in one BoltDB file.
//
// Every batch is written in one transaction: its state records and its events, the
// events under their seq in the outbox bucket, the last seq in the meta bucket. A batch
// whose first seq does not follow the last one written is refused, so the outbox
// cannot get a gap. Batches are group-committed: a single writer goroutine takes
// whatever has queued while the previous transaction was on its way to disk and
// writes it in the next one, so many lanes and sensors share one fsync without any of
// them waiting for a timer.
package boltstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

var (
	bucketMeta   = []byte("meta")
	bucketOutbox = []byte("outbox")
	keyLastSeq   = []byte("last_seq")
	keyFacility  = []byte("facility")
	keyCursor    = []byte("uplink_cursor")
)

// Errors.
var (
	// ErrClosed is returned for batches submitted after Close.
	ErrClosed = errors.New("boltstore: closed")
	// ErrSeqGap is returned for a batch that does not continue the outbox.
	ErrSeqGap = errors.New("boltstore: seq gap")
	// ErrFacility is returned when the file belongs to another facility.
	ErrFacility = errors.New("boltstore: file belongs to another facility")
)

// MaxBatch bounds how many submitted batches one transaction takes.
const MaxBatch = 1024

// Store is a BoltDB-backed edge.Store.
type Store struct {
	db        *bolt.DB
	wake      chan struct{} // a signal that the queue is not empty
	done      chan struct{}
	committed chan struct{} // a signal that events were written

	mu     sync.Mutex
	queue  []*request // submitted, not yet taken by the writer; never blocks Submit
	closed bool
	broken error // set after a failed transaction; every later batch fails with it
}

var _ edge.Store = (*Store)(nil)

type request struct {
	b    *edge.Batch
	err  error
	done chan struct{}
}

// Wait implements edge.Pending.
func (r *request) Wait() error {
	<-r.done
	return r.err
}

// Options tune a Store.
type Options struct {
	// NoSync skips fsync: for tests and benchmarks of everything but the disk.
	NoSync bool
	// Timeout is how long Open waits for another process's lock on the file.
	Timeout time.Duration
	// ReadOnly opens an existing file for reading (backups, inspection) with a shared
	// lock; facility "" then accepts whichever facility the file belongs to.
	ReadOnly bool
}

// Open opens or creates the store at path for facility id.
func Open(path, facility string, opt *Options) (*Store, error) {
	if opt == nil {
		opt = &Options{}
	}
	timeout := opt.Timeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	if opt.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, err
		}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, NoSync: opt.NoSync, ReadOnly: opt.ReadOnly, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Store{db: db, wake: make(chan struct{}, 1), done: make(chan struct{}), committed: make(chan struct{}, 1)}
	if opt.ReadOnly {
		s.closed = true // no writer
		close(s.done)
		return s, nil
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range append([]string{string(bucketMeta), string(bucketOutbox)}, edge.StateBuckets...) {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch got := meta.Get(keyFacility); {
		case got == nil:
			return meta.Put(keyFacility, []byte(facility))
		case string(got) != facility:
			return fmt.Errorf("%w: %q, not %q", ErrFacility, got, facility)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	go s.writer()
	return s, nil
}

// Submit implements edge.Store. It never blocks on the disk: the gate must not wait
// for an fsync, so a burst queues in memory while the writer catches up.
func (s *Store) Submit(b *edge.Batch) edge.Pending {
	r := &request{b: b, done: make(chan struct{})}
	s.mu.Lock()
	switch {
	case s.closed:
		r.err = ErrClosed
	case s.broken != nil:
		r.err = s.broken
	default:
		s.queue = append(s.queue, r)
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default: // already signalled
		}
		return r
	}
	s.mu.Unlock()
	close(r.done)
	return r
}

// Queued returns how many submitted batches wait for the writer.
func (s *Store) Queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// take removes up to MaxBatch queued requests, in order. It reports false when the
// store is closed and drained.
func (s *Store) take(group []*request) ([]*request, bool) {
	for {
		s.mu.Lock()
		n := min(len(s.queue), MaxBatch)
		if n > 0 {
			group = append(group[:0], s.queue[:n]...)
			clear(s.queue[:n])
			s.queue = s.queue[n:]
			if len(s.queue) == 0 {
				s.queue = nil // let a burst's backing array go
			}
			s.mu.Unlock()
			return group, true
		}
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return nil, false
		}
		<-s.wake
	}
}

// writer is the single writer: it group-commits whatever has queued.
func (s *Store) writer() {
	defer close(s.done)
	group := make([]*request, 0, MaxBatch)
	for {
		var ok bool
		if group, ok = s.take(group); !ok {
			return
		}
		err := s.db.Update(func(tx *bolt.Tx) error {
			for _, r := range group {
				if err := write(tx, r.b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			s.mu.Lock()
			if s.broken == nil {
				s.broken = fmt.Errorf("boltstore: write failed, store stopped: %w", err)
			}
			s.mu.Unlock()
		}
		// Signal before waking the writers: whoever saw its write complete also
		// finds the signal pending.
		if err == nil {
			select {
			case s.committed <- struct{}{}:
			default:
			}
		}
		for _, r := range group {
			r.err = err
			close(r.done)
		}
	}
}

// Committed signals (without blocking the writer, so signals coalesce) that events
// were written: the uplink publisher waits on it.
func (s *Store) Committed() <-chan struct{} { return s.committed }

// Cursor returns the uplink cursor: the highest seq the hub has acknowledged.
func (s *Store) Cursor() (uint64, error) {
	var c uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyCursor); v != nil {
			c = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return c, err
}

// SetCursor records the uplink cursor. It is a small write of its own, outside the
// group commit: losing the last one in a crash only makes the uplink send again
// events the hub drops as duplicates.
func (s *Store) SetCursor(seq uint64) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], seq)
		return tx.Bucket(bucketMeta).Put(keyCursor, b[:])
	})
}

func write(tx *bolt.Tx, b *edge.Batch) error {
	meta, out := tx.Bucket(bucketMeta), tx.Bucket(bucketOutbox)
	last := uint64(0)
	if v := meta.Get(keyLastSeq); v != nil {
		last = binary.BigEndian.Uint64(v)
	}
	var key [8]byte
	for _, ev := range b.Events {
		if ev.Seq != last+1 {
			return fmt.Errorf("%w: event %d after %d", ErrSeqGap, ev.Seq, last)
		}
		data, err := proto.Marshal(ev)
		if err != nil {
			return err
		}
		binary.BigEndian.PutUint64(key[:], ev.Seq)
		if err := out.Put(key[:], data); err != nil {
			return err
		}
		last = ev.Seq
	}
	binary.BigEndian.PutUint64(key[:], last)
	if err := meta.Put(keyLastSeq, key[:]); err != nil {
		return err
	}
	for _, rec := range b.Records {
		bk := tx.Bucket([]byte(rec.Bucket))
		if bk == nil {
			return fmt.Errorf("boltstore: unknown bucket %q", rec.Bucket)
		}
		var err error
		if rec.Value == nil {
			err = bk.Delete([]byte(rec.Key))
		} else {
			err = bk.Put([]byte(rec.Key), rec.Value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Load implements edge.Store.
func (s *Store) Load() (*edge.Snapshot, error) {
	snap := &edge.Snapshot{Records: map[string]map[string][]byte{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyLastSeq); v != nil {
			snap.LastSeq = binary.BigEndian.Uint64(v)
		}
		for _, name := range edge.StateBuckets {
			if name == edge.BucketClosed {
				continue // history, not state
			}
			m := map[string][]byte{}
			err := tx.Bucket([]byte(name)).ForEach(func(k, v []byte) error {
				m[string(k)] = append([]byte(nil), v...)
				return nil
			})
			if err != nil {
				return err
			}
			snap.Records[name] = m
		}
		return nil
	})
	return snap, err
}

// Events implements edge.Store.
func (s *Store) Events(after uint64, limit int) ([]*gh.Envelope, error) {
	var out []*gh.Envelope
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		var key [8]byte
		binary.BigEndian.PutUint64(key[:], after+1)
		for k, v := c.Seek(key[:]); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			ev := new(gh.Envelope)
			if err := proto.Unmarshal(v, ev); err != nil {
				return fmt.Errorf("outbox %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, err
}

// ClosedSessions returns up to limit ended sessions, newest first.
func (s *Store) ClosedSessions(limit int) ([][]byte, error) {
	var out [][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(edge.BucketClosed)).Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			out = append(out, append([]byte(nil), v...))
		}
		return nil
	})
	return out, err
}

// Backup writes a consistent copy of the whole file to w while the store stays in use.
func (s *Store) Backup(w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// BackupFile writes a consistent copy to path, atomically: a temporary file renamed
// into place once synced.
func (s *Store) BackupFile(path string) (int64, error) {
	return WriteFileAtomic(path, s.Backup)
}

// WriteFileAtomic writes path through fill into a temporary file that is synced and
// renamed into place, so that path is never a partial copy.
func WriteFileAtomic(path string, fill func(io.Writer) (int64, error)) (int64, error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := fill(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, err
	}
	return n, nil
}

// Close waits for queued batches to be written and closes the file.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return s.db.Close()
	}
	s.closed = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	<-s.done
	return s.db.Close()
}
