// Package edge is the garage: the domain of one gatehouse-edge controller.
//
// It owns the facility model (levels, zones, spots, lanes, devices, tariffs, policies),
// the lane state machine that turns loop, barrier and credential events into decisions,
// occupancy, sessions and their fees, and the rules that keep them consistent. Every
// change is expressed as events (proto/gatehouse/v1) that are applied to the in-memory
// State and handed, with the records they touched, to a Store that writes both in one
// transaction. The package imports no adapter: storage, HTTP, NATS and device drivers
// live in subpackages and implement the small interfaces declared here.
//
// Payments at the garage (payment.go): app payments from the cloud's prepaid document,
// and card payments at the exit kiosks through a CardTerminal, approved offline within
// the facility's floor limit and captured when the acquirer is back.
//
// The gate never waits for the cloud: every decision is made from State, in memory,
// from data this process loaded from its own store.
package edge
