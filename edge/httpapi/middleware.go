package httpapi

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

// HeaderRequestID carries the request id, in requests and responses.
const HeaderRequestID = "X-Request-Id"

// Keys of values the middleware leaves in the context for handlers.
const (
	localRequestID = "httpapi.request_id"
	localOperator  = "httpapi.operator"
)

// challenge is the WWW-Authenticate value of a 401 (RFC 6750).
const challenge = `Bearer realm="gatehouse-edge"`

// observe runs around every routed request: it sets the request id, turns a returned
// error or a panic into a problem (so that the status is known here), and records
// the request's duration by route.
func (a *api) observe(c *fiber.Ctx) (err error) {
	start := time.Now()
	id := c.Get(HeaderRequestID)
	if !saneRequestID(id) {
		id = newRequestID()
	}
	c.Locals(localRequestID, id)
	c.Set(HeaderRequestID, id)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	self := c.Route()
	defer func() {
		if r := recover(); r != nil {
			err = a.errorHandler(c, fmt.Errorf("panic: %v\n%s", r, debug.Stack()))
		}
		route := c.Route()
		path := route.Path
		if route == self {
			path = "unmatched" // no route took the request: do not let paths become labels
		}
		a.metrics.observe(c.Method(), path, c.Response().StatusCode(), time.Since(start))
	}()
	if err := c.Next(); err != nil {
		return a.errorHandler(c, err)
	}
	return nil
}

// saneRequestID accepts an incoming request id that is short and made of characters
// safe in a header and a log line.
func saneRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch ch := id[i]; {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9':
		case ch == '-', ch == '_', ch == '.', ch == ':':
		default:
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// requestID returns the request's id; "" for requests the server refused before
// routing (observe did not run).
func requestID(c *fiber.Ctx) string {
	if id, ok := c.Locals(localRequestID).(string); ok {
		return id
	}
	if id := c.Get(HeaderRequestID); saneRequestID(id) {
		return id
	}
	return ""
}

// operator lets a request through when it carries a known operator token, and
// leaves the operator's name for the handler.
func (a *api) operator(c *fiber.Ctx) error {
	h := strings.TrimSpace(c.Get(fiber.HeaderAuthorization))
	if h == "" {
		return &requestError{code: codeUnauthorized, detail: "this action needs an operator token (Authorization: Bearer <token>)", challenge: challenge}
	}
	scheme, tok, _ := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return &requestError{code: codeUnauthorized, detail: "the Authorization header must be: Bearer <token>", challenge: challenge + `, error="invalid_request"`}
	}
	name, ok := a.lookup(tok)
	if !ok {
		return &requestError{code: codeUnauthorized, detail: "the operator token is not valid", challenge: challenge + `, error="invalid_token"`}
	}
	c.Locals(localOperator, name)
	return c.Next()
}

// lookup finds the operator holding tok. It compares digests against every token so
// that the time taken says nothing about how close a guess was.
func (a *api) lookup(tok string) (string, bool) {
	sum := sha256.Sum256([]byte(tok))
	name := ""
	for t, n := range a.tokens {
		ts := sha256.Sum256([]byte(t))
		if subtle.ConstantTimeCompare(sum[:], ts[:]) == 1 {
			name = n
		}
	}
	return name, name != ""
}

// operatorName returns the name the operator middleware found.
func operatorName(c *fiber.Ctx) string {
	name, _ := c.Locals(localOperator).(string)
	return name
}
