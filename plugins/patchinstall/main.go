// Command patchinstall is the Patchbay plugin that installs pending
// operating-system package updates with the machine's own package manager:
// apt, dnf or zypper on Linux, Windows Update (the Windows Update Agent API,
// for the OS's own updates) or winget (apps) on Windows, softwareupdate on
// macOS (detected in that order, or chosen with the manager parameter).
// Windows Update is driven by an embedded PowerShell script whose JSON
// output windowsupdate.go reads.
//
// Check lists pending updates without changing the machine: it simulates
// (apt-get -s), reads only cached metadata (dnf -C, zypper --no-refresh) or
// only lists (winget, softwareupdate), and never refreshes package lists.
// Fix optionally refreshes the lists (refresh=true), installs the updates
// (all, or security fixes only, minus excluded packages), streams the
// manager's output, reports the packages changed and whether a reboot is
// needed. It never reboots by itself.
//
// simulate=true makes Fix run everything with the manager's dry-run flag
// (apt-get -s, dnf --assumeno, zypper --dry-run; winget and softwareupdate
// have none and only print what they would run): for tests, and for
// cautious admins who want to see the transaction first.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/patchbay/patchbay/plugins/sdk"
)

// version is the plugin's version; it can be set with -ldflags "-X main.version=…".
var version = "1.1.0"

// defaultPath is used when the plugin was started without a PATH.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

type patchInstall struct{}

// Manifest declares the plugin and its parameters.
func (patchInstall) Manifest() sdk.Manifest {
	return sdk.Manifest{
		Name:    "patchinstall",
		Version: version,
		Description: "Install pending OS package updates with the machine's package manager " +
			"(apt, dnf, zypper, Windows Update, winget, softwareupdate) and report what changed and whether a reboot is needed.",
		OS:        []string{"linux", "windows", "darwin"},
		MayReboot: true,
		Params: []sdk.Param{
			{Name: "security_only", Type: sdk.TypeBool, Default: "false",
				Description: "only security updates (apt: from a -security origin; dnf: with a security advisory; " +
					"zypper: security patches; softwareupdate: \"Security\" in the name; windowsupdate: classified Security Updates " +
					"or with an MSRC severity; refused for winget)"},
			{Name: "categories", Type: sdk.TypeString,
				Description: "windowsupdate only: comma-separated update classifications to install, of security, critical, " +
					"definition, updates, rollups, featurepacks, servicepacks, tools, upgrades (default: all)"},
			{Name: "simulate", Type: sdk.TypeBool, Default: "false",
				Description: "Fix runs the package manager's dry run (apt-get -s, dnf --assumeno, zypper --dry-run; " +
					"winget and softwareupdate only print what they would run) and installs nothing: for tests and cautious admins"},
			{Name: "manager", Type: sdk.TypeString, Allowed: managerNames,
				Description: "use this package manager instead of detecting one"},
			{Name: "exclude", Type: sdk.TypeString,
				Description: "comma-separated package names (winget: Ids, softwareupdate: labels, zypper security_only: patch names, " +
					"windowsupdate: KB numbers such as KB5034441) to hold back"},
			{Name: "refresh", Type: sdk.TypeBool, Default: "false",
				Description: "Fix refreshes the package lists first (apt-get update, dnf makecache, zypper refresh, " +
					"winget source update); Check never does. Skipped when simulating"},
		},
	}
}

// options are the validated parameters.
type options struct {
	securityOnly bool
	simulate     bool
	manager      string
	exclude      []string
	refresh      bool
	categories   []string // windowsupdate: classification names to keep; nil: all
}

func parseOptions(p sdk.Params) (options, error) {
	o := options{
		securityOnly: p.Bool("security_only"),
		simulate:     p.Bool("simulate"),
		manager:      p.String("manager"),
		refresh:      p.Bool("refresh"),
	}
	cats, err := parseCategories(p.String("categories"))
	if err != nil {
		return options{}, err
	}
	o.categories = cats
	seen := map[string]bool{}
	for _, e := range strings.Split(p.String("exclude"), ",") {
		e = strings.TrimSpace(e)
		if e == "" || seen[strings.ToLower(e)] {
			continue
		}
		if !validPackageName(e) {
			return options{}, fmt.Errorf("exclude: %q is not a package name", e)
		}
		seen[strings.ToLower(e)] = true
		o.exclude = append(o.exclude, e)
	}
	return o, nil
}

// validPackageName accepts what the managers use as names (Debian and RPM
// package names, winget Ids, macOS labels, which have spaces) and refuses
// what could be taken for an option or break a command line.
func validPackageName(s string) bool {
	if len(s) > 200 || strings.HasPrefix(s, "-") || strings.TrimSpace(s) != s {
		return false
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f || strings.ContainsRune("\"'`$;&|<>*?\\", r) {
			return false
		}
	}
	return true
}

