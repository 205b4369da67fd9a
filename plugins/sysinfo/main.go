// Command sysinfo is the Patchbay plugin that reports a machine's health:
// uptime, load, memory, disk usage, failed services and whether a reboot
// is pending. It is read-only: Check says Needed when something looks
// wrong (a disk at or above disk_warn_percent, a failed service, a pending
// reboot), and Fix returns the same report with Changed false. sysinfo
// never changes anything.
//
// The Linux sources (collect_linux.go) are tested, against fake /proc
// trees and the real machine; the Windows and macOS sources
// (collect_windows.go, collect_darwin.go) compile but are not tested here.
package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/patchbay/patchbay/plugins/sdk"
)

// version is the plugin's version.
var version = "1.0.0"

// sysInfo implements sdk.Plugin.
type sysInfo struct{}

// Manifest describes the plugin and its parameters.
func (sysInfo) Manifest() sdk.Manifest {
	return sdk.Manifest{
		Name:        "sysinfo",
		Version:     version,
		Description: "read-only health report: uptime, load, memory, disks, failed services, pending reboot",
		OS:          []string{"linux", "windows", "darwin"},
		Params: []sdk.Param{
			{Name: "root", Type: sdk.TypeString, Default: "/",
				Description: "directory /proc, /etc and /var/run are read from (Linux); production leaves it at /, tests point it at a fake tree (no command is run then)"},
			{Name: "disk_warn_percent", Type: sdk.TypeInt, Default: "90",
				Description: "a disk this full or fuller makes Check report a problem (1-100)"},
		},
	}
}

// config is a validated request.
type config struct {
	root     string // "/" or a fake tree
	sandbox  bool   // root is not "/": no command is run
	diskWarn int
}

func parseConfig(p sdk.Params) (config, error) {
	c := config{root: p.String("root"), diskWarn: 90}
	if c.root == "" {
		c.root = "/"
	}
	if !filepath.IsAbs(c.root) && c.root != "/" {
		return config{}, fmt.Errorf("root: %q is not an absolute path", c.root)
	}
	c.root = filepath.Clean(c.root)
	c.sandbox = c.root != "/" && c.root != `\`
	if s := p.String("disk_warn_percent"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			return config{}, fmt.Errorf("disk_warn_percent: %q is not a percentage from 1 to 100", s)
		}
		c.diskWarn = n
	}
	return c, nil
}

// report collects and evaluates the machine's state.
func report(ctx context.Context, p sdk.Params) (*Report, error) {
	c, err := parseConfig(p)
	if err != nil {
		return nil, err
	}
	r := &Report{DiskWarn: c.diskWarn}
	if err := collect(ctx, c, r); err != nil {
		return nil, err
	}
	r.finish()
	return r, nil
}

// Check reports the machine's state; Needed means something looks wrong.
func (sysInfo) Check(ctx context.Context, req sdk.Request) (sdk.CheckResult, error) {
	r, err := report(ctx, req.Params)
	if err != nil {
		return sdk.CheckResult{}, err
	}
	return sdk.CheckResult{Needed: r.needed(), Summary: r.Summary(), Details: r.Details()}, nil
}

// Fix changes nothing: it returns the same report as Check, Changed false.
func (sysInfo) Fix(ctx context.Context, req sdk.Request, out *sdk.Output) (sdk.FixResult, error) {
	r, err := report(ctx, req.Params)
	if err != nil {
		return sdk.FixResult{}, err
	}
	out.Println("sysinfo is read-only: nothing was changed")
	for _, p := range r.Problems {
		out.Println("problem: " + p)
	}
	return sdk.FixResult{Changed: false, Summary: r.Summary(), Details: r.Details()}, nil
}

func main() { sdk.Serve(sysInfo{}) }
