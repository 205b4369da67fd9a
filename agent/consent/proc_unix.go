//go:build unix

package consent

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts the program as the leader of a new process group,
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

// detach starts the program in a session of its own, so that nothing the
// agent's terminal or process group receives reaches it.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
}
