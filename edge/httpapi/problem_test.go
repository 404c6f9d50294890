package httpapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gofiber/fiber/v2"
)

func TestProblemFor(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		status     int
		typ        string
		wantDetail string // "" when only checked for not leaking
	}{
		{"invalid", edge.Errorf(edge.EINVALID, "count must be between 0 and 10"), 422, "urn:gatehouse:problem:invalid", "count must be between 0 and 10"},
		{"wrapped not found", fmt.Errorf("open: %w", edge.Errorf(edge.ENOTFOUND, "no lane %q", "x")), 404, "urn:gatehouse:problem:not-found", `no lane "x"`},
		{"conflict", edge.Errorf(edge.ECONFLICT, "lane in is already open"), 409, "urn:gatehouse:problem:conflict", "lane in is already open"},
		{"forbidden", edge.Errorf(edge.EFORBIDDEN, "no"), 403, "urn:gatehouse:problem:forbidden", "no"},
		{"unavailable", edge.Errorf(edge.EUNAVAILABLE, "garage stopped after a storage failure"), 503, "urn:gatehouse:problem:unavailable", "garage stopped after a storage failure"},
		{"internal edge", edge.Errorf(edge.EINTERNAL, "bucket zones missing"), 500, "urn:gatehouse:problem:internal", internalDetail},
		{"plain error", errors.New("open /var/lib/x.db: permission denied"), 500, "urn:gatehouse:problem:internal", internalDetail},
		{"unknown code", edge.Errorf("weird", "secret"), 500, "urn:gatehouse:problem:internal", internalDetail},
		{"deadline", fmt.Errorf("store: %w", context.DeadlineExceeded), 503, "urn:gatehouse:problem:unavailable", ""},
		{"malformed", malformed("malformed JSON at byte 3"), 400, "urn:gatehouse:problem:malformed", "malformed JSON at byte 3"},
		{"validation", invalid("the request has invalid fields", FieldError{"reason", "required"}), 422, "urn:gatehouse:problem:invalid", "the request has invalid fields"},
		{"unauthorized", &requestError{code: codeUnauthorized, detail: "token"}, 401, "urn:gatehouse:problem:unauthorized", "token"},
		{"route not found", fiber.NewError(404, "Cannot GET /x"), 404, "urn:gatehouse:problem:not-found", "no such route"},
		{"method", fiber.ErrMethodNotAllowed, 405, "urn:gatehouse:problem:method-not-allowed", ""},
		{"too large", fiber.ErrRequestEntityTooLarge, 413, "urn:gatehouse:problem:too-large", ""},
		{"headers too large", fiber.ErrRequestHeaderFieldsTooLarge, 413, "urn:gatehouse:problem:too-large", ""},
		{"server parse error", fiber.NewError(400, "error when reading request headers: cannot find http request method"), 400, "urn:gatehouse:problem:malformed", ""},
		{"other fiber", fiber.ErrNotImplemented, 501, "about:blank", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := problemFor(tt.err)
			if p.Status != tt.status || p.Type != tt.typ || p.Title == "" {
				t.Fatalf("problemFor(%v) = %+v; want status %d type %s", tt.err, p, tt.status, tt.typ)
			}
			if tt.wantDetail != "" && p.Detail != tt.wantDetail {
				t.Errorf("problemFor(%v).Detail = %q; want %q", tt.err, p.Detail, tt.wantDetail)
			}
			for _, leak := range []string{"/var/lib", "secret", "bucket", "reading request headers"} {
				if strings.Contains(p.Detail, leak) {
					t.Errorf("problemFor(%v).Detail = %q leaks %q", tt.err, p.Detail, leak)
				}
			}
		})
	}
}

func TestKioskState(t *testing.T) {
	entry, exit := edge.LaneView{Direction: edge.Entry, State: "idle", Status: "ok"}, edge.LaneView{Direction: edge.Exit, State: "idle", Status: "ok"}
	with := func(v edge.LaneView, state string, d *edge.Decision) edge.LaneView {
		v.State, v.Decision = state, d
		return v
	}
	tests := []struct {
		name           string
		v              edge.LaneView
		class, heading string
	}{
		{"entry idle", entry, "idle", "Welcome"},
		{"exit idle", exit, "idle", "Goodbye"},
		{"stale decision when idle", with(exit, "idle", &edge.Decision{Message: "Please pay EUR 4.00", FeeDue: 400}), "idle", "Goodbye"},
		{"entry allowed", with(entry, "opening", &edge.Decision{Allowed: true, Message: "Welcome"}), "allowed", "Welcome"},
		{"exit fee", with(exit, "armed", &edge.Decision{Message: "Please pay EUR 4.00", FeeDue: 400, Currency: "EUR"}), "denied", "Please pay EUR 4.00"},
		{"full", with(entry, "armed", &edge.Decision{Message: "Full"}), "denied", "Full"},
		{"degraded", edge.LaneView{Direction: edge.Entry, State: "armed", Status: "degraded"}, "closed", "Lane closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			class, heading, msg := kioskState(tt.v)
			if class != tt.class || heading != tt.heading || msg == "" {
				t.Errorf("kioskState = %q, %q, %q; want %q, %q and a message", class, heading, msg, tt.class, tt.heading)
			}
		})
	}
}
