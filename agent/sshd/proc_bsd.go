//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package sshd

// killSession is a no-op here: the process group is killed, but jobs an
// interactive shell moved to groups of their own are only hung up.
func killSession(int) {}
