//go:build unix

package checks

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

const defaultMount = "/"

// rebootMarker is where Debian-family systems mark a pending reboot.
const rebootMarker = "/var/run/reboot-required"

func diskFree(path string) (free, total uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), uint64(st.Blocks) * uint64(st.Bsize), nil
}

// serviceActive asks systemd whether unit is active.
func serviceActive(ctx context.Context, unit string) (bool, string, error) {
	if unit == "" || strings.ContainsAny(unit, " /\\") || strings.HasPrefix(unit, "-") {
		return false, "", fmt.Errorf("unit %q: want a systemd unit name", unit)
	}
	if runtime.GOOS != "linux" {
		return false, "", errUnsupported
	}
	out, err := exec.CommandContext(ctx, "systemctl", "is-active", unit).Output()
	state := strings.TrimSpace(string(out))
	if state == "" && err != nil {
		return false, "", fmt.Errorf("systemctl is-active %s: %w (is systemd running here?)", unit, err)
	}
	if state == "active" {
		return true, unit + " is active", nil
	}
	return false, unit + " is " + state, nil
}
