// Package natshub is the cloud end of the edge ⇄ cloud link: the NATS hub that every
// garage's edge server joins as a leaf node, the JetStream streams on it, and the cloud's
// side of the traffic (the event consumer, live commands, downlink documents).
//
// The hub is either embedded (Start runs nats-server in-process with JetStream domain
// "hub", a client listener for cloud processes and a leafnode listener for garages) or
// an external cluster (Config.ExternalURL), in which case this package only connects
// and sets up the streams.
//
// Subjects, one namespace per facility:
//
//	gh.fac.<id>.evt.<type>   uplink events, captured by the stream GH_EVENTS
//	gh.fac.<id>.down.<kind>  downlink documents, stream GH_DOWN (latest per subject)
//	gh.fac.<id>.cmd.<verb>   live commands, request/reply
//	gh.fac.<id>.rep.<token>  replies to those commands (published by the garage)
//
// Isolation: each garage has its own user on the hub (see AddFacility and
// FacilityPermissions), allowed only its own subjects. The hub enforces the permissions
// on the leaf connection itself, so a modified edge server cannot bypass them; events
// are also checked by Consume, which drops any envelope whose facility differs from
// the subject it arrived on.
//
// docs/nats-hub.md is the operator's guide.
package natshub
