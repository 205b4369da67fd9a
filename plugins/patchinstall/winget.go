package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/patchbay/patchbay/plugins/sdk"
)

// wingetBackend is the Windows Package Manager. It knows nothing of
// security updates (security_only is refused) and has no dry run: with
// simulate, Fix lists the commands it would run and runs none. Windows
// Update itself is not driven by this plugin. Compiled and parser-tested
// here, not run on a Windows machine.
type wingetBackend struct{}

func (wingetBackend) name() string { return "winget" }

var errWingetSecurity = errors.New("security_only: winget does not say which updates are security fixes")

var wingetAgree = []string{"--accept-source-agreements", "--disable-interactivity"}

func (wingetBackend) pending(ctx context.Context, x *runner, o options) (pendingList, error) {
	if o.securityOnly {
		return pendingList{}, errWingetSecurity
	}
	r, err := x.output(ctx, "winget", append([]string{"upgrade"}, wingetAgree...)...)
	if err != nil {
		return pendingList{}, fmt.Errorf("winget upgrade: %w", err)
	}
	ups, err := parseWingetUpgrade(r.stdout)
	if err != nil {
		if r.exit != 0 {
			return pendingList{}, fmt.Errorf("winget upgrade: exit status %d: %s", r.exit, lastLine(r.stderr+r.stdout))
		}
		return pendingList{}, err
	}
	return pendingList{Updates: ups, Security: -1, NoSecurityInfo: true}, nil
}

func (wingetBackend) refresh(ctx context.Context, x *runner, out *sdk.Output) error {
	code, tail, err := x.stream(ctx, out, "winget", append([]string{"source", "update"}, wingetAgree...)...)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("winget source update: exit status %d: %s", code, lastLine(tail))
	}
	return nil
}

// wingetInstallArgs upgrades one package by its exact Id, silently.
func wingetInstallArgs(u update) []string {
	return append([]string{"upgrade", "--id", u.Name, "--exact", "--silent", "--accept-package-agreements"}, wingetAgree...)
}

// install upgrades the packages one by one, so one failure does not stop
// the others; the failures are returned together.
func (wingetBackend) install(ctx context.Context, x *runner, o options, ups []update, out *sdk.Output) (installResult, error) {
	if o.securityOnly {
		return installResult{}, errWingetSecurity
	}
	var errs []error
	for _, u := range ups {
		args := wingetInstallArgs(u)
		if o.simulate {
			out.Printf("simulate: would run: winget %s", strings.Join(args, " "))
			continue
		}
		code, tail, err := x.stream(ctx, out, "winget", args...)
		if err != nil {
			return installResult{}, err
		}
		if code != 0 {
			errs = append(errs, fmt.Errorf("winget upgrade %s: exit status %#x: %s", u.Name, uint32(code), lastLine(tail)))
		}
	}
	return installResult{}, errors.Join(errs...)
}

// rebootRequired reads Windows' pending-reboot markers (rebootPending).
func (wingetBackend) rebootRequired(context.Context, *runner, []update) (bool, string) {
	return rebootPending()
}

// parseWingetUpgrade parses the table `winget upgrade` prints:
//
//	Name                      Id                     Version  Available Source
//	--------------------------------------------------------------------------
//	Mozilla Firefox (x64 en)  Mozilla.Firefox        120.0    121.0     winget
//	2 upgrades available.
//
// Columns are found from the header above the dashes line by position, not
// by title (winget translates titles): Name, Id, Version, Available and
// Source, in that order. Progress spinners before the table (text ending
// in \r) are dropped. A second table (packages that need explicit
// targeting) follows a blank line or a sentence and is not read. Output
// without a table is an error unless winget said there is nothing to do.
func parseWingetUpgrade(out string) ([]update, error) {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if i := strings.LastIndexByte(l, '\r'); i >= 0 {
			l = l[i+1:]
		}
		lines = append(lines, strings.TrimRight(l, " "))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("winget upgrade: %w", err)
	}
	dashes := -1
	for i, l := range lines {
		if i > 0 && len(l) >= 10 && strings.Trim(l, "-") == "" {
			dashes = i
			break
		}
	}
	if dashes < 0 {
		for _, l := range lines {
			if strings.Contains(l, "No installed package found matching input criteria") ||
				strings.Contains(l, "No available upgrade found") || strings.Contains(l, "No applicable update found") {
				return []update{}, nil
			}
		}
		return nil, fmt.Errorf("winget upgrade: no table (header and dashes line) in the output: %q", lastLine(out))
	}
	cols := columnStarts(lines[dashes-1])
	if len(cols) < 4 {
		return nil, fmt.Errorf("winget upgrade: header %q has %d columns, want Name, Id, Version, Available[, Source]", lines[dashes-1], len(cols))
	}
	ups := []update{}
	for i := dashes + 1; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) == "" {
			break
		}
		f := cutColumns(l, cols)
		if f == nil || f[1] == "" || f[3] == "" || strings.ContainsRune(f[1], ' ') {
			// The "N upgrades available." line or the next section's
			// sentence: the table has ended.
			if len(ups) == 0 && !strings.Contains(l, "upgrades available") && !strings.Contains(l, "upgrade available") {
				return nil, fmt.Errorf("winget upgrade: row %q does not fit the columns of %q", l, lines[dashes-1])
			}
			break
		}
		u := update{Title: f[0], Name: f[1], From: f[2], To: f[3]}
		if len(f) > 4 {
			u.Repo = f[4]
		}
		ups = append(ups, u)
	}
	return ups, nil
}

// columnStarts returns the character (rune) offsets where the header's
// words start.
func columnStarts(header string) []int {
	var starts []int
	prevSpace := true
	for i, r := range []rune(header) {
		if r != ' ' && prevSpace {
			starts = append(starts, i)
		}
		prevSpace = r == ' '
	}
	return starts
}

// cutColumns slices a row at the column starts (in runes, as winget pads
// by character), or returns nil if the row is too short to reach the
// Available column.
func cutColumns(row string, starts []int) []string {
	rs := []rune(row)
	if len(rs) <= starts[3] || !utf8.ValidString(row) {
		return nil
	}
	f := make([]string, len(starts))
	for i, s := range starts {
		end := len(rs)
		if i+1 < len(starts) && starts[i+1] < end {
			end = starts[i+1]
		}
		if s < len(rs) {
			f[i] = strings.TrimSpace(string(rs[s:end]))
		}
	}
	return f
}
