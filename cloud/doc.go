// Package cloud is the fleet: the domain of gatehouse-cloud, which collects every
// garage's events over NATS into PostgreSQL and serves the apps' REST API.
//
// It is built by the sync, REST, reservations and payments issues; this file holds
// the place the architecture gives it.
package cloud
