//go:build unix

package runner

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts the plugin as the leader of a new process group,
// which its children join.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killProcessGroup kills every process of the group led by pid.
func killProcessGroup(pid int) {
	if pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}
