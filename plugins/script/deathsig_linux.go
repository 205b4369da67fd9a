package main

import "syscall"

// setDeathSignal has the kernel kill the script's shell if this plugin dies
// before it could end the script's group itself.
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
