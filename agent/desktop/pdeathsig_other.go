//go:build !linux

package desktop

import "syscall"

// dieWithAgent: only Linux has a parent-death signal; elsewhere a killed
// agent's x11vnc lives until its display or its next viewer ends it.
func dieWithAgent(*syscall.SysProcAttr) {}
