package natshub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

// Ingester applies a batch of events to the cloud's store. Consume declares it; the
// PostgreSQL ingest implements it.
type Ingester interface {
	// Ingest applies envs idempotently on (facility, seq), in one transaction, and
	// reports how many were new, how many it already had, and the gaps it found: the
	// seqs missing before an event of a facility. A nil error means the batch is
	// durably applied and its messages may be acknowledged.
	Ingest(ctx context.Context, envs []*gh.Envelope) (applied, duplicates int, gaps []Gap, err error)
}

// Gap is a run of a facility's seqs, From to To inclusive, that the cloud lacks
// although it holds later ones.
type Gap struct {
	Facility string
	From, To uint64
}

// ConsumeOptions tune Consume. The zero value is the defaults.
type ConsumeOptions struct {
	// Durable is the durable consumer's name; empty means "gh-ingest". One Consume at
	// a time should run per durable: the batches of one facility must stay in order.
	Durable string
	// Batch is the most messages per Ingest call; zero means 1000.
	Batch int
	// MaxWait is how long an idle fetch waits for a first message before polling
	// again; zero means 500 ms. It bounds how long Consume takes to notice ctx is done,
	// not latency: a fetch returns as soon as one message is there, and the batch is
	// then topped up with whatever else is already waiting.
	MaxWait time.Duration
	// AckWait is how long the hub waits for an acknowledgement before redelivering;
	// zero means 30 s. It must exceed the slowest Ingest.
	AckWait time.Duration
	// ResendInterval is the least time between two resend requests to one garage;
	// zero means 10 s.
	ResendInterval time.Duration
	// ResendTimeout bounds one resend request; zero means 2 s. An offline garage
	// fails at once (no responders) whatever this is.
	ResendTimeout time.Duration
}

func (o *ConsumeOptions) defaults() {
	if o.Durable == "" {
		o.Durable = "gh-ingest"
	}
	if o.Batch <= 0 {
		o.Batch = 1000
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 500 * time.Millisecond
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.ResendInterval <= 0 {
		o.ResendInterval = 10 * time.Second
	}
	if o.ResendTimeout <= 0 {
		o.ResendTimeout = 2 * time.Second
	}
}

// ResendRequest is the body of a resend command, gh.fac.<id>.cmd.resend, in JSON: the
// garage sends its outbox again from seq From on.
type ResendRequest struct {
	From uint64 `json:"from"`
}

// ResendReply is the garage's answer to a resend command, in JSON. A non-empty Error
// means the garage refused; any other answer means it will resend.
type ResendReply struct {
	Error string `json:"error,omitempty"`
}

// Consume delivers GH_EVENTS to ing until ctx is done, through the durable pull
// consumer opts.Durable (explicit acks), in batches, in stream order.
//
// Each message is decoded; one that does not decode, or whose envelope names another
// facility than its subject, or whose Nats-Msg-Id is not the facility's, is forged or
// invalid: it is counted (Stats.Invalid), logged, acknowledged and dropped, never
// ingested. The valid ones go to Ingest together and are acknowledged only once Ingest
// returned nil. On an error they are negatively acknowledged, so that the hub
// delivers them again first, after a backoff. Gaps that Ingest reports become resend
// requests to the garages, rate-limited per garage and retried while a garage is
// offline.
//
// Consume returns nil when ctx is done, or an error if the consumer cannot be set up.
func (h *Hub) Consume(ctx context.Context, ing Ingester, opts ConsumeOptions) error {
	opts.defaults()
	cons, err := h.consumer(ctx, opts)
	if err != nil {
		return err
	}
	rs := &resender{h: h, opts: opts, pending: map[string]*resendState{}}
	var wg sync.WaitGroup
	wg.Go(func() { rs.run(ctx) })
	defer wg.Wait()

	log := h.log.With("durable", opts.Durable)
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		msgs, err := fetch(cons, opts)
		if err != nil {
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
				log.Warn("consumer gone; creating it again")
				if c, err := h.consumer(ctx, opts); err == nil {
					cons = c
				}
			} else {
				log.Warn("fetch failed", "err", err)
			}
			backoff = sleepBackoff(ctx, backoff)
			continue
		}
		if len(msgs) == 0 {
			continue
		}
		if err := h.handleBatch(ctx, ing, msgs, rs); err != nil {
			if ctx.Err() == nil {
				log.Warn("ingest failed; the batch will be delivered again", "msgs", len(msgs), "err", err)
			}
			backoff = sleepBackoff(ctx, backoff)
			continue
		}
		backoff = 0
	}
	// Acknowledgements are asynchronous: see that they left before returning.
	flushCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = h.nc.FlushWithContext(flushCtx)
	return nil
}

