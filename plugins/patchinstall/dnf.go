package main

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"github.com/patchbay/patchbay/plugins/sdk"
)

// dnfBackend is Fedora and RHEL's dnf (dnf4 and dnf5). Check runs it with
// -C (cache only) so it never refreshes metadata; with no cached metadata
// Check fails and says so.
type dnfBackend struct{}

func (dnfBackend) name() string { return "dnf" }

func (dnfBackend) pending(ctx context.Context, x *runner, o options) (pendingList, error) {
	r, err := x.output(ctx, "dnf", "-q", "-C", "check-update")
	if err != nil {
		return pendingList{}, fmt.Errorf("dnf check-update: %w", err)
	}
	// 100: updates available, 0: none; anything else is an error.
	if r.exit != 0 && r.exit != 100 {
		return pendingList{}, fmt.Errorf("dnf -C check-update: exit status %d: %s (Check never refreshes metadata: run Fix with refresh=true, or dnf makecache)",
			r.exit, lastLine(r.stderr+r.stdout))
	}
	ups, err := parseDnfCheckUpdate(r.stdout)
	if err != nil {
		return pendingList{}, err
	}
	switch {
	case r.exit == 100 && len(ups) == 0:
		return pendingList{}, fmt.Errorf("dnf check-update: exit status 100 (updates available) but no package line was read")
	case r.exit == 0 && len(ups) > 0:
		return pendingList{}, fmt.Errorf("dnf check-update: exit status 0 (no updates) but %d package lines were read", len(ups))
	}
	p := pendingList{Updates: ups, Security: -1}
	if len(ups) == 0 {
		return p, nil
	}
	fillRPMVersions(ctx, x, p.Updates)
	sec, err := x.output(ctx, "dnf", "-q", "-C", "updateinfo", "list", "--security")
	if err == nil && sec.exit != 0 {
		err = fmt.Errorf("exit status %d: %s", sec.exit, lastLine(sec.stderr+sec.stdout))
	}
	var names map[string]bool
	if err == nil {
		names, err = parseDnfUpdateinfo(sec.stdout)
	}
	if err != nil {
		if o.securityOnly {
			return pendingList{}, fmt.Errorf("dnf updateinfo list --security: %w", err)
		}
		p.Notes = append(p.Notes, fmt.Sprintf("security advisories unavailable: %v", err))
		return p, nil
	}
	for i := range p.Updates {
		p.Updates[i].Security = names[p.Updates[i].Name]
	}
	return p, nil
}

// fillRPMVersions sets From from the RPM database, best effort: it is for
// the report only.
func fillRPMVersions(ctx context.Context, x *runner, ups []update) {
	args := []string{"-q", "--qf", "%{NAME}.%{ARCH} %{VERSION}-%{RELEASE}\\n"}
	for _, u := range ups {
		args = append(args, u.Name)
	}
	r, err := x.output(ctx, "rpm", args...)
	if err != nil {
		return
	}
	installed := parseRPMQuery(r.stdout)
	for i, u := range ups {
		ups[i].From = installed[u.Name+"."+u.Arch]
	}
}

// parseRPMQuery parses "NAME.ARCH VERSION-RELEASE" lines; "package x is
// not installed" lines are skipped. With several versions installed (a
// kernel) the last listed wins.
func parseRPMQuery(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && strings.Contains(f[0], ".") {
			m[f[0]] = f[1]
		}
	}
	return m
}

func (dnfBackend) refresh(ctx context.Context, x *runner, out *sdk.Output) error {
	code, tail, err := x.stream(ctx, out, "dnf", "-y", "makecache")
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("dnf makecache: exit status %d: %s", code, lastLine(tail))
	}
	return nil
}

// dnfInstallArgs is the dnf command line: upgrade (only packages with a
// security advisory when security_only), every excluded package as
// --exclude; simulate answers no to the transaction (--assumeno, from the
// cache only), dnf's way of showing what it would do.
func dnfInstallArgs(o options) []string {
	args := []string{"-y"}
	if o.simulate {
		args = []string{"-C", "--assumeno"}
	}
	args = append(args, "upgrade")
	if o.securityOnly {
		args = append(args, "--security")
	}
	for _, e := range o.exclude {
		args = append(args, "--exclude="+e)
	}
	return args
}

func (dnfBackend) install(ctx context.Context, x *runner, o options, _ []update, out *sdk.Output) (installResult, error) {
	code, tail, err := x.stream(ctx, out, "dnf", dnfInstallArgs(o)...)
	if err != nil {
		return installResult{}, err
	}
	if code != 0 && !(o.simulate && code == 1 && strings.Contains(tail, "Operation aborted")) {
		return installResult{}, fmt.Errorf("dnf upgrade: exit status %d: %s", code, lastLine(tail))
	}
	return installResult{}, nil
}

