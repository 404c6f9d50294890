package edge_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gatehouse-parking/gatehouse/edge"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
)

func TestSegmentJSON(t *testing.T) {
	in := edge.Segment{Start: t0, Right: gh.Right_RIGHT_PERMIT, Rate: "std", Reason: "x"}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"right":"RIGHT_PERMIT"`) {
		t.Fatalf("Marshal = %s; want the right by name", b)
	}
	var out edge.Segment
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Fatalf("Unmarshal(%s) = %+v, %v; want %+v", b, out, err, in)
	}
	if err := json.Unmarshal([]byte(`{"right":"RIGHT_NOPE"}`), &out); err == nil {
		t.Fatal("unknown right accepted")
	}
}

func TestApplyRefusesGapsAndUnknowns(t *testing.T) {
	s := edge.NewState(testFacility())
	if err := s.Apply(&gh.Envelope{Seq: 2, Type: "gate.opened", Payload: &gh.Envelope_GateOpened{GateOpened: &gh.GateOpened{}}}); err == nil {
		t.Fatal("Apply accepted seq 2 as the first event")
	}
	if err := s.Apply(&gh.Envelope{Seq: 1, Type: "session.ended", Payload: &gh.Envelope_SessionEnded{SessionEnded: &gh.SessionEnded{SessionId: "nope"}}}); err == nil {
		t.Fatal("Apply ended a session that never started")
	}
	if err := s.Apply(&gh.Envelope{Seq: 1, Type: "x"}); err == nil {
		t.Fatal("Apply accepted an event with no payload")
	}
}
