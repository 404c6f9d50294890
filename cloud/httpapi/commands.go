package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gofiber/fiber/v2"
)

// Gate commands: an operator opens a lane or corrects a zone's count from the cloud.
// The command goes to the garage by request/reply over the hub and the garage decides;
// the cloud never changes a garage's state itself. Every command that is sent, or that
// cannot be, is audited with its outcome: ok, denied (the garage refused it) or failed
// (the garage was offline, did not answer, or answered nonsense).

// OpenLaneRequest is the body of POST /v1/facilities/{facility}/lanes/{lane}/open.
type OpenLaneRequest struct {
	// Reason is recorded by the garage and in the audit log.
	Reason string `json:"reason"`
}

func (r *OpenLaneRequest) validate() []FieldError {
	r.Reason = strings.TrimSpace(r.Reason)
	return reasonProblems(r.Reason)
}

// CountRequest is the body of POST /v1/facilities/{facility}/zones/{zone}/count: a
// manual recount of the vehicles in a zone.
type CountRequest struct {
	Occupied *int   `json:"occupied"`
	Reason   string `json:"reason"`
}

// maxCount bounds a zone's count; the garage checks it against the zone's capacity.
const maxCount = 100000

func (r *CountRequest) validate() []FieldError {
	r.Reason = strings.TrimSpace(r.Reason)
	f := reasonProblems(r.Reason)
	switch {
	case r.Occupied == nil:
		f = append(f, FieldError{"occupied", "is required"})
	case *r.Occupied < 0 || *r.Occupied > maxCount:
		f = append(f, FieldError{"occupied", "must be between 0 and the zone's capacity"})
	}
	return f
}

const maxReason = 200

func reasonProblems(reason string) []FieldError {
	switch {
	case reason == "":
		return []FieldError{{"reason", "is required"}}
	case utf8.RuneCountInString(reason) > maxReason:
		return []FieldError{{"reason", "must be at most 200 characters"}}
	case strings.IndexFunc(reason, unicode.IsControl) >= 0:
		return []FieldError{{"reason", "must not hold control characters"}}
	}
	return nil
}

// CommandResult is the body of a gate command the garage carried out.
type CommandResult struct {
	Facility string `json:"facility"`
	// Command is the verb the garage ran: open, reset_count.
	Command string `json:"command"`
	// Target is what it acted on: "lane:<facility>/<lane>", "zone:<facility>/<zone>".
	Target string `json:"target"`
	// Operator is the name the garage records, prefixed "cloud:".
	Operator string `json:"operator"`
}

// edgeCommand is the body of a live command as the garage's edge/natsync.Command reads
// it (the wire contract; the cloud does not import the edge's runtime).
type edgeCommand struct {
	Operator string `json:"operator"`
	Reason   string `json:"reason"`
	Lane     string `json:"lane,omitempty"`
	Zone     string `json:"zone,omitempty"`
	Occupied *int   `json:"occupied,omitempty"`
}

