package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/patchbay/patchbay/plugins/sdk"
)

// update is one pending update as a package manager lists it.
type update struct {
	// Name is what the manager installs by: the package name (apt, dnf,
	// zypper), the patch name (zypper security patches), the package Id
	// (winget) or the update's label (softwareupdate).
	Name     string `json:"name"`
	Title    string `json:"title,omitempty"` // a display name when it differs (winget, macOS)
	From     string `json:"from,omitempty"`  // installed version; empty for a new package
	To       string `json:"to"`
	Arch     string `json:"arch,omitempty"`
	Repo     string `json:"repo,omitempty"` // origin(s), repository or source
	Security bool   `json:"security,omitempty"`
	Restart  bool   `json:"restart,omitempty"` // the manager says installing it needs a reboot
	// Windows Update only: the UpdateID it installs by, and the update's
	// classifications ("Security Updates, Critical Updates"; a string so
	// that updates stay comparable).
	ID         string `json:"id,omitempty"`
	Categories string `json:"categories,omitempty"`
}

// pendingList is what a backend found.
type pendingList struct {
	Updates []update
	// Security overrides the number of security updates in summaries when
	// the manager counts them apart from the packages (zypper patches);
	// -1 means count the Security flags.
	Security int
	// NoSecurityInfo is set when the manager does not classify updates
	// (winget): summaries then give no security count.
	NoSecurityInfo bool
	HeldBack       int      // apt: "N not upgraded"
	Notes          []string // things worth knowing (security data unavailable, ...)
}

func (p pendingList) securityCount(ups []update) int {
	if p.Security >= 0 {
		return p.Security
	}
	n := 0
	for _, u := range ups {
		if u.Security {
			n++
		}
	}
	return n
}

// installResult is what a backend's install reports.
type installResult struct {
	Reboot       bool   // the manager itself said a reboot is needed
	RebootReason string // why
}

// backend is one package manager.
type backend interface {
	// name is the manager's name as the manager parameter spells it.
	name() string
	// pending lists available updates without changing the machine: no
	// metadata refresh, simulation or listing only.
	pending(ctx context.Context, x *runner, o options) (pendingList, error)
	// refresh updates the package lists (apt-get update and the like).
	refresh(ctx context.Context, x *runner, out *sdk.Output) error
	// install installs ups, or with o.simulate runs the manager's dry run
	// (or, for managers without one, only prints what it would run).
	install(ctx context.Context, x *runner, o options, ups []update, out *sdk.Output) (installResult, error)
	// rebootRequired reports whether the machine needs a reboot now, and why.
	rebootRequired(ctx context.Context, x *runner, installed []update) (bool, string)
}

// backends maps the manager parameter's values to their backends.
var backends = map[string]backend{
	"apt":            aptBackend{},
	"dnf":            dnfBackend{},
	"zypper":         zypperBackend{},
	"winget":         wingetBackend{},
	"softwareupdate": softwareupdateBackend{},
	"windowsupdate":  windowsUpdateBackend{},
}

// managerNames is the allowed values of the manager parameter, in order.
var managerNames = []string{"apt", "dnf", "zypper", "windowsupdate", "winget", "softwareupdate"}

// managerTool is the binary whose presence selects a manager.
var managerTool = map[string]string{
	"apt": "apt-get", "dnf": "dnf", "zypper": "zypper", "winget": "winget", "softwareupdate": "softwareupdate",
	"windowsupdate": "powershell",
}

// detectOrder is the managers looked for on each OS, first found wins.
func detectOrder(goos string) []string {
	switch goos {
	case "windows":
		return []string{"windowsupdate", "winget"}
	case "darwin":
		return []string{"softwareupdate"}
	}
	return []string{"apt", "dnf", "zypper"}
}

// selectBackend returns the backend the manager parameter names, or the
// first one found on this OS.
func selectBackend(manager string) (backend, error) {
	if manager != "" {
		b, ok := backends[manager]
		if !ok {
			return nil, fmt.Errorf("manager: unknown %q (want one of %s)", manager, strings.Join(managerNames, ", "))
		}
		if _, err := findTool(managerTool[manager]); err != nil {
			return nil, fmt.Errorf("manager %s: %w", manager, err)
		}
		return b, nil
	}
	order := detectOrder(runtime.GOOS)
	for _, m := range order {
		if _, err := findTool(managerTool[m]); err == nil {
			return backends[m], nil
		}
	}
	var tools []string
	for _, m := range order {
		tools = append(tools, managerTool[m])
	}
	return nil, fmt.Errorf("detect package manager: none of %s found", strings.Join(tools, ", "))
}

