package packaging

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager
)

// PackageSpec is one Linux package: a program with its systemd unit.
type PackageSpec struct {
	// Program is the binary the package ships as /usr/bin/<Program>; it is also
	// the package's and the unit's name.
	Program     string
	Description string
	// User is the system user the postinstall creates ("" for none).
	User string
	// DataDir is the service's state directory, shipped empty with DataMode.
	DataDir  string
	DataMode os.FileMode
}

// Packages are the .deb and .rpm packages of a release.
var Packages = []PackageSpec{
	{
		Program:     "patchbay-agent",
		Description: "Patchbay agent: lets the helpdesk reach and fix this machine through a Patchbay relay (sessions with the user's consent, signed plugins)",
		DataDir:     "/var/lib/patchbay-agent", DataMode: 0o700,
	},
	{
		Program:     "patchbay-server",
		Description: "Patchbay relay: the server agents dial out to and technicians connect through (API, web console, jobs, audit log)",
		User:        "patchbay",
		DataDir:     "/var/lib/patchbay", DataMode: 0o700,
	},
}

// PackageVersion turns a git-describe version into a Debian and RPM version:
// a leading "v" goes, one that does not start with a digit gets "0.0.0+" in
// front (a bare commit), and the describe suffix follows a "+", so 1.2.3-4-gabc
// sorts after 1.2.3 and before 1.2.4 in both.
func PackageVersion(v string) string {
	v = strings.TrimPrefix(v, "v")
	if v == "" || v[0] < '0' || v[0] > '9' {
		v = "0.0.0+" + v
	}
	var b strings.Builder
	plus := strings.Contains(v, "+")
	for _, r := range v {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '.', r == '+', r == '~':
			b.WriteRune(r)
		case r == '-' && !plus:
			b.WriteByte('+')
			plus = true
		default:
			b.WriteByte('.')
		}
	}
	return b.String()
}

// PackageInfo is the nfpm description of spec for arch (amd64, arm64): its
// files are taken from o.Out (the binary) and o.Repo (deploy/), its
// maintainer scripts from scriptDir (written by writeScripts).
func PackageInfo(o Options, spec PackageSpec, arch, scriptDir string) *nfpm.Info {
	bin := filepath.Join(o.Out, FileName(spec.Program, o.Version, Platform{"linux", arch}))
	deploy := func(p string) string { return filepath.Join(o.Repo, "deploy", p) }
	contents := files.Contents{
		{Source: bin, Destination: "/usr/bin/" + spec.Program, FileInfo: &files.ContentFileInfo{Mode: 0o755}},
		{Source: deploy("systemd/" + spec.Program + ".service"), Destination: "/lib/systemd/system/" + spec.Program + ".service",
			FileInfo: &files.ContentFileInfo{Mode: 0o644}},
		{Destination: "/etc/patchbay", Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o755}},
		{Source: deploy("packaging/" + spec.Program + ".env"), Destination: "/etc/patchbay/" + spec.Program + ".env",
			Type: files.TypeConfigNoReplace, FileInfo: &files.ContentFileInfo{Mode: 0o644}},
		{Destination: spec.DataDir, Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: spec.DataMode}},
	}
	if spec.User != "" {
		contents = append(contents, &files.Content{Source: deploy("packaging/" + spec.Program + ".sysusers"),
			Destination: "/usr/lib/sysusers.d/" + spec.Program + ".conf", FileInfo: &files.ContentFileInfo{Mode: 0o644}})
	}
	info := &nfpm.Info{
		Name:          spec.Program,
		Arch:          arch,
		Platform:      "linux",
		Version:       PackageVersion(o.Version),
		VersionSchema: "none",
		Release:       "1",
		Section:       "admin",
		Priority:      "optional",
		Maintainer:    "Patchbay <patchbay@localhost>",
		Vendor:        "Patchbay",
		Homepage:      "https://github.com/patchbay/patchbay",
		Description:   spec.Description,
		Overridables: nfpm.Overridables{
			Contents: contents,
			Scripts: nfpm.Scripts{
				PostInstall: filepath.Join(scriptDir, "postinstall"),
				PreRemove:   filepath.Join(scriptDir, "preremove"),
				PostRemove:  filepath.Join(scriptDir, "postremove"),
			},
			RPM: nfpm.RPM{Group: "System Environment/Daemons", Summary: spec.Program},
		},
	}
	return nfpm.WithDefaults(info)
}

// writeScripts writes spec's maintainer scripts (deploy/packaging/*.sh with
// @UNIT@ and @USER@ filled in) into dir.
func writeScripts(repo string, spec PackageSpec, dir string) error {
	r := strings.NewReplacer("@UNIT@", spec.Program, "@USER@", spec.User)
	for _, name := range []string{"postinstall", "preremove", "postremove"} {
		b, err := os.ReadFile(filepath.Join(repo, "deploy/packaging", name+".sh"))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(r.Replace(string(b))), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// BuildPackage writes spec's package for linux/arch in format ("deb" or
// "rpm") into o.Out under nfpm's conventional name, which it returns. The
// binary must be in o.Out already (Compile).
func BuildPackage(o Options, spec PackageSpec, arch, format string) (string, error) {
	if err := o.defaults(); err != nil {
		return "", err
	}
	fail := func(err error) (string, error) {
		return "", fmt.Errorf("release: %s package of %s for linux/%s: %w", format, spec.Program, arch, err)
	}
	scripts, err := os.MkdirTemp("", "patchbay-release-scripts-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(scripts)
	if err := writeScripts(o.Repo, spec, scripts); err != nil {
		return fail(err)
	}
	packager, err := nfpm.Get(format)
	if err != nil {
		return fail(err)
	}
	info := PackageInfo(o, spec, arch, scripts)
	if err := nfpm.PrepareForPackager(info, format); err != nil {
		return fail(err)
	}
	name := packager.ConventionalFileName(info)
	path := filepath.Join(o.Out, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fail(err)
	}
	if err := packager.Package(info, f); err != nil {
		f.Close()
		os.Remove(path)
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	return name, nil
}
