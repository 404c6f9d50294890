// Package modbus is the edge's Modbus TCP and RTU driver. It serves the facility's
// devices of protocol modbus_tcp and modbus_rtu: barrier controllers (a command coil
// or register, end-stop inputs), I/O modules whose inputs carry loop detectors, and
// spot sensors (ultrasonic distance registers, magnetometer flags).
//
// What a device model holds where is data, not code: a Profile (YAML, in the spirit
// of EdgeX device profiles) names its resources (table, address, bit, type, scale,
// byte and word order) and says which of them command a barrier, report its end
// stops, or mean occupied. Profiles ship embedded (profiles/*.yaml) and more can be
// loaded from a directory.
//
// Devices that share an address (a TCP host:port or a serial line) share one
// connection, served by one goroutine that sends one request at a time, commands
// before polls. The resources its devices poll are merged, per unit, table and poll
// interval, into as few contiguous reads as the protocol's limits allow. The driver
// reports changes only (LoopChanged, ArmPosition, SpotChanged), and each device's
// health (DeviceHealth) after UnhealthyAfter failed requests in a row and on its
// first success after that. Broken connections are retried with a jittered
// exponential backoff; timeouts, exceptions and malformed responses are counted per
// device and never crash the driver. See docs/modbus.md for the operator's view.
package modbus
