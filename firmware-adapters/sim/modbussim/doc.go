// Package modbussim is the simulator's Modbus TCP side: it serves a facility's
// modbus_tcp devices (barrier controllers, I/O modules with loops, spot sensors) from
// the same profiles the edge's driver reads, one server per listen address with every
// unit's coils, inputs and registers, so that the real driver (or mbpoll) talks to it
// over a real socket. Simulated barriers move when commanded; loops and spots change
// when the traffic model says so; faults (a silent unit, a unit answering garbage)
// can be injected.
//
// New builds the servers from the facility's devices; Devices hands the simulated
// loops, barriers and spots to the traffic model; Faulty gives a device's fault
// switches. Each listen address is served by the Modbus server of
// github.com/simonvetter/modbus behind a small frame relay that injects the faults.
package modbussim