// findTool finds a manager's binary on PATH, else where a minimal PATH or
// the Windows service account would miss it.
func findTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	var candidates []string
	switch runtime.GOOS {
	case "windows":
		if name == "powershell" {
			root := os.Getenv("SystemRoot")
			if root == "" {
				root = `C:\Windows`
			}
			candidates = append(candidates, filepath.Join(root, "System32", "WindowsPowerShell", "v1.0", "powershell.exe"))
		}
		if name == "winget" {
			// winget is an app execution alias for users; the SYSTEM
			// account (the agent) only finds it under WindowsApps.
			pf := os.Getenv("ProgramFiles")
			if pf == "" {
				pf = `C:\Program Files`
			}
			m, _ := filepath.Glob(filepath.Join(pf, "WindowsApps", "Microsoft.DesktopAppInstaller_*_x64__8wekyb3d8bbwe", "winget.exe"))
			sort.Strings(m)
			for i := len(m) - 1; i >= 0; i-- {
				candidates = append(candidates, m[i])
			}
		}
	default:
		for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/local/bin"} {
			candidates = append(candidates, filepath.Join(dir, name))
		}
	}
	for _, p := range candidates {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found", name)
}

// runner runs manager commands with a fixed environment: the plugin's own
// with the locale forced to C (output and dates parse the same everywhere)
// and the Debian front end non-interactive. Every command gets the job's
// context and an empty stdin, so nothing can wait for an answer.
type runner struct {
	env []string
}

func newRunner() *runner { return &runner{env: commandEnv(os.Environ())} }

// commandEnv is base without locale settings, plus LANG=C, LC_ALL=C and
// DEBIAN_FRONTEND=noninteractive.
func commandEnv(base []string) []string {
	var env []string
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if k == "LANG" || k == "LANGUAGE" || strings.HasPrefix(k, "LC_") || k == "DEBIAN_FRONTEND" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LANG=C", "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
}

func (x *runner) command(ctx context.Context, name string, args ...string) (*exec.Cmd, error) {
	path, err := findTool(name)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = x.env
	cmd.WaitDelay = 10 * time.Second
	return cmd, nil
}

// result is how a command ended.
type result struct {
	stdout, stderr string
	exit           int // -1 if it did not run to an exit
}

// output runs a read-only command and returns its output and exit code.
// The error is for commands that could not run or were cancelled; a
// non-zero exit is the caller's to judge (dnf check-update exits 100 when
// there are updates).
func (x *runner) output(ctx context.Context, name string, args ...string) (result, error) {
	cmd, err := x.command(ctx, name, args...)
	if err != nil {
		return result{exit: -1}, err
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	r := result{stdout: o.String(), stderr: e.String(), exit: exitCode(cmd, err)}
	if r.exit < 0 {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return r, fmt.Errorf("%s: %w", name, err)
	}
	return r, nil
}

// stream runs a command whose output goes to the Fix output, announced by
// a "run:" line. It returns the exit code and the output's last lines (for
// error messages and for spotting a manager's own verdicts).
func (x *runner) stream(ctx context.Context, out *sdk.Output, name string, args ...string) (int, string, error) {
	cmd, err := x.command(ctx, name, args...)
	if err != nil {
		return -1, "", err
	}
	out.Printf("run: %s %s", name, strings.Join(args, " "))
	w := out.Writer()
	tail := &tailBuffer{max: 8 << 10}
	mw := io.MultiWriter(w, tail)
	cmd.Stdout, cmd.Stderr = mw, mw
	err = cmd.Run()
	_ = w.Close()
	code := exitCode(cmd, err)
	if code < 0 {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return code, tail.String(), fmt.Errorf("%s: %w", name, err)
	}
	return code, tail.String(), nil
}

// exitCode is the command's exit code, 0 for success, -1 when it did not
// exit normally (not started, killed). A command that exited but left a
// child holding its output open (a daemon restarted by a maintainer
// script) ends with exec.ErrWaitDelay: its own exit code counts.
func exitCode(cmd *exec.Cmd, err error) int {
	if err == nil {
		return 0
	}
	if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Exited() {
		return cmd.ProcessState.ExitCode()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() {
		return ee.ExitCode()
	}
	return -1
}

// lastLine is the last non-empty line of s, for error messages.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	l := strings.TrimSpace(lines[len(lines)-1])
	if len(l) > 300 {
		l = l[:300] + "…"
	}
	return l
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
