package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// validator is a request body that checks (and trims) its own fields.
type validator interface {
	validate() []FieldError
}

// decode reads c's body as one JSON object into dst and validates it. A body that is
// not one JSON object, or has members dst does not know, is malformed (400); a member
// of the wrong type or an invalid value is invalid (422), naming the field. Nothing
// has been changed when it fails.
func decode(c *fiber.Ctx, dst validator) error {
	return decodeBody(c.Body(), dst)
}

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
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "of another type"
}

// Limits of list endpoints (?limit=).
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Page is the envelope of every list response: the items and, when there are more,
// the cursor that fetches the next page (?cursor=).
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// Cursor is a decoded pagination cursor: the sort key of the last item returned. It
// travels as opaque URL-safe base64 of its JSON, so clients cannot build one.
type Cursor struct {
	// After is the last item's key (an id, a seq, a time in RFC 3339 with an id).
	After string `json:"a"`
}

// pageParams reads ?limit= and ?cursor=.
func pageParams(c *fiber.Ctx) (limit int, cur Cursor, err error) {
	limit = DefaultLimit
	if s := c.Query("limit"); s != "" {
		v, perr := strconv.Atoi(s)
		if perr != nil || v < 1 || v > MaxLimit {
			return 0, cur, malformed("invalid query parameter", FieldError{"limit", fmt.Sprintf("must be an integer between 1 and %d", MaxLimit)})
		}
		limit = v
	}
	if s := c.Query("cursor"); s != "" {
		b, derr := base64.RawURLEncoding.DecodeString(s)
		if derr != nil || json.Unmarshal(b, &cur) != nil || cur.After == "" {
			return 0, Cursor{}, malformed("invalid query parameter", FieldError{"cursor", "not a cursor this API returned"})
		}
	}
	return limit, cur, nil
}

// makePage returns a page of items, fetched with limit+1 so that a next page is known
// to exist; key gives an item's cursor key.
func makePage[T any](items []T, limit int, key func(T) string) Page[T] {
	p := Page[T]{Items: items}
	if p.Items == nil {
		p.Items = []T{}
	}
	if len(items) > limit {
		p.Items = items[:limit]
		b, _ := json.Marshal(Cursor{After: key(items[limit-1])})
		p.NextCursor = base64.RawURLEncoding.EncodeToString(b)
	}
	return p
}
