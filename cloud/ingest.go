package cloud

import (
	"errors"
	"fmt"
	"time"
)

// IngestResult says what one ingest of a batch of envelopes did.
type IngestResult struct {
	// Applied counts the envelopes stored for the first time.
	Applied int
	// Duplicates counts the envelopes already stored, or repeated within the batch;
	// they change nothing.
	Duplicates int
	// Conflicts counts the duplicates whose event id differs from the stored event's: a
	// garage reusing seqs (restored from an old backup, or a forgery). The stored event
	// wins; each is logged. Conflicts are also counted in Duplicates.
	Conflicts int
	// Projected counts the events folded into the projections by this ingest: the new
	// ones that follow their facility's applied seq without a gap, and the stored ones
	// that waited behind a gap this batch filled.
	Projected int
	// Gaps lists, per facility of the batch, the seqs missing between the last applied
	// event and the first stored event after it. The events after a gap are stored and
	// wait; the garage must resend the gap.
	Gaps []Gap
	// Rejected lists the envelopes that are not valid; they are not stored.
	Rejected []Rejection
}

// Err returns the rejections as one error, or nil when there were none.
func (r IngestResult) Err() error {
	if len(r.Rejected) == 0 {
		return nil
	}
	errs := make([]error, len(r.Rejected))
	for i, x := range r.Rejected {
		errs[i] = x.Err
	}
	return errors.Join(errs...)
}

// Gap is a run of seqs of one facility that the cloud has not received, From and To
// included.
type Gap struct {
	Facility string
	From, To uint64
}

// String returns the gap as "facility:from-to".
func (g Gap) String() string { return fmt.Sprintf("%s:%d-%d", g.Facility, g.From, g.To) }

// Rejection is an envelope that was refused, with why.
type Rejection struct {
	// Index is the envelope's position in the batch.
	Index int
	// Facility and Seq are as the envelope claimed them, when it could be decoded.
	Facility string
	Seq      uint64
	// Err is an *Error with code EINVALID.
	Err error
}

// ZoneOccupancy is a zone's count as the cloud last applied it.
type ZoneOccupancy struct {
	Zone     string
	Occupied int
	// Capacity is the zone's capacity as the garage last reported it; 0 if unknown.
	Capacity  int
	UpdatedAt time.Time
}

// Session is a stay at a garage: open while the vehicle is inside, closed after its
// exit passage.
type Session struct {
	Facility      string
	ID            string
	Zone          string
	Plate         string
	Ticket        string
	Card          string
	PermitID      string
	ReservationID string
	// Right is the right of the current (or last) segment: "transient", "permit",
	// "reservation", "operator" or "unspecified".
	Right     string
	RateID    string
	EntryLane string
	EnteredAt time.Time
	// Paid is the sum of the payments made for the stay, in minor units.
	Paid int64
	// Set once the session is closed.
	ExitLane  string
	ExitedAt  time.Time
	Fee       int64
	Currency  string
	EndedHow  string
	Duration  time.Duration
	ClosedSeq uint64
}

// Alert is an active alert of a garage: a lasting condition raised and not yet cleared.
type Alert struct {
	Key      string
	Code     string
	Severity string
	Message  string
	Lane     string
	Device   string
	Zone     string
	RaisedAt time.Time
}

// LaneStatus is a lane's service status as last reported.
type LaneStatus struct {
	Lane      string
	Status    string
	Reason    string
	UpdatedAt time.Time
}

// FacilityStatus is what the cloud knows of a garage's stream.
type FacilityStatus struct {
	ID   string
	Name string
	// CreatedAt is when the cloud first heard of the garage.
	CreatedAt time.Time
	// LastContact is when the cloud last received a batch with an event of the garage.
	LastContact time.Time
	// LastEventAt is the newest occurred_at among the applied events.
	LastEventAt time.Time
	// LastSeqReceived is the highest seq stored.
	LastSeqReceived uint64
	// AppliedSeq is the highest seq such that every seq up to it is stored and applied.
	AppliedSeq uint64
	// Gap, when not nil, is the first run of missing seqs after AppliedSeq.
	Gap *Gap
}
