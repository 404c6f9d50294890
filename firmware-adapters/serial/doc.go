// Package serial is the edge's driver for loop detectors and barrier controllers that
// speak Gatehouse's line-based ASCII protocol over RS-232 or RS-485 (see
// docs/serial-protocol.md). It owns the protocol's codec (Frame, ParseLine, Reader),
// which the simulator shares, and the Driver: one goroutine per physical port, serving
// every device configured on that port, writing one command at a time, reporting loop
// states, arm positions and device health to an edge.Sink, and surviving anything the
// wire can do to it (noise, torn or overlong lines, bad checksums, unknown messages, a
// port that vanishes and comes back).
package serial
