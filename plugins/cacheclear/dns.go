package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/patchbay/patchbay/plugins/sdk"
)

// dnsTimeout bounds each flush command.
const dnsTimeout = 30 * time.Second

// flusher is one way to flush the resolver cache: its commands run in
// order and all must succeed. A command's first element is a tool name
// looked up in toolDirs, or an absolute path.
type flusher struct{ cmds [][]string }

// dnsResult is what the dns scope did or would do.
type dnsResult struct {
	status string // statusSkipped, "pending", "flushed" or "failed"
	msg    string
}

// flushing reports whether the dns scope would run (Check) or ran (Fix).
func (d dnsResult) flushing() bool { return d.status == "pending" || d.status == "flushed" }

// String renders the result for a summary or an output line.
func (d dnsResult) String() string {
	if d.msg == "" {
		return "dns " + d.status
	}
	return fmt.Sprintf("dns %s (%s)", d.status, d.msg)
}

// planDNS resolves the flushers that are installed. With a sandbox root
// nothing is run: the machine's resolver is not the sandbox's.
func planDNS(c config) ([]flusher, *dnsResult) {
	if c.sandbox {
		return nil, &dnsResult{status: statusSkipped, msg: "sandbox root"}
	}
	var ok []flusher
	var names []string
	for _, f := range dnsFlushers() {
		resolved, found := flusher{}, true
		for _, cmd := range f.cmds {
			names = append(names, filepath.Base(cmd[0]))
			path, err := findTool(cmd[0])
			if err != nil {
				found = false
				break
			}
			resolved.cmds = append(resolved.cmds, append([]string{path}, cmd[1:]...))
		}
		if found {
			ok = append(ok, resolved)
		}
	}
	if len(ok) == 0 {
		return nil, &dnsResult{status: statusSkipped, msg: "none of " + strings.Join(names, ", ") + " is installed"}
	}
	return ok, nil
}

// checkDNS says how the dns scope would flush, without running anything.
func checkDNS(c config) dnsResult {
	fl, skip := planDNS(c)
	if skip != nil {
		return *skip
	}
	return dnsResult{status: "pending", msg: "would run " + commandLine(fl[0])}
}

// fixDNS flushes the resolver cache with the first flusher that works,
// streaming the commands' output.
func fixDNS(ctx context.Context, c config, out *sdk.Output) dnsResult {
	fl, skip := planDNS(c)
	if skip != nil {
		return *skip
	}
	var failures []string
	for _, f := range fl {
		if err := runFlusher(ctx, f, out); err != nil {
			failures = append(failures, err.Error())
			continue
		}
		return dnsResult{status: "flushed", msg: commandLine(f)}
	}
	return dnsResult{status: "failed", msg: strings.Join(failures, "; ")}
}

func runFlusher(ctx context.Context, f flusher, out *sdk.Output) error {
	for _, argv := range f.cmds {
		cctx, cancel := context.WithTimeout(ctx, dnsTimeout)
		cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
		w := out.Writer()
		cmd.Stdout, cmd.Stderr = w, w
		cmd.WaitDelay = time.Second
		err := cmd.Run()
		w.Close()
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
		}
	}
	return nil
}

// findTool returns the absolute path of an installed executable: name
// itself if absolute, else the first match in toolDirs.
func findTool(name string) (string, error) {
	candidates := []string{name}
	if !filepath.IsAbs(name) {
		candidates = candidates[:0]
		for _, d := range toolDirs {
			candidates = append(candidates, filepath.Join(d, name))
		}
	}
	for _, p := range candidates {
		fi, err := os.Stat(p)
		if err == nil && fi.Mode().IsRegular() && (runtime.GOOS == "windows" || fi.Mode().Perm()&0o111 != 0) {
			return p, nil
		}
	}
	return "", fmt.Errorf("find %s: not installed", name)
}

// commandLine renders a flusher's commands for humans, without directories.
func commandLine(f flusher) string {
	var parts []string
	for _, argv := range f.cmds {
		parts = append(parts, strings.Join(append([]string{filepath.Base(argv[0])}, argv[1:]...), " "))
	}
	return strings.Join(parts, " && ")
}
