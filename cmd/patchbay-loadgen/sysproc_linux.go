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
