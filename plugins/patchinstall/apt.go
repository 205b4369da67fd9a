package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/patchbay/patchbay/plugins/sdk"
)

// aptBackend is Debian and Ubuntu's apt-get. Pending updates come from a
// simulated upgrade (apt-get -s, with locking off so Check never waits on
// or takes the dpkg lock); Check never runs apt-get update, so it sees the
// package lists as they were last refreshed (by the refresh parameter, a
// timer or an admin).
type aptBackend struct{}

func (aptBackend) name() string { return "apt" }

// aptDpkgOptions keep changed configuration files without asking.
var aptDpkgOptions = []string{"-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"}

// aptRebootFiles are where Debian and Ubuntu flag a needed reboot.
var aptRebootFiles = []string{"/var/run/reboot-required", "/run/reboot-required"}

func (aptBackend) pending(ctx context.Context, x *runner, _ options) (pendingList, error) {
	// --with-new-pkgs: install new dependencies (a new kernel's package)
	// but never remove anything, as `apt upgrade` does.
	r, err := x.output(ctx, "apt-get", "-s", "-o", "Debug::NoLocking=1", "--with-new-pkgs", "upgrade")
	if err != nil {
		return pendingList{}, fmt.Errorf("apt-get -s upgrade: %w", err)
	}
	if r.exit != 0 {
		return pendingList{}, fmt.Errorf("apt-get -s upgrade: exit status %d: %s", r.exit, lastLine(r.stderr+r.stdout))
	}
	plan, err := parseAptSimulation(r.stdout)
	if err != nil {
		return pendingList{}, err
	}
	return pendingList{Updates: plan.updates, Security: -1, HeldBack: plan.heldBack}, nil
}

func (aptBackend) refresh(ctx context.Context, x *runner, out *sdk.Output) error {
	code, tail, err := x.stream(ctx, out, "apt-get", "update")
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("apt-get update: exit status %d: %s", code, lastLine(tail))
	}
	return nil
}

// aptInstallArgs is the apt-get command line for ups: a plain upgrade when
// every pending update is wanted, else install --only-upgrade of the chosen
// packages (new dependencies are pulled in by apt, not named).
func aptInstallArgs(o options, ups []update) []string {
	args := append([]string{"-y"}, aptDpkgOptions...)
	if o.simulate {
		args = append(args, "-s", "-o", "Debug::NoLocking=1")
	}
	if !o.securityOnly && len(o.exclude) == 0 {
		return append(args, "--with-new-pkgs", "upgrade")
	}
	args = append(args, "install", "--only-upgrade")
	for _, u := range ups {
		if u.From != "" {
			args = append(args, u.Name)
		}
	}
	return args
}

func (aptBackend) install(ctx context.Context, x *runner, o options, ups []update, out *sdk.Output) (installResult, error) {
	code, tail, err := x.stream(ctx, out, "apt-get", aptInstallArgs(o, ups)...)
	if err != nil {
		return installResult{}, err
	}
	if code != 0 {
		return installResult{}, fmt.Errorf("apt-get: exit status %d: %s", code, lastLine(tail))
	}
	return installResult{}, nil
}

// rebootRequired: the reboot-required flag file (written by kernel and
// libc postinst hooks when update-notifier-common or unattended-upgrades
// is installed), else a heuristic: a kernel package was installed.
func (aptBackend) rebootRequired(_ context.Context, _ *runner, installed []update) (bool, string) {
	for _, f := range aptRebootFiles {
		if _, err := os.Stat(f); err == nil {
			return true, f + " exists"
		}
	}
	for _, u := range installed {
		if strings.HasPrefix(u.Name, "linux-image-") {
			return true, "a new kernel (" + u.Name + ") was installed"
		}
	}
	return false, ""
}

// aptPlan is a parsed apt-get simulation.
type aptPlan struct {
	updates  []update
	heldBack int
}

