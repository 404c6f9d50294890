package cloud

import (
	"slices"
	"time"
)

// Role is what an account may do. Operators and facility managers act only on the
// facilities they are assigned to; admins act on the whole fleet; drivers on their own
// vehicles, sessions and bookings.
type Role string

// Roles of accounts, and of API keys (RoleIntegrator).
const (
	RoleDriver     Role = "driver"
	RoleOperator   Role = "operator"
	RoleManager    Role = "facility_manager"
	RoleAdmin      Role = "admin"
	RoleIntegrator Role = "integrator" // a third party's API key
)

// Roles lists the roles of accounts, least privileged first.
var Roles = []Role{RoleDriver, RoleOperator, RoleManager, RoleAdmin}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// Staff reports whether r is a role that works for garages (and so must use a second
// factor when it has one enrolled).
func (r Role) Staff() bool { return r == RoleOperator || r == RoleManager || r == RoleAdmin }

// Principal is who makes a request: an account with a bearer token, or an
// integrator's API key.
type Principal struct {
	// UserID is the account's id; empty for an API key.
	UserID string
	// APIKeyID is the key's id; empty for an account.
	APIKeyID string
	// Name is what the audit log records as the actor: the account's email, or the
	// key's name.
	Name string
	Role Role
	// Facilities are the facilities an operator, a manager or an API key is scoped to.
	// Admins and drivers have none (admins reach all).
	Facilities []string
	// Scopes are an API key's permissions, such as "availability:read".
	Scopes []string
}

// Actor returns how the audit log names p: "user:<id>" or "key:<id>".
func (p *Principal) Actor() string {
	if p == nil {
		return "anonymous"
	}
	if p.APIKeyID != "" {
		return "key:" + p.APIKeyID
	}
	return "user:" + p.UserID
}

// CanAccess reports whether p may act on the facility: admins on every one, operators,
// managers and API keys on the facilities they are scoped to, drivers on none as
// staff.
func (p *Principal) CanAccess(facility string) bool {
	switch {
	case p == nil:
		return false
	case p.Role == RoleAdmin:
		return true
	case p.Role == RoleOperator, p.Role == RoleManager, p.Role == RoleIntegrator:
		return slices.Contains(p.Facilities, facility)
	}
	return false
}

// HasScope reports whether an API key has the scope; accounts are governed by their
// role, not scopes, and always report true.
func (p *Principal) HasScope(scope string) bool {
	if p == nil {
		return false
	}
	if p.Role != RoleIntegrator {
		return true
	}
	return slices.Contains(p.Scopes, scope)
}

// AuditEntry is one line of the audit log: who did what to what, when, and how it
// ended. Every sensitive action writes one (logins, role changes, gate commands,
// refunds, key issue and revocation).
type AuditEntry struct {
	ID int64     `json:"id"`
	At time.Time `json:"at"`
	// Actor is Principal.Actor, "cli:<name>" for the command line, or "anonymous".
	Actor string `json:"actor"`
	// Action is a dotted verb such as "auth.login", "user.role_change", "gate.open".
	Action string `json:"action"`
	// Target names what was acted on: "user:<id>", "facility:<id>", "lane:<fac>/<lane>".
	Target string `json:"target"`
	// Facility is set when the action concerns one facility, for managers' views.
	Facility string `json:"facility,omitempty"`
	// Outcome is "ok", "denied" or "failed".
	Outcome string `json:"outcome"`
	// IP is the client's address, when the action came over HTTP.
	IP string `json:"ip,omitempty"`
	// RequestID finds the request in the log.
	RequestID string `json:"request_id,omitempty"`
	// Detail holds what else matters (a reason, an amount); never secrets.
	Detail map[string]any `json:"detail,omitempty"`
}

// Audit outcomes.
const (
	OutcomeOK     = "ok"
	OutcomeDenied = "denied"
	OutcomeFailed = "failed"
)
