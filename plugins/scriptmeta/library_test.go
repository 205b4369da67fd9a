package scriptmeta

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/patchbay/patchbay/internal/testtool"
)

const libraryDir = "../../scripts"

// TestLibrary checks every script in scripts/: a valid header manifest that
// declares exactly the parameters the script reads, a unique name, a shell
// matching the extension, valid sh syntax, and an entry in the README.
func TestLibrary(t *testing.T) {
	var files []string
	for _, pat := range []string{"*.sh", "*.ps1"} {
		m, err := filepath.Glob(filepath.Join(libraryDir, pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	if len(files) < 9 {
		t.Fatalf("only %d scripts in %s", len(files), libraryDir)
	}
	readme, err := os.ReadFile(filepath.Join(libraryDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	uses := regexp.MustCompile(`PATCHBAY_PARAM_([A-Z0-9_]+)`)
	names := map[string]string{}
	for _, f := range files {
		base := filepath.Base(f)
		t.Run(base, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			s, err := Parse(base, data)
			if err != nil {
				t.Fatal(err)
			}
			m := s.Manifest
			if !s.HasManifest || m.Description == "" || m.Version == DefaultVersion || len(m.OS) == 0 {
				t.Fatalf("want a header with a description, a version and an os list: %+v", s)
			}
			if err := m.Validate(); err != nil {
				t.Fatal(err)
			}
			if other, dup := names[m.Name]; dup {
				t.Fatalf("name %q is also the name of %s", m.Name, other)
			}
			names[m.Name] = base
			if !strings.Contains(string(readme), "`"+base+"`") {
				t.Errorf("scripts/README.md does not list `%s`", base)
			}
			if s.Check && !strings.Contains(string(data), "PATCHBAY_MODE") {
				t.Errorf("check: true, but the script never looks at PATCHBAY_MODE")
			}
			declared := map[string]bool{}
			for _, p := range m.Params {
				declared[strings.ToUpper(p.Name)] = true
				if p.Description == "" {
					t.Errorf("parameter %s has no description", p.Name)
				}
			}
			used := map[string]bool{}
			for _, u := range uses.FindAllStringSubmatch(string(data), -1) {
				used[u[1]] = true
				if !declared[u[1]] {
					t.Errorf("reads PATCHBAY_PARAM_%s, which the header does not declare", u[1])
				}
			}
			for p := range declared {
				if !used[p] {
					t.Errorf("declares %s but never reads PATCHBAY_PARAM_%s", strings.ToLower(p), p)
				}
			}
			switch s.Shell {
			case ShellSh, ShellBash:
				if !regexp.MustCompile(`(?m)^set -eu`).Match(data) {
					t.Errorf("a shell script without set -eu")
				}
				shellSyntax(t, s.Shell, f)
			case ShellPowerShell:
				for i, b := range data {
					if b >= 0x80 { // Windows PowerShell 5.1 reads a file without a BOM as ANSI
						t.Fatalf("non-ASCII byte at offset %d", i)
					}
				}
				if !strings.Contains(string(data), "$ErrorActionPreference = 'Stop'") {
					t.Errorf("a PowerShell script without $ErrorActionPreference = 'Stop'")
				}
			default:
				t.Fatalf("shell %q", s.Shell)
			}
		})
	}
}

// shellSyntax runs `sh -n` (or `bash -n`) on file.
func shellSyntax(t *testing.T, shell, file string) {
	t.Helper()
	pkg := map[string]string{"sh": "dash"}[shell]
	if pkg == "" {
		pkg = shell // bash
	}
	path := testtool.Need(t, shell, pkg)
	if out, err := exec.Command(path, "-n", file).CombinedOutput(); err != nil {
		t.Fatalf("%s -n: %v\n%s", shell, err, out)
	}
}