// edgeReply is the garage's answer, edge/natsync.Reply.
type edgeReply struct {
	OK      bool   `json:"ok"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Messages of gate commands that did not reach the garage or were not answered.
const (
	msgOffline   = "the garage is offline; the command was not sent"
	msgNoAnswer  = "the garage did not answer; the command may have been applied"
	msgBadAnswer = "the garage's answer could not be read; the command may have been applied"
	msgNoHub     = "the garages cannot be reached from this service; the command was not sent"
)

func (a *api) commandRoutes() []*route {
	// API keys never command gates: no scope.
	open := access{roles: staff, scoped: true, audit: "gate.open"}
	count := access{roles: staff, scoped: true, audit: "zone.count"}
	return []*route{
		{method: fiber.MethodPost, path: "/facilities/:facility/lanes/:lane/open", tag: "operations",
			summary: "Open a lane's barrier for one vehicle, by the operator's hand (sent to the garage, audited)",
			access:  open, request: OpenLaneRequest{}, response: CommandResult{}, handler: a.openLane},
		{method: fiber.MethodPost, path: "/facilities/:facility/zones/:zone/count", tag: "operations",
			summary: "Set a zone's count after a recount (sent to the garage, audited)",
			access:  count, request: CountRequest{}, response: CommandResult{}, handler: a.resetCount},
	}
}

// idRE is what a lane or zone id in a path may look like.
var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func idParam(c *fiber.Ctx, name string) (string, error) {
	id := c.Params(name)
	if !idRE.MatchString(id) {
		return "", malformed("invalid "+name+" id", FieldError{name, "must be 1 to 64 letters, digits, dots, dashes and underscores"})
	}
	return id, nil
}

func (a *api) openLane(c *fiber.Ctx) error {
	facility, err := facilityParam(c)
	if err != nil {
		return err
	}
	lane, err := idParam(c, "lane")
	if err != nil {
		return err
	}
	var req OpenLaneRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	return a.command(c, facility, "open", "gate.open", "lane:"+facility+"/"+lane,
		edgeCommand{Reason: req.Reason, Lane: lane}, map[string]any{"reason": req.Reason})
}

func (a *api) resetCount(c *fiber.Ctx) error {
	facility, err := facilityParam(c)
	if err != nil {
		return err
	}
	zone, err := idParam(c, "zone")
	if err != nil {
		return err
	}
	var req CountRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	return a.command(c, facility, "reset_count", "zone.count", "zone:"+facility+"/"+zone,
		edgeCommand{Reason: req.Reason, Zone: zone, Occupied: req.Occupied},
		map[string]any{"reason": req.Reason, "occupied": *req.Occupied})
}

// command sends a validated command to the garage, audits it and answers.
func (a *api) command(c *fiber.Ctx, facility, verb, action, target string, cmd edgeCommand, detail map[string]any) error {
	p := principal(c)
	cmd.Operator = p.Name
	if cmd.Operator == "" {
		cmd.Operator = p.Actor()
	}
	entry := cloud.AuditEntry{Action: action, Target: target, Facility: facility, Detail: detail}
	fail := func(outcome, why string, err error) error {
		entry.Outcome = outcome
		entry.Detail["error"] = why
		a.audit(c, entry)
		return err
	}
	if a.hub == nil {
		return fail(cloud.OutcomeFailed, "no hub", cloud.Errorf(cloud.EUNAVAILABLE, msgNoHub))
	}
	body, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	raw, err := a.hub.Command(ctx, facility, verb, body)
	switch {
	case err != nil && (errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil):
		return fail(cloud.OutcomeFailed, "no answer", &cloud.Error{Code: cloud.EUNAVAILABLE, Message: msgNoAnswer, Err: err})
	case cloud.ErrorCode(err) == cloud.EUNAVAILABLE:
		return fail(cloud.OutcomeFailed, "offline", &cloud.Error{Code: cloud.EUNAVAILABLE, Message: msgOffline, Err: err})
	case err != nil:
		return fail(cloud.OutcomeFailed, cloud.ErrorMessage(err), err)
	}
	var reply edgeReply
	if err := json.Unmarshal(raw, &reply); err != nil || (!reply.OK && reply.Code == "" && reply.Message == "") {
		return fail(cloud.OutcomeFailed, "unreadable answer", &cloud.Error{Code: cloud.EUNAVAILABLE, Message: msgBadAnswer,
			Err: errors.New("reply: " + strings.ToValidUTF8(string(raw[:min(len(raw), 200)]), "?"))})
	}
	if !reply.OK {
		return fail(cloud.OutcomeDenied, reply.Code+": "+reply.Message, refusal(reply))
	}
	entry.Outcome = cloud.OutcomeOK
	a.audit(c, entry)
	return c.JSON(CommandResult{Facility: facility, Command: verb, Target: target, Operator: "cloud:" + cmd.Operator})
}

// refusal maps the garage's refusal of a command to the error the client gets, with
// the garage's message: the garage's codes are the cloud's names.
func refusal(r edgeReply) error {
	msg := "the garage refused the command: " + r.Message
	switch r.Code {
	case cloud.EINVALID:
		return cloud.Errorf(cloud.EINVALID, "%s", msg)
	case cloud.ENOTFOUND:
		return cloud.Errorf(cloud.ENOTFOUND, "%s", msg)
	case cloud.ECONFLICT, cloud.EFORBIDDEN:
		return cloud.Errorf(cloud.ECONFLICT, "%s", msg)
	}
	// The garage failed to carry it out (unavailable, internal): retrying may work.
	return cloud.Errorf(cloud.EUNAVAILABLE, "the garage could not carry out the command: %s", r.Message)
}
