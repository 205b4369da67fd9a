package service

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
	"strings"

	"github.com/patchbay/patchbay/internal/atomicfile"
)

// Options says what to install, where.
type Options struct {
	// GOOS picks the service manager: linux (systemd), darwin (launchd),
	// windows. Empty: runtime.GOOS. Only runtime.GOOS can be started.
	GOOS string
	// Root, if set, installs into this directory tree instead of / and calls
	// no service manager: the files are written (and the systemd unit enabled
	// with a multi-user.target.wants link, as systemctl --root does) so that
	// an image or a test can start the service later. Not on Windows.
	Root string
	// Binary is the agent binary the service runs (an absolute path on the
	// target system, i.e. without Root).
	Binary string
	// CopyFrom, if set, is copied to Binary first (mode 0755): the running
	// agent installing itself at the standard path.
	CopyFrom string
	// DataDir is the agent's data directory on the target system (--data).
	DataDir string
	// Start starts the service now (it is always enabled at boot).
	Start bool
	// Out receives one line per step done; nil: io.Discard.
	Out io.Writer
}

func (o *Options) normalize() error {
	if o.GOOS == "" {
		o.GOOS = runtime.GOOS
	}
	switch o.GOOS {
	case "linux", "darwin", "windows":
	default:
		return fmt.Errorf("service: %s has no supported service manager (linux, darwin and windows do)", o.GOOS)
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Root != "" {
		if o.GOOS == "windows" {
			return errors.New("service: --root is not supported on Windows (the service manager has no offline mode)")
		}
		abs, err := filepath.Abs(o.Root)
		if err != nil {
			return fmt.Errorf("service: --root: %w", err)
		}
		o.Root = abs
	}
	if o.Root == "" && o.GOOS != runtime.GOOS {
		return fmt.Errorf("service: installing a %s service on %s needs --root", o.GOOS, runtime.GOOS)
	}
	return nil
}

// Preflight checks, before anything is done (an enrollment uses up its
// token), that Install can work: a supported OS, root where needed.
func Preflight(o Options) error {
	if err := o.normalize(); err != nil {
		return err
	}
	return o.needRoot("install")
}

// needRoot refuses to change the system's services without root.
func (o *Options) needRoot(what string) error {
	if o.Root == "" && o.GOOS != "windows" && os.Geteuid() != 0 {
		return fmt.Errorf("service %s: run as root (sudo), or give --root DIR to work on a directory tree", what)
	}
	return nil
}

// path maps an absolute path of the target system into Root.
func (o *Options) path(p string) string {
	if o.Root == "" {
		return p
	}
	return filepath.Join(o.Root, filepath.FromSlash(p))
}

// File is where the service definition for goos lives on the target system
// (the Windows service has none: the service manager keeps it).
func File(goos string) string {
	switch goos {
	case "linux":
		return SystemdUnitPath
	case "darwin":
		return LaunchdPath
	}
	return ""
}

// Render returns the service definition for o's OS (the unit or plist).
func Render(goos, bin, dataDir string) string {
	if goos == "darwin" {
		return LaunchdPlist(bin, dataDir)
	}
	return SystemdUnit(bin, dataDir)
}

// Install installs the agent as a service: copies the binary if asked,
// creates the data directory (0700), writes and enables the service
// definition and, with Start, starts it. Installing again replaces the
// definition (and restarts a running service).
func Install(ctx context.Context, o Options) error {
	if err := o.normalize(); err != nil {
		return err
	}
	if o.Binary == "" || o.DataDir == "" {
		return errors.New("service install: the binary path and the data directory are required")
	}
	if err := o.needRoot("install"); err != nil {
		return err
	}
	if o.CopyFrom != "" {
		if err := copyBinary(o.CopyFrom, o.path(o.Binary)); err != nil {
			return err
		}
		fmt.Fprintf(o.Out, "Installed %s\n", o.path(o.Binary))
	}
	if err := os.MkdirAll(o.path(o.DataDir), 0o700); err != nil {
		return fmt.Errorf("service install: create data directory: %w", err)
	}
	if o.GOOS != "windows" {
		// The agent refuses a key others can read: keep the directory private.
		if err := os.Chmod(o.path(o.DataDir), 0o700); err != nil {
			return fmt.Errorf("service install: data directory: %w", err)
		}
	}
	if o.GOOS == "windows" {
		return installWindows(o)
	}
	def := o.path(File(o.GOOS))
	if err := os.MkdirAll(filepath.Dir(def), 0o755); err != nil {
		return fmt.Errorf("service install: %w", err)
	}
	if err := atomicfile.Write(def, []byte(Render(o.GOOS, o.Binary, o.DataDir)), 0o644); err != nil {
		return fmt.Errorf("service install: %w", err)
	}
	fmt.Fprintf(o.Out, "Wrote %s\n", def)
	if o.GOOS == "darwin" {
		return loadLaunchd(ctx, o)
	}
	return enableSystemd(ctx, o)
}

// copyBinary copies src to dst (0755) atomically; a no-op when they are the
// same file.
func copyBinary(src, dst string) error {
	if a, err := os.Stat(src); err == nil {
		if b, err := os.Stat(dst); err == nil && os.SameFile(a, b) {
			return nil
		}
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("service install: read the agent binary: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("service install: %w", err)
	}
	if err := atomicfile.Write(dst, data, 0o755); err != nil {
		return fmt.Errorf("service install: copy the agent binary: %w", err)
	}
	return nil
}

// systemdRunning reports whether systemd is the running init (sd_booted).
func systemdRunning() bool {
	st, err := os.Stat("/run/systemd/system")
	return err == nil && st.IsDir()
}

func wantsLink(o *Options) string {
	return o.path(filepath.Join(SystemdWantsDir, Name+".service"))
}

func enableSystemd(ctx context.Context, o Options) error {
	if o.Root != "" || !systemdRunning() {
		if o.Root == "" && o.Start {
			return errors.New("service install: systemd is not running on this machine (no /run/systemd/system), so the service cannot be started: " +
				"install with --no-start and run the agent in the foreground (patchbay-agent run), e.g. as a container's entrypoint")
		}
		// Enable offline, as systemctl --root does: the link starts it at boot.
		link := wantsLink(&o)
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			return fmt.Errorf("service install: %w", err)
		}
		_ = os.Remove(link)
		if err := os.Symlink(SystemdUnitPath, link); err != nil {
			return fmt.Errorf("service install: enable: %w", err)
		}
		fmt.Fprintf(o.Out, "Enabled %s (starts at boot; not started now)\n", Name)
		return nil
	}
	if err := systemctl(ctx, "daemon-reload"); err != nil {
		return err
	}
	if err := systemctl(ctx, "enable", Name+".service"); err != nil {
		return err
	}
	if o.Start {
		// restart, not start: a service already running the old binary or
		// unit is replaced.
		if err := systemctl(ctx, "restart", Name+".service"); err != nil {
			return err
		}
		fmt.Fprintf(o.Out, "Enabled and started %s (systemctl status %s)\n", Name, Name)
	} else {
		fmt.Fprintf(o.Out, "Enabled %s (starts at boot; start it now with systemctl start %s)\n", Name, Name)
	}
	return nil
}

func loadLaunchd(ctx context.Context, o Options) error {
	if o.Root != "" || !o.Start {
		fmt.Fprintf(o.Out, "Installed %s (launchd loads it at boot; not started now)\n", LaunchdLabel)
		return nil
	}
	// Bootstrapping a loaded job fails: unload the old one first.
	_, _ = command(ctx, "launchctl", "bootout", "system/"+LaunchdLabel)
	if _, err := command(ctx, "launchctl", "bootstrap", "system", LaunchdPath); err != nil {
		return fmt.Errorf("service install: %w", err)
	}
	fmt.Fprintf(o.Out, "Loaded and started %s (launchctl print system/%s)\n", LaunchdLabel, LaunchdLabel)
	return nil
}

// Uninstall stops the service and removes its definition. The binary and the
// data directory (the agent's identity) are kept: installing again brings
// the same agent back; delete them by hand to retire the machine.
func Uninstall(ctx context.Context, o Options) error {
	if err := o.normalize(); err != nil {
		return err
	}
	if err := o.needRoot("uninstall"); err != nil {
		return err
	}
	switch o.GOOS {
	case "windows":
		return uninstallWindows(o)
	case "darwin":
		if o.Root == "" {
			_, _ = command(ctx, "launchctl", "bootout", "system/"+LaunchdLabel)
		}
	case "linux":
		if o.Root == "" && systemdRunning() {
			if err := systemctl(ctx, "disable", "--now", Name+".service"); err != nil {
				return err
			}
		}
		if err := os.Remove(wantsLink(&o)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("service uninstall: %w", err)
		}
	}
	def := o.path(File(o.GOOS))
	if err := os.Remove(def); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("service uninstall: %s is not installed (no %s)", Name, def)
		}
		return fmt.Errorf("service uninstall: %w", err)
	}
	fmt.Fprintf(o.Out, "Removed %s\n", def)
	if o.GOOS == "linux" && o.Root == "" && systemdRunning() {
		if err := systemctl(ctx, "daemon-reload"); err != nil {
			return err
		}
	}
	return nil
}