// checkCategories refuses the categories parameter for managers without
// update classifications.
func checkCategories(b backend, o options) error {
	if len(o.categories) > 0 && b.name() != "windowsupdate" {
		return fmt.Errorf("categories: %s has no update classifications; only the windowsupdate manager takes this parameter", b.name())
	}
	return nil
}

// choose applies security_only and exclude to the pending updates and
// returns the updates to install and the excluded names that matched.
func choose(ups []update, o options) (chosen []update, excluded []string) {
	chosen = []update{}
	for _, u := range ups {
		if o.securityOnly && !u.Security {
			continue
		}
		if ex := matchExclude(u.Name, o.exclude); ex != "" {
			excluded = append(excluded, u.Name)
			continue
		}
		chosen = append(chosen, u)
	}
	return chosen, excluded
}

func matchExclude(name string, exclude []string) string {
	for _, e := range exclude {
		if strings.EqualFold(name, e) {
			return e
		}
	}
	return ""
}

// pendingSummary is "12 updates pending (3 security)" and its variants.
func pendingSummary(p pendingList, ups []update, o options) string {
	n := len(ups)
	switch {
	case n == 0 && o.securityOnly:
		return "no security updates pending"
	case n == 0:
		return "no updates pending"
	}
	s := fmt.Sprintf("%d updates pending", n)
	if n == 1 {
		s = "1 update pending"
	}
	if !p.NoSecurityInfo {
		s += fmt.Sprintf(" (%d security)", p.securityCount(ups))
	}
	return s
}

// checkDetails is the Details JSON of a Check.
type checkDetails struct {
	Manager      string   `json:"manager"`
	SecurityOnly bool     `json:"security_only"`
	Pending      []update `json:"pending"`
	// Security is the number of security updates among Pending (for
	// zypper, the number of needed security patches); absent when the
	// manager does not classify updates.
	Security *int     `json:"security,omitempty"`
	Excluded []string `json:"excluded,omitempty"`
	HeldBack int      `json:"held_back,omitempty"` // apt: kept back, not part of Pending
	Notes    []string `json:"notes,omitempty"`
}

func newCheckDetails(b backend, p pendingList, chosen []update, excluded []string, o options) checkDetails {
	d := checkDetails{Manager: b.name(), SecurityOnly: o.securityOnly, Pending: chosen, Excluded: excluded,
		HeldBack: p.HeldBack, Notes: p.Notes}
	if !p.NoSecurityInfo {
		n := p.securityCount(chosen)
		d.Security = &n
	}
	return d
}

// Check lists pending updates; it changes nothing.
func (patchInstall) Check(ctx context.Context, req sdk.Request) (sdk.CheckResult, error) {
	o, err := parseOptions(req.Params)
	if err != nil {
		return sdk.CheckResult{}, fmt.Errorf("check: %w", err)
	}
	b, err := selectBackend(o.manager)
	if err == nil {
		err = checkCategories(b, o)
	}
	if err != nil {
		return sdk.CheckResult{}, fmt.Errorf("check: %w", err)
	}
	p, err := b.pending(ctx, newRunner(), o)
	if err != nil {
		return sdk.CheckResult{}, fmt.Errorf("check: %w", err)
	}
	chosen, excluded := choose(p.Updates, o)
	details, err := json.MarshalIndent(newCheckDetails(b, p, chosen, excluded, o), "", "  ")
	if err != nil {
		return sdk.CheckResult{}, fmt.Errorf("check: details: %w", err)
	}
	return sdk.CheckResult{Needed: len(chosen) > 0, Summary: pendingSummary(p, chosen, o), Details: string(details)}, nil
}

// change is one package Fix changed (or, simulating, would change).
type change struct {
	Name string `json:"name"`
	From string `json:"from,omitempty"`
	To   string `json:"to"`
}

// fixDetails is the Details JSON of a Fix.
type fixDetails struct {
	Manager        string   `json:"manager"`
	Simulated      bool     `json:"simulated"`
	Packages       []change `json:"packages"`                // installed, or would be when simulated
	StillPending   []string `json:"still_pending,omitempty"` // chosen but still listed afterwards
	Excluded       []string `json:"excluded,omitempty"`
	RebootRequired bool     `json:"reboot_required"`
	RebootReason   string   `json:"reboot_reason,omitempty"`
	Notes          []string `json:"notes,omitempty"`
	// PendingAfter is what a Check would now list (security_only and
	// exclude applied), SecurityAfter its security count (absent when the
	// manager does not classify updates); both absent when simulated or
	// when the updates could not be listed again. The relay keeps it as
	// the agent's pending updates (since 1.1.0).
	PendingAfter  *[]update `json:"pending_after,omitempty"`
	SecurityAfter *int      `json:"security_after,omitempty"`
}

