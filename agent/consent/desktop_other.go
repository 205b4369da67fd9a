//go:build !unix && !windows

package consent

import (
	"fmt"
	"runtime"
)

// findDialog: no desktop dialog is known on this system.
func findDialog() (*dialogTool, error) {
	return nil, fmt.Errorf("desktop backend: not supported on %s; use --consent-backend web", runtime.GOOS)
}
