//go:build !linux

package sshd

// sessionHelperMain: the session-process tests run on Linux only.
func sessionHelperMain() (int, bool) { return 0, false }
