package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gofiber/fiber/v2"
)

// Problem is an RFC 9457 problem details object: the body of every error response,
// served as application/problem+json.
type Problem struct {
	// Type is a URI naming the kind of problem, "urn:gatehouse:problem:<kind>".
	Type string `json:"type"`
	// Title is the kind's short summary; it does not vary by occurrence.
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

const internalDetail = "internal error; the request id finds it in the service's log"

// Transport error codes, beside the domain's (cloud.EINVALID and the others).
const (
	codeMalformed = "malformed"          // not JSON, unknown fields, bad query syntax: 400
	codeMethod    = "method_not_allowed" // 405
	codeTooLarge  = "too_large"          // 413, 431
	codeTimeout   = "timeout"            // 408
)

// requestError is a failure of the request itself, found before the domain sees it.
type requestError struct {
	code      string
	detail    string
	fields    []FieldError
	challenge string // WWW-Authenticate value of a 401
}

func (e *requestError) Error() string { return fmt.Sprintf("httpapi: %s: %s", e.code, e.detail) }

// invalid is a well-formed request with invalid content: 422.
func invalid(detail string, fields ...FieldError) error {
	return &requestError{code: cloud.EINVALID, detail: detail, fields: fields}
}

// malformed is a request that cannot be read: 400.
func malformed(detail string, fields ...FieldError) error {
	return &requestError{code: codeMalformed, detail: detail, fields: fields}
}

// unauthorized is a request without valid credentials: 401 with a challenge.
func unauthorized(detail, errCode string) error {
	ch := challenge
	if errCode != "" {
		ch += `, error="` + errCode + `"`
	}
	return &requestError{code: cloud.EUNAUTHORIZED, detail: detail, challenge: ch}
}

// forbidden is a request whose credentials do not allow it: 403.
func forbidden(detail string) error { return &requestError{code: cloud.EFORBIDDEN, detail: detail} }

type problemKind struct {
	status int
	name   string
	title  string
}

var problemKinds = map[string]problemKind{
	codeMalformed:       {http.StatusBadRequest, "malformed", "Malformed request"},
	cloud.EUNAUTHORIZED: {http.StatusUnauthorized, "unauthorized", "Authentication required"},
	cloud.EFORBIDDEN:    {http.StatusForbidden, "forbidden", "Not allowed"},
	cloud.ENOTFOUND:     {http.StatusNotFound, "not-found", "Not found"},
	codeMethod:          {http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed"},
	codeTimeout:         {http.StatusRequestTimeout, "timeout", "Request timeout"},
	cloud.ECONFLICT:     {http.StatusConflict, "conflict", "Conflict"},
	codeTooLarge:        {http.StatusRequestEntityTooLarge, "too-large", "Request too large"},
	cloud.EINVALID:      {http.StatusUnprocessableEntity, "invalid", "Invalid request"},
	cloud.ETOOMANY:      {http.StatusTooManyRequests, "too-many-requests", "Too many requests"},
	cloud.EINTERNAL:     {http.StatusInternalServerError, "internal", "Internal error"},
	cloud.EUNAVAILABLE:  {http.StatusServiceUnavailable, "unavailable", "Service unavailable"},
}

// problemFor maps any error a handler, a middleware or the server returns to the
// problem the client gets: the one place where error codes become status codes.
// Detail is always user-safe: the text of an internal error never reaches it.
func problemFor(err error) *Problem {
	code, detail := cloud.ErrorCode(err), cloud.ErrorMessage(err)
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
			code, detail = cloud.ENOTFOUND, "no such route"
		case http.StatusMethodNotAllowed:
			code, detail = codeMethod, "this route does not take this method"
		case http.StatusRequestEntityTooLarge:
			code, detail = codeTooLarge, fmt.Sprintf("the request body is larger than %d bytes", BodyLimit)
		case http.StatusRequestHeaderFieldsTooLarge:
			code, detail = codeTooLarge, "the request headers are too large"
		case http.StatusRequestTimeout:
			code, detail = codeTimeout, "the request was not received in time"
		case http.StatusTooManyRequests:
			code, detail = cloud.ETOOMANY, "too many requests; retry after the time in Retry-After"
		default:
			return &Problem{Type: "about:blank", Title: http.StatusText(fe.Code), Status: fe.Code}
		}
	case code == cloud.EINTERNAL && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)):
		code, detail = cloud.EUNAVAILABLE, "the service did not answer in time"
	}
	k, ok := problemKinds[code]
	if !ok {
		k = problemKinds[cloud.EINTERNAL]
	}
	if k.status == http.StatusInternalServerError {
		detail = internalDetail
	}
	return &Problem{Type: "urn:gatehouse:problem:" + k.name, Title: k.title, Status: k.status, Detail: detail, Errors: fields}
}

// errorHandler writes err as a problem. It is Fiber's error handler, so it also
// answers the server's own refusals (body too large, unreadable requests). Every 4xx is
// counted and logged on one line; every 5xx is logged with the internal error.
func (a *api) errorHandler(c *fiber.Ctx, err error) error {
	p := problemFor(err)
	p.Instance = c.Path()
	p.RequestID = requestID(c)
	switch {
	case p.Status >= 500:
		a.log.Error("request failed", "status", p.Status, "method", c.Method(), "path", p.Instance, "request_id", p.RequestID, "err", err)
	case p.Status >= 400:
		a.metrics.rejected.WithLabelValues(problemKindName(p)).Inc()
		a.log.Info("request refused", "status", p.Status, "method", c.Method(), "path", p.Instance, "request_id", p.RequestID, "detail", p.Detail)
	}
	var re *requestError
	if errors.As(err, &re) && re.challenge != "" {
		c.Set(fiber.HeaderWWWAuthenticate, re.challenge)
	}
	body, merr := json.Marshal(p)
	if merr != nil {
		return merr
	}
	c.Status(p.Status)
	c.Set(fiber.HeaderContentType, ProblemContentType)
	return c.Send(body)
}

func problemKindName(p *Problem) string {
	const prefix = "urn:gatehouse:problem:"
	if len(p.Type) > len(prefix) {
		return p.Type[len(prefix):]
	}
	return "other"
}
