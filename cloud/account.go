package cloud

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// User is an account as the API shows it: never its password hash or TOTP secret.
type User struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
	Role  Role   `json:"role"`
	// Facilities are the facilities an operator or a manager is assigned to.
	Facilities  []string  `json:"facilities"`
	TOTPEnabled bool      `json:"totp_enabled"`
	Disabled    bool      `json:"disabled"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// APIKey is an integrator's key as the API shows it: never its secret.
type APIKey struct {
	ID string `json:"id"`
	// Prefix is the public part of the key, gh_<prefix>_..., to recognise it.
	Prefix     string    `json:"prefix"`
	Name       string    `json:"name"`
	Scopes     []string  `json:"scopes"`
	Facilities []string  `json:"facilities"`
	CreatedBy  string    `json:"created_by,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
}

// Tokens are what a login or a refresh issues: a short-lived access token and the
// refresh token that gets the next one.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	// ExpiresIn is the access token's lifetime in seconds.
	ExpiresIn int `json:"expires_in"`
	// UserID is the account the tokens are for.
	UserID string `json:"-"`
}

// RefreshReuseError is the cause of the refusal of a refresh token that was already
// used: someone holds a copy, so its whole family has been revoked. Transports audit
// it; the user sees only an EUNAUTHORIZED error.
type RefreshReuseError struct {
	UserID string
}

func (e *RefreshReuseError) Error() string {
	return fmt.Sprintf("refresh token of user %s reused; its family is revoked", e.UserID)
}

// Bounds of account fields, in characters.
const (
	MaxEmailLen    = 254
	MaxNameLen     = 100
	MinPasswordLen = 10
	MaxPasswordLen = 128
)

// NormalizeEmail returns the email trimmed and in lower case, and whether it looks
// like an address: one @ with something on each side, a dot in the domain, no spaces
// or control characters, at most MaxEmailLen characters.
func NormalizeEmail(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	local, domain, ok := strings.Cut(s, "@")
	switch {
	case !ok, local == "", domain == "", strings.Contains(domain, "@"), !strings.Contains(domain, "."),
		strings.HasPrefix(domain, "."), strings.HasSuffix(domain, "."), utf8.RuneCountInString(s) > MaxEmailLen,
		!utf8.ValidString(s), strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return s, false
	}
	return s, true
}

// PasswordProblem says what is wrong with a new password, "" when nothing is. Length
// is what matters (NIST SP 800-63B); composition rules are not imposed.
func PasswordProblem(pw string) string {
	n := utf8.RuneCountInString(pw)
	switch {
	case !utf8.ValidString(pw):
		return "must be valid UTF-8"
	case n < MinPasswordLen:
		return fmt.Sprintf("must be at least %d characters", MinPasswordLen)
	case n > MaxPasswordLen:
		return fmt.Sprintf("must be at most %d characters", MaxPasswordLen)
	}
	return ""
}
