package cloud

import (
	"errors"
	"fmt"
)

// Error codes. Transports map them to status codes in one place.
const (
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	ECONFLICT     = "conflict"
	EUNAUTHORIZED = "unauthorized" // no credentials, or credentials that are not valid
	EFORBIDDEN    = "forbidden"    // valid credentials that do not allow the action
	ETOOMANY      = "too_many"     // a rate limit was hit
	EUNAVAILABLE  = "unavailable"
	EINTERNAL     = "internal"
)

// Error is the domain error: Code is machine-readable, Message is safe to show a user,
// and Err, when set, is the internal cause, for logs only.
type Error struct {
	Code    string
	Message string
	Err     error
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("cloud: %s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("cloud: %s: %s", e.Code, e.Message)
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for any other
// non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-safe message of err: the Message of an *Error, and a
// generic text for anything else, so internal details never reach a user.
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	}
	return "internal error"
}
