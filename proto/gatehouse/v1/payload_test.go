package gatehousev1

import (
	"strings"
	"testing"
)

// TestEveryPayloadHasAType walks the payload oneof itself, so a payload added to the
// proto without a name here fails.
func TestEveryPayloadHasAType(t *testing.T) {
	oneof := (&Envelope{}).ProtoReflect().Descriptor().Oneofs().ByName("payload")
	seen := map[string]bool{}
	for i := range oneof.Fields().Len() {
		fd := oneof.Fields().Get(i)
		msg := (&Envelope{}).ProtoReflect().NewField(fd).Message().Interface()
		var e Envelope
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("SetPayload(%s) panicked: %v", fd.Message().FullName(), r)
				}
			}()
			e.SetPayload(msg)
		}()
		if e.Type == "" || e.Type != e.PayloadType() || seen[e.Type] {
			t.Fatalf("SetPayload(%s): type %q (seen before %v)", fd.Message().FullName(), e.Type, seen[e.Type])
		}
		seen[e.Type] = true
		if got := e.ProtoReflect().WhichOneof(oneof); got.Number() != fd.Number() {
			t.Fatalf("SetPayload(%s) set field %v", fd.Message().FullName(), got.Name())
		}
		if strings.ContainsAny(e.Type, " *>") {
			t.Fatalf("type %q cannot be a subject token", e.Type)
		}
	}
	if (&Envelope{}).PayloadType() != "" {
		t.Fatal("an envelope without payload has a type")
	}
}
