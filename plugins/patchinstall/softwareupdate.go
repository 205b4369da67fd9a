package main

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"github.com/patchbay/patchbay/plugins/sdk"
)

// softwareupdateBackend is macOS's softwareupdate. An update is a security
// update when its label or title says "Security" (Security Update
// 2024-001, Rapid/Background Security Responses). softwareupdate has no
// dry run: with simulate, Fix lists the command it would run and runs
// nothing. It never restarts the Mac (no -R): an update whose Action is
// restart makes the Fix report a reboot as required. Compiled and
// parser-tested here, not run on a Mac; on Apple silicon, macOS updates may
// need an administrator's credentials that the agent does not have.
type softwareupdateBackend struct{}

func (softwareupdateBackend) name() string { return "softwareupdate" }

func (softwareupdateBackend) pending(ctx context.Context, x *runner, _ options) (pendingList, error) {
	r, err := x.output(ctx, "softwareupdate", "--list")
	if err != nil {
		return pendingList{}, fmt.Errorf("softwareupdate --list: %w", err)
	}
	if r.exit != 0 {
		return pendingList{}, fmt.Errorf("softwareupdate --list: exit status %d: %s", r.exit, lastLine(r.stderr+r.stdout))
	}
	// "No new software available." goes to stderr.
	ups, err := parseSoftwareupdate(r.stdout + "\n" + r.stderr)
	if err != nil {
		return pendingList{}, err
	}
	return pendingList{Updates: ups, Security: -1}, nil
}

// refresh does nothing: softwareupdate --list always asks Apple's servers.
func (softwareupdateBackend) refresh(_ context.Context, _ *runner, out *sdk.Output) error {
	out.Println("refresh: softwareupdate always fetches the catalog; nothing to refresh")
	return nil
}

// softwareupdateInstallArgs installs the chosen labels, agreeing to the
// license (needed for macOS updates), without restarting.
func softwareupdateInstallArgs(ups []update) []string {
	args := []string{"--install", "--agree-to-license"}
	for _, u := range ups {
		args = append(args, u.Name)
	}
	return args
}

func (softwareupdateBackend) install(ctx context.Context, x *runner, o options, ups []update, out *sdk.Output) (installResult, error) {
	args := softwareupdateInstallArgs(ups)
	if o.simulate {
		out.Printf("simulate: would run: softwareupdate %s", strings.Join(args, " "))
		return installResult{}, nil
	}
	code, tail, err := x.stream(ctx, out, "softwareupdate", args...)
	if err != nil {
		return installResult{}, err
	}
	if code != 0 {
		return installResult{}, fmt.Errorf("softwareupdate --install: exit status %d: %s", code, lastLine(tail))
	}
	var res installResult
	for _, u := range ups {
		if u.Restart {
			res.Reboot, res.RebootReason = true, u.Name+" needs a restart (softwareupdate: Action: restart)"
			break
		}
	}
	return res, nil
}

// rebootRequired: what install said; there is no other marker to read.
func (softwareupdateBackend) rebootRequired(context.Context, *runner, []update) (bool, string) {
	return false, ""
}

// parseSoftwareupdate parses `softwareupdate --list`, both the format of
// macOS 10.15 and later
//
//	Software Update found the following new or updated software:
//	* Label: macOS Ventura 13.6.1-22G313
//		Title: macOS Ventura 13.6.1, Version: 13.6.1, Size: 1234567K, Recommended: YES, Action: restart,
//
// and the older one
//
//	Software Update found the following new or updated software:
//	   * Security Update 2019-004-10.13.6
//		Security Update 2019-004 (10.13.6), 1964727K [recommended] [restart]
//
// "No new software available." means no updates. Output with neither
// updates nor that sentence nor the "Finding available software" preamble
// is an error.
func parseSoftwareupdate(out string) ([]update, error) {
	ups := []update{}
	recognised := false
	var cur *update
	sc := bufio.NewScanner(strings.NewReader(out))
	for n := 1; sc.Scan(); n++ {
		raw := strings.TrimRight(sc.Text(), " \r")
		t := strings.TrimSpace(raw)
		switch {
		case t == "":
			continue
		case strings.Contains(t, "No new software available"), strings.HasPrefix(t, "Software Update Tool"),
			strings.HasPrefix(t, "Finding available software"), strings.HasPrefix(t, "Software Update found"):
			recognised = true
			continue
		case strings.HasPrefix(t, "* "):
			label := strings.TrimSpace(strings.TrimPrefix(t, "* "))
			label = strings.TrimSpace(strings.TrimPrefix(label, "Label:"))
			if label == "" {
				return nil, fmt.Errorf("softwareupdate: line %d: an update without a label", n)
			}
			ups = append(ups, update{Name: label})
			cur = &ups[len(ups)-1]
			cur.Security = strings.Contains(label, "Security")
			recognised = true
		case raw[0] == '\t' || raw[0] == ' ':
			if cur == nil {
				return nil, fmt.Errorf("softwareupdate: line %d: details before any update: %q", n, t)
			}
			parseSoftwareupdateDetails(cur, t)
		default:
			return nil, fmt.Errorf("softwareupdate: line %d: unexpected %q", n, t)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("softwareupdate: %w", err)
	}
	if !recognised {
		return nil, fmt.Errorf("softwareupdate: output is not a softwareupdate listing: %q", lastLine(out))
	}
	return ups, nil
}

// parseSoftwareupdateDetails reads an update's second line in either format.
func parseSoftwareupdateDetails(u *update, t string) {
	if strings.HasPrefix(t, "Title:") {
		for _, kv := range strings.Split(t, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), ":")
			if !ok {
				continue
			}
			v = strings.TrimSpace(v)
			switch k {
			case "Title":
				u.Title = v
			case "Version":
				u.To = v
			case "Action":
				u.Restart = strings.EqualFold(v, "restart") || strings.EqualFold(v, "shut down")
			}
		}
	} else {
		// Old format: "Title (Version), SizeK [recommended] [restart]".
		title := t
		if i := strings.LastIndex(t, "),"); i >= 0 {
			title = t[:i+1]
		}
		if o, c := strings.LastIndexByte(title, '('), strings.LastIndexByte(title, ')'); o >= 0 && c > o {
			u.To = strings.TrimSpace(title[o+1 : c])
			title = strings.TrimSpace(title[:o])
		}
		u.Title = title
		u.Restart = strings.Contains(t, "[restart]")
	}
	if strings.Contains(u.Title, "Security") {
		u.Security = true
	}
}
