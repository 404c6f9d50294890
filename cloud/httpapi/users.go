package httpapi

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	"github.com/gofiber/fiber/v2"
)

// RoleRequest is the body of PUT /v1/users/{id}/role: the account's new role and, for
// operators and facility managers, the facilities they are assigned to.
type RoleRequest struct {
	Role       cloud.Role `json:"role"`
	Facilities []string   `json:"facilities,omitempty"`
}

func (r *RoleRequest) validate() []FieldError {
	var f fields
	if !r.Role.Valid() {
		f.add("role", fmt.Sprintf("must be one of %v", cloud.Roles))
	}
	f.facilities("facilities", r.Facilities)
	staffed := r.Role == cloud.RoleOperator || r.Role == cloud.RoleManager
	switch {
	case staffed && len(r.Facilities) == 0:
		f.add("facilities", "operators and facility managers are assigned to at least one facility")
	case !staffed && len(r.Facilities) > 0:
		f.add("facilities", "only operators and facility managers are assigned to facilities")
	}
	r.Facilities = slices.Compact(slices.Sorted(slices.Values(r.Facilities)))
	return f
}

// APIKeyRequest is the body of POST /v1/api-keys.
type APIKeyRequest struct {
	Name       string   `json:"name"`
	Scopes     []string `json:"scopes"`
	Facilities []string `json:"facilities"`
}

// APIKeyRequest's scopes are checked by the handler against the scopes the routes use.
func (r *APIKeyRequest) validate() []FieldError {
	var f fields
	r.Name = strings.TrimSpace(r.Name)
	f.str("name", r.Name, 1, cloud.MaxNameLen)
	switch {
	case len(r.Scopes) == 0:
		f.add("scopes", "is required: at least one scope")
	case len(r.Scopes) > maxListLen:
		f.add("scopes", fmt.Sprintf("must have at most %d entries", maxListLen))
	}
	if len(r.Facilities) == 0 {
		f.add("facilities", "is required: at least one facility")
	}
	f.facilities("facilities", r.Facilities)
	r.Scopes = slices.Compact(slices.Sorted(slices.Values(r.Scopes)))
	r.Facilities = slices.Compact(slices.Sorted(slices.Values(r.Facilities)))
	return f
}

// NewAPIKey is the body of a created key: the only time its secret is shown.
type NewAPIKey struct {
	cloud.APIKey
	// Key is the whole key, gh_<prefix>_<secret>, for the X-API-Key header.
	Key string `json:"key"`
}

func (a *api) userRoutes() []*route {
	pageQuery := []param{
		{name: "limit", typ: "integer", description: fmt.Sprintf("items per page, 1 to %d (default %d)", MaxLimit, DefaultLimit)},
		{name: "cursor", typ: "string", description: "next_cursor of the previous page"},
	}
	return []*route{
		{method: fiber.MethodGet, path: "/users", tag: "users", summary: "Accounts, by email",
			access: access{roles: adminOnly}, query: pageQuery, response: Page[cloud.User]{}, handler: a.listUsers},
		{method: fiber.MethodGet, path: "/users/:id", tag: "users", summary: "An account",
			access: access{roles: adminOnly}, response: cloud.User{}, handler: a.getUser},
		{method: fiber.MethodPut, path: "/users/:id/role", tag: "users",
			summary: "Set an account's role and facilities; its access tokens are invalidated",
			access:  access{roles: adminOnly, audit: "user.role_change"}, request: RoleRequest{}, response: cloud.User{}, handler: a.setRole},
		{method: fiber.MethodPost, path: "/api-keys", tag: "api-keys",
			summary: "Issue an integrator's API key (managers: for their facilities); the key is shown once",
			access:  access{roles: managers, audit: "apikey.create"}, request: APIKeyRequest{}, response: NewAPIKey{}, status: fiber.StatusCreated, handler: a.createAPIKey},
		{method: fiber.MethodGet, path: "/api-keys", tag: "api-keys", summary: "API keys, newest first (managers: those of their facilities)",
			access: access{roles: managers}, query: pageQuery, response: Page[cloud.APIKey]{}, handler: a.listAPIKeys},
		{method: fiber.MethodDelete, path: "/api-keys/:id", tag: "api-keys", summary: "Revoke an API key",
			access: access{roles: managers, audit: "apikey.revoke"}, status: fiber.StatusNoContent, handler: a.revokeAPIKey},
		{method: fiber.MethodGet, path: "/audit", tag: "audit", summary: "The audit log, newest first (managers: entries of their facilities)",
			access: access{roles: managers}, response: Page[cloud.AuditEntry]{},
			query: append([]param{
				{name: "facility", typ: "string", description: "only entries of this facility"},
				{name: "actor", typ: "string", description: "only entries of this actor (user:<id>, key:<id>); admins only"},
			}, pageQuery...), handler: a.auditLog},
	}
}

func (a *api) listUsers(c *fiber.Ctx) error {
	limit, cur, err := pageParams(c)
	if err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	us, err := a.db.Users(ctx, cur.After, limit+1)
	if err != nil {
		return err
	}
	return c.JSON(makePage(us, limit, func(u cloud.User) string { return u.Email }))
}

