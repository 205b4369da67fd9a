package sshd

import (
	"path/filepath"
	"strings"
)

// procSpec describes a process to start for a session.
type procSpec struct {
	path     string   // the program
	args     []string // argv, argv[0] included
	extraEnv []string // added after the session's environment
	env      []string
	dir      string
	cred     *Credential
	pty      *ptyRequest // run on a new terminal of this size; nil: pipes
}

// loginShellSpec runs shell as a login shell (argv[0] "-sh"), like OpenSSH.
func loginShellSpec(shell string) procSpec {
	if isWindowsShell(shell) {
		return procSpec{path: shell, args: []string{shell}}
	}
	return procSpec{path: shell, args: []string{"-" + filepath.Base(shell)}}
}

// commandSpec runs command through shell: `shell -c command`, like OpenSSH
// (cmd.exe /c, or PowerShell's -Command, on Windows).
func commandSpec(shell, command string) procSpec {
	base := strings.ToLower(filepath.Base(strings.ReplaceAll(shell, `\`, "/"))) // a Windows path, on any OS
	switch {
	case !isWindowsShell(shell):
		return procSpec{path: shell, args: []string{filepath.Base(shell), "-c", command}}
	case strings.HasPrefix(base, "powershell") || strings.HasPrefix(base, "pwsh"):
		return procSpec{path: shell, args: []string{shell, "-NoProfile", "-NonInteractive", "-Command", command}}
	default:
		return procSpec{path: shell, args: []string{shell, "/c", command}}
	}
}

// isWindowsShell reports whether shell is cmd.exe or PowerShell.
func isWindowsShell(shell string) bool {
	base := strings.ToLower(filepath.Base(strings.ReplaceAll(shell, `\`, "/")))
	base = strings.TrimSuffix(base, ".exe")
	return base == "cmd" || base == "powershell" || base == "pwsh"
}
