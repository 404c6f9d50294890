// Package firmwareadapters is the home of the device drivers, one subpackage per
// protocol or vendor (modbus, serial, mqtt, camera, lpr). Each implements the small
// interfaces declared in package edge (edge.Barrier, edge.Sink) and imports only
// those and its protocol library.
package firmwareadapters
