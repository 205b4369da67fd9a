package runner

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// executable returns a path that executes exactly v's bytes: a sealed memfd
// reached through /proc/self/fd. The child inherits the descriptor across
// fork; execve resolves the path before close-on-exec closes it.
func executable(v verified, _ string) (string, func(), error) {
	fd, err := unix.MemfdCreate("patchbay-plugin-"+v.ref.Name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return "", nil, fmt.Errorf("memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "memfd")
	if _, err := f.Write(v.data); err != nil {
		f.Close()
		return "", nil, fmt.Errorf("memfd write: %w", err)
	}
	seals := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return "", nil, fmt.Errorf("memfd seal: %w", err)
	}
	return fmt.Sprintf("/proc/self/fd/%d", f.Fd()), func() { f.Close() }, nil
}
