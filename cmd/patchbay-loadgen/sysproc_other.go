//go:build !linux

package main

import (
	"os/exec"
	"syscall"
)

// setDeathSignal is a no-op where the kernel has no parent-death signal.
func setDeathSignal(*exec.Cmd, syscall.Signal) {}

// killGroupOnCancel leaves cmd as it is: only the process itself is killed
// when its context ends.
func killGroupOnCancel(*exec.Cmd) {}
