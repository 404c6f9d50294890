package natshub

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Errors of Command and PublishDown.
var (
	// ErrOffline reports a command no garage answered at once: the garage is not
	// connected, or does not serve that verb.
	ErrOffline = errors.New("natshub: garage offline")
	// ErrTimeout reports a command the garage did not answer in time.
	ErrTimeout = errors.New("natshub: garage did not answer in time")
	// ErrStaleVersion reports a downlink document older than the one the hub holds.
	ErrStaleVersion = errors.New("natshub: a newer version of the document is already published")
	// ErrInvalidName reports a verb or document kind that is not one subject token.
	ErrInvalidName = errors.New("natshub: invalid verb or kind")
)

var tokenRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

func validateToken(s string) error {
	if !tokenRE.MatchString(s) {
		return fmt.Errorf("%w %q", ErrInvalidName, s)
	}
	return nil
}

// EventSubject is the subject of a facility's event of type typ (e.g. "session.started").
func EventSubject(facility, typ string) string { return "gh.fac." + facility + ".evt." + typ }

// DownSubject is the subject of a facility's downlink document of kind kind.
func DownSubject(facility, kind string) string { return "gh.fac." + facility + ".down." + kind }

// CommandSubject is the subject of a facility's live command verb.
func CommandSubject(facility, verb string) string { return "gh.fac." + facility + ".cmd." + verb }

// replySubject is a fresh reply subject in the facility's namespace: the only place
// outside its uplink a garage may publish to, so that no garage can answer another's
// commands.
func replySubject(facility string) string { return "gh.fac." + facility + ".rep." + nuid.Next() }

// Command sends a live command to a garage by request/reply on gh.fac.<id>.cmd.<verb>
// and returns the garage's answer. A garage that is not connected makes it fail at
// once with ErrOffline; one that does not answer before ctx's deadline (or
// Config.CommandTimeout) with ErrTimeout. Every command is logged, for the audit.
func (h *Hub) Command(ctx context.Context, facility, verb string, body []byte) ([]byte, error) {
	if err := ValidateFacility(facility); err != nil {
		return nil, err
	}
	if err := validateToken(verb); err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.cfg.CommandTimeout)
		defer cancel()
	}
	start := time.Now()
	reply, err := h.request(ctx, CommandSubject(facility, verb), replySubject(facility), body)
	log := h.log.With("facility", facility, "verb", verb, "took", time.Since(start).Round(time.Microsecond))
	if err != nil {
		log.Info("command failed", "err", err)
		return nil, err
	}
	log.Info("command answered", "bytes", len(reply))
	return reply, nil
}

// request publishes body on subject with reply subject reply and waits for one answer.
// The garage answers on a subject of its own namespace, which a nats.Conn's inbox is
// not, so this does by hand what nats.Conn.Request does.
func (h *Hub) request(ctx context.Context, subject, reply string, body []byte) ([]byte, error) {
	sub, err := h.nc.SubscribeSync(reply)
	if err != nil {
		return nil, fmt.Errorf("natshub: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	// With headers the server answers a request nobody receives with a 503 status.
	msg := &nats.Msg{Subject: subject, Reply: reply, Data: body, Header: nats.Header{}}
	if err := h.nc.PublishMsg(msg); err != nil {
		return nil, fmt.Errorf("natshub: %w", err)
	}
	m, err := sub.NextMsgWithContext(ctx)
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, ErrOffline
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
		}
		return nil, fmt.Errorf("natshub: %w", err)
	}
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		return nil, ErrOffline
	}
	return m.Data, nil
}

// PublishDown publishes version version of a facility's downlink document of kind
// kind to GH_DOWN, on gh.fac.<id>.down.<kind> with header Gh-Version. The stream keeps
// only the latest message of each subject, for as long as it is the latest (no age
// limit), so a garage that reconnects after a week reads the latest of each document.
// Versions never go backwards: publishing the version the hub holds is a no-op, an
// older one fails with ErrStaleVersion.
func (h *Hub) PublishDown(ctx context.Context, facility, kind string, version uint64, body []byte) error {
	if version == 0 {
		return errors.New("natshub: document version 0")
	}
	_, err := h.publishDown(ctx, facility, kind, func(held uint64) (uint64, []byte, error) {
		if held > version {
			return 0, nil, fmt.Errorf("%w: %s holds version %d, not %d", ErrStaleVersion, DownSubject(facility, kind), held, version)
		}
		return version, body, nil
	})
	return err
}

// PublishDownNext publishes a facility's downlink document of kind kind as the version
// after the one the hub holds (1 when it holds none), and returns that version. The
// document carries its version, so encode makes the body for it; it may be called
// again with a higher version if another publisher got there first.
func (h *Hub) PublishDownNext(ctx context.Context, facility, kind string, encode func(version uint64) ([]byte, error)) (uint64, error) {
	return h.publishDown(ctx, facility, kind, func(held uint64) (uint64, []byte, error) {
		body, err := encode(held + 1)
		return held + 1, body, err
	})
}

// DownVersion is the version of a facility's downlink document of kind kind that the
// hub holds; 0 when it holds none.
func (h *Hub) DownVersion(ctx context.Context, facility, kind string) (uint64, error) {
	if err := ValidateFacility(facility); err != nil {
		return 0, err
	}
	if err := validateToken(kind); err != nil {
		return 0, err
	}
	v, _, err := h.heldDown(ctx, DownSubject(facility, kind))
	return v, err
}

// heldDown is the version and stream sequence of the document on subject; zeros when
// there is none.
func (h *Hub) heldDown(ctx context.Context, subject string) (version, seq uint64, err error) {
	cur, err := h.down.GetLastMsgForSubject(ctx, subject)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return 0, 0, nil
	case err != nil:
		return 0, 0, fmt.Errorf("natshub: read %s: %w", subject, err)
	}
	v, _ := strconv.ParseUint(cur.Header.Get(VersionHeader), 10, 64)
	return v, cur.Sequence, nil
}

// publishDown publishes the document next chooses given the version held: a version
// equal to the held one is a no-op. It returns the version the hub then holds.
func (h *Hub) publishDown(ctx context.Context, facility, kind string, next func(held uint64) (uint64, []byte, error)) (uint64, error) {
	if err := ValidateFacility(facility); err != nil {
		return 0, err
	}
	if err := validateToken(kind); err != nil {
		return 0, err
	}
	subject := DownSubject(facility, kind)
	for attempt := 0; ; attempt++ {
		held, last, err := h.heldDown(ctx, subject)
		if err != nil {
			return 0, err
		}
		version, body, err := next(held)
		if err != nil {
			return 0, err
		}
		if version == held {
			return version, nil
		}
		msg := nats.NewMsg(subject)
		msg.Data = body
		msg.Header.Set(VersionHeader, strconv.FormatUint(version, 10))
		msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s:%s:%d", facility, kind, version))
		// Compare-and-set on the subject's last sequence: two publishers racing cannot
		// put an older version over a newer one.
		ack, err := h.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(last))
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence && attempt < 5 {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("natshub: publish %s: %w", subject, err)
		}
		if ack.Duplicate && attempt < 5 {
			// Another publisher's document of this version got there first, and the
			// message id was checked before the last sequence (a single server checks
			// the sequence first; a cluster need not): read again.
			continue
		}
		return version, nil
	}
}
