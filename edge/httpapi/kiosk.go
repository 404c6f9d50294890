package httpapi

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"html/template"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gofiber/fiber/v2"
)

// kioskHTML holds the kiosk pages: self-contained (inline style and script, no
// external assets) so that a lane display works with nothing but the controller.
//
//go:embed kiosk.html
var kioskHTML string

type kiosk struct {
	tmpl *template.Template
}

func newKiosk() *kiosk {
	return &kiosk{tmpl: template.Must(template.New("kiosk").Parse(kioskHTML))}
}

// kioskIndexData feeds the "index" template.
type kioskIndexData struct {
	Nonce    string
	Facility string
	Lanes    []edge.LaneView
}

// kioskLaneData feeds the "lane" template. The page renders the lane's state when
// served and then polls /v1/lanes/:id/display every second.
type kioskLaneData struct {
	Nonce    string
	Facility string
	Currency string
	Title    string
	Lane     edge.LaneView
	// The state shown until the first poll answers.
	Class, Heading, Message string
}

func (a *api) kioskIndex(c *fiber.Ctx) error {
	return a.kiosk.render(c, "index", func(nonce string) any {
		return kioskIndexData{Nonce: nonce, Facility: facilityName(a.g.Facility()), Lanes: a.g.Lanes()}
	})
}

func (a *api) kioskLane(c *fiber.Ctx) error {
	v, err := a.findLane(c.Params("lane"))
	if err != nil {
		return err
	}
	f := a.g.Facility()
	return a.kiosk.render(c, "lane", func(nonce string) any {
		d := kioskLaneData{Nonce: nonce, Facility: facilityName(f), Currency: f.Currency, Title: v.Name, Lane: v}
		if d.Title == "" {
			d.Title = "Lane " + v.ID
		}
		d.Class, d.Heading, d.Message = kioskState(v)
		return d
	})
}

// kioskState is what a lane display shows for v. The page's script does the same
// from each poll, and adds the fee due formatted in the driver's locale.
func kioskState(v edge.LaneView) (class, heading, message string) {
	greet, idle := "Welcome", "Drive up to the barrier."
	if v.Direction == edge.Exit {
		greet, idle = "Goodbye", "Drive up to the barrier to leave."
	}
	d := v.Decision
	switch {
	case v.Status != "ok":
		return "closed", "Lane closed", "Please use another lane or press the help button."
	case v.State == "idle" || d == nil:
		return "idle", greet, idle
	case d.Allowed:
		if d.Message != "" && d.Message != greet {
			return "allowed", greet, d.Message
		}
		return "allowed", greet, "Please drive through."
	case d.FeeDue > 0:
		return "denied", d.Message, "Please pay at this terminal."
	}
	return "denied", d.Message, "Press the help button if you need assistance."
}

func facilityName(f *edge.Facility) string {
	if f.Name != "" {
		return f.Name
	}
	return f.ID
}

// render executes a page with a fresh nonce, which the Content-Security-Policy names
// as the only inline style and script allowed to run.
func (k *kiosk) render(c *fiber.Ctx, name string, data func(nonce string) any) error {
	var b [16]byte
	rand.Read(b[:])
	nonce := hex.EncodeToString(b[:]) // nothing html/template would escape
	var buf bytes.Buffer
	if err := k.tmpl.ExecuteTemplate(&buf, name, data(nonce)); err != nil {
		return fmt.Errorf("kiosk %s: %w", name, err)
	}
	c.Set(fiber.HeaderContentSecurityPolicy, fmt.Sprintf(
		"default-src 'none'; script-src 'nonce-%s'; style-src 'nonce-%s'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'", nonce, nonce))
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.Send(buf.Bytes())
}
