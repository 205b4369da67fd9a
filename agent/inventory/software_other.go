//go:build !linux && !windows && !darwin

package inventory

import (
	"context"
	"errors"
	"runtime"
)

// software is not collected on this system.
func (c *Collector) software(context.Context) ([]Package, error) {
	return nil, errors.New("software: not collected on " + runtime.GOOS)
}
