package natsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/nats-io/nats.go"
)

// Garage is what live commands and the downlink need of the garage. *edge.Garage
// implements it.
type Garage interface {
	OpenLane(ctx context.Context, lane, operator, reason string) error
	ResetCount(ctx context.Context, zone string, occupied int, operator, reason string) error
}

// CommandSubject is the subject of a live command to a facility.
func CommandSubject(facility, verb string) string {
	return "gh.fac." + facility + ".cmd." + verb
}

// Command is the body of a live command. Operator names the person in the cloud on
// whose behalf it is sent; the garage records it (prefixed "cloud:") in its audit
// events, as the cloud records it in its audit log.
type Command struct {
	Operator string `json:"operator"`
	Reason   string `json:"reason"`
	Lane     string `json:"lane,omitempty"`
	Zone     string `json:"zone,omitempty"`
	Occupied *int   `json:"occupied,omitempty"`
	From     uint64 `json:"from,omitempty"`
}

// Reply is the answer to a live command.
type Reply struct {
	OK      bool   `json:"ok"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	// Error repeats Message on a refusal, for callers that look only for it.
	Error string `json:"error,omitempty"`
}

// Commands answers live commands sent by the cloud on gh.fac.<facility>.cmd.<verb>:
// "open" (a lane), "reset_count" (a zone), "resend" (the uplink from a seq). Only the
// cloud may publish there: the hub's permissions give garages no publish right on
// command subjects.
type Commands struct {
	Facility string
	Conn     *nats.Conn
	Garage   Garage
	Uplink   *Uplink
	Logger   *slog.Logger
}

// Run answers commands until ctx is done.
func (c *Commands) Run(ctx context.Context) error {
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sub, err := c.Conn.Subscribe(CommandSubject(c.Facility, "*"), func(m *nats.Msg) {
		verb := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
		r := c.handle(ctx, verb, m.Data)
		if !r.OK {
			r.Error = r.Message
			log.Warn("live command refused", "verb", verb, "code", r.Code, "msg", r.Message)
		} else {
			log.Info("live command done", "verb", verb)
		}
		b, _ := json.Marshal(r)
		if m.Reply != "" {
			m.Respond(b)
		}
	})
	if err != nil {
		return err
	}
	<-ctx.Done()
	return sub.Unsubscribe()
}

func (c *Commands) handle(ctx context.Context, verb string, data []byte) Reply {
	var cmd Command
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cmd); err != nil {
		return Reply{Code: edge.EINVALID, Message: "malformed command: " + err.Error()}
	}
	if strings.TrimSpace(cmd.Operator) == "" && verb != "resend" {
		return Reply{Code: edge.EINVALID, Message: "operator is required"}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	operator := "cloud:" + cmd.Operator
	var err error
	switch verb {
	case "open":
		err = c.Garage.OpenLane(ctx, cmd.Lane, operator, cmd.Reason)
	case "reset_count":
		if cmd.Occupied == nil {
			return Reply{Code: edge.EINVALID, Message: "occupied is required"}
		}
		err = c.Garage.ResetCount(ctx, cmd.Zone, *cmd.Occupied, operator, cmd.Reason)
	case "resend":
		if c.Uplink == nil {
			return Reply{Code: edge.EUNAVAILABLE, Message: "no uplink"}
		}
		if cmd.From == 0 {
			return Reply{Code: edge.EINVALID, Message: "from is required"}
		}
		c.Uplink.Resend(cmd.From)
	default:
		return Reply{Code: edge.ENOTFOUND, Message: fmt.Sprintf("unknown command %q", verb)}
	}
	if err != nil {
		var e *edge.Error
		if errors.As(err, &e) {
			return Reply{Code: e.Code, Message: e.Message}
		}
		return Reply{Code: edge.EINTERNAL, Message: "internal error"}
	}
	return Reply{OK: true}
}
