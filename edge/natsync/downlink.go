package natsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

// DownStream is the hub's stream of downlink documents: the latest version of each
// document of each garage (one message per subject).
const DownStream = "GH_DOWN"

// DownSubject is the subject of a facility's downlink document of a kind.
func DownSubject(facility, kind string) string {
	return "gh.fac." + facility + ".down." + kind
}

// Applier applies downlink documents. *edge.Garage implements it.
type Applier interface {
	ApplyCredentials(ctx context.Context, doc *gh.CredentialsReplaced) (bool, error)
}

// Downlink keeps the garage's credential lists up to date from the hub: it reads the
// latest document of each kind for its facility, on start and whenever one is
// published, and applies it; versions only go forward, so a document seen twice
// changes nothing. A garage offline for a week catches up on reconnect.
type Downlink struct {
	Facility string
	Conn     *nats.Conn
	// Domain is the hub's JetStream domain ("hub"); empty when connected to the hub.
	Domain string
	Garage Applier
	Logger *slog.Logger
	// Applied, if set, is called after each document applied (tests, metrics).
	Applied func(kind string, version uint64)
}

// Run follows the downlink until ctx is done, reconnecting with backoff.
func (d *Downlink) Run(ctx context.Context) error {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	log := d.Logger
	var quiet logLimit
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		err := d.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && quiet.ok(err.Error()) {
			log.Warn("downlink interrupted; retrying (repeats are logged once a minute)", "err", err, "in", backoff)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff + time.Duration(rand.Int64N(int64(backoff/2)))):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
	return nil
}

func (d *Downlink) follow(ctx context.Context) error {
	var js jetstream.JetStream
	var err error
	if d.Domain != "" {
		js, err = jetstream.NewWithDomain(d.Conn, d.Domain)
	} else {
		js, err = jetstream.New(d.Conn)
	}
	if err != nil {
		return err
	}
	cons, err := js.OrderedConsumer(ctx, DownStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{DownSubject(d.Facility, ">")},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return fmt.Errorf("downlink consumer: %w", err)
	}
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if err == jetstream.ErrNoMessages || err == nats.ErrTimeout {
				continue
			}
			return err
		}
		doc := new(gh.CredentialsReplaced)
		kind := msg.Subject()[strings.LastIndexByte(msg.Subject(), '.')+1:]
		if err := proto.Unmarshal(msg.Data(), doc); err != nil || doc.Version == 0 || doc.Kind != kind {
			d.Logger.Warn("malformed downlink document dropped", "subject", msg.Subject(), "kind", doc.GetKind(),
				"version", doc.GetVersion(), "err", err)
			continue
		}
		applied, err := d.Garage.ApplyCredentials(ctx, doc)
		var e *edge.Error
		if errors.As(err, &e) && e.Code == edge.EINVALID {
			// A document this garage cannot apply (a kind it does not know, say) must
			// not hold up the documents after it: it stays refused until replaced.
			d.Logger.Warn("downlink document refused", "subject", msg.Subject(), "version", doc.Version, "err", err)
			continue
		}
		if err != nil {
			return fmt.Errorf("apply %s v%d: %w", doc.Kind, doc.Version, err)
		}
		if applied && d.Applied != nil {
			d.Applied(doc.Kind, doc.Version)
		}
	}
}
