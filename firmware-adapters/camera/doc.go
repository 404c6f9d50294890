// Package camera receives plate reads that ANPR cameras push over HTTP and hands them
// to the garage as edge.PlateRead device events.
//
// It owns three vendor formats, each normalized to one [Read]:
//
//   - Hikvision ISAPI: multipart/form-data with an EventNotificationAlert XML part and
//     JPEG parts (or the XML alone);
//   - Axis License Plate Verifier: multipart with a JSON part and JPEG parts, or the
//     JSON alone;
//   - generic JSON: one object per read, the image inlined as base64.
//
// A [Receiver] serves the endpoints (mounted by the edge under /camera), checks each
// camera's shared token, deduplicates retried pushes on the vendor's event id, stores
// the images under a date/device tree with a retention time and a size cap, and serves
// them back read-only. It is an edge.Driver: Run sweeps old images and reports cameras
// that fell silent; Status reports each camera's health and counters.
//
// The handlers answer fast: parse, store the images, Deliver, respond. Anything a
// camera sends that cannot be read is answered with a 400 problem, counted and logged;
// it never takes the receiver down. docs/cameras.md says how to set up each camera.
package camera
