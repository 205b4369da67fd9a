package main

import (
	"os"
	"path/filepath"
	"strings"
)

// Defaults of the scopes and min_age parameters on this OS.
const (
	defaultScopes = "temp,user,package,dns"
	defaultMinAge = "1h"
)

// toolDirs is empty on Windows: flush commands are given as absolute paths.
var toolDirs []string

// chromiumCaches are the cache directories in each profile of a
// Chromium-based browser's "User Data".
var chromiumCaches = []string{"Cache", "Code Cache", "GPUCache"}

// platformTargets returns the directories each asked-for file scope cleans
// on Windows, all below c.root (the system drive in production):
//
//	temp     %SystemRoot%\Temp, %TEMP%, each profile's AppData\Local\Temp
//	user     each profile's Chrome and Edge "User Data\*\Cache" (and Code
//	         Cache, GPUCache) and Firefox "Profiles\*\cache2" under
//	         AppData\Local
//	package  %SystemRoot%\SoftwareDistribution\Download
//
// Written to the same rules as the Linux targets but not tested here.
func platformTargets(c config) ([]target, error) {
	windir := envRel("SystemRoot", `C:\Windows`)
	var homes []home
	if c.has(scopeTemp) || c.has(scopeUser) {
		var err error
		homes, err = findHomes(c.root, []string{"Users"}, nil,
			[]string{"Public", "Default", "Default User", "All Users"}, c.user)
		if err != nil {
			return nil, err
		}
	}
	var ts []target
	if c.has(scopeTemp) {
		ts = append(ts, target{scope: scopeTemp, name: "Windows", rel: filepath.Join(windir, "Temp")})
		if t := envRel("TEMP", ""); t != "" && !strings.EqualFold(t, filepath.Join(windir, "Temp")) {
			ts = append(ts, target{scope: scopeTemp, name: "%TEMP%", rel: t})
		}
		for _, h := range homes {
			ts = append(ts, target{scope: scopeTemp, name: h.user, rel: filepath.Join(h.rel, "AppData", "Local", "Temp")})
		}
	}
	if c.has(scopeUser) {
		for _, h := range homes {
			local := filepath.Join(h.rel, "AppData", "Local")
			for _, b := range []struct{ browser, dir string }{
				{"chrome", filepath.Join(local, "Google", "Chrome", "User Data")},
				{"edge", filepath.Join(local, "Microsoft", "Edge", "User Data")},
			} {
				browser, dir := b.browser, b.dir
				for _, profile := range subdirs(c.root, dir) {
					for _, cache := range chromiumCaches {
						ts = appendIfPresent(ts, c.root, target{scope: scopeUser, name: h.user + ": " + browser,
							rel: filepath.Join(dir, profile, cache)})
					}
				}
			}
			profiles := filepath.Join(local, "Mozilla", "Firefox", "Profiles")
			for _, profile := range subdirs(c.root, profiles) {
				ts = appendIfPresent(ts, c.root, target{scope: scopeUser, name: h.user + ": firefox",
					rel: filepath.Join(profiles, profile, "cache2")})
			}
		}
	}
	if c.has(scopePackage) {
		ts = append(ts, target{scope: scopePackage, name: "windows update",
			rel: filepath.Join(windir, "SoftwareDistribution", "Download")})
	}
	return ts, nil
}

// envRel returns the directory in environment variable name (or fallback)
// relative to the system drive: C:\Windows becomes Windows. A directory on
// another drive gives "".
func envRel(name, fallback string) string {
	p := os.Getenv(name)
	if p == "" {
		p = fallback
	}
	if p == "" || !filepath.IsAbs(p) {
		return ""
	}
	if d := os.Getenv("SystemDrive"); d != "" && !strings.EqualFold(filepath.VolumeName(p), d) {
		return ""
	}
	return strings.TrimLeft(p[len(filepath.VolumeName(p)):], `\/`)
}

// appendIfPresent adds t if its base exists: profile directories hold many
// sub-directories without caches, which are not worth an "absent" row.
func appendIfPresent(ts []target, root string, t target) []target {
	if _, err := os.Lstat(filepath.Join(root, t.rel)); err != nil {
		return ts
	}
	return append(ts, t)
}

// dnsFlushers flushes the DNS client cache with ipconfig.
func dnsFlushers() []flusher {
	sys := os.Getenv("SystemRoot")
	if sys == "" {
		sys = `C:\Windows`
	}
	return []flusher{{cmds: [][]string{{filepath.Join(sys, "System32", "ipconfig.exe"), "/flushdns"}}}}
}

// subdirs lists the names of the directories in root/rel, for expanding a
// browser's profile directories. Links are listed too; openBase decides
// about them.
func subdirs(root, rel string) []string {
	entries, err := os.ReadDir(filepath.Join(root, rel))
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() || e.Type()&os.ModeSymlink != 0 {
			names = append(names, e.Name())
		}
	}
	return names
}
