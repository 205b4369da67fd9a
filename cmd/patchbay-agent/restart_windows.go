//go:build windows

package main

import (
	"os"
	"os/exec"

	"golang.org/x/sys/windows/svc"
)

// reexec starts exe with the same arguments and returns: this process
// then exits (Windows has no exec).
func reexec(exe string) error {
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Process.Release()
}

func isWindowsService() bool {
	ok, err := svc.IsWindowsService()
	return err == nil && ok
}
