package cloud_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func valid() *gh.Envelope {
	return &gh.Envelope{FacilityId: "garage-1", Seq: 7, EventId: "0123456789abcdef0123456789abcdef",
		OccurredAt: timestamppb.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)), Type: "occupancy.changed", LaneId: "in",
		Payload: &gh.Envelope_OccupancyChanged{OccupancyChanged: &gh.OccupancyChanged{ZoneId: "Z", Delta: 1, Occupied: 3, Capacity: 10, Cause: "entry"}}}
}

func TestValidateEnvelope(t *testing.T) {
	edit := func(fn func(e *gh.Envelope)) *gh.Envelope {
		e := valid()
		fn(e)
		return e
	}
	cases := []struct {
		name string
		env  *gh.Envelope
		want string // "" for valid
	}{
		{"valid", valid(), ""},
		{"dashed uuid", edit(func(e *gh.Envelope) { e.EventId = "01234567-89ab-cdef-0123-456789abcdef" }), ""},
		{"newer garage's type", edit(func(e *gh.Envelope) { e.Type, e.Payload = "charger.plugged", nil }), ""},
		{"nil", nil, "nil envelope"},
		{"no facility", edit(func(e *gh.Envelope) { e.FacilityId = "" }), "no facility id"},
		{"upper-case facility", edit(func(e *gh.Envelope) { e.FacilityId = "Garage" }), "facility id"},
		{"wildcard facility", edit(func(e *gh.Envelope) { e.FacilityId = "g>" }), "facility id"},
		{"seq 0", edit(func(e *gh.Envelope) { e.Seq = 0 }), "seq 0"},
		{"seq beyond bigint", edit(func(e *gh.Envelope) { e.Seq = 1 << 63 }), "seq out of range"},
		{"short event id", edit(func(e *gh.Envelope) { e.EventId = "abc" }), "event id"},
		{"non-hex event id", edit(func(e *gh.Envelope) { e.EventId = strings.Repeat("z", 32) }), "event id"},
		{"no time", edit(func(e *gh.Envelope) { e.OccurredAt = nil }), "no occurred_at"},
		{"bad time", edit(func(e *gh.Envelope) { e.OccurredAt = &timestamppb.Timestamp{Nanos: -1} }), "occurred_at"},
		{"no type", edit(func(e *gh.Envelope) { e.Type = "" }), "no type"},
		{"type mismatch", edit(func(e *gh.Envelope) { e.Type = "session.started" }), "does not match"},
		{"known type, no payload", edit(func(e *gh.Envelope) { e.Payload = nil }), "without its payload"},
		{"odd type name", edit(func(e *gh.Envelope) { e.Type, e.Payload = "Drop Table", nil }), "dotted lowercase"},
		{"no zone", edit(func(e *gh.Envelope) { e.GetOccupancyChanged().ZoneId = "" }), "no zone id"},
		{"negative count", edit(func(e *gh.Envelope) { e.GetOccupancyChanged().Occupied = -2 }), "negative"},
		{"session without id", edit(func(e *gh.Envelope) {
			e.Type, e.Payload = "session.started", &gh.Envelope_SessionStarted{SessionStarted: &gh.SessionStarted{ZoneId: "Z"}}
		}), "no session id"},
		{"lane status without lane", edit(func(e *gh.Envelope) {
			e.LaneId, e.Type, e.Payload = "", "lane.status.changed", &gh.Envelope_LaneStatusChanged{LaneStatusChanged: &gh.LaneStatusChanged{Status: "ok"}}
		}), "no lane id"},
		{"long lane", edit(func(e *gh.Envelope) { e.LaneId = strings.Repeat("l", 300) }), "lane id longer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := cloud.ValidateEnvelope(tc.env)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("ValidateEnvelope = %v; want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("ValidateEnvelope = %v; want an error saying %q", err, tc.want)
			case tc.want != "" && cloud.ErrorCode(err) != cloud.EINVALID:
				t.Fatalf("ErrorCode(%v) = %s; want invalid", err, cloud.ErrorCode(err))
			}
		})
	}
}

func TestPayloadTypesKnown(t *testing.T) {
	// Every oneof case of the envelope has a type name this build projects.
	fields := (&gh.Envelope{}).ProtoReflect().Descriptor().Oneofs().ByName("payload").Fields()
	for i := range fields.Len() {
		e := &gh.Envelope{}
		fd := fields.Get(i)
		e.ProtoReflect().Set(fd, e.ProtoReflect().NewField(fd))
		typ := cloud.PayloadType(e)
		if typ == "" || !cloud.KnownType(typ) {
			t.Errorf("payload %s: PayloadType = %q, known %v", fd.Name(), typ, cloud.KnownType(typ))
		}
	}
}

// FuzzDecodeEnvelope feeds arbitrary bytes to the decoder of outside input: it never
// panics, and what it accepts meets the rules the ingest relies on.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, e := range []*gh.Envelope{valid(), func() *gh.Envelope { e := valid(); e.Seq = 0; return e }()} {
		b, err := proto.Marshal(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte("\x0a\x03abc\x10\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := cloud.DecodeEnvelope(b)
		if err != nil {
			if cloud.ErrorCode(err) != cloud.EINVALID {
				t.Fatalf("DecodeEnvelope error code %s; want invalid: %v", cloud.ErrorCode(err), err)
			}
			return
		}
		if env.Seq == 0 || env.FacilityId == "" || env.OccurredAt == nil {
			t.Fatalf("accepted an envelope without seq, facility or time: %v", env)
		}
		if typ := cloud.PayloadType(env); typ != "" && typ != env.Type {
			t.Fatalf("accepted type %q with a %s payload", env.Type, typ)
		}
		if _, err := cloud.ParseEventID(env.EventId); err != nil {
			t.Fatalf("accepted event id %q: %v", env.EventId, err)
		}
		again, err := proto.Marshal(env)
		if err != nil {
			t.Fatalf("accepted envelope does not marshal: %v", err)
		}
		if _, err := cloud.DecodeEnvelope(again); err != nil {
			t.Fatalf("accepted envelope fails after a round trip: %v", err)
		}
	})
}

func TestValidFacilityID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"garage-1", true}, {"a", true}, {"0", true}, {strings.Repeat("a", 63), true},
		{"", false}, {"-a", false}, {"Garage", false}, {"a.b", false}, {"a b", false}, {"a*", false}, {"a>", false},
		{strings.Repeat("a", 64), false}, {"é", false},
	} {
		if got := cloud.ValidFacilityID(tc.id); got != tc.want {
			t.Errorf("ValidFacilityID(%q) = %v; want %v", tc.id, got, tc.want)
		}
	}
}