func (a *api) getUser(c *fiber.Ctx) error {
	ctx, cancel := opContext(c)
	defer cancel()
	u, err := a.db.User(ctx, c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(u)
}

func (a *api) setRole(c *fiber.Ctx) error {
	var req RoleRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	p := principal(c)
	id := c.Params("id")
	if id == p.UserID {
		return forbidden("you cannot change your own role; another admin can")
	}
	ctx, cancel := opContext(c)
	defer cancel()
	before, after, err := a.db.SetRole(ctx, id, req.Role, req.Facilities)
	if err != nil {
		return err
	}
	e := cloud.AuditEntry{Action: "user.role_change", Target: "user:" + after.ID, Detail: map[string]any{
		"email": after.Email, "from": before.Role, "to": after.Role, "facilities_from": before.Facilities, "facilities_to": after.Facilities}}
	if len(after.Facilities) == 1 {
		e.Facility = after.Facilities[0]
	}
	a.audit(c, e)
	return c.JSON(after)
}

// knownScopes returns the API-key scopes the routes use: the ones a key may have.
func (a *api) knownScopes() []string {
	var s []string
	for _, r := range a.routes {
		if r.access.scope != "" && !slices.Contains(s, r.access.scope) {
			s = append(s, r.access.scope)
		}
	}
	slices.Sort(s)
	return s
}

// within returns the facilities whose keys and entries the caller sees: nil for an
// admin (all), the assigned ones (maybe none) for a manager.
func within(p *cloud.Principal) []string {
	if p.Role == cloud.RoleAdmin {
		return nil
	}
	return append([]string{}, p.Facilities...)
}

func (a *api) createAPIKey(c *fiber.Ctx) error {
	var req APIKeyRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	known := a.knownScopes()
	var bad fields
	for i, s := range req.Scopes {
		if !slices.Contains(known, s) {
			bad.add(fmt.Sprintf("scopes[%d]", i), fmt.Sprintf("must be one of %v", known))
		}
	}
	if len(bad) > 0 {
		return invalid("the request has invalid fields", bad...)
	}
	p := principal(c)
	if w := within(p); w != nil {
		for _, f := range req.Facilities {
			if !slices.Contains(w, f) {
				return forbidden("you may issue keys only for the facilities you manage")
			}
		}
	}
	acct, err := a.acct()
	if err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	k, secret, err := acct.CreateAPIKey(ctx, p.UserID, req.Name, req.Scopes, req.Facilities)
	if err != nil {
		return err
	}
	e := cloud.AuditEntry{Action: "apikey.create", Target: "key:" + k.ID,
		Detail: map[string]any{"name": k.Name, "prefix": k.Prefix, "scopes": k.Scopes, "facilities": k.Facilities}}
	if len(k.Facilities) == 1 {
		e.Facility = k.Facilities[0]
	}
	a.audit(c, e)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(NewAPIKey{APIKey: *k, Key: secret})
}

func (a *api) listAPIKeys(c *fiber.Ctx) error {
	limit, cur, err := pageParams(c)
	if err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	ks, err := a.db.APIKeys(ctx, within(principal(c)), cur.After, limit+1)
	if err != nil {
		return err
	}
	return c.JSON(makePage(ks, limit, func(k cloud.APIKey) string { return k.ID }))
}

func (a *api) revokeAPIKey(c *fiber.Ctx) error {
	ctx, cancel := opContext(c)
	defer cancel()
	k, err := a.db.APIKey(ctx, c.Params("id"))
	if err != nil {
		return err
	}
	if w := within(principal(c)); w != nil {
		for _, f := range k.Facilities {
			if !slices.Contains(w, f) {
				return cloud.Errorf(cloud.ENOTFOUND, "no such API key") // not theirs to see
			}
		}
	}
	if err := a.db.RevokeAPIKey(ctx, k.ID); err != nil {
		return err
	}
	e := cloud.AuditEntry{Action: "apikey.revoke", Target: "key:" + k.ID, Detail: map[string]any{"name": k.Name, "prefix": k.Prefix}}
	if len(k.Facilities) == 1 {
		e.Facility = k.Facilities[0]
	}
	a.audit(c, e)
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *api) auditLog(c *fiber.Ctx) error {
	limit, cur, err := pageParams(c)
	if err != nil {
		return err
	}
	var before int64
	if cur.After != "" {
		if before, err = strconv.ParseInt(cur.After, 10, 64); err != nil || before <= 0 {
			return malformed("invalid query parameter", FieldError{"cursor", "not a cursor this API returned"})
		}
	}
	facility, actor := c.Query("facility"), c.Query("actor")
	if facility != "" && !cloud.ValidFacilityID(facility) {
		return malformed("invalid query parameter", FieldError{"facility", "must be a facility id"})
	}
	if len(actor) > 200 {
		return malformed("invalid query parameter", FieldError{"actor", "must be at most 200 characters"})
	}
	p := principal(c)
	ctx, cancel := opContext(c)
	defer cancel()
	var es []cloud.AuditEntry
	if w := within(p); w != nil {
		if actor != "" {
			return forbidden("only admins filter the audit log by actor")
		}
		if facility != "" {
			if !slices.Contains(w, facility) {
				return forbidden("you are not assigned to this facility")
			}
			w = []string{facility}
		}
		es, err = a.db.AuditLogIn(ctx, w, before, limit+1)
	} else {
		es, err = a.db.AuditLog(ctx, postgres.AuditFilter{Facility: facility, Actor: actor, Before: before, Limit: limit + 1})
	}
	if err != nil {
		return err
	}
	return c.JSON(makePage(es, limit, func(e cloud.AuditEntry) string { return strconv.FormatInt(e.ID, 10) }))
}
