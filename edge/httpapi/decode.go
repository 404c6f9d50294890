package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
)

// Bounds of request fields.
const (
	maxReason    = 500       // characters
	maxReference = 200       // characters
	maxAmount    = 100000000 // minor units: a million in the major unit is no parking fee
)

// Payment methods. A lane's kiosk takes cards and cash; a session can also be paid at
// a pay station or in the app.
var (
	laneMethods    = []string{"kiosk_card", "cash"}
	sessionMethods = []string{"kiosk_card", "cash", "pay_station", "app"}
)

// openLaneRequest is the body of POST /v1/lanes/:id/open.
type openLaneRequest struct {
	Reason string `json:"reason"`
}

func (r *openLaneRequest) validate() []FieldError {
	var f []FieldError
	r.Reason = strings.TrimSpace(r.Reason)
	f = checkReason(f, r.Reason)
	return f
}

// cardPaymentRequest is the body of POST /v1/lanes/:id/card, which may be empty: the
// amount is the fee the lane displays, the card is the terminal's business.
type cardPaymentRequest struct{}

func (cardPaymentRequest) validate() []FieldError { return nil }

// paymentRequest is the body of POST /v1/lanes/:id/pay and /v1/sessions/:id/payments.
type paymentRequest struct {
	Amount    *int64 `json:"amount"` // minor units (cents)
	Method    string `json:"method"`
	Reference string `json:"reference"`

	methods []string // the methods the route accepts
}

func (r *paymentRequest) validate() []FieldError {
	var f []FieldError
	switch {
	case r.Amount == nil:
		f = append(f, FieldError{"amount", "required: the amount paid in minor units (cents)"})
	case *r.Amount <= 0:
		f = append(f, FieldError{"amount", "must be a positive number of minor units (cents)"})
	case *r.Amount > maxAmount:
		f = append(f, FieldError{"amount", fmt.Sprintf("must be at most %d", maxAmount)})
	}
	if !slices.Contains(r.methods, r.Method) {
		f = append(f, FieldError{"method", "must be one of " + strings.Join(r.methods, ", ")})
	}
	r.Reference = strings.TrimSpace(r.Reference)
	if utf8.RuneCountInString(r.Reference) > maxReference {
		f = append(f, FieldError{"reference", fmt.Sprintf("must be at most %d characters", maxReference)})
	}
	return f
}

// countRequest is the body of POST /v1/zones/:id/count.
type countRequest struct {
	Occupied *int   `json:"occupied"`
	Reason   string `json:"reason"`
}

func (r *countRequest) validate() []FieldError {
	var f []FieldError
	switch {
	case r.Occupied == nil:
		f = append(f, FieldError{"occupied", "required: the number of vehicles counted in the zone"})
	case *r.Occupied < 0:
		f = append(f, FieldError{"occupied", "must not be negative"})
	}
	r.Reason = strings.TrimSpace(r.Reason)
	f = checkReason(f, r.Reason)
	return f
}

func checkReason(f []FieldError, reason string) []FieldError {
	switch {
	case reason == "":
		return append(f, FieldError{"reason", "required: say why, it is recorded with your name"})
	case utf8.RuneCountInString(reason) > maxReason:
		return append(f, FieldError{"reason", fmt.Sprintf("must be at most %d characters", maxReason)})
	}
	return f
}

// validator is a request body that checks its own fields.
type validator interface {
	validate() []FieldError
}

// decodeBody reads one JSON object from body into dst and validates it. A body that is
// not one JSON object, or that has members dst does not know, is malformed (400); a
// member of the wrong type or an invalid value is invalid (422), naming the field.
func decodeBody(body []byte, dst validator) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return malformed("the request needs a JSON object as its body")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return malformed("the body must hold one JSON object and nothing after it")
	}
	if f := dst.validate(); len(f) > 0 {
		return invalid("the request has invalid fields", f...)
	}
	return nil
}

func decodeError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return malformed(fmt.Sprintf("malformed JSON at byte %d", syn.Offset))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return malformed("malformed JSON: the body ends early")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return malformed("the body must be a JSON object")
		}
		return invalid("the request has invalid fields", FieldError{typ.Field, "must be " + jsonKind(typ.Type)})
	}
	// encoding/json reports unknown members only in its message.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		return malformed("the body has a member this request does not take", FieldError{name, "unknown field"})
	}
	return malformed("the body is not valid JSON")
}

// jsonKind names a Go type the way a JSON client thinks of it.
func jsonKind(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "of another type"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer in range"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	}
	return "of another type"
}

// queryUint parses an optional non-negative integer query parameter.
func queryUint(c *fiber.Ctx, name string, def uint64) (uint64, error) {
	s := c.Query(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, malformed("invalid query parameter", FieldError{name, "must be a non-negative integer"})
	}
	return v, nil
}

// queryLimit parses ?limit=: DefaultLimit when absent, at most MaxLimit.
func queryLimit(c *fiber.Ctx) (int, error) {
	v, err := queryUint(c, "limit", DefaultLimit)
	if err != nil {
		return 0, err
	}
	if v == 0 {
		return 0, malformed("invalid query parameter", FieldError{"limit", fmt.Sprintf("must be between 1 and %d", MaxLimit)})
	}
	return int(min(v, MaxLimit)), nil
}

// queryBool parses an optional boolean query parameter.
func queryBool(c *fiber.Ctx, name string, def bool) (bool, error) {
	s := c.Query(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return false, malformed("invalid query parameter", FieldError{name, "must be true or false"})
	}
	return v, nil
}
