// Package httpapi is gatehouse-cloud's REST API for apps, operators and third parties:
// Fiber v2 under /v1, JSON bodies, RFC 9457 problem details for every error, request
// ids, cursor pagination, bearer tokens (JWT access tokens) and API keys, roles scoped
// to facilities, rate limits, and an OpenAPI 3.1 document at /v1/openapi.json built
// from the same route table that registers the handlers, so the two cannot disagree.
//
// Every route is declared once with its access rule (see access.go); New registers it
// on the app and in the OpenAPI document. Handlers live in files by resource.
package httpapi
