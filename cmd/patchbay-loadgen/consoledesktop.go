package main

import (
	"context"
	"errors"
	"strings"
	"time"
)

// desktopResults is the remote desktop measured through the relay and
// against x11vnc directly.
type desktopResults struct {
	window time.Duration
}

// runDesktop measures the remote desktop.
func runDesktop(ctx context.Context, o benchOptions, dir, logDir string) (*desktopResults, error) {
	return nil, errors.New("desktop: not implemented yet")
}

func renderDesktopRows(w *strings.Builder, d *desktopResults, o benchOptions) {}
func renderDesktopDetails(w *strings.Builder, d *desktopResults)              {}
func renderDesktopHow(w *strings.Builder, d *desktopResults)                  {}
func printDesktopSummary(d *desktopResults)                                   {}
