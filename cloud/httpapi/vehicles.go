package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	"github.com/gatehouse-parking/gatehouse/edge/plate"
	"github.com/gofiber/fiber/v2"
)

// A driver's vehicles and the stays they made. These routes are for driver accounts
// only: staff accounts (operators, managers, admins) have no vehicles, and a member of
// staff who parks uses a driver account of their own, so that what they do at work and
// where they park stay apart. A vehicle has one owner at a time; a driver sees the
// stays of their plates that began while the plate was registered to them, never an
// earlier or later owner's.

// Vehicle is a vehicle registered to the driver.
type Vehicle struct {
	// ID is the registration's id, used to remove it.
	ID int64 `json:"id"`
	// Plate is normalised: upper-case letters and digits only.
	Plate string `json:"plate"`
	// Country is ISO 3166-1 alpha-2, upper-case.
	Country  string    `json:"country"`
	Nickname string    `json:"nickname,omitempty"`
	AddedAt  time.Time `json:"added_at"`
}

func vehicleOf(v postgres.Vehicle) Vehicle {
	return Vehicle{ID: v.ID, Plate: v.Plate, Country: v.Country, Nickname: v.Nickname, AddedAt: v.AddedAt}
}

// VehicleRequest is the body of POST /v1/me/vehicles.
type VehicleRequest struct {
	// Plate as written on the plate; spaces, dashes and dots are dropped, letters
	// upper-cased and diacritics folded (Ö→O).
	Plate string `json:"plate"`
	// Country is ISO 3166-1 alpha-2, e.g. "DE".
	Country  string `json:"country"`
	Nickname string `json:"nickname,omitempty"`
}

const maxNickname = 40

func (r *VehicleRequest) validate() []FieldError {
	var f []FieldError
	if msg := plateProblem(r.Plate); msg != "" {
		f = append(f, FieldError{"plate", msg})
	} else {
		r.Plate = plate.Normalize(r.Plate)
	}
	r.Country = strings.ToUpper(strings.TrimSpace(r.Country))
	if len(r.Country) != 2 || r.Country[0] < 'A' || r.Country[0] > 'Z' || r.Country[1] < 'A' || r.Country[1] > 'Z' {
		f = append(f, FieldError{"country", "must be an ISO 3166-1 alpha-2 country code, e.g. DE"})
	}
	r.Nickname = strings.TrimSpace(r.Nickname)
	switch {
	case utf8.RuneCountInString(r.Nickname) > maxNickname:
		f = append(f, FieldError{"nickname", "must be at most 40 characters"})
	case strings.IndexFunc(r.Nickname, unicode.IsControl) >= 0:
		f = append(f, FieldError{"nickname", "must not hold control characters"})
	}
	return f
}

// Bounds of a plate: what a registration plate holds, written as people write it.
const (
	maxPlateInput = 20
	minPlate      = 2
	maxPlate      = 12
)

// plateProblem says what is wrong with a plate as written, "" when nothing: it may
// hold letters (with diacritics), digits, spaces, dashes, dots and middle dots, and
// normalise to 2 to 12 letters and digits.
func plateProblem(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return "is required"
	}
	if utf8.RuneCountInString(s) > maxPlateInput {
		return "is too long for a plate"
	}
	for _, r := range s {
		switch {
		case r == ' ', r == '-', r == '.', r == '·':
		case r < utf8.RuneSelf && (r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9'):
		case r >= utf8.RuneSelf && unicode.IsLetter(r) && plate.Normalize(string(r)) != "":
		default:
			return "may hold only letters, digits, spaces, dashes and dots"
		}
	}
	if n := len(plate.Normalize(s)); n < minPlate || n > maxPlate {
		return "must have 2 to 12 letters and digits"
	}
	return ""
}

func (a *api) vehicleRoutes() []*route {
	// Admins pass every role check; driverOnly refuses them in the handler.
	acc := access{roles: []cloud.Role{cloud.RoleDriver}}
	return []*route{
		{method: fiber.MethodGet, path: "/me/vehicles", tag: "drivers",
			summary: "The vehicles registered to the driver", access: acc,
			response: Page[Vehicle]{}, handler: a.listVehicles},
		{method: fiber.MethodPost, path: "/me/vehicles", tag: "drivers",
			summary: "Register a vehicle to the driver (one owner per plate and country)", access: acc,
			request: VehicleRequest{}, response: Vehicle{}, status: http.StatusCreated, handler: a.addVehicle},
		{method: fiber.MethodDelete, path: "/me/vehicles/:id", tag: "drivers",
			summary: "Remove a vehicle; its past stays stay in the driver's history", access: acc,
			status: http.StatusNoContent, handler: a.removeVehicle},
		{method: fiber.MethodGet, path: "/me/sessions", tag: "drivers",
			summary: "The driver's stays, open and closed, the latest entry first", access: acc,
			query: []param{
				{name: "limit", typ: "integer", description: "items per page"},
				{name: "cursor", typ: "string", description: "next_cursor of the previous page"}},
			response: Page[Session]{}, handler: a.driverSessions},
	}
}

// driverOnly returns the request's account when it is a driver's.
func driverOnly(c *fiber.Ctx) (*cloud.Principal, error) {
	p := principal(c)
	if p == nil || p.Role != cloud.RoleDriver || p.UserID == "" {
		return nil, forbidden("only driver accounts have vehicles and stays; staff use a driver account of their own")
	}
	return p, nil
}

func (a *api) listVehicles(c *fiber.Ctx) error {
	p, err := driverOnly(c)
	if err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	vs, err := a.db.Vehicles(ctx, p.UserID)
	if err != nil {
		return err
	}
	page := Page[Vehicle]{Items: make([]Vehicle, len(vs))}
	for i, v := range vs {
		page.Items[i] = vehicleOf(v)
	}
	return c.JSON(page)
}

func (a *api) addVehicle(c *fiber.Ctx) error {
	p, err := driverOnly(c)
	if err != nil {
		return err
	}
	var req VehicleRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	v, err := a.db.AddVehicle(ctx, p.UserID, req.Plate, req.Country, req.Nickname, a.now())
	if err != nil {
		return err
	}
	return c.Status(http.StatusCreated).JSON(vehicleOf(v))
}

func (a *api) removeVehicle(c *fiber.Ctx) error {
	p, err := driverOnly(c)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil || id <= 0 {
		return malformed("invalid vehicle id", FieldError{"id", "must be a vehicle id this API returned"})
	}
	ctx, cancel := opContext(c)
	defer cancel()
	if err := a.db.RemoveVehicle(ctx, p.UserID, id, a.now()); err != nil {
		return err
	}
	return c.SendStatus(http.StatusNoContent)
}

func (a *api) driverSessions(c *fiber.Ctx) error {
	p, err := driverOnly(c)
	if err != nil {
		return err
	}
	limit, cur, err := pageParams(c)
	if err != nil {
		return err
	}
	after, err := parseSessionCursor(cur)
	if err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	ss, err := a.db.DriverSessions(ctx, p.UserID, after, limit+1)
	if err != nil {
		return err
	}
	return c.JSON(sessionPage(ss, limit, false))
}
