//go:build unix

package main

import (
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/patchbay/patchbay/plugins/scriptmeta"
)

// cleanPath is the PATH scripts get, whatever the agent's was.
const cleanPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// command returns the argv that runs file with shell.
func command(shell, file string) ([]string, error) {
	switch shell {
	case scriptmeta.ShellSh:
		return []string{"/bin/sh", file}, nil
	case scriptmeta.ShellBash:
		p, err := lookPath("bash")
		if err != nil {
			return nil, err
		}
		return []string{p, file}, nil
	case scriptmeta.ShellPowerShell:
		p, err := lookPath("pwsh")
		if err != nil {
			return nil, errors.New("PowerShell script, but pwsh is not installed")
		}
		return []string{p, "-NoProfile", "-NonInteractive", "-File", file}, nil
	}
	return nil, errors.New("unknown shell " + shell)
}

// lookPath finds name in cleanPath (not in the agent's PATH).
func lookPath(name string) (string, error) {
	for _, dir := range strings.Split(cleanPath, ":") {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New(name + " not found in " + cleanPath)
}

// baseEnv is the environment every script starts from: nothing of the
// agent's own environment but HOME.
func baseEnv(tmp string) []string {
	home := os.Getenv("HOME")
	if home == "" {
		if u, err := user.Current(); err == nil {
			home = u.HomeDir
		}
	}
	if home == "" {
		home = "/"
	}
	return []string{"PATH=" + cleanPath, "HOME=" + home, "LANG=C.UTF-8", "TMPDIR=" + tmp}
}

// group is the script's process group.
type group struct{ pgid int }

// newGroup makes cmd the leader of a new process group, which the processes
// it starts join.
func newGroup(cmd *exec.Cmd) *group {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setDeathSignal(cmd.SysProcAttr)
	return &group{}
}

func (g *group) started(cmd *exec.Cmd) error {
	g.pgid = cmd.Process.Pid
	return nil
}

// kill ends every process in the group.
func (g *group) kill() {
	if g.pgid > 0 {
		_ = syscall.Kill(-g.pgid, syscall.SIGKILL)
	}
}

func (g *group) close() {}
