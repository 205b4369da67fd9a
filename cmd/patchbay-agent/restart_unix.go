//go:build !windows

package main

import (
	"os"
	"syscall"
)

// reexec replaces this process with exe and the same arguments (same PID).
func reexec(exe string) error {
	return syscall.Exec(exe, append([]string{exe}, os.Args[1:]...), os.Environ())
}

func isWindowsService() bool { return false }
