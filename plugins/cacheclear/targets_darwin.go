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

// toolDirs are where flush commands are looked for (PATH is not used).
var toolDirs = []string{"/usr/bin", "/bin", "/usr/sbin", "/sbin"}

// darwinBrowsers names the browser caches inside ~/Library/Caches by the
// first component of their path there.
var darwinBrowsers = map[string]string{
	"Google":                      "chrome", // Google/Chrome
	"Chromium":                    "chromium",
	"Firefox":                     "firefox", // Firefox/Profiles/*/cache2
	"Microsoft Edge":              "edge",
	"com.microsoft.edgemac*":      "edge",
	"com.apple.Safari":            "safari",
	"com.apple.WebKit.Networking": "safari",
}

// platformTargets returns the directories each asked-for file scope cleans
// on macOS, all below c.root:
//
//	temp     private/tmp, private/var/tmp, and $TMPDIR
//	user     Library/Caches of every home in Users/* and of root
//	         (private/var/root), browsers reported separately
//	package  nothing: Homebrew's cache is in ~/Library/Caches (user)
//
// Written to the same rules as the Linux targets but not tested here.
func platformTargets(c config) ([]target, error) {
	var ts []target
	if c.has(scopeTemp) {
		ts = append(ts,
			target{scope: scopeTemp, name: "tmp", rel: filepath.Join("private", "tmp")},
			target{scope: scopeTemp, name: "var/tmp", rel: filepath.Join("private", "var", "tmp")},
		)
		if t := os.Getenv("TMPDIR"); filepath.IsAbs(t) && !c.sandbox {
			ts = append(ts, target{scope: scopeTemp, name: "$TMPDIR", rel: strings.TrimPrefix(filepath.Clean(t), "/")})
		}
	}
	if c.has(scopeUser) {
		homes, err := findHomes(c.root, []string{"Users"}, map[string]string{"root": filepath.Join("private", "var", "root")},
			[]string{"Shared", "Guest"}, c.user)
		if err != nil {
			return nil, err
		}
		for _, h := range homes {
			ts = append(ts, target{scope: scopeUser, name: h.user, rel: filepath.Join(h.rel, "Library", "Caches"),
				part: partByPrefix(darwinBrowsers)})
		}
	}
	return ts, nil
}

// dnsFlushers flushes the directory service cache and restarts
// mDNSResponder's, Apple's documented way.
func dnsFlushers() []flusher {
	return []flusher{{cmds: [][]string{{"dscacheutil", "-flushcache"}, {"killall", "-HUP", "mDNSResponder"}}}}
}
