package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// API keys read gh_<prefix>_<secret>: the prefix (8 characters) finds the key's row
// and is shown in lists; the secret (52 characters, 256 bits) proves it. Both are
// lower-case base32, so a key never holds the separator. Only the SHA-256 of the whole
// key is stored: with 256 bits of entropy a slow hash adds nothing.
const (
	keyPrefixLen = 8
	keySecretLen = 52
	keyLen       = len("gh_") + keyPrefixLen + 1 + keySecretLen
)

var keyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newAPIKey returns a new key and its prefix.
func newAPIKey() (key, prefix string) {
	p := make([]byte, 5)
	s := make([]byte, 32)
	rand.Read(p)
	rand.Read(s)
	prefix = keyEncoding.EncodeToString(p)
	return "gh_" + prefix + "_" + keyEncoding.EncodeToString(s), prefix
}

// parseAPIKey returns the key's prefix, or ok false when key is not shaped like one.
func parseAPIKey(key string) (prefix string, ok bool) {
	if len(key) != keyLen {
		return "", false
	}
	rest, found := strings.CutPrefix(key, "gh_")
	if !found {
		return "", false
	}
	prefix, secret, found := strings.Cut(rest, "_")
	if !found || len(prefix) != keyPrefixLen || len(secret) != keySecretLen {
		return "", false
	}
	if _, err := keyEncoding.DecodeString(prefix); err != nil {
		return "", false
	}
	if _, err := keyEncoding.DecodeString(secret); err != nil {
		return "", false
	}
	return prefix, true
}

// hashSecret is how refresh tokens and API keys are stored.
func hashSecret(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}
