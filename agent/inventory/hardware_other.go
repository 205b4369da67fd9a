//go:build !linux

package inventory

import (
	"context"
	"errors"
	"runtime"
	"time"
)

// hardware outside Linux reports the CPU count only (best effort; the
// other fields stay unknown).
func (c *Collector) hardware(context.Context) (*Hardware, error) {
	return &Hardware{CPUCount: runtime.NumCPU()}, nil
}

// bootTime is unknown outside Linux.
func (c *Collector) bootTime() (time.Time, error) {
	return time.Time{}, errors.New("boot time: not collected on " + runtime.GOOS)
}
