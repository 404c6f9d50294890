package boltstore_test

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/edge/boltstore"
)

func mustOpen(tb testing.TB, path string) *boltstore.Store {
	tb.Helper()
	s, err := boltstore.Open(path, "fac", &boltstore.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func batch(seqs ...uint64) *edge.Batch {
	b := &edge.Batch{}
	for _, q := range seqs {
		b.Events = append(b.Events, sampleEvent(q))
	}
	return b
}

func TestWriteLoadEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	s := mustOpen(t, path)
	b := batch(1, 2)
	b.Records = []edge.Record{{Bucket: edge.BucketZones, Key: "Z", Value: []byte(`{"id":"Z","occupied":2}`)}}
	if err := s.Submit(b).Wait(); err != nil {
		t.Fatal(err)
	}
	b = batch(3)
	b.Records = []edge.Record{{Bucket: edge.BucketZones, Key: "Z"}} // delete
	if err := s.Submit(b).Wait(); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = mustOpen(t, path)
	defer s.Close()
	snap, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if snap.LastSeq != 3 || len(snap.Records[edge.BucketZones]) != 0 {
		t.Fatalf("Load = seq %d zones %v; want 3 and none", snap.LastSeq, snap.Records[edge.BucketZones])
	}
	evs, err := s.Events(1, 1)
	if err != nil || len(evs) != 1 || evs[0].Seq != 2 {
		t.Fatalf("Events(1, 1) = %v, %v; want seq 2", evs, err)
	}
	evs, _ = s.Events(0, 0)
	if len(evs) != 3 {
		t.Fatalf("Events(0, 0) = %d events; want 3", len(evs))
	}
}

func TestSeqGapRefusedAndStops(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "g.db"))
	defer s.Close()
	if err := s.Submit(batch(1)).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := s.Submit(batch(3)).Wait(); !errors.Is(err, boltstore.ErrSeqGap) {
		t.Fatalf("gap: err = %v; want ErrSeqGap", err)
	}
	// After a failed write the store refuses everything: memory and disk may disagree.
	if err := s.Submit(batch(2)).Wait(); err == nil {
		t.Fatal("store accepted a batch after a failed write")
	}
	evs, _ := s.Events(0, 0)
	if len(evs) != 1 {
		t.Fatalf("events = %d; want 1", len(evs))
	}
}

func TestUnknownBucketFailsWholeBatch(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "g.db"))
	defer s.Close()
	b := batch(1)
	b.Records = []edge.Record{{Bucket: "nope", Key: "k", Value: []byte("v")}}
	if err := s.Submit(b).Wait(); err == nil {
		t.Fatal("batch with an unknown bucket was written")
	}
	if evs, _ := s.Events(0, 0); len(evs) != 0 {
		t.Fatalf("events = %d; want 0: the event and its records go together or not at all", len(evs))
	}
}

func TestOtherFacilityRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	mustOpen(t, path).Close()
	if _, err := boltstore.Open(path, "other", nil); !errors.Is(err, boltstore.ErrFacility) {
		t.Fatalf("err = %v; want ErrFacility", err)
	}
}

func TestConcurrentSubmitGapless(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "g.db"))
	defer s.Close()
	var mu sync.Mutex
	var seq uint64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				mu.Lock()
				seq++
				p := s.Submit(batch(seq))
				mu.Unlock()
				if err := p.Wait(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	evs, _ := s.Events(0, 0)
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("position %d holds seq %d", i, ev.Seq)
		}
	}
	if len(evs) != 3200 {
		t.Fatalf("events = %d; want 3200", len(evs))
	}
}

func TestBackupWhileWriting(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, filepath.Join(dir, "g.db"))
	for i := uint64(1); i <= 100; i++ {
		s.Submit(batch(i))
	}
	n, err := s.BackupFile(filepath.Join(dir, "copy.db"))
	if err != nil || n == 0 {
		t.Fatalf("BackupFile = %d, %v", n, err)
	}
	s.Close()
	c, err := boltstore.Open(filepath.Join(dir, "copy.db"), "", &boltstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	evs, err := c.Events(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("backup: position %d holds seq %d", i, ev.Seq)
		}
	}
	t.Logf("backup holds %d of 100 events", len(evs))
}

func TestClosedStoreRefuses(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "g.db"))
	s.Close()
	if err := s.Submit(batch(1)).Wait(); !errors.Is(err, boltstore.ErrClosed) {
		t.Fatalf("err = %v; want ErrClosed", err)
	}
}

func TestCursorAndCommitSignal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	s := mustOpen(t, path)
	if c, err := s.Cursor(); err != nil || c != 0 {
		t.Fatalf("Cursor() = %d, %v; want 0", c, err)
	}
	if err := s.Submit(batch(1, 2, 3)).Wait(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Committed():
	default:
		t.Fatal("no commit signal after a write")
	}
	if err := s.SetCursor(2); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = mustOpen(t, path)
	defer s.Close()
	if c, err := s.Cursor(); err != nil || c != 2 {
		t.Fatalf("Cursor() after reopen = %d, %v; want 2", c, err)
	}
}
