//go:build !gocv

package main

import (
	"errors"
	"log/slog"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// newPlateReader fails: the plate reader needs OpenCV, which the default
// (pure Go, cross-compiled) build leaves out.
func newPlateReader(*edge.Facility, []edge.Device, edge.Sink, string, *slog.Logger) (plateReader, error) {
	return nil, errors.New("protocol lpr: this build has no plate reader: build with -tags gocv")
}
