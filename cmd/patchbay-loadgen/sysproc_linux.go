package main

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel send sig to the child when the bench
// process dies, so no relay or agents process outlives an aborted run.
func setDeathSignal(cmd *exec.Cmd, sig syscall.Signal) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: sig}
}

// killGroupOnCancel runs cmd in a process group of its own and kills the
// whole group when its context ends (scp's ssh and ProxyCommand too).
func killGroupOnCancel(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
