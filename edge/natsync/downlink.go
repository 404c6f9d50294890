package natsync

import (
	"context"
	"encoding/json"
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
	ApplyLayout(ctx context.Context, doc edge.Layout) (bool, error)
	ApplyPrepaid(ctx context.Context, doc edge.Prepaid) (bool, error)
}

var _ Applier = (*edge.Garage)(nil)

// Downlink keeps the garage's credential lists and zone capacities up to date from the
// hub: it reads the latest document of each kind for its facility, on start and
// whenever one is published, and applies it; versions only go forward, so a document
// seen twice changes nothing. A garage offline for a week catches up on reconnect.
//
// The "permits", "reservations" and "blocklist" documents are a gh.CredentialsReplaced;
// the "layout" and "prepaid" documents are the cloud's JSON (see layoutDocument and
// prepaidDocument).
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
		kind := msg.Subject()[strings.LastIndexByte(msg.Subject(), '.')+1:]
		var version uint64
		var applied bool
		switch kind {
		case edge.LayoutKind:
			var doc edge.Layout
			if doc, err = d.decodeLayout(msg.Data()); err != nil {
				d.Logger.Warn("malformed downlink document dropped", "subject", msg.Subject(), "err", err)
				continue
			}
			version = doc.Version
			applied, err = d.Garage.ApplyLayout(ctx, doc)
		case edge.PrepaidKind:
			var doc edge.Prepaid
			if doc, err = d.decodePrepaid(msg.Data()); err != nil {
				d.Logger.Warn("malformed downlink document dropped", "subject", msg.Subject(), "err", err)
				continue
			}
			version = doc.Version
			applied, err = d.Garage.ApplyPrepaid(ctx, doc)
		default:
			doc := new(gh.CredentialsReplaced)
			if err := proto.Unmarshal(msg.Data(), doc); err != nil || doc.Version == 0 || doc.Kind != kind {
				d.Logger.Warn("malformed downlink document dropped", "subject", msg.Subject(), "kind", doc.GetKind(),
					"version", doc.GetVersion(), "err", err)
				continue
			}
			version = doc.Version
			applied, err = d.Garage.ApplyCredentials(ctx, doc)
		}
		var e *edge.Error
		if errors.As(err, &e) && e.Code == edge.EINVALID {
			// A document this garage cannot apply (a kind it does not know, say) must
			// not hold up the documents after it: it stays refused until replaced.
			d.Logger.Warn("downlink document refused", "subject", msg.Subject(), "version", version, "err", err)
			continue
		}
		if err != nil {
			return fmt.Errorf("apply %s v%d: %w", kind, version, err)
		}
		if applied && d.Applied != nil {
			d.Applied(kind, version)
		}
	}
}

// layoutDocument is what the garage reads of the cloud's "layout" document
// (cloud/httpapi.LayoutDocument, JSON): the facility's whole layout at a version. Only
// the zones' capacity and held-back space apply at the garage; levels, spots and names
// are the cloud's. Capacity and held_back are pointers so that a document without them
// keeps the garage's configured values.
type layoutDocument struct {
	Facility string `json:"facility"`
	Version  uint64 `json:"version"`
	Zones    []struct {
		ID       string `json:"id"`
		Capacity *int   `json:"capacity"`
		HeldBack *int   `json:"held_back"`
	} `json:"zones"`
}

// decodeLayout reads a layout document meant for this facility.
func (d *Downlink) decodeLayout(b []byte) (edge.Layout, error) {
	var doc layoutDocument
	if err := json.Unmarshal(b, &doc); err != nil {
		return edge.Layout{}, err
	}
	switch {
	case doc.Version == 0:
		return edge.Layout{}, errors.New("layout without a version")
	case doc.Facility != "" && doc.Facility != d.Facility:
		return edge.Layout{}, fmt.Errorf("layout of facility %q", doc.Facility)
	}
	out := edge.Layout{Version: doc.Version, Zones: make([]edge.LayoutZone, 0, len(doc.Zones))}
	for _, z := range doc.Zones {
		out.Zones = append(out.Zones, edge.LayoutZone{ID: z.ID, Capacity: z.Capacity, HeldBack: z.HeldBack})
	}
	return out, nil
}

// prepaidDocument is what the garage reads of the cloud's "prepaid" document
// (cloud/httpapi.PrepaidDocument, JSON): the facility's recent app payments for stays.
type prepaidDocument struct {
	Facility string    `json:"facility"`
	Version  uint64    `json:"version"`
	Since    time.Time `json:"since"`
	Payments []struct {
		PaymentID string    `json:"payment_id"`
		SessionID string    `json:"session_id"`
		Plate     string    `json:"plate"`
		Amount    int64     `json:"amount"`
		Refunded  int64     `json:"refunded"`
		Currency  string    `json:"currency"`
		Method    string    `json:"method"`
		Reference string    `json:"reference"`
		PaidAt    time.Time `json:"paid_at"`
	} `json:"payments"`
}

// decodePrepaid reads a prepaid document meant for this facility. A payment without
// an id or with a negative amount makes the whole document malformed: the cloud wrote
// it wrong, and applying part of it would hide that.
func (d *Downlink) decodePrepaid(b []byte) (edge.Prepaid, error) {
	var doc prepaidDocument
	if err := json.Unmarshal(b, &doc); err != nil {
		return edge.Prepaid{}, err
	}
	switch {
	case doc.Version == 0:
		return edge.Prepaid{}, errors.New("prepaid document without a version")
	case doc.Facility != "" && doc.Facility != d.Facility:
		return edge.Prepaid{}, fmt.Errorf("prepaid document of facility %q", doc.Facility)
	}
	out := edge.Prepaid{Version: doc.Version, Payments: make([]edge.PrepaidPayment, 0, len(doc.Payments))}
	for i, p := range doc.Payments {
		if p.PaymentID == "" || p.Amount < 0 || p.Refunded < 0 {
			return edge.Prepaid{}, fmt.Errorf("prepaid payment %d: no payment_id or a negative amount", i)
		}
		out.Payments = append(out.Payments, edge.PrepaidPayment{PaymentID: p.PaymentID, SessionID: p.SessionID, Plate: p.Plate,
			Amount: p.Amount, Refunded: p.Refunded, Currency: p.Currency, Method: p.Method, Reference: p.Reference, PaidAt: p.PaidAt})
	}
	return out, nil
}
