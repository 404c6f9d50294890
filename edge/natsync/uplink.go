// Package natsync connects a garage to the fleet over NATS: the uplink ships the
// BoltDB outbox to the hub's JetStream stream, in order, many events in flight, and
// moves a cursor only on the hub's acknowledgements; the cloud can ask for a resend
// from any seq, because an acknowledgement by the hub is not yet a row in PostgreSQL.
package natsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

// Outbox is what the uplink needs of the store. *boltstore.Store implements it.
type Outbox interface {
	Events(after uint64, limit int) ([]*gh.Envelope, error)
	Cursor() (uint64, error)
	SetCursor(seq uint64) error
	Committed() <-chan struct{}
}

// EventSubject is the subject an event of a facility is published on.
func EventSubject(facility, typ string) string {
	return "gh.fac." + facility + ".evt." + typ
}

// MsgID is the JetStream deduplication id of an event: the facility and the seq.
func MsgID(facility string, seq uint64) string {
	return fmt.Sprintf("%s:%d", facility, seq)
}

// Uplink publishes a garage's outbox to the hub.
type Uplink struct {
	Facility string
	Conn     *nats.Conn
	// Domain is the hub's JetStream domain ("hub"); empty when the connection is to the
	// hub itself.
	Domain string
	Outbox Outbox
	Logger *slog.Logger
	// Window is how many events may be in flight at once; zero means 512.
	Window int
	// AckTimeout bounds the wait for the hub's acknowledgements; zero means 5 s.
	AckTimeout time.Duration

	resend  chan uint64
	once    sync.Once
	cursor  atomic.Uint64
	acked   atomic.Uint64 // events acknowledged since start
	lastAck atomic.Int64  // unix nanos
	lastErr atomic.Pointer[string]
}

func (u *Uplink) init() {
	u.once.Do(func() {
		u.resend = make(chan uint64, 16)
		if u.Window <= 0 {
			u.Window = 512
		}
		if u.AckTimeout <= 0 {
			u.AckTimeout = 5 * time.Second
		}
		if u.Logger == nil {
			u.Logger = slog.New(slog.DiscardHandler)
		}
	})
}

// Resend makes the uplink send again every event from seq on: the cloud found a gap
// or lost what the hub had acknowledged.
func (u *Uplink) Resend(from uint64) {
	u.init()
	select {
	case u.resend <- from:
	default:
	}
}

// UplinkStatus is the uplink's progress, for metrics and the status API.
type UplinkStatus struct {
	Cursor    uint64    `json:"cursor"`
	Acked     uint64    `json:"acked"`
	LastAck   time.Time `json:"last_ack,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

// Status reports the uplink's progress.
func (u *Uplink) Status() UplinkStatus {
	s := UplinkStatus{Cursor: u.cursor.Load(), Acked: u.acked.Load()}
	if n := u.lastAck.Load(); n > 0 {
		s.LastAck = time.Unix(0, n)
	}
	if e := u.lastErr.Load(); e != nil {
		s.LastError = *e
	}
	return s
}

// Run ships the outbox until ctx is done. Failures (hub unreachable, timeouts) are
// retried with backoff from the cursor; they never reach the lanes.
func (u *Uplink) Run(ctx context.Context) error {
	u.init()
	js, err := u.jetStream()
	if err != nil {
		return err
	}
	cursor, err := u.Outbox.Cursor()
	if err != nil {
		return fmt.Errorf("uplink cursor: %w", err)
	}
	u.cursor.Store(cursor)
	backoff := 100 * time.Millisecond
	var quiet logLimit
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case from := <-u.resend:
			if from > 0 && from-1 < cursor {
				u.Logger.Info("uplink resend", "from", from, "cursor", cursor)
				cursor = from - 1
				if err := u.Outbox.SetCursor(cursor); err != nil {
					return err
				}
				u.cursor.Store(cursor)
			}
		default:
		}
		evs, err := u.Outbox.Events(cursor, u.Window)
		if err != nil {
			return fmt.Errorf("uplink read outbox: %w", err)
		}
		if len(evs) == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-u.Outbox.Committed():
			case <-tick.C:
			case from := <-u.resend:
				u.resend <- from // handled at the top
			}
			continue
		}
		n, err := u.publish(ctx, js, evs)
		if n > 0 {
			cursor = evs[n-1].Seq
			if err := u.Outbox.SetCursor(cursor); err != nil {
				return fmt.Errorf("uplink cursor: %w", err)
			}
			u.cursor.Store(cursor)
			u.acked.Add(uint64(n))
			u.lastAck.Store(time.Now().UnixNano())
			backoff = 100 * time.Millisecond
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			msg := err.Error()
			u.lastErr.Store(&msg)
			if quiet.ok(msg) {
				u.Logger.Warn("uplink publish failed; retrying (repeats are logged once a minute)", "cursor", cursor, "err", err, "in", backoff)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff + time.Duration(rand.Int64N(int64(backoff/2)))):
			}
			backoff = min(backoff*2, 5*time.Second)
		}
	}
}

func (u *Uplink) jetStream() (jetstream.JetStream, error) {
	if u.Domain != "" {
		return jetstream.NewWithDomain(u.Conn, u.Domain)
	}
	return jetstream.New(u.Conn)
}

// publish sends evs asynchronously and returns how many from the start were
// acknowledged, in order.
func (u *Uplink) publish(ctx context.Context, js jetstream.JetStream, evs []*gh.Envelope) (int, error) {
	futures := make([]jetstream.PubAckFuture, 0, len(evs))
	for _, ev := range evs {
		data, err := proto.Marshal(ev)
		if err != nil {
			return 0, err
		}
		msg := nats.NewMsg(EventSubject(u.Facility, ev.Type))
		msg.Data = data
		msg.Header.Set(jetstream.MsgIDHeader, MsgID(u.Facility, ev.Seq))
		f, err := js.PublishMsgAsync(msg)
		if err != nil {
			break // what was queued is still awaited below
		}
		futures = append(futures, f)
	}
	timeout := time.NewTimer(u.AckTimeout)
	defer timeout.Stop()
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return i, err
		case <-timeout.C:
			return i, errors.New("timed out waiting for the hub's acknowledgement")
		case <-ctx.Done():
			return i, ctx.Err()
		}
	}
	if len(futures) < len(evs) {
		return len(futures), errors.New("publish queue full")
	}
	return len(futures), nil
}

// logLimit lets a repeated failure through once a minute, and a new one at once, so a
// garage offline for a week does not write a warning every few seconds.
type logLimit struct {
	last    string
	lastLog time.Time
}

func (l *logLimit) ok(msg string) bool {
	now := time.Now()
	if msg != l.last || now.Sub(l.lastLog) >= time.Minute {
		l.last, l.lastLog = msg, now
		return true
	}
	return false
}
