package gatehousev1

import (
	"fmt"

	"google.golang.org/protobuf/proto"
)

// SetPayload sets e's payload to p and e's type to the event name p carries
// ("session.started", ...). It panics on a message that is not an event payload: that
// is a programming mistake, not input.
func (e *Envelope) SetPayload(p proto.Message) {
	switch x := p.(type) {
	case *SessionStarted:
		e.Payload = &Envelope_SessionStarted{SessionStarted: x}
	case *SessionEnded:
		e.Payload = &Envelope_SessionEnded{SessionEnded: x}
	case *SessionSegmentStarted:
		e.Payload = &Envelope_SessionSegmentStarted{SessionSegmentStarted: x}
	case *SpotStatusChanged:
		e.Payload = &Envelope_SpotStatusChanged{SpotStatusChanged: x}
	case *PaymentProcessed:
		e.Payload = &Envelope_PaymentProcessed{PaymentProcessed: x}
	case *AlertTriggered:
		e.Payload = &Envelope_AlertTriggered{AlertTriggered: x}
	case *GateDecision:
		e.Payload = &Envelope_GateDecision{GateDecision: x}
	case *GateOpened:
		e.Payload = &Envelope_GateOpened{GateOpened: x}
	case *GateClosed:
		e.Payload = &Envelope_GateClosed{GateClosed: x}
	case *GateManualOpen:
		e.Payload = &Envelope_GateManualOpen{GateManualOpen: x}
	case *OccupancyChanged:
		e.Payload = &Envelope_OccupancyChanged{OccupancyChanged: x}
	case *OccupancyReset:
		e.Payload = &Envelope_OccupancyReset{OccupancyReset: x}
	case *LaneStatusChanged:
		e.Payload = &Envelope_LaneStatusChanged{LaneStatusChanged: x}
	case *CredentialUsed:
		e.Payload = &Envelope_CredentialUsed{CredentialUsed: x}
	case *CredentialsReplaced:
		e.Payload = &Envelope_CredentialsReplaced{CredentialsReplaced: x}
	case *LayoutApplied:
		e.Payload = &Envelope_LayoutApplied{LayoutApplied: x}
	case *PrepaidApplied:
		e.Payload = &Envelope_PrepaidApplied{PrepaidApplied: x}
	case *PaymentCaptured:
		e.Payload = &Envelope_PaymentCaptured{PaymentCaptured: x}
	case *PaymentCaptureFailed:
		e.Payload = &Envelope_PaymentCaptureFailed{PaymentCaptureFailed: x}
	default:
		panic(fmt.Sprintf("gatehousev1: %T is not an event payload", p))
	}
	e.Type = e.PayloadType()
}

// PayloadType returns the event name that e's payload carries, "" when it has none.
// A valid envelope's Type equals it.
func (e *Envelope) PayloadType() string {
	switch e.GetPayload().(type) {
	case *Envelope_SessionStarted:
		return "session.started"
	case *Envelope_SessionEnded:
		return "session.ended"
	case *Envelope_SessionSegmentStarted:
		return "session.segment.started"
	case *Envelope_SpotStatusChanged:
		return "spot.status.changed"
	case *Envelope_PaymentProcessed:
		return "payment.processed"
	case *Envelope_AlertTriggered:
		return "alert.triggered"
	case *Envelope_GateDecision:
		return "gate.decision"
	case *Envelope_GateOpened:
		return "gate.opened"
	case *Envelope_GateClosed:
		return "gate.closed"
	case *Envelope_GateManualOpen:
		return "gate.manual_open"
	case *Envelope_OccupancyChanged:
		return "occupancy.changed"
	case *Envelope_OccupancyReset:
		return "occupancy.reset"
	case *Envelope_LaneStatusChanged:
		return "lane.status.changed"
	case *Envelope_CredentialUsed:
		return "credential.used"
	case *Envelope_CredentialsReplaced:
		return "credentials.replaced"
	case *Envelope_LayoutApplied:
		return "layout.applied"
	case *Envelope_PrepaidApplied:
		return "prepaid.applied"
	case *Envelope_PaymentCaptured:
		return "payment.captured"
	case *Envelope_PaymentCaptureFailed:
		return "payment.capture_failed"
	}
	return ""
}
