//go:build !unix

package main

import (
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/term"
)

// watchResize polls the local terminal's size (there is no SIGWINCH here)
// and tells the remote terminal when it changes, until done is closed.
func watchResize(fd int, s *ssh.Session, done <-chan struct{}) {
	w0, h0, _ := term.GetSize(fd)
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if w, h, err := term.GetSize(fd); err == nil && (w != w0 || h != h0) {
				w0, h0 = w, h
				_ = s.WindowChange(h, w)
			}
		case <-done:
			return
		}
	}
}
