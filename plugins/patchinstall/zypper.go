package main

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"

	"github.com/patchbay/patchbay/plugins/sdk"
)

// zypperBackend is openSUSE and SLES's zypper, read through its XML output.
// Check runs it with --no-refresh so it never refreshes repositories.
// Packages come from list-updates; security updates are zypper's security
// patches (list-patches --category security), which security_only installs
// instead of packages.
type zypperBackend struct{}

func (zypperBackend) name() string { return "zypper" }

// zypper exit codes (zypper(8)): 100 and above are informational.
const (
	zypperRebootNeeded  = 102
	zypperRestartNeeded = 103 // zypper updated itself: run it again
	zypperReposSkipped  = 106
)

var zypperBase = []string{"--non-interactive", "--no-refresh", "--xmlout"}

func (zypperBackend) pending(ctx context.Context, x *runner, o options) (pendingList, error) {
	patches, err := zypperList(ctx, x, "list-patches", "--category", "security")
	if err != nil {
		return pendingList{}, err
	}
	if o.securityOnly {
		return pendingList{Updates: patches, Security: -1}, nil
	}
	pkgs, err := zypperList(ctx, x, "list-updates")
	if err != nil {
		return pendingList{}, err
	}
	return pendingList{Updates: pkgs, Security: len(patches)}, nil
}

func zypperList(ctx context.Context, x *runner, args ...string) ([]update, error) {
	cmd := strings.Join(args, " ")
	r, err := x.output(ctx, "zypper", append(append([]string{}, zypperBase...), args...)...)
	if err != nil {
		return nil, fmt.Errorf("zypper %s: %w", cmd, err)
	}
	if r.exit != 0 && r.exit < 100 {
		return nil, fmt.Errorf("zypper %s: exit status %d: %s", cmd, r.exit, lastLine(r.stderr+r.stdout))
	}
	ups, err := parseZypperXML(r.stdout)
	if err != nil {
		return nil, fmt.Errorf("zypper %s: %w", cmd, err)
	}
	return ups, nil
}

func (zypperBackend) refresh(ctx context.Context, x *runner, out *sdk.Output) error {
	code, tail, err := x.stream(ctx, out, "zypper", "--non-interactive", "refresh")
	if err != nil {
		return err
	}
	if code != 0 && code < 100 {
		return fmt.Errorf("zypper refresh: exit status %d: %s", code, lastLine(tail))
	}
	return nil
}

// zypperInstallArgs is the zypper command line: update (of the chosen
// packages when some are excluded), patch --category security, or install
// patch:NAME for chosen security patches; --dry-run when simulating.
func zypperInstallArgs(o options, ups []update) []string {
	args := []string{"--non-interactive", "--no-refresh"}
	switch {
	case o.securityOnly && len(o.exclude) > 0:
		args = append(args, "install", "--auto-agree-with-licenses")
		if o.simulate {
			args = append(args, "--dry-run")
		}
		for _, u := range ups {
			args = append(args, "patch:"+u.Name)
		}
	case o.securityOnly:
		args = append(args, "patch", "--category", "security", "--auto-agree-with-licenses")
		if o.simulate {
			args = append(args, "--dry-run")
		}
	default:
		args = append(args, "update", "--auto-agree-with-licenses")
		if o.simulate {
			args = append(args, "--dry-run")
		}
		if len(o.exclude) > 0 {
			for _, u := range ups {
				args = append(args, u.Name)
			}
		}
	}
	return args
}

func (zypperBackend) install(ctx context.Context, x *runner, o options, ups []update, out *sdk.Output) (installResult, error) {
	args := zypperInstallArgs(o, ups)
	var res installResult
	for attempt := 0; attempt < 2; attempt++ {
		code, tail, err := x.stream(ctx, out, "zypper", args...)
		if err != nil {
			return res, err
		}
		switch code {
		case 0, zypperReposSkipped:
			return res, nil
		case zypperRebootNeeded:
			res.Reboot, res.RebootReason = true, "zypper exited 102 (reboot needed)"
			return res, nil
		case zypperRestartNeeded:
			out.Println("zypper updated itself; running it again")
			continue
		default:
			return res, fmt.Errorf("zypper: exit status %d: %s", code, lastLine(tail))
		}
	}
	return res, nil
}

// rebootRequired asks `zypper needs-rebooting` (exit 102: reboot needed).
func (zypperBackend) rebootRequired(ctx context.Context, x *runner, _ []update) (bool, string) {
	r, err := x.output(ctx, "zypper", "--non-interactive", "needs-rebooting")
	if err == nil && r.exit == zypperRebootNeeded {
		return true, "zypper needs-rebooting"
	}
	return false, ""
}

// zypperStream is the document zypper --xmlout prints.
type zypperStream struct {
	XMLName  xml.Name `xml:"stream"`
	Messages []struct {
		Type string `xml:"type,attr"`
		Text string `xml:",chardata"`
	} `xml:"message"`
	Status *struct {
		Updates []zypperUpdate `xml:"update-list>update"`
	} `xml:"update-status"`
}

type zypperUpdate struct {
	Name       string `xml:"name,attr"`
	Kind       string `xml:"kind,attr"`
	Edition    string `xml:"edition,attr"`
	EditionOld string `xml:"edition-old,attr"`
	Arch       string `xml:"arch,attr"`
	Category   string `xml:"category,attr"`
	Status     string `xml:"status,attr"`
	Summary    string `xml:"summary"`
	Source     struct {
		Alias string `xml:"alias,attr"`
	} `xml:"source"`
}

// parseZypperXML parses `zypper --xmlout list-updates` or `list-patches`:
//
//	<stream>
//	<update-status version="0.6">
//	<update-list>
//	<update name="openssl-3" edition="3.1.4-150600.5.10.1" edition-old="3.1.4-150600.5.7.1" arch="x86_64" kind="package">
//	...
//
// Only packages and needed patches count. An error message in the stream,
// or a stream without an update-status, is an error.
func parseZypperXML(out string) ([]update, error) {
	var s zypperStream
	if err := xml.Unmarshal([]byte(out), &s); err != nil {
		return nil, fmt.Errorf("parse XML: %w", err)
	}
	var errs []string
	for _, m := range s.Messages {
		if m.Type == "error" {
			errs = append(errs, strings.TrimSpace(m.Text))
		}
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "; "))
	}
	if s.Status == nil {
		return nil, errors.New("no <update-status> in the output")
	}
	ups := []update{}
	for _, u := range s.Status.Updates {
		if u.Name == "" {
			return nil, errors.New("an <update> without a name")
		}
		switch u.Kind {
		case "package", "":
			ups = append(ups, update{Name: u.Name, From: u.EditionOld, To: u.Edition, Arch: u.Arch, Repo: u.Source.Alias})
		case "patch":
			if u.Status != "" && u.Status != "needed" {
				continue
			}
			ups = append(ups, update{Name: u.Name, Title: strings.TrimSpace(u.Summary), To: u.Edition, Arch: u.Arch,
				Repo: u.Source.Alias, Security: u.Category == "security"})
		}
	}
	return ups, nil
}
