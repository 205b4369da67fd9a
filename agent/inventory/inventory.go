// Package inventory gathers what an agent tells the relay about its machine:
// host name, operating system and version, logged-in users and IP addresses,
// hardware and last boot (hardware*.go) and installed software (software*.go).
//
// Collection never fails as a whole: a part that cannot be read is left empty
// and the reason is logged at debug level through zerolog.Ctx(ctx), so an
// agent on an unusual system still connects.
//
// Sources, by platform:
//
//   - Linux (inventory_linux.go): OSVersion is PRETTY_NAME from /etc/os-release
//     (or /usr/lib/os-release) followed by the kernel release from uname(2),
//     e.g. "Debian GNU/Linux 12 (bookworm) (Linux 6.1.0-18-amd64)". Users come
//     from utmp (/var/run/utmp, then /run/utmp): USER_PROCESS records in the
//     glibc layout of x86_64 and aarch64 (384-byte records; see parseUtmp),
//     read in native byte order. When utmp is missing, malformed or lists
//     nobody (distributions that no longer maintain utmp), the output of
//     `who` is used instead; recent `who` builds ask systemd-logind.
//   - macOS (inventory_other.go, best effort): OSVersion from `sw_vers`, e.g.
//     "macOS 14.5 (23F79)"; users from `who`.
//   - Windows (inventory_other.go, best effort): OSVersion from `cmd /c ver`,
//     e.g. "Microsoft Windows [Version 10.0.22631.3880]"; users from
//     `query user`, which exists on Pro, Enterprise and Server editions only.
//   - Other systems: OSVersion from `uname -sr`; users from `who`.
//
// Users are distinct user names, sorted. Like `who`, a stale utmp record left
// by a crashed session is reported. IPs are the addresses of up, non-loopback
// interfaces, excluding loopback and link-local IPv6 addresses (fe80::/10),
// sorted numerically with IPv4 first.
package inventory

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Inventory is what an agent reports about its machine. Users and IPs are
// never nil once returned by Collect, so they encode as [] rather than null.
type Inventory struct {
	Hostname  string   `json:"hostname"`
	OS        string   `json:"os"`         // runtime.GOOS
	Arch      string   `json:"arch"`       // runtime.GOARCH
	OSVersion string   `json:"os_version"` // see the package documentation
	Users     []string `json:"users"`      // distinct logged-in users, sorted
	IPs       []string `json:"ips"`        // non-loopback addresses, sorted
	// Hardware and the last boot (issue 17; hardware*.go): nil and zero
	// when unknown.
	Hardware *Hardware `json:"hardware,omitempty"`
	BootTime time.Time `json:"boot_time,omitzero"`
}

// commandTimeout bounds every external command Collect runs;
// slowCommandTimeout the package managers Software runs.
const (
	commandTimeout     = 5 * time.Second
	slowCommandTimeout = 2 * time.Minute
)

// Collector gathers an Inventory. The zero value reads the real system.
type Collector struct {
	// Root is prepended to every file path read (/etc/os-release, utmp,
	// ...), so tests can point at a directory tree under testdata. Empty
	// means the real root. It does not affect the host name, interfaces or
	// the commands run.
	Root string

	// Test hooks; nil means the real thing.
	run    func(ctx context.Context, name string, args ...string) ([]byte, error)
	kernel func() (string, error)
	ifaces func() ([]net.Addr, error)
}

// Collect gathers the inventory of this machine with a zero Collector.
func Collect(ctx context.Context) Inventory {
	var c Collector
	return c.Collect(ctx)
}

// Collect gathers the inventory. A part that fails is left empty and logged
// at debug level through zerolog.Ctx(ctx); Collect itself never fails.
func (c *Collector) Collect(ctx context.Context) Inventory {
	log := zerolog.Ctx(ctx)
	skip := func(part string, err error) {
		log.Debug().Err(err).Str("part", part).Msg("inventory: part unavailable")
	}
	inv := Inventory{OS: runtime.GOOS, Arch: runtime.GOARCH, Users: []string{}, IPs: []string{}}

	if h, err := os.Hostname(); err != nil {
		skip("hostname", err)
	} else {
		inv.Hostname = h
	}
	if v, err := c.osVersion(ctx); err != nil {
		skip("os_version", err)
	} else {
		inv.OSVersion = v
	}
	if u, err := c.users(ctx); err != nil {
		skip("users", err)
	} else if u != nil {
		inv.Users = u
	}
	if ips, err := c.ips(); err != nil {
		skip("ips", err)
	} else if ips != nil {
		inv.IPs = ips
	}
	if hw, err := c.hardware(ctx); err != nil {
		skip("hardware", err)
	} else {
		inv.Hardware = hw
	}
	if bt, err := c.bootTime(); err != nil {
		skip("boot_time", err)
	} else {
		inv.BootTime = bt
	}
	return inv
}

