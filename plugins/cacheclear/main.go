// Command cacheclear is the Patchbay plugin that frees disk space by
// deleting temporary files, user and browser caches and package-manager
// caches, and flushes the DNS resolver cache.
//
// Check counts the bytes each scope would free and changes nothing; Fix
// deletes them, streaming a line per scope. Only entries last modified at
// least min_age ago are deleted. Safety rules, which the tests prove on
// Linux:
//
//   - Symbolic links are never followed while walking: a link is deleted
//     as a link, its target is never touched.
//   - A scope's base directory (like /var/tmp or ~/.cache) reached through
//     a symbolic link that resolves outside root is refused; a link inside
//     root is followed only if an administrator made it (see openBase).
//   - Every deletion goes through an *os.Root opened on the base
//     directory, so nothing outside it can be reached even if the tree is
//     changed during the walk; the base directory itself is never deleted.
//   - Other filesystems mounted below a base are not entered; sockets,
//     pipes, devices and hard-linked files are left alone.
//   - Errors on single files are counted and reported, never fatal; files
//     vanishing during the walk are not errors.
//
// The Linux paths are tested; the Windows and macOS paths
// (targets_windows.go, targets_darwin.go) compile and follow the same rules
// but are not tested here.
package main

import (
	"context"
	"time"

	"github.com/patchbay/patchbay/plugins/sdk"
)

// version is the plugin's version.
var version = "1.0.0"

// cacheClear implements sdk.Plugin.
type cacheClear struct{}

// Manifest describes the plugin and its parameters.
func (cacheClear) Manifest() sdk.Manifest {
	return sdk.Manifest{
		Name:        "cacheclear",
		Version:     version,
		Description: "frees disk space: temporary files, user and browser caches, package caches; flushes the DNS cache",
		OS:          []string{"linux", "windows", "darwin"},
		Params: []sdk.Param{
			{Name: "scopes", Type: sdk.TypeString, Default: defaultScopes,
				Description: "comma-separated list of temp, user, package, dns"},
			{Name: "root", Type: sdk.TypeString, Default: "/",
				Description: "directory every path is resolved under; production leaves it at /, tests point it at a sandbox tree (no command is run then)"},
			{Name: "min_age", Type: sdk.TypeDuration, Default: defaultMinAge,
				Description: "only delete entries last modified at least this long ago, so files in use are spared"},
			{Name: "user", Type: sdk.TypeString,
				Description: "clean only this account's caches (default: every home)"},
		},
	}
}

// Check reports the bytes each scope would free. It changes nothing.
func (cacheClear) Check(ctx context.Context, req sdk.Request) (sdk.CheckResult, error) {
	c, err := parseConfig(req.Params, time.Now())
	if err != nil {
		return sdk.CheckResult{}, err
	}
	r, err := run(ctx, c, nil)
	if err != nil {
		return sdk.CheckResult{}, err
	}
	return sdk.CheckResult{Needed: r.changes(), Summary: r.summary(), Details: r.details()}, nil
}

// Fix deletes what Check counted (measured again now) and flushes DNS.
func (cacheClear) Fix(ctx context.Context, req sdk.Request, out *sdk.Output) (sdk.FixResult, error) {
	c, err := parseConfig(req.Params, time.Now())
	if err != nil {
		return sdk.FixResult{}, err
	}
	r, err := run(ctx, c, out)
	if err != nil {
		return sdk.FixResult{}, err
	}
	return sdk.FixResult{Changed: r.changes(), Summary: r.summary(), Details: r.details()}, nil
}

// run counts (out nil) or cleans (out set, lines streamed to it) every
// asked-for scope. Only a cancelled context or a bad user parameter stops
// it; everything else is recorded in the report.
func run(ctx context.Context, c config, out *sdk.Output) (*report, error) {
	targets, err := platformTargets(c)
	if err != nil {
		return nil, err
	}
	apply := out != nil
	r := &report{cfg: c, fix: apply}
	for _, scope := range fileScopes {
		if !c.has(scope) {
			continue
		}
		for _, t := range targets {
			if t.scope != scope {
				continue
			}
			res, err := cleanTarget(ctx, c, t, apply)
			if err != nil {
				return nil, err
			}
			r.results = append(r.results, res)
			if apply && (res.status == statusRefused || res.status == statusSkipped) {
				out.Printf("%s: %s: %s", scope, res.status, res.msg)
			}
		}
		if apply {
			out.Println(r.scopeLine(scope))
		}
	}
	if c.has(scopeDNS) {
		var d dnsResult
		if apply {
			d = fixDNS(ctx, c, out)
			out.Println(d.String())
		} else {
			d = checkDNS(c)
		}
		r.dns = &d
	}
	return r, nil
}

func main() { sdk.Serve(cacheClear{}) }
