//go:build !gocv

package main

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// The default build (pure Go, for the Pis) has no plate reader and says so.
func TestBuildDevicesLPRNeedsGocv(t *testing.T) {
	f := &edge.Facility{ID: "f", Devices: []edge.Device{{ID: "e1-cam", Kind: edge.KindCamera, Protocol: "lpr", Address: "rtsp://cam/1"}}}
	_, err := buildDevices(f, &lateSink{}, deviceOptions{data: t.TempDir()}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "build with -tags gocv") {
		t.Fatalf("buildDevices(lpr) = %v; want the no-plate-reader error", err)
	}
}