// parseAptSimulation parses the output of `apt-get -s upgrade` (or install)
// with LANG=C. It reads the Inst lines:
//
//	Inst libssl3 [3.0.11-1~deb12u2] (3.0.15-1~deb12u1 Debian-Security:12/stable-security [amd64])
//	Inst linux-image-6.1.0-28-amd64 (6.1.119-1 Debian-Security:12/stable-security [amd64]) []
//
// and the summary line ("132 upgraded, 0 newly installed, 0 to remove and
// 0 not upgraded."), which must be there and agree with the Inst lines: so
// output that is not what the parser expects is an error rather than an
// empty list.
func parseAptSimulation(out string) (aptPlan, error) {
	var plan aptPlan
	summary := map[string]int(nil)
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \r")
		switch {
		case strings.HasPrefix(line, "Inst "):
			u, err := parseAptInst(line)
			if err != nil {
				return aptPlan{}, fmt.Errorf("apt-get -s: line %d: %w", n, err)
			}
			plan.updates = append(plan.updates, u)
		case strings.Contains(line, " upgraded, ") && strings.Contains(line, " newly installed"):
			s, err := parseAptSummary(line)
			if err != nil {
				return aptPlan{}, fmt.Errorf("apt-get -s: line %d: %w", n, err)
			}
			summary = s
		}
	}
	if err := sc.Err(); err != nil {
		return aptPlan{}, fmt.Errorf("apt-get -s: %w", err)
	}
	if summary == nil {
		return aptPlan{}, fmt.Errorf("apt-get -s: no summary line (\"N upgraded, N newly installed, ...\") in %d bytes of output", len(out))
	}
	want := summary["upgraded"] + summary["newly installed"] + summary["reinstalled"] + summary["downgraded"]
	if want != len(plan.updates) {
		return aptPlan{}, fmt.Errorf("apt-get -s: summary counts %d packages to install but %d Inst lines were read", want, len(plan.updates))
	}
	plan.heldBack = summary["not upgraded"]
	return plan, nil
}

// parseAptInst parses one Inst line.
func parseAptInst(line string) (update, error) {
	rest := strings.TrimPrefix(line, "Inst ")
	name, rest, _ := strings.Cut(rest, " ")
	if name == "" || strings.HasPrefix(name, "[") || strings.HasPrefix(name, "(") {
		return update{}, fmt.Errorf("no package name after Inst: %q", line)
	}
	u := update{Name: name}
	rest = strings.TrimSpace(rest)
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return update{}, fmt.Errorf("package %s: unclosed [installed version]: %q", name, line)
		}
		u.From = rest[1:end]
		rest = strings.TrimSpace(rest[end+1:])
	}
	if !strings.HasPrefix(rest, "(") {
		return update{}, fmt.Errorf("package %s: want \"(VERSION ORIGINS [ARCH])\": %q", name, line)
	}
	end := strings.IndexByte(rest, ')')
	if end < 0 {
		return update{}, fmt.Errorf("package %s: unclosed (new version ...): %q", name, line)
	}
	inner := strings.TrimSpace(rest[1:end])
	ver, origins, _ := strings.Cut(inner, " ")
	if ver == "" {
		return update{}, fmt.Errorf("package %s: no new version: %q", name, line)
	}
	u.To = ver
	origins = strings.TrimSpace(origins)
	if i := strings.LastIndexByte(origins, '['); i >= 0 && strings.HasSuffix(origins, "]") {
		u.Arch = origins[i+1 : len(origins)-1]
		origins = strings.TrimSpace(origins[:i])
	}
	u.Repo = origins
	for _, o := range strings.Split(origins, ",") {
		if strings.Contains(strings.ToLower(o), "-security") {
			u.Security = true
		}
	}
	return u, nil
}

// parseAptSummary parses "1 upgraded, 2 newly installed, 0 to remove and 3
// not upgraded." into phrase → count.
func parseAptSummary(line string) (map[string]int, error) {
	s := strings.TrimSuffix(strings.TrimSpace(line), ".")
	s = strings.ReplaceAll(s, " and ", ", ")
	m := map[string]int{}
	for _, part := range strings.Split(s, ", ") {
		num, phrase, ok := strings.Cut(strings.TrimSpace(part), " ")
		n, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("summary %q: part %q is not \"N what\"", line, part)
		}
		m[phrase] = n
	}
	if _, ok := m["upgraded"]; !ok {
		return nil, fmt.Errorf("summary %q: no upgraded count", line)
	}
	return m, nil
}
