//go:build windows

package runner

import (
	"os"
	"os/exec"
	"syscall"
)

// setProcessGroup starts the plugin in a new process group. Windows does not
// end a group's children with its leader; plugins there must end their own
// children (a Job object would; not yet implemented, documented in the README).
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

func killProcessGroup(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}
