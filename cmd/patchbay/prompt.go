package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// Secrets (passwords, codes) never come from argv: they are prompted on the
// terminal without echo, or, with --password-stdin, read one per line from
// standard input, in the order the command documents.

// terminal returns stdin's file descriptor when stdin is a terminal.
func (a *app) terminal() (int, bool) {
	if f, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return int(f.Fd()), true
	}
	return 0, false
}

// prompt asks for a secret on the terminal without echo. Without a
// terminal it says how to pass it instead.
func (a *app) prompt(label string) (string, error) {
	fd, ok := a.terminal()
	if !ok {
		return "", fmt.Errorf("read %s: standard input is not a terminal: pass --password-stdin and pipe it in", strings.ToLower(label))
	}
	fmt.Fprintf(a.stderr, "%s: ", label)
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(a.stderr)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", strings.ToLower(label), err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// stdinLine reads the next line of standard input (without its line end).
func (a *app) stdinLine(what string) (string, error) {
	if a.lines == nil {
		a.lines = bufio.NewReader(io.LimitReader(a.stdin, 64<<10))
	}
	line, err := a.lines.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read %s from standard input: %w", what, err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("read %s from standard input: no line left (one secret per line)", what)
	}
	return line, nil
}

// secret reads a secret from standard input's next line (fromStdin) or the
// terminal.
func (a *app) secret(fromStdin bool, label string) (string, error) {
	if fromStdin {
		return a.stdinLine(strings.ToLower(label))
	}
	return a.prompt(label)
}

// code reads a TOTP code: from standard input's next line when it is not a
// terminal (or fromStdin), else prompted without echo.
func (a *app) code(fromStdin bool, label string) (string, error) {
	if _, tty := a.terminal(); fromStdin || !tty {
		return a.stdinLine("code")
	}
	return a.prompt(label)
}

// newPassword asks for a new password twice on the terminal, or reads it
// once from standard input.
func (a *app) newPassword(fromStdin bool) (string, error) {
	if fromStdin {
		return a.stdinLine("new password")
	}
	pw, err := a.prompt("New password")
	if err != nil {
		return "", err
	}
	again, err := a.prompt("New password again")
	if err != nil {
		return "", err
	}
	if pw != again {
		return "", errors.New("the two new passwords differ: nothing changed")
	}
	return pw, nil
}
