//go:build js && wasm

package main

import (
	"errors"
	"fmt"
	"syscall/js"

	"golang.org/x/crypto/ssh"
)

// startTerminal starts a terminal session: a PTY and a shell.
func startTerminal(signer ssh.Signer, opts js.Value) js.Value {
	s := newSession(opts)
	stdin := newQueue()
	s.handle.Set("input", js.FuncOf(func(_ js.Value, args []js.Value) any {
		stdin.push([]byte(args[0].String()))
		return nil
	}))
	resize := make(chan [2]int, 8)
	s.handle.Set("resize", js.FuncOf(func(_ js.Value, args []js.Value) any {
		select {
		case resize <- [2]int{args[0].Int(), args[1].Int()}:
		default: // the next resize carries the final size
		}
		return nil
	}))
	return s.start(func() string { return s.shell(signer, stdin, resize) }, stdin.close)
}

// shell runs the SSH session and returns how it ended.
func (s *session) shell(signer ssh.Signer, stdinQ *queue, resize chan [2]int) string {
	client, msg := s.dial(signer)
	if client == nil {
		return msg
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return "SSH session: " + err.Error()
	}
	defer sess.Close()
	out := &jsWriter{fn: s.opts.Get("output")}
	sess.Stdout, sess.Stderr = out, out
	stdin, err := sess.StdinPipe()
	if err != nil {
		return err.Error()
	}
	cols, rows := s.opts.Get("cols").Int(), s.opts.Get("rows").Int()
	if err := sess.RequestPty("xterm-256color", rows, cols, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
		return "request a terminal: " + err.Error()
	}
	if err := sess.Shell(); err != nil {
		return "start a shell: " + err.Error()
	}
	go func() {
		for {
			b, ok := stdinQ.pop()
			if !ok {
				return
			}
			if _, err := stdin.Write(b); err != nil {
				return
			}
		}
	}()
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case sz := <-resize:
				_ = sess.WindowChange(sz[1], sz[0])
			case <-done:
				return
			}
		}
	}()
	err = sess.Wait()
	if r := s.conn.reason(); r != "" {
		return r
	}
	var exit *ssh.ExitError
	switch {
	case err == nil:
		return "the session ended (the shell exited)"
	case errors.As(err, &exit):
		return fmt.Sprintf("the session ended (the shell exited with status %d)", exit.ExitStatus())
	default:
		return "the session ended: " + err.Error()
	}
}
