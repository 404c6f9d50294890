// Package config reads a garage's facility file (see docs/facility-config.md)
// into an edge.Facility.
//
// It owns everything between the operator's YAML and the read-only facility
// the garage runs on: strict decoding (an unknown or misspelt key is an
// error, not silently ignored), the defaults, the expansion of spot ranges
// into spots, and the semantic checks that catch a dangling device id or a
// zone that can never be counted before the garage opens its barriers.
//
// Problems are collected rather than returned one at a time, so an operator
// fixes a file in one pass: Load and Parse return a *Problems listing every
// problem as "file:line: field.path: message", like a compiler.
package config
