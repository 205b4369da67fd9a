//go:build !windows

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// toolDirs are where commands are looked for. PATH is not used: the agent
// runs plugins with a minimal environment.
var toolDirs = []string{"/usr/bin", "/bin", "/usr/sbin", "/sbin"}

// toolTimeout bounds every command sysinfo runs.
const toolTimeout = 20 * time.Second

// findTool returns the path of an installed executable.
func findTool(name string) (string, bool) {
	for _, d := range toolDirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// runTool runs a command and returns its standard output and exit code. An
// error means it could not run or did not exit normally; a non-zero exit
// is not an error (needs-restarting uses it as the answer), but the first
// line of standard error is returned with it for messages.
func runTool(ctx context.Context, path string, args ...string) (stdout []byte, code int, stderr string, err error) {
	ctx, cancel := context.WithTimeout(ctx, toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	first, _, _ := strings.Cut(strings.TrimSpace(errb.String()), "\n")
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() {
		return out.Bytes(), ee.ExitCode(), first, nil
	}
	if err != nil {
		return nil, -1, first, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return out.Bytes(), 0, first, nil
}