// path returns p under c.Root.
func (c *Collector) path(p string) string {
	if c.Root == "" {
		return p
	}
	return filepath.Join(c.Root, filepath.FromSlash(p))
}

// command runs name with args and returns its standard output.
func (c *Collector) command(ctx context.Context, name string, args ...string) ([]byte, error) {
	return c.commandFor(ctx, commandTimeout, name, args...)
}

// slowCommand is command with slowCommandTimeout.
func (c *Collector) slowCommand(ctx context.Context, name string, args ...string) ([]byte, error) {
	return c.commandFor(ctx, slowCommandTimeout, name, args...)
}

func (c *Collector) commandFor(ctx context.Context, d time.Duration, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if c.run != nil {
		return c.run(ctx, name, args...)
	}
	return exec.CommandContext(ctx, name, args...).Output()
}

// ips lists the addresses of up, non-loopback interfaces.
func (c *Collector) ips() ([]string, error) {
	if c.ifaces != nil {
		addrs, err := c.ifaces()
		if err != nil {
			return nil, err
		}
		return filterAddrs(addrs), nil
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var addrs []net.Addr
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		a, err := ifc.Addrs()
		if err != nil {
			continue // one odd interface must not hide the others
		}
		addrs = append(addrs, a...)
	}
	return filterAddrs(addrs), nil
}

// filterAddrs keeps usable unicast addresses, without loopback, unspecified
// and link-local IPv6 ones, sorted numerically (IPv4 first) and distinct.
func filterAddrs(addrs []net.Addr) []string {
	var ips []netip.Addr
	for _, a := range addrs {
		var ip net.IP
		switch v := a.(type) {
		case *net.IPNet:
			ip = v.IP
		case *net.IPAddr:
			ip = v.IP
		default:
			continue
		}
		addr, ok := netip.AddrFromSlice(ip)
		if !ok {
			continue
		}
		addr = addr.Unmap()
		if addr.IsLoopback() || addr.IsUnspecified() || addr.Is6() && addr.IsLinkLocalUnicast() {
			continue
		}
		ips = append(ips, addr)
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	ips = slices.Compact(ips)
	out := make([]string, len(ips))
	for i, a := range ips {
		out[i] = a.String()
	}
	return out
}

// parseOSRelease returns the fields of an os-release(5) file. Values may be
// unquoted, or in single or double quotes; in double quotes, a backslash
// escapes the next character.
func parseOSRelease(data []byte) map[string]string {
	fields := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok || key == "" {
			continue
		}
		fields[key] = unquote(val)
	}
	return fields
}

func unquote(v string) string {
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return v[1 : len(v)-1]
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			if v[i] == '\\' && i+1 < len(v) {
				i++
			}
			b.WriteByte(v[i])
		}
		return b.String()
	}
	return v
}

// prettyName picks the human-readable system name from os-release fields:
// PRETTY_NAME, or else NAME and VERSION (or VERSION_ID).
func prettyName(f map[string]string) string {
	if p := f["PRETTY_NAME"]; p != "" {
		return p
	}
	ver := f["VERSION"]
	if ver == "" {
		ver = f["VERSION_ID"]
	}
	return strings.TrimSpace(f["NAME"] + " " + ver)
}

// parseWho returns the user names in the output of who(1): the first field
// of each line, distinct and sorted.
func parseWho(out []byte) []string {
	var users []string
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) > 0 {
			users = append(users, f[0])
		}
	}
	return sortUnique(users)
}

// parseQueryUser returns the user names in the output of Windows'
// `query user`: a header line, then one line per session whose first column
// is the user name (prefixed with ">" for the current session).
func parseQueryUser(out []byte) []string {
	var users []string
	for i, line := range slices.Collect(strings.Lines(string(out))) {
		f := strings.Fields(line)
		if i == 0 || len(f) == 0 {
			continue
		}
		if u := strings.TrimPrefix(f[0], ">"); u != "" {
			users = append(users, u)
		}
	}
	return sortUnique(users)
}

// sortUnique sorts s and removes duplicates and empty strings.
func sortUnique(s []string) []string {
	s = slices.DeleteFunc(s, func(v string) bool { return v == "" })
	slices.Sort(s)
	return slices.Compact(s)
}