// consumer creates or updates the durable consumer.
func (h *Hub) consumer(ctx context.Context, opts ConsumeOptions) (jetstream.Consumer, error) {
	cons, err := h.js.CreateOrUpdateConsumer(ctx, EventsStream, jetstream.ConsumerConfig{
		Durable:       opts.Durable,
		Description:   "Gatehouse ingest into PostgreSQL",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       opts.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: max(64*1024, 4*opts.Batch),
		MaxWaiting:    16,
		Replicas:      0, // as the stream
	})
	if err != nil {
		return nil, fmt.Errorf("natshub: consumer %s: %w", opts.Durable, err)
	}
	return cons, nil
}

// fetch returns the next batch: whatever is waiting, up to opts.Batch, or else the
// first message to arrive within opts.MaxWait topped up with what came with it.
func fetch(cons jetstream.Consumer, opts ConsumeOptions) ([]jetstream.Msg, error) {
	msgs, err := collect(cons.FetchNoWait(opts.Batch))
	if err != nil || len(msgs) > 0 {
		return msgs, err
	}
	msgs, err = collect(cons.Fetch(1, jetstream.FetchMaxWait(opts.MaxWait)))
	if err != nil || len(msgs) == 0 || opts.Batch == 1 {
		return msgs, err
	}
	more, err := collect(cons.FetchNoWait(opts.Batch - 1))
	return append(msgs, more...), err
}

func collect(b jetstream.MessageBatch, err error) ([]jetstream.Msg, error) {
	if err != nil {
		return nil, err
	}
	var msgs []jetstream.Msg
	for m := range b.Messages() {
		msgs = append(msgs, m)
	}
	if err := b.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, jetstream.ErrNoHeartbeat) {
		return msgs, err
	}
	return msgs, nil
}

// handleBatch drops the invalid messages, ingests the others and acknowledges them.
// On an error it has negatively acknowledged them.
func (h *Hub) handleBatch(ctx context.Context, ing Ingester, msgs []jetstream.Msg, rs *resender) error {
	envs := make([]*gh.Envelope, 0, len(msgs))
	valid := make([]jetstream.Msg, 0, len(msgs))
	for _, m := range msgs {
		env, err := decode(m)
		if err != nil {
			h.stats.invalid.Add(1)
			h.log.Warn("dropping invalid event", "subject", m.Subject(), "err", err)
			_ = m.Ack()
			continue
		}
		envs = append(envs, env)
		valid = append(valid, m)
	}
	if len(envs) == 0 {
		return nil
	}
	applied, dups, gaps, err := ing.Ingest(ctx, envs)
	if err != nil {
		h.stats.ingestErrors.Add(1)
		for _, m := range valid {
			_ = m.Nak()
		}
		return err
	}
	for _, m := range valid {
		_ = m.Ack()
	}
	h.stats.batches.Add(1)
	h.stats.applied.Add(uint64(applied))
	h.stats.duplicates.Add(uint64(dups))
	for _, g := range gaps {
		rs.add(g)
	}
	return nil
}

// errInvalid is the cause of a dropped message.
var errInvalid = errors.New("invalid event")

