package edge

import (
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
)

// Store keeps a garage's state records and its outbox of events, durably and together.
// It is implemented by edge/boltstore.
type Store interface {
	// Submit queues b to be written in one transaction, in submission order, and returns
	// at once. Wait on the result for durability. Events in b carry their seq already;
	// the store refuses a batch whose first seq does not follow the last one written.
	Submit(b *Batch) Pending
	// Load returns every state record and the last seq written.
	Load() (*Snapshot, error)
	// Events returns up to limit events with seq > after, in seq order.
	Events(after uint64, limit int) ([]*gh.Envelope, error)
}

// Pending is a submitted batch on its way to disk.
type Pending interface {
	// Wait blocks until the batch is durable or has failed.
	Wait() error
}

// Batch is what one change of state writes: its events and the records it touched.
type Batch struct {
	Events  []*gh.Envelope
	Records []Record
}

// Record is one state entity to write (Value non-nil) or delete (Value nil).
type Record struct {
	Bucket string
	Key    string
	Value  []byte
}

// Snapshot is the stored state as a store loads it.
type Snapshot struct {
	LastSeq uint64
	// Records maps bucket name to key to value.
	Records map[string]map[string][]byte
}

// Buckets of state records.
const (
	BucketZones        = "zones"
	BucketSessions     = "sessions"      // open sessions
	BucketClosed       = "sessions_done" // closed sessions, kept for history
	BucketPermits      = "permits"
	BucketReservations = "reservations"
	BucketSpots        = "spots"
	BucketLanes        = "lanes"
	BucketAlerts       = "alerts"
	BucketDownlink     = "downlink" // document versions and the block list from the cloud
	BucketCaptures     = "captures" // card payments approved offline, not captured yet
)

// StateBuckets lists every bucket of state records, for stores that create them.
var StateBuckets = []string{
	BucketZones, BucketSessions, BucketClosed, BucketPermits,
	BucketReservations, BucketSpots, BucketLanes, BucketAlerts, BucketDownlink, BucketCaptures,
}

// donePending is a Pending that has already finished.
type donePending struct{ err error }

func (p donePending) Wait() error { return p.err }
