// Package auth is the cloud's account service: it hashes passwords (argon2id), signs
// and checks access tokens (JWT, EdDSA), rotates refresh tokens with reuse
// detection, issues and checks integrators' API keys, and checks TOTP second factors.
// Service implements httpapi.Authenticator and the account routes' needs; its state
// lives in PostgreSQL (cloud/postgres), so any number of cloud instances on one
// database share it.
//
// Access tokens live 15 minutes and carry the account's role, facilities and token
// version; every request checks the version and the account against the database, so
// a password change, a role change, "log out everywhere" or disabling an account
// invalidates the access tokens already issued at once, not when they expire. Refresh
// tokens are opaque (32 random bytes, stored as SHA-256), live 30 days and are spent
// on use: presenting a spent one revokes its whole family.
package auth
