//go:build windows

package consent

import (
	"os"
	"os/exec"
	"syscall"
)

// setProcessGroup starts the program in a new process group. Windows does not
// end a group's children with its leader: a consent program there must end
// its own children (a Job object would; not implemented).
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

// killProcessGroup kills the process pid.
func killProcessGroup(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}

// detach starts the program in a process group of its own.
func detach(cmd *exec.Cmd) { setProcessGroup(cmd) }
