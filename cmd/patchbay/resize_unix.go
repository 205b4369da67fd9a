//go:build unix

package main

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/term"
)

// watchResize tells the remote terminal the local one's size whenever it
// changes, until done is closed.
func watchResize(fd int, s *ssh.Session, done <-chan struct{}) {
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	for {
		select {
		case <-winch:
			if w, h, err := term.GetSize(fd); err == nil {
				_ = s.WindowChange(h, w)
			}
		case <-done:
			return
		}
	}
}
