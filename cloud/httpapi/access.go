package httpapi

import (
	"errors"
	"slices"
	"strings"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gofiber/fiber/v2"
)

// route is one operation of the API: registered on the app and described in the
// OpenAPI document from this one declaration.
type route struct {
	method string
	// path is the Fiber pattern under /v1, e.g. "/facilities/:facility/availability".
	// A facility-scoped route names its facility ":facility".
	path    string
	summary string
	tag     string
	access  access
	// request is a zero value of the JSON body's type (nil: no body); response of the
	// success body's type (nil: no body).
	request, response any
	// status is the success status; 0 means 200.
	status int
	// query documents the query parameters.
	query   []param
	handler fiber.Handler
}

// param is a documented query parameter.
type param struct {
	name, description string
	typ               string // "string", "integer", "boolean"
	required          bool
}

// access is who may call a route.
type access struct {
	// public routes need no credentials (a valid bearer token or key still identifies
	// the caller; a wrong one is refused).
	public bool
	// roles are the account roles allowed; admins are always allowed.
	roles []cloud.Role
	// scope is the API-key scope that lets an integrator call the route; "" lets no
	// key in.
	scope string
	// scoped routes act on the facility in :facility: operators, managers and keys
	// must be assigned to it.
	scoped bool
	// limit is the rate-limit class beside the per-principal one: limitAuth for
	// credential-checking routes (login, refresh), counted per client address.
	limit string
	// audit names the action of a sensitive route (gate commands, role changes, keys,
	// refunds): a caller refused here is written to the audit log as denied, as the
	// handler writes the outcome of an allowed one.
	audit string
}

// Rate-limit classes of routes.
const limitAuth = "auth"

// Roles most routes use.
var (
	anyRole   = []cloud.Role{cloud.RoleDriver, cloud.RoleOperator, cloud.RoleManager, cloud.RoleAdmin}
	staff     = []cloud.Role{cloud.RoleOperator, cloud.RoleManager, cloud.RoleAdmin}
	managers  = []cloud.Role{cloud.RoleManager, cloud.RoleAdmin}
	adminOnly = []cloud.Role{cloud.RoleAdmin}
)

const (
	localPrincipal = "httpapi.principal"
	challenge      = `Bearer realm="gatehouse"`
	// HeaderAPIKey carries an integrator's API key.
	HeaderAPIKey = "X-API-Key"
)

// authenticate runs on every /v1 request: it applies the per-address rate limit and,
// when the request carries credentials, checks them and leaves the principal for the
// route's access check. Wrong credentials are refused even on public routes.
func (a *api) authenticate(c *fiber.Ctx) error {
	if err := a.limits.allow(limitIP, a.clientIP(c)); err != nil {
		a.metrics.limited.WithLabelValues(limitIP).Inc()
		return a.tooMany(c, err)
	}
	h := strings.TrimSpace(c.Get(fiber.HeaderAuthorization))
	key := strings.TrimSpace(c.Get(HeaderAPIKey))
	if h == "" && key == "" {
		return c.Next()
	}
	if h != "" && key != "" {
		return malformed("send either Authorization or " + HeaderAPIKey + ", not both")
	}
	ctx, cancel := opContext(c)
	defer cancel()
	var p *cloud.Principal
	var err error
	if key != "" {
		p, err = a.auth.AuthenticateKey(ctx, key)
	} else {
		scheme, tok, _ := strings.Cut(h, " ")
		tok = strings.TrimSpace(tok)
		if !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return unauthorized("the Authorization header must be: Bearer <access token>", "invalid_request")
		}
		p, err = a.auth.AuthenticateToken(ctx, tok)
	}
	if err != nil {
		if cloud.ErrorCode(err) == cloud.EUNAUTHORIZED {
			return unauthorized(cloud.ErrorMessage(err), "invalid_token")
		}
		return err
	}
	c.Locals(localPrincipal, p)
	return c.Next()
}

// principal returns the request's authenticated principal, nil on a public route
// called without credentials.
func principal(c *fiber.Ctx) *cloud.Principal {
	p, _ := c.Locals(localPrincipal).(*cloud.Principal)
	return p
}

// register adds r to the group behind its access check and rate limits.
func (a *api) register(g fiber.Router, r *route) {
	a.routes = append(a.routes, r)
	g.Add(r.method, r.path, func(c *fiber.Ctx) error {
		if err := a.check(c, r); err != nil {
			return err
		}
		return c.Next()
	}, r.handler)
}

// check applies r's access rule and rate limits to the request, and audits a refusal
// of a sensitive route.
func (a *api) check(c *fiber.Ctx, r *route) error {
	err := a.allow(c, r)
	if err != nil && r.access.audit != "" {
		var re *requestError
		if errors.As(err, &re) && (re.code == cloud.EFORBIDDEN || re.code == cloud.EUNAUTHORIZED) {
			target := c.Path()
			a.audit(c, cloud.AuditEntry{Action: r.access.audit, Target: target, Facility: c.Params("facility"),
				Outcome: cloud.OutcomeDenied, Detail: map[string]any{"reason": re.detail}})
		}
	}
	return err
}

// allow applies r's access rule and rate limits to the request.
func (a *api) allow(c *fiber.Ctx, r *route) error {
	if r.access.limit == limitAuth {
		if err := a.limits.allow(limitAuth, a.clientIP(c)); err != nil {
			a.metrics.limited.WithLabelValues(limitAuth).Inc()
			return a.tooMany(c, err)
		}
	}
	p := principal(c)
	if p != nil {
		if err := a.limits.allow(limitPrincipal, p.Actor()); err != nil {
			a.metrics.limited.WithLabelValues(limitPrincipal).Inc()
			return a.tooMany(c, err)
		}
	}
	if r.access.public {
		return nil
	}
	if p == nil {
		return unauthorized("this route needs credentials: Authorization: Bearer <access token>, or "+HeaderAPIKey, "")
	}
	facility := ""
	if r.access.scoped {
		facility = c.Params("facility")
	}
	if p.Role == cloud.RoleIntegrator {
		if r.access.scope == "" || !p.HasScope(r.access.scope) {
			return forbidden("this API key does not have the scope this route needs")
		}
		if r.access.scoped && !p.CanAccess(facility) {
			return forbidden("this API key is not issued for this facility")
		}
		return nil
	}
	if p.Role != cloud.RoleAdmin && !slices.Contains(r.access.roles, p.Role) {
		return forbidden("your role does not allow this")
	}
	if r.access.scoped && (p.Role == cloud.RoleOperator || p.Role == cloud.RoleManager) && !p.CanAccess(facility) {
		return forbidden("you are not assigned to this facility")
	}
	return nil
}

// audit writes an audit entry for the request; a failure to write it is logged, not
// returned: the action has happened.
func (a *api) audit(c *fiber.Ctx, e cloud.AuditEntry) {
	if e.Actor == "" {
		e.Actor = principal(c).Actor()
	}
	e.IP, e.RequestID = a.clientIP(c), requestID(c)
	if e.Outcome == "" {
		e.Outcome = cloud.OutcomeOK
	}
	ctx, cancel := opContext(c)
	defer cancel()
	if err := a.db.Audit(ctx, e); err != nil {
		a.log.Error("audit entry not written", "action", e.Action, "actor", e.Actor, "target", e.Target, "err", err)
	}
}
