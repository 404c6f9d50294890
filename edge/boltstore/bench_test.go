package boltstore_test

import (
	"encoding/binary"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/edge/boltstore"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// writers is how many lanes and sensors write at once in the benchmarks.
const writers = 64

func sampleEvent(seq uint64) *gh.Envelope {
	return &gh.Envelope{FacilityId: "bench", Seq: seq, EventId: "0123456789abcdef0123456789abcdef", OccurredAt: timestamppb.New(time.Unix(1764100000, 0)),
		Type: "session.started", LaneId: "E1", Payload: &gh.Envelope_SessionStarted{SessionStarted: &gh.SessionStarted{
			SessionId: "fedcba9876543210fedcba9876543210", ZoneId: "L1-general", Right: gh.Right_RIGHT_TRANSIENT, RateId: "short-term", Plate: "AB123CD",
			Credential: &gh.Credential{Kind: gh.CredentialKind_CREDENTIAL_KIND_PLATE, Value: "AB123CD", Confidence: 0.93}}}}
}

var sampleRecord = []byte(`{"id":"L1-general","occupied":123}`)

// BenchmarkDurableEvents measures events per second made durable (fsync) by the store
// with 64 concurrent writers, each waiting for its own event, against raw bbolt Batch
// writes of the same bytes (the event under its seq and one state record) in the same
// run. The ratio store/raw is the figure in docs/BENCHMARKS.md (target >= 0.8).
func BenchmarkDurableEvents(b *testing.B) {
	var storeRate, rawRate float64
	b.Run("store", func(b *testing.B) {
		s, err := boltstore.Open(filepath.Join(b.TempDir(), "s.db"), "bench", nil)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		var mu sync.Mutex
		var seq uint64
		var left atomic.Int64
		left.Store(int64(b.N))
		b.ResetTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for left.Add(-1) >= 0 {
					mu.Lock() // as the garage: seq taken and batch queued in one step
					seq++
					p := s.Submit(&edge.Batch{Events: []*gh.Envelope{sampleEvent(seq)}, Records: []edge.Record{{Bucket: edge.BucketZones, Key: "L1-general", Value: sampleRecord}}})
					mu.Unlock()
					if err := p.Wait(); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		storeRate = float64(b.N) / time.Since(start).Seconds()
		b.ReportMetric(storeRate, "events/s")
	})
	// Raw bbolt Batch with its default 10 ms batch delay, and tuned down to 1 ms.
	for _, delay := range []time.Duration{0, time.Millisecond} {
		name := "raw-bbolt-batch"
		if delay > 0 {
			name += "-delay-" + delay.String()
		}
		b.Run(name, func(b *testing.B) { rawRate = max(rawRate, rawBatch(b, delay)) })
	}
	if rawRate > 0 && storeRate > 0 {
		b.Logf("store/raw = %.2f (store %.0f events/s, best raw bbolt Batch %.0f events/s)", storeRate/rawRate, storeRate, rawRate)
	}
}

func rawBatch(b *testing.B, delay time.Duration) float64 {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "r.db"), 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if delay > 0 {
		db.MaxBatchDelay = delay
	}
	db.Update(func(tx *bolt.Tx) error {
		tx.CreateBucketIfNotExists([]byte("outbox"))
		tx.CreateBucketIfNotExists([]byte("zones"))
		return nil
	})
	var seq atomic.Uint64
	var left atomic.Int64
	left.Store(int64(b.N))
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				n := seq.Add(1)
				data, _ := proto.Marshal(sampleEvent(n))
				var key [8]byte
				binary.BigEndian.PutUint64(key[:], n)
				err := db.Batch(func(tx *bolt.Tx) error {
					if err := tx.Bucket([]byte("outbox")).Put(key[:], data); err != nil {
						return err
					}
					return tx.Bucket([]byte("zones")).Put([]byte("L1-general"), sampleRecord)
				})
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	rate := float64(b.N) / time.Since(start).Seconds()
	b.ReportMetric(rate, "events/s")
	return rate
}
