//go:build !windows

package consent

import "errors"

// startLauncher: only Windows launches helpers; elsewhere they connect to
// the helper socket.
func (h *helperServer) startLauncher() error {
	return errors.New("helper backend: the service launches helpers only on Windows")
}
