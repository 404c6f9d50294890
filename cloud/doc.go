// Package cloud is the fleet: the domain of gatehouse-cloud, which collects every
// garage's events over NATS into PostgreSQL and serves the apps' REST API.
//
// It owns the types the adapters share: the domain Error with its codes, the rules an
// event envelope must meet before the cloud stores it (ValidateEnvelope,
// DecodeEnvelope), what an ingest reports (IngestResult, Gap, Rejection), and the
// read models of a garage that the ingest keeps up to date (ZoneOccupancy, Session,
// Alert, LaneStatus, FacilityStatus). The package imports no adapter: PostgreSQL lives
// in cloud/postgres and the throwaway test cluster in cloud/pgtest.
//
// The cloud applies a garage's events exactly once in effect: each is stored once under
// its (facility_id, seq), and the projections advance only over a contiguous run of
// seqs, so a batch redelivered, reordered or interrupted leaves the same state as one
// delivered once, in order.
package cloud
