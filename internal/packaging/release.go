// Package packaging builds a Patchbay release: the cross-compiled agent, CLI,
// relay and built-in plugins, .deb and .rpm packages of the agent and the relay
// (with nfpm as a library), the macOS LaunchDaemon plist, a SHA-256 manifest of
// all of it and, with the organisation's key, the manifest's SSHSIG signature
// (namespace patchbay-release). cmd/patchbay-release is its command; nothing
// that ships imports this package, so nfpm is linked only into that tool.
//
// The layout of dist/<version>/ is fixed (the installer and self-update read it):
//
//	SHA256SUMS       "<64 hex>  <name>\n" per other file, sorted by name
//	SHA256SUMS.sig   armored SSHSIG over SHA256SUMS, namespace patchbay-release
//	patchbay-agent_<version>_<os>_<arch>[.exe]
//	patchbay_<version>_<os>_<arch>[.exe]
//	patchbay-server_<version>_linux_<arch>
//	patchbay-plugin-<name>_<version>_<os>_<arch>[.exe]
//	patchbay-agent_<pkgversion>_<arch>.deb, patchbay-server_..., and the .rpm ones
//	com.patchbay.agent.plist
package packaging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Namespace is the SSHSIG namespace of a release manifest's signature.
const Namespace = "patchbay-release"

// Platform is one GOOS/GOARCH pair.
type Platform struct{ OS, Arch string }

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// ParsePlatform parses "os/arch".
func ParsePlatform(s string) (Platform, error) {
	osName, arch, ok := strings.Cut(s, "/")
	if !ok || osName == "" || arch == "" {
		return Platform{}, fmt.Errorf("platform %q: want os/arch, e.g. linux/amd64", s)
	}
	return Platform{OS: osName, Arch: arch}, nil
}

// Platforms are the platforms of a release; the relay is built for the Linux ones only.
var Platforms = []Platform{
	{"linux", "amd64"}, {"linux", "arm64"},
	{"windows", "amd64"}, {"windows", "arm64"},
	{"darwin", "amd64"}, {"darwin", "arm64"},
}

// Program is one executable of a release.
type Program struct {
	// Name is the file name's stem: patchbay-agent, patchbay, patchbay-server,
	// patchbay-plugin-sysinfo.
	Name string
	// Pkg is the Go package, relative to the repository: ./cmd/patchbay-agent.
	Pkg string
	// LinuxOnly programs (the relay) are built for the Linux platforms only.
	LinuxOnly bool
	// Plugin programs keep their own version (plugins set main.version themselves).
	Plugin bool
}

// Programs are the executables of a release.
var Programs = []Program{
	{Name: "patchbay-agent", Pkg: "./cmd/patchbay-agent"},
	{Name: "patchbay", Pkg: "./cmd/patchbay"},
	{Name: "patchbay-server", Pkg: "./cmd/patchbay-server", LinuxOnly: true},
	{Name: "patchbay-plugin-cacheclear", Pkg: "./plugins/cacheclear", Plugin: true},
	{Name: "patchbay-plugin-printerreset", Pkg: "./plugins/printerreset", Plugin: true},
	{Name: "patchbay-plugin-patchinstall", Pkg: "./plugins/patchinstall", Plugin: true},
	{Name: "patchbay-plugin-script", Pkg: "./plugins/script", Plugin: true},
	{Name: "patchbay-plugin-sysinfo", Pkg: "./plugins/sysinfo", Plugin: true},
}

// Options say what to build and where.
type Options struct {
	// Version is embedded with -X main.version and names the files (the
	// Makefile's VERSION, git describe).
	Version string
	// Repo is the repository's root (default ".").
	Repo string
	// Out is the release directory, dist/<version>; it must not exist or be empty.
	Out string
	// Platforms and Programs default to all of them.
	Platforms []Platform
	Programs  []Program
	// Key, when set, is the organisation's SSH private key: SHA256SUMS is signed
	// with it (ssh-keygen -Y sign -n patchbay-release).
	Key string
	// Go is the go command (default "go").
	Go string
	// Log gets one line per step (default: discarded).
	Log io.Writer
}

