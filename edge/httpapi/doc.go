// Package httpapi is the edge controller's local HTTP interface, built on Fiber v2.
//
// It owns the JSON API under /v1 (occupancy, lanes, sessions, events, alerts, and the
// operator actions: opening a lane by hand, payments, count resets, backups), the
// driver-facing kiosk pages under /kiosk, the Prometheus endpoint /metrics and the
// probes /healthz and /readyz. It holds no state of its own: every answer comes from
// the garage (package edge) or its store, and every action goes through the garage,
// which records it in the outbox.
//
// Errors are RFC 9457 problem details. Domain error codes (edge.ErrorCode) and the
// transport's own failures (malformed bodies, missing tokens, unknown routes) are
// mapped to status codes in one place, problemFor. Internal error text is logged,
// never sent.
//
// Operator actions require a bearer token from Config.OperatorTokens; the token names
// the operator recorded in the audit events. Reads are open to the garage's local
// network, as the kiosk pages need them.
package httpapi
