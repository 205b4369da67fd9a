package inventory

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
)

// Package is one installed piece of software. Source is dpkg, rpm,
// registry (Windows uninstall keys), app (macOS /Applications) or file
// (SoftwareFileEnv).
type Package struct {
	Name, Version, Source string
}

// SoftwareFileEnv names a test and diagnostic hook: when this environment
// variable holds a file name, Software reads the package list from that
// file, in the format of `dpkg-query -W` (name TAB version per line),
// instead of asking the system. The end-to-end tests give simulated
// agents different inventories this way.
const SoftwareFileEnv = "PATCHBAY_INVENTORY_SOFTWARE_FILE"

// Software lists the installed software: on Linux dpkg and rpm (whichever
// are present), on Windows the uninstall registry keys (64- and 32-bit
// views, machine and current user), on macOS the applications in
// /Applications. An error means no source could be read.
func (c *Collector) Software(ctx context.Context) ([]Package, error) {
	if f := os.Getenv(SoftwareFileEnv); f != "" {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("software from %s (%s): %w", f, SoftwareFileEnv, err)
		}
		return parseDpkg(data, "file"), nil
	}
	return c.software(ctx)
}

// dpkgFormat makes dpkg-query print the status too, so that packages
// removed with their configuration kept ("rc") are left out.
const dpkgFormat = "${binary:Package}\t${Version}\t${db:Status-Abbrev}\n"

// parseDpkg parses `dpkg-query -W` output (name TAB version) or the
// dpkgFormat output (with a status column: only installed packages, whose
// status abbreviation has "i" second, are kept).
func parseDpkg(out []byte, source string) []Package {
	var pkgs []Package
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) < 2 || strings.TrimSpace(f[0]) == "" {
			continue
		}
		if len(f) >= 3 {
			st := strings.TrimSpace(f[2])
			if len(st) < 2 || st[1] != 'i' {
				continue
			}
		}
		pkgs = append(pkgs, Package{Name: strings.TrimSpace(f[0]), Version: strings.TrimSpace(f[1]), Source: source})
	}
	return pkgs
}

// rpmFormat is the rpm -qa --queryformat used: name TAB epoch:version-release.
const rpmFormat = "%{NAME}\t%{EPOCH}:%{VERSION}-%{RELEASE}\n"

// parseRPM parses rpmFormat output; an epoch of "(none)" is dropped, and
// so are the gpg-pubkey pseudo-packages.
func parseRPM(out []byte) []Package {
	var pkgs []Package
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name, ver, ok := strings.Cut(sc.Text(), "\t")
		name = strings.TrimSpace(name)
		if !ok || name == "" || name == "gpg-pubkey" {
			continue
		}
		ver = strings.TrimPrefix(strings.TrimSpace(ver), "(none):")
		pkgs = append(pkgs, Package{Name: name, Version: ver, Source: "rpm"})
	}
	return pkgs
}

// plistVersion returns CFBundleName (or the fallback) and
// CFBundleShortVersionString (or CFBundleVersion) from an XML property
// list, as found in an application's Contents/Info.plist.
func plistVersion(data []byte, fallback string) (name, version string) {
	s := string(data)
	get := func(key string) string {
		i := strings.Index(s, "<key>"+key+"</key>")
		if i < 0 {
			return ""
		}
		rest := s[i+len("<key>"+key+"</key>"):]
		j := strings.Index(rest, "<string>")
		k := strings.Index(rest, "</string>")
		if j < 0 || k < j || strings.Contains(rest[:j], "<key>") {
			return ""
		}
		return xmlUnescape(strings.TrimSpace(rest[j+len("<string>") : k]))
	}
	name = get("CFBundleName")
	if name == "" {
		name = fallback
	}
	version = get("CFBundleShortVersionString")
	if version == "" {
		version = get("CFBundleVersion")
	}
	return name, version
}

func xmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&quot;", `"`, "&apos;", "'").Replace(s)
}