// rebootRequired asks needs-restarting -r (dnf-utils; dnf5 has it as a dnf
// subcommand): exit 1 means a reboot is needed. If neither is available the
// answer is no, with no reason.
func (dnfBackend) rebootRequired(ctx context.Context, x *runner, _ []update) (bool, string) {
	for _, cmd := range [][]string{{"needs-restarting", "-r"}, {"dnf", "needs-restarting", "-r"}} {
		r, err := x.output(ctx, cmd[0], cmd[1:]...)
		if err != nil {
			continue
		}
		switch r.exit {
		case 0:
			return false, ""
		case 1:
			return true, strings.Join(cmd, " ") + ": " + lastLine(r.stdout)
		}
	}
	return false, ""
}

// dnfNoise reports whether a line is one of dnf's status lines rather
// than data.
func dnfNoise(t string) bool {
	for _, p := range []string{"Last metadata expiration check", "Updating and loading repositories",
		"Repositories loaded", "Security: ", "Updating Subscription Management", "This system is"} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}

// parseDnfCheckUpdate parses `dnf check-update` (dnf4) or its dnf5 twin:
//
//	bash.x86_64                   5.1.8-9.el9                baseos
//	python3-a-very-long-package-name.noarch
//	                              1.2.3-4.el9                appstream
//
// A name too long for its column wraps onto the next line. Everything from
// "Obsoleting Packages" on is about obsoleted packages and is ignored.
func parseDnfCheckUpdate(out string) ([]update, error) {
	var ups []update
	var carry []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for n := 1; sc.Scan(); n++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || (carry == nil && dnfNoise(t)) {
			continue
		}
		if strings.EqualFold(t, "Obsoleting Packages") {
			break
		}
		f := append(carry, strings.Fields(t)...)
		carry = nil
		if len(f) < 3 {
			carry = f
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("dnf check-update: line %d: want \"NAME.ARCH VERSION REPO\", got %q", n, t)
		}
		i := strings.LastIndexByte(f[0], '.')
		if i <= 0 || i == len(f[0])-1 {
			return nil, fmt.Errorf("dnf check-update: line %d: %q is not NAME.ARCH", n, f[0])
		}
		if !strings.Contains(f[1], "-") {
			return nil, fmt.Errorf("dnf check-update: line %d: version %q is not VERSION-RELEASE", n, f[1])
		}
		ups = append(ups, update{Name: f[0][:i], Arch: f[0][i+1:], To: f[1], Repo: f[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dnf check-update: %w", err)
	}
	if carry != nil {
		return nil, fmt.Errorf("dnf check-update: output ends inside a wrapped line: %q", strings.Join(carry, " "))
	}
	return ups, nil
}

// rpmArches are the architectures that end a NEVRA.
var rpmArches = map[string]bool{
	"x86_64": true, "noarch": true, "i686": true, "i386": true, "aarch64": true, "ppc64le": true,
	"s390x": true, "armv7hl": true, "riscv64": true, "src": true,
}

// nevraName returns the package name of NAME-[EPOCH:]VERSION-RELEASE.ARCH.
func nevraName(s string) (string, bool) {
	i := strings.LastIndexByte(s, '.')
	if i < 0 || !rpmArches[s[i+1:]] {
		return "", false
	}
	nvr := s[:i]
	r := strings.LastIndexByte(nvr, '-')
	if r <= 0 {
		return "", false
	}
	v := strings.LastIndexByte(nvr[:r], '-')
	if v <= 0 {
		return "", false
	}
	return nvr[:v], true
}

// parseDnfUpdateinfo parses `dnf updateinfo list --security` into the
// names of packages with a security advisory. dnf4 prints
//
//	RHSA-2024:1234 Important/Sec.  openssl-libs-1:3.0.7-27.el9.x86_64
//
// and dnf5 a table with a header whose Package column holds the NEVRA; in
// both, the package is the one field that parses as a NEVRA.
func parseDnfUpdateinfo(out string) (map[string]bool, error) {
	names := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for n := 1; sc.Scan(); n++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || dnfNoise(t) {
			continue
		}
		f := strings.Fields(t)
		if f[0] == "Name" || f[0] == "Advisory" {
			continue // dnf5 header
		}
		found := false
		for _, field := range f {
			if name, ok := nevraName(field); ok {
				names[name] = true
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("dnf updateinfo: line %d: no NAME-VERSION-RELEASE.ARCH package in %q", n, t)
		}
	}
	return names, sc.Err()
}