// decode checks a message of GH_EVENTS and decodes its envelope.
func decode(m jetstream.Msg) (*gh.Envelope, error) {
	subject := m.Subject()
	// gh.fac.<facility>.evt.<type>
	parts := strings.SplitN(subject, ".", 5)
	if len(parts) != 5 || parts[0] != "gh" || parts[1] != "fac" || parts[3] != "evt" {
		return nil, fmt.Errorf("%w: subject %q", errInvalid, subject)
	}
	facility, typ := parts[2], parts[4]
	env := &gh.Envelope{}
	if err := proto.Unmarshal(m.Data(), env); err != nil {
		return nil, fmt.Errorf("%w: does not decode: %v", errInvalid, err)
	}
	switch {
	case env.FacilityId != facility:
		return nil, fmt.Errorf("%w: forged: envelope of facility %q on the subject of %q", errInvalid, env.FacilityId, facility)
	case env.Type != typ:
		return nil, fmt.Errorf("%w: envelope type %q on subject type %q", errInvalid, env.Type, typ)
	case env.Seq == 0:
		return nil, fmt.Errorf("%w: seq 0", errInvalid)
	}
	if id := m.Headers().Get(jetstream.MsgIDHeader); id != "" && !strings.HasPrefix(id, facility+":") {
		// A garage that sets another's message ids could make the stream drop that
		// garage's events as duplicates within the window: report it.
		return nil, fmt.Errorf("%w: forged: message id %q on the subject of %q", errInvalid, id, facility)
	}
	return env, nil
}

// sleepBackoff waits for the next backoff (100 ms doubling to 5 s, with jitter) and
// returns it.
func sleepBackoff(ctx context.Context, prev time.Duration) time.Duration {
	next := min(max(2*prev, 100*time.Millisecond), 5*time.Second)
	t := time.NewTimer(next + rand.N(next/4))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return next
}

// resender sends the resend requests of the gaps Ingest reports: at most one request
// per garage per ResendInterval, from the lowest missing seq; a failed request (the
// garage is offline) is retried after the interval.
type resender struct {
	h    *Hub
	opts ConsumeOptions

	mu      sync.Mutex
	pending map[string]*resendState
}

type resendState struct {
	from     uint64    // lowest missing seq not yet requested successfully; 0: none
	last     time.Time // last attempt
	inFlight bool
}

func (r *resender) add(g Gap) {
	if g.From == 0 || ValidateFacility(g.Facility) != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.pending[g.Facility]
	if st == nil {
		st = &resendState{}
		r.pending[g.Facility] = st
	}
	if st.from == 0 || g.From < st.from {
		st.from = g.From
	}
}

func (r *resender) run(ctx context.Context) {
	tick := time.NewTicker(min(max(r.opts.ResendInterval/4, 20*time.Millisecond), time.Second))
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, 16)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		r.mu.Lock()
		for facility, st := range r.pending {
			if st.from == 0 || st.inFlight || now.Sub(st.last) < r.opts.ResendInterval {
				continue
			}
			st.inFlight, st.last = true, now
			from := st.from
			wg.Go(func() {
				sem <- struct{}{}
				err := r.send(ctx, facility, from)
				<-sem
				r.mu.Lock()
				defer r.mu.Unlock()
				st.inFlight = false
				if err == nil && st.from == from {
					st.from = 0
				}
			})
		}
		r.mu.Unlock()
	}
}

func (r *resender) send(ctx context.Context, facility string, from uint64) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.ResendTimeout)
	defer cancel()
	body, _ := json.Marshal(ResendRequest{From: from})
	reply, err := r.h.request(ctx, CommandSubject(facility, "resend"), replySubject(facility), body)
	if err == nil {
		var rep ResendReply
		if json.Unmarshal(reply, &rep) == nil && rep.Error != "" {
			err = fmt.Errorf("natshub: garage refused: %s", rep.Error)
		}
	}
	log := r.h.log.With("facility", facility, "from", from)
	if err != nil {
		r.h.stats.resendFail.Add(1)
		if errors.Is(err, ErrOffline) {
			log.Info("resend request: garage offline; will retry", "in", r.opts.ResendInterval)
		} else {
			log.Warn("resend request failed; will retry", "err", err, "in", r.opts.ResendInterval)
		}
		return err
	}
	r.h.stats.resendOK.Add(1)
	log.Info("resend requested")
	return nil
}
