package cloud

import (
	"encoding/hex"
	"fmt"
	"math"
	"regexp"
	"strings"
	"unicode/utf8"

	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	"google.golang.org/protobuf/proto"
)

// MaxEnvelopeSize bounds an envelope on the wire: NATS's default max_payload. Most
// events are a few hundred bytes; credentials.replaced carries a whole permit list.
const MaxEnvelopeSize = 1 << 20

// maxID bounds the ids inside an envelope (lane, zone, session, ...).
const maxID = 256

// ValidFacilityID reports whether id is what a facility id may look like, as the edge's
// config loader requires (^[a-z0-9][a-z0-9-]{0,62}$): it becomes a token of NATS
// subjects. Written out rather than as a regexp: it runs once per event ingested.
func ValidFacilityID(id string) bool {
	if len(id) == 0 || len(id) > 63 || id[0] == '-' {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// eventType is what an event type may look like: dotted lowercase words.
var eventType = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){0,7}$`)

// PayloadType returns the event type that the envelope's payload has, such as
// "session.started", or "" when the payload is empty or of a kind this build does not
// know.
func PayloadType(env *gh.Envelope) string { return env.PayloadType() }

// knownTypes are the event types this build projects.
var knownTypes = map[string]bool{
	"session.started": true, "session.ended": true, "session.segment.started": true,
	"spot.status.changed": true, "payment.processed": true, "alert.triggered": true,
	"gate.decision": true, "gate.opened": true, "gate.closed": true, "gate.manual_open": true,
	"occupancy.changed": true, "occupancy.reset": true, "lane.status.changed": true,
	"credential.used": true, "credentials.replaced": true, "layout.applied": true,
	"prepaid.applied": true, "payment.captured": true, "payment.capture_failed": true,
}

// KnownType reports whether typ is an event type this build understands.
func KnownType(typ string) bool { return knownTypes[typ] }

// DecodeEnvelope unmarshals one envelope from the wire and validates it. The error is
// an *Error with code EINVALID saying what is wrong.
func DecodeEnvelope(b []byte) (*gh.Envelope, error) {
	if len(b) > MaxEnvelopeSize {
		return nil, Errorf(EINVALID, "envelope of %d bytes exceeds %d", len(b), MaxEnvelopeSize)
	}
	env := &gh.Envelope{}
	if err := proto.Unmarshal(b, env); err != nil {
		return nil, &Error{Code: EINVALID, Message: "envelope is not a gatehouse.v1.Envelope", Err: err}
	}
	if err := ValidateEnvelope(env); err != nil {
		return nil, err
	}
	return env, nil
}

// ValidateEnvelope checks what the cloud relies on before it stores an envelope: a
// well-formed facility id, a seq of at least 1, a 128-bit event id, a valid occurred_at,
// and a type that matches the payload, with the fields that the projections key on.
// An envelope of a type this build does not know, with no payload it can decode, is
// valid: a garage upgraded before the cloud must not leave a hole in its stream; it is
// stored and the projections pass over it. The error is an *Error with code EINVALID.
func ValidateEnvelope(env *gh.Envelope) error {
	if env == nil {
		return Errorf(EINVALID, "nil envelope")
	}
	bad := func(format string, args ...any) error {
		return Errorf(EINVALID, "envelope %s/%d: %s", printable(env.GetFacilityId()), env.GetSeq(), fmt.Sprintf(format, args...))
	}
	switch {
	case env.FacilityId == "":
		return bad("no facility id")
	case !ValidFacilityID(env.FacilityId):
		return bad("facility id %q is not lowercase letters, digits and dashes (at most 63)", printable(env.FacilityId))
	case env.Seq == 0:
		return bad("seq 0 (seqs start at 1)")
	case env.Seq > math.MaxInt64:
		return bad("seq out of range")
	}
	if _, err := ParseEventID(env.EventId); err != nil {
		return bad("%v", err)
	}
	if env.OccurredAt == nil {
		return bad("no occurred_at")
	}
	if err := env.OccurredAt.CheckValid(); err != nil {
		return bad("occurred_at: %v", err)
	}
	if len(env.LaneId) > maxID {
		return bad("lane id longer than %d bytes", maxID)
	}
	got := PayloadType(env)
	switch {
	case env.Type == "":
		return bad("no type")
	case got == "" && knownTypes[env.Type]:
		return bad("type %q without its payload", env.Type)
	case got == "" && env.Payload != nil:
		return bad("payload of an unknown kind")
	case got == "" && (len(env.Type) > 128 || !eventType.MatchString(env.Type)):
		return bad("type %q is not a dotted lowercase name", printable(env.Type))
	case got == "":
		return nil // a newer garage's event: stored, not projected
	case got != env.Type:
		return bad("type %q does not match its %s payload", printable(env.Type), got)
	}
	return validatePayload(env, bad)
}

// validatePayload checks the fields a projection keys on.
func validatePayload(env *gh.Envelope, bad func(string, ...any) error) error {
	id := func(what, v string) error {
		switch {
		case v == "":
			return bad("%s: no %s", env.Type, what)
		case len(v) > maxID:
			return bad("%s: %s longer than %d bytes", env.Type, what, maxID)
		}
		return nil
	}
	optional := func(what, v string) error {
		if len(v) > maxID {
			return bad("%s: %s longer than %d bytes", env.Type, what, maxID)
		}
		return nil
	}
	switch p := env.Payload.(type) {
	case *gh.Envelope_SessionStarted:
		x := p.SessionStarted
		return firstErr(id("session id", x.SessionId), id("zone id", x.ZoneId),
			optional("plate", x.Plate), optional("ticket", x.Ticket), optional("rate id", x.RateId))
	case *gh.Envelope_SessionEnded:
		x := p.SessionEnded
		if x.FeeTotal < 0 || x.Paid < 0 {
			return bad("%s: negative fee or payment", env.Type)
		}
		return firstErr(id("session id", x.SessionId), optional("zone id", x.ZoneId))
	case *gh.Envelope_SessionSegmentStarted:
		if x := p.SessionSegmentStarted; x.Start != nil {
			if err := x.Start.CheckValid(); err != nil {
				return bad("%s: start: %v", env.Type, err)
			}
		}
		return id("session id", p.SessionSegmentStarted.SessionId)
	case *gh.Envelope_PaymentProcessed:
		if p.PaymentProcessed.Amount < 0 {
			return bad("%s: negative amount", env.Type)
		}
		return optional("session id", p.PaymentProcessed.SessionId)
	case *gh.Envelope_OccupancyChanged:
		x := p.OccupancyChanged
		if x.Occupied < 0 || x.Capacity < 0 {
			return bad("%s: negative count or capacity", env.Type)
		}
		return id("zone id", x.ZoneId)
	case *gh.Envelope_OccupancyReset:
		if p.OccupancyReset.Occupied < 0 {
			return bad("%s: negative count", env.Type)
		}
		return id("zone id", p.OccupancyReset.ZoneId)
	case *gh.Envelope_SpotStatusChanged:
		return firstErr(id("spot id", p.SpotStatusChanged.SpotId), optional("zone id", p.SpotStatusChanged.ZoneId))
	case *gh.Envelope_AlertTriggered:
		x := p.AlertTriggered
		return firstErr(id("code", x.Code), optional("device id", x.DeviceId), optional("zone id", x.ZoneId))
	case *gh.Envelope_LaneStatusChanged:
		return firstErr(id("lane id", env.LaneId), id("status", p.LaneStatusChanged.Status))
	case *gh.Envelope_CredentialsReplaced:
		return id("kind", p.CredentialsReplaced.Kind)
	case *gh.Envelope_LayoutApplied:
		for _, z := range append(p.LayoutApplied.Zones, p.LayoutApplied.Configured...) {
			if z.Capacity < 0 || z.HeldBack < 0 {
				return bad("%s: negative capacity", env.Type)
			}
			if err := id("zone id", z.ZoneId); err != nil {
				return err
			}
		}
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// ParseEventID returns the 16 bytes of an event id: 32 hex digits, as the edge writes
// them, or a UUID in its usual dashed form.
func ParseEventID(s string) ([16]byte, error) {
	var id [16]byte
	h := s
	if len(s) == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-' {
		h = s[:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	}
	if len(h) != 32 {
		return id, fmt.Errorf("event id %q is not 128 bits of hex", printable(s))
	}
	if _, err := hex.Decode(id[:], []byte(h)); err != nil {
		return id, fmt.Errorf("event id %q is not 128 bits of hex", printable(s))
	}
	return id, nil
}

// printable shortens and sanitises outside input for an error message.
func printable(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	return s
}

// AlertKey is the identity of an active alert, as the edge keys it: the same condition
// raised twice is one alert until it is cleared.
func AlertKey(code, lane, device, zone string) string {
	return strings.Join([]string{code, lane, device, zone}, "|")
}

// LastingAlert reports whether an alert code names a condition that stays active until
// a garage clears it. Other alerts (tailgating, anti-passback, ...) are events only.
// The list is the edge's (edge.lastingAlert); the cloud's projection tests compare the
// two folds over a real garage's outbox, so a drift fails them.
func LastingAlert(code string) bool {
	switch code {
	case "barrier.fault", "loop.stuck", "lane.degraded", "occupancy.over_capacity", "device.offline":
		return true
	}
	return false
}
