//go:build gocv

package main

import (
	"log/slog"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/lpr"
)

// newPlateReader builds the plate reader of the lpr cameras; the lanes' arming
// loops trigger it (see loopTap).
func newPlateReader(f *edge.Facility, devs []edge.Device, sink edge.Sink, imageDir string, log *slog.Logger) (plateReader, error) {
	return lpr.New(lpr.Config{Devices: devs, Triggers: lprTriggers(f, devs), Sink: sink, Logger: log, ImageDir: imageDir})
}
