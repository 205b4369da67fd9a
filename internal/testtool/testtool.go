// Package testtool is how a test asks for a program it drives (ssh-keygen,
// asciinema, cupsd, Chromium...). Without the program the test fails and
// says which program is missing and which Debian package provides it, so a
// broken install (in CI above all) cannot pass as a row of skips. A
// developer without some program may set PATCHBAY_REQUIRE_TOOLS=0 to have
// those tests skip instead, with the same message.
package testtool

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Env is the variable whose value "0" lets a missing program skip the test.
const Env = "PATCHBAY_REQUIRE_TOOLS"

// sbin are searched after PATH: cupsd, lpadmin and useradd live there, and
// a non-root PATH often leaves them out.
var sbin = []string{"/usr/local/sbin", "/usr/sbin", "/sbin"}

// Required reports whether a missing program fails the test: always, unless
// PATCHBAY_REQUIRE_TOOLS is "0".
func Required() bool {
	return os.Getenv(Env) != "0"
}

// Need returns the path of tool: a name looked up in PATH and then in the
// sbin directories, or an absolute path. When it is missing, t fails (or,
// with PATCHBAY_REQUIRE_TOOLS=0, skips) naming tool and debPackage, the
// Debian package to install.
func Need(t testing.TB, tool, debPackage string) string {
	t.Helper()
	p, err := look(tool)
	if err != nil {
		Missing(t, tool, debPackage, err)
	}
	return p
}

// Missing ends t for a program the caller looked for by its own rules and
// did not find: it fails, naming tool, debPackage and cause, or skips with
// that message when PATCHBAY_REQUIRE_TOOLS=0.
func Missing(t testing.TB, tool, debPackage string, cause error) {
	t.Helper()
	msg := fmt.Sprintf("%s is not installed (%v): apt-get install -y %s", tool, cause, debPackage)
	if Required() {
		t.Fatalf("%s (or set %s=0 to skip the tests that need it)", msg, Env)
	}
	t.Skipf("%s (%s=0: skipped; CI never sets it)", msg, Env)
}

func look(tool string) (string, error) {
	p, err := exec.LookPath(tool)
	if err == nil || filepath.IsAbs(tool) {
		return p, err
	}
	for _, dir := range sbin {
		if q, err := exec.LookPath(filepath.Join(dir, tool)); err == nil {
			return q, nil
		}
	}
	return "", err
}
