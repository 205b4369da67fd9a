package main

import "path/filepath"

// Defaults of the scopes and min_age parameters on this OS.
const (
	defaultScopes = "temp,user,package,dns"
	defaultMinAge = "1h"
)

// linuxBrowsers names the browser caches inside ~/.cache, by the first
// component of their path there (Chrome, Chromium and Edge keep their disk
// caches under ~/.cache, Firefox its cache2 directories).
var linuxBrowsers = map[string]string{
	"google-chrome":    "chrome",
	"google-chrome-*":  "chrome", // -beta, -unstable
	"chromium":         "chromium",
	"mozilla":          "firefox",
	"microsoft-edge":   "edge",
	"microsoft-edge-*": "edge",
}

// keepInTemp spares the entries of /tmp and /var/tmp that running programs
// rely on whatever their age: X11 and ICE socket directories and locks,
// systemd's per-service private temp directories, Kerberos ticket caches.
func keepInTemp(name string) bool {
	for _, pattern := range []string{
		".X11-unix", ".ICE-unix", ".XIM-unix", ".font-unix", ".Test-unix", ".X*-lock",
		"systemd-private-*", "snap-private-tmp", "krb5cc*",
	} {
		if ok, _ := filepath.Match(pattern, name); ok {
			return true
		}
	}
	return false
}

// platformTargets returns the directories each asked-for file scope cleans
// on Linux, all below c.root:
//
//	temp     tmp, var/tmp
//	user     .cache of every home in home/* and of root (or of c.user)
//	package  apt (var/cache/apt/archives: *.deb and partial/), dnf, yum,
//	         zypper (var/cache/zypp/packages), pacman (var/cache/pacman/pkg)
func platformTargets(c config) ([]target, error) {
	var ts []target
	if c.has(scopeTemp) {
		ts = append(ts,
			target{scope: scopeTemp, name: "tmp", rel: "tmp", keepTop: keepInTemp},
			target{scope: scopeTemp, name: "var/tmp", rel: filepath.Join("var", "tmp"), keepTop: keepInTemp},
		)
	}
	if c.has(scopeUser) {
		homes, err := findHomes(c.root, []string{"home"}, map[string]string{"root": "root"}, nil, c.user)
		if err != nil {
			return nil, err
		}
		for _, h := range homes {
			ts = append(ts, target{scope: scopeUser, name: h.user, rel: filepath.Join(h.rel, ".cache"),
				part: partByPrefix(linuxBrowsers)})
		}
	}
	if c.has(scopePackage) {
		cache := filepath.Join("var", "cache")
		ts = append(ts,
			target{scope: scopePackage, name: "apt", rel: filepath.Join(cache, "apt", "archives"), flat: true, match: globMatch("*.deb")},
			target{scope: scopePackage, name: "apt", rel: filepath.Join(cache, "apt", "archives", "partial")},
			target{scope: scopePackage, name: "dnf", rel: filepath.Join(cache, "dnf")},
			target{scope: scopePackage, name: "yum", rel: filepath.Join(cache, "yum")},
			target{scope: scopePackage, name: "zypper", rel: filepath.Join(cache, "zypp", "packages")},
			target{scope: scopePackage, name: "pacman", rel: filepath.Join(cache, "pacman", "pkg")},
		)
	}
	return ts, nil
}

// dnsFlushers are the ways to flush the resolver cache on Linux, in order
// of preference; the first one installed that succeeds is used.
func dnsFlushers() []flusher {
	return []flusher{
		{cmds: [][]string{{"resolvectl", "flush-caches"}}},
		{cmds: [][]string{{"systemd-resolve", "--flush-caches"}}},
		{cmds: [][]string{{"nscd", "-i", "hosts"}}},
	}
}

// toolDirs are where flush commands are looked for. PATH is not used: the
// agent runs plugins with a minimal environment, and a root process should
// not run whatever a writable PATH entry offers.
var toolDirs = []string{"/usr/bin", "/bin", "/usr/sbin", "/sbin"}

// globMatch returns a match function for a shell pattern like "*.deb".
func globMatch(pattern string) func(string) bool {
	return func(name string) bool {
		ok, _ := filepath.Match(pattern, name)
		return ok
	}
}