func changes(ups []update) []change {
	c := make([]change, 0, len(ups))
	for _, u := range ups {
		c = append(c, change{Name: u.Name, From: u.From, To: u.To})
	}
	return c
}

// Fix installs the pending updates (or simulates it) and reports them.
func (patchInstall) Fix(ctx context.Context, req sdk.Request, out *sdk.Output) (sdk.FixResult, error) {
	o, err := parseOptions(req.Params)
	if err != nil {
		return sdk.FixResult{}, fmt.Errorf("fix: %w", err)
	}
	b, err := selectBackend(o.manager)
	if err == nil {
		err = checkCategories(b, o)
	}
	if err != nil {
		return sdk.FixResult{}, fmt.Errorf("fix: %w", err)
	}
	x := newRunner()
	switch {
	case o.refresh && o.simulate:
		out.Println("simulate: not refreshing the package lists (that would change them)")
	case o.refresh:
		if err := b.refresh(ctx, x, out); err != nil {
			return sdk.FixResult{}, fmt.Errorf("fix: refresh: %w", err)
		}
	}
	p, err := b.pending(ctx, x, o)
	if err != nil {
		return sdk.FixResult{}, fmt.Errorf("fix: %w", err)
	}
	chosen, excluded := choose(p.Updates, o)
	d := fixDetails{Manager: b.name(), Simulated: o.simulate, Packages: []change{}, Excluded: excluded, Notes: p.Notes}
	if len(chosen) == 0 {
		summary := pendingSummary(p, chosen, o)
		out.Println(summary)
		return fixResult(false, summary, d)
	}
	out.Printf("%s: %s", b.name(), pendingSummary(p, chosen, o))
	res, err := b.install(ctx, x, o, chosen, out)
	if err != nil {
		if !o.simulate && ctx.Err() == nil {
			if after, lerr := b.pending(ctx, x, o); lerr == nil {
				installed, _ := stillPending(chosen, after.Updates)
				return sdk.FixResult{}, fmt.Errorf("fix: %w (%d of %d updates installed before it failed)", err, len(installed), len(chosen))
			}
		}
		return sdk.FixResult{}, fmt.Errorf("fix: %w", err)
	}
	if o.simulate {
		d.Packages = changes(chosen)
		summary := fmt.Sprintf("simulated: would install %s", countUpdates(len(chosen)))
		for _, u := range chosen {
			if u.Restart {
				summary += "; a reboot would be required"
				break
			}
		}
		out.Println(summary)
		return fixResult(false, summary, d)
	}
	installed := chosen
	after, err := b.pending(ctx, x, o)
	if err != nil {
		d.Notes = append(d.Notes, fmt.Sprintf("could not list updates again to confirm: %v", err))
	} else {
		installed, d.StillPending = stillPending(chosen, after.Updates)
		left, _ := choose(after.Updates, o)
		d.PendingAfter = &left
		if !after.NoSecurityInfo {
			n := after.securityCount(left)
			d.SecurityAfter = &n
		}
	}
	d.Packages = changes(installed)
	d.RebootRequired, d.RebootReason = res.Reboot, res.RebootReason
	if !d.RebootRequired {
		d.RebootRequired, d.RebootReason = b.rebootRequired(ctx, x, installed)
	}
	summary := "installed " + countUpdates(len(installed))
	if n := len(d.StillPending); n > 0 {
		summary += fmt.Sprintf(" (%d still pending)", n)
	}
	if d.RebootRequired {
		summary += "; reboot required"
	}
	out.Println(summary)
	return fixResult(len(installed) > 0, summary, d)
}

func fixResult(changed bool, summary string, d fixDetails) (sdk.FixResult, error) {
	details, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return sdk.FixResult{}, fmt.Errorf("fix: details: %w", err)
	}
	return sdk.FixResult{Changed: changed, Summary: summary, RebootRequired: d.RebootRequired && !d.Simulated,
		Details: string(details)}, nil
}

func countUpdates(n int) string {
	if n == 1 {
		return "1 update"
	}
	return fmt.Sprintf("%d updates", n)
}

// stillPending splits chosen into those no longer listed after the install
// and the names of those still listed.
func stillPending(chosen, after []update) (installed []update, still []string) {
	left := map[string]bool{}
	for _, u := range after {
		left[u.Name+"\x00"+u.Arch] = true
	}
	installed = []update{}
	for _, u := range chosen {
		if left[u.Name+"\x00"+u.Arch] {
			still = append(still, u.Name)
			continue
		}
		installed = append(installed, u)
	}
	return installed, still
}

func main() {
	if runtime.GOOS != "windows" && os.Getenv("PATH") == "" {
		_ = os.Setenv("PATH", defaultPath)
	}
	sdk.Serve(patchInstall{})
}