func (o *Options) defaults() error {
	if o.Version == "" {
		return errors.New("release: no version: pass --version (the Makefile passes VERSION)")
	}
	if strings.ContainsAny(o.Version, "/\\ _") {
		return fmt.Errorf("release: version %q: must not contain '/', '\\', '_' or spaces (it is part of file names)", o.Version)
	}
	if o.Out == "" {
		return errors.New("release: no output directory: pass --out dist/VERSION")
	}
	if o.Repo == "" {
		o.Repo = "."
	}
	if o.Platforms == nil {
		o.Platforms = Platforms
	}
	if o.Programs == nil {
		o.Programs = Programs
	}
	if o.Go == "" {
		o.Go = "go"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return nil
}

// Build makes the whole release in o.Out: binaries, packages, plist, manifest
// and (with o.Key) its signature.
func Build(ctx context.Context, o Options) error {
	if err := o.defaults(); err != nil {
		return err
	}
	if entries, err := os.ReadDir(o.Out); err == nil && len(entries) > 0 {
		return fmt.Errorf("release: %s is not empty: remove it first (make release does)", o.Out)
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	if err := Compile(ctx, o); err != nil {
		return err
	}
	for _, p := range o.Platforms {
		if p.OS != "linux" {
			continue
		}
		for _, spec := range Packages {
			if !hasProgram(o.Programs, spec.Program) {
				continue
			}
			for _, format := range []string{"deb", "rpm"} {
				name, err := BuildPackage(o, spec, p.Arch, format)
				if err != nil {
					return err
				}
				fmt.Fprintf(o.Log, "package %s\n", name)
			}
		}
	}
	if hasProgram(o.Programs, "patchbay-agent") && hasOS(o.Platforms, "darwin") {
		if err := copyFile(filepath.Join(o.Repo, "deploy/macos/com.patchbay.agent.plist"), filepath.Join(o.Out, "com.patchbay.agent.plist"), 0o644); err != nil {
			return fmt.Errorf("release: launchd plist: %w", err)
		}
	}
	if err := WriteSums(o.Out); err != nil {
		return err
	}
	fmt.Fprintf(o.Log, "manifest %s\n", filepath.Join(o.Out, SumsName))
	if o.Key != "" {
		if err := Sign(ctx, o.Out, o.Key); err != nil {
			return err
		}
		fmt.Fprintf(o.Log, "signed %s with %s (namespace %s)\n", filepath.Join(o.Out, SigName), o.Key, Namespace)
	}
	return nil
}

// FileName is a binary's name in the release: NAME_VERSION_OS_ARCH[.exe].
func FileName(program, version string, p Platform) string {
	name := fmt.Sprintf("%s_%s_%s_%s", program, version, p.OS, p.Arch)
	if p.OS == "windows" {
		name += ".exe"
	}
	return name
}

// Compile cross-compiles o.Programs for o.Platforms into o.Out, without cgo,
// with -trimpath and -ldflags "-s -w -X main.version=VERSION".
func Compile(ctx context.Context, o Options) error {
	if err := o.defaults(); err != nil {
		return err
	}
	repo, err := filepath.Abs(o.Repo)
	if err != nil {
		return err
	}
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return err
	}
	for _, p := range o.Platforms {
		for _, prog := range o.Programs {
			if prog.LinuxOnly && p.OS != "linux" {
				continue
			}
			ldflags := "-s -w"
			if !prog.Plugin {
				ldflags += " -X main.version=" + o.Version
			}
			name := FileName(prog.Name, o.Version, p)
			cmd := exec.CommandContext(ctx, o.Go, "build", "-trimpath", "-ldflags", ldflags, "-o", filepath.Join(out, name), prog.Pkg)
			cmd.Dir = repo
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch)
			if b, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("release: build %s for %s: %w\n%s", prog.Pkg, p, err, b)
			}
			fmt.Fprintf(o.Log, "build %s\n", name)
		}
	}
	return nil
}

func hasProgram(progs []Program, name string) bool {
	for _, p := range progs {
		if p.Name == name {
			return true
		}
	}
	return false
}

func hasOS(ps []Platform, osName string) bool {
	for _, p := range ps {
		if p.OS == osName {
			return true
		}
	}
	return false
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}
