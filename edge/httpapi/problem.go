package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gofiber/fiber/v2"
)

// Problem is an RFC 9457 problem details object: the body of every error response,
// served as application/problem+json.
type Problem struct {
	// Type is a URI naming the kind of problem, "urn:gatehouse:problem:<kind>".
	Type string `json:"type"`
	// Title is the kind's short human-readable summary; it does not vary by occurrence.
	Title string `json:"title"`
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Detail explains this occurrence; it is safe to show to a user.
	Detail string `json:"detail,omitempty"`
	// Instance is the request path.
	Instance string `json:"instance,omitempty"`
	// RequestID is the X-Request-Id of the request, to find it in the log.
	RequestID string `json:"request_id,omitempty"`
	// Errors lists the invalid fields of a validation problem.
	Errors []FieldError `json:"errors,omitempty"`
}

// FieldError names one invalid field of a request (a JSON member or a query
// parameter) and what is wrong with it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ProblemContentType is the media type of error responses.
const ProblemContentType = "application/problem+json"

// internalDetail is all a client learns of an internal error.
const internalDetail = "internal error; the request id finds it in the controller's log"

// Transport error codes, beside the domain's (edge.EINVALID and the others).
const (
	codeMalformed    = "malformed"          // not JSON, unknown fields, bad query syntax: 400
	codeUnauthorized = "unauthorized"       // missing or unknown operator token: 401
	codeMethod       = "method_not_allowed" // 405
	codeTooLarge     = "too_large"          // body over BodyLimit, headers too large: 413, 431
	codeTimeout      = "timeout"            // the client was too slow: 408
)

// requestError is a failure of the request itself, found before the garage sees it.
type requestError struct {
	code      string
	detail    string
	fields    []FieldError
	challenge string // WWW-Authenticate value of a 401
}

func (e *requestError) Error() string { return fmt.Sprintf("httpapi: %s: %s", e.code, e.detail) }

// invalid is a well-formed request with invalid content: 422.
func invalid(detail string, fields ...FieldError) error {
	return &requestError{code: edge.EINVALID, detail: detail, fields: fields}
}

// malformed is a request that cannot be read: 400.
func malformed(detail string, fields ...FieldError) error {
	return &requestError{code: codeMalformed, detail: detail, fields: fields}
}

// problemKind is the fixed part of a problem: status, type and title.
type problemKind struct {
	status int
	name   string
	title  string
}

var problemKinds = map[string]problemKind{
	codeMalformed:     {http.StatusBadRequest, "malformed", "Malformed request"},
	codeUnauthorized:  {http.StatusUnauthorized, "unauthorized", "Operator token required"},
	edge.EFORBIDDEN:   {http.StatusForbidden, "forbidden", "Not allowed"},
	edge.ENOTFOUND:    {http.StatusNotFound, "not-found", "Not found"},
	codeMethod:        {http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed"},
	codeTimeout:       {http.StatusRequestTimeout, "timeout", "Request timeout"},
	edge.ECONFLICT:    {http.StatusConflict, "conflict", "Conflict with the garage's state"},
	codeTooLarge:      {http.StatusRequestEntityTooLarge, "too-large", "Request too large"},
	edge.EINVALID:     {http.StatusUnprocessableEntity, "invalid", "Invalid request"},
	edge.EINTERNAL:    {http.StatusInternalServerError, "internal", "Internal error"},
	edge.EUNAVAILABLE: {http.StatusServiceUnavailable, "unavailable", "Service unavailable"},
}

// problemFor maps any error a handler, a middleware or the server returns to the problem
// the client gets. It is the one place where error codes become status codes. Detail
// is always user-safe: the text of an internal error never reaches it.
func problemFor(err error) *Problem {
	code, detail := edge.ErrorCode(err), edge.ErrorMessage(err)
	var fields []FieldError
	var re *requestError
	var fe *fiber.Error
	switch {
	case errors.As(err, &re):
		code, detail, fields = re.code, re.detail, re.fields
	case errors.As(err, &fe):
		switch fe.Code {
		case http.StatusBadRequest:
			code, detail = codeMalformed, "the request could not be read"
		case http.StatusNotFound:
			code, detail = edge.ENOTFOUND, "no such route"
		case http.StatusMethodNotAllowed:
			code, detail = codeMethod, "this route does not take this method"
		case http.StatusRequestEntityTooLarge:
			code, detail = codeTooLarge, fmt.Sprintf("the request body is larger than %d bytes", BodyLimit)
		case http.StatusRequestHeaderFieldsTooLarge:
			code, detail = codeTooLarge, "the request headers are too large"
		case http.StatusRequestTimeout:
			code, detail = codeTimeout, "the request was not received in time"
		default:
			// Anything else Fiber raises keeps its status, with the standard wording.
			return &Problem{Type: "about:blank", Title: http.StatusText(fe.Code), Status: fe.Code}
		}
	case code == edge.EINTERNAL && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)):
		// The action may still be recorded: the garage applies it before it waits for
		// the disk. Say so, so that an operator checks before repeating it.
		code, detail = edge.EUNAVAILABLE, "the garage did not confirm in time; the action may still have been recorded"
	}
	k, ok := problemKinds[code]
	if !ok {
		k = problemKinds[edge.EINTERNAL]
	}
	if k.status == http.StatusInternalServerError {
		detail = internalDetail // whatever the error said
	}
	return &Problem{Type: "urn:gatehouse:problem:" + k.name, Title: k.title, Status: k.status, Detail: detail, Errors: fields}
}

// errorHandler writes err as a problem. It is Fiber's error handler, so it also
// answers the server's own failures (body too large, unreadable requests). Every 4xx
// is counted and logged on one line; every 5xx is logged with the internal error.
func (a *api) errorHandler(c *fiber.Ctx, err error) error {
	p := problemFor(err)
	p.Instance = c.Path()
	p.RequestID = requestID(c)
	switch {
	case p.Status >= 500:
		a.log.Error("request failed", "status", p.Status, "method", c.Method(), "path", p.Instance, "request_id", p.RequestID, "err", err)
	case p.Status >= 400:
		a.metrics.badRequests.Inc()
		a.log.Info("bad request", "status", p.Status, "method", c.Method(), "path", p.Instance, "request_id", p.RequestID, "detail", p.Detail)
	}
	var re *requestError
	if errors.As(err, &re) && re.challenge != "" {
		c.Set(fiber.HeaderWWWAuthenticate, re.challenge)
	}
	body, merr := json.Marshal(p)
	if merr != nil {
		return merr // cannot happen: strings and ints
	}
	c.Status(p.Status)
	c.Set(fiber.HeaderContentType, ProblemContentType)
	return c.Send(body)
}