// Status is the state of the installed service.
type Status struct {
	Manager   string // systemd, launchd or windows
	Installed bool   // the definition exists
	Enabled   bool   // it starts at boot
	Active    string // running, stopped, failed, ... as the manager says; "unknown" offline
	Where     string // the definition's path or the service name
}

// GetStatus reads the service's state.
func GetStatus(ctx context.Context, o Options) (Status, error) {
	if err := o.normalize(); err != nil {
		return Status{}, err
	}
	if o.GOOS == "windows" {
		return statusWindows()
	}
	st := Status{Manager: "systemd", Where: o.path(File(o.GOOS)), Active: "unknown (no service manager: offline root or systemd not running)"}
	if o.GOOS == "darwin" {
		st.Manager = "launchd"
	}
	if _, err := os.Stat(st.Where); err == nil {
		st.Installed = true
	}
	switch {
	case o.GOOS == "darwin":
		st.Enabled = st.Installed // RunAtLoad: a LaunchDaemon present is loaded at boot
		if o.Root == "" {
			out, err := command(ctx, "launchctl", "print", "system/"+LaunchdLabel)
			switch {
			case err != nil:
				st.Active = "not loaded"
			case strings.Contains(out, "state = running"):
				st.Active = "running"
			default:
				st.Active = "loaded, not running"
			}
		}
	case o.Root != "" || !systemdRunning():
		_, err := os.Lstat(wantsLink(&o))
		st.Enabled = err == nil
	default:
		out, _ := command(ctx, "systemctl", "is-enabled", Name+".service")
		st.Enabled = strings.TrimSpace(out) == "enabled"
		out, _ = command(ctx, "systemctl", "is-active", Name+".service")
		st.Active = strings.TrimSpace(out)
	}
	return st, nil
}

func systemctl(ctx context.Context, args ...string) error {
	if _, err := command(ctx, "systemctl", args...); err != nil {
		return fmt.Errorf("service: %w", err)
	}
	return nil
}

// command runs a service manager's command and returns its output; the
// error carries what it printed.
func command(ctx context.Context, name string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return "", fmt.Errorf("%s not found: is this machine's service manager installed?", name)
		}
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}
