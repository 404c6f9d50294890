package camera

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gofiber/fiber/v2"
)

// Problem is an RFC 9457 problem details object, the body of every error response,
// served as application/problem+json. Types match the edge API's
// ("urn:gatehouse:problem:<kind>").
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
}

// ProblemContentType is the media type of error responses.
const ProblemContentType = "application/problem+json"

// problem kinds by status.
var problemKinds = map[int]struct{ name, title string }{
	http.StatusBadRequest:                  {"malformed", "Malformed request"},
	http.StatusUnauthorized:                {"unauthorized", "Camera token required"},
	http.StatusNotFound:                    {"not-found", "Not found"},
	http.StatusMethodNotAllowed:            {"method-not-allowed", "Method not allowed"},
	http.StatusRequestTimeout:              {"timeout", "Request timeout"},
	http.StatusRequestEntityTooLarge:       {"too-large", "Request too large"},
	http.StatusUnsupportedMediaType:        {"unsupported-media-type", "Unsupported media type"},
	http.StatusRequestHeaderFieldsTooLarge: {"too-large", "Request too large"},
	http.StatusInternalServerError:         {"internal", "Internal error"},
}

// writeProblem answers c with a problem of the given status.
func writeProblem(c *fiber.Ctx, status int, detail string) error {
	k, ok := problemKinds[status]
	p := Problem{Type: "urn:gatehouse:problem:" + k.name, Title: k.title, Status: status, Detail: detail, Instance: c.Path()}
	if !ok {
		p.Type, p.Title = "about:blank", http.StatusText(status)
	}
	body, _ := json.Marshal(p) // strings and an int: cannot fail
	c.Status(status)
	c.Set(fiber.HeaderContentType, ProblemContentType)
	if status == http.StatusUnauthorized {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="gatehouse-camera"`)
	}
	return c.Send(body)
}

// errorHandler is the error handler of the receiver's own app (App): it answers what
// Fiber itself refuses (a body over the limit, an unknown route) as a problem.
func (r *Receiver) errorHandler(c *fiber.Ctx, err error) error {
	status := http.StatusInternalServerError
	var fe *fiber.Error
	if errors.As(err, &fe) {
		status = fe.Code
	}
	detail := ""
	switch status {
	case http.StatusRequestEntityTooLarge:
		detail = "the push is larger than the receiver accepts"
		r.tooLarge.Add(1)
	case http.StatusNotFound:
		detail = "no such route"
	case http.StatusInternalServerError:
		r.log.Error("camera: request failed", "path", c.Path(), "err", err)
		detail = "internal error"
	}
	return writeProblem(c, status, detail)
}
