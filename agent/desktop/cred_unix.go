//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package desktop

import "syscall"

// Credential is the local user x11vnc runs as (the same type as sshd.Credential).
type Credential = syscall.Credential
