// Package testtool is how a test asks for a program it drives (ssh-keygen,
// asciinema, cupsd, Chromium...). Without the program the test skips and
// says which program is missing and which Debian package provides it; with
// PATCHBAY_REQUIRE_TOOLS=1 (.ci/run sets it, after installing them all) it
// fails instead, so a broken install cannot pass as a row of skips.
package testtool

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Env is the variable that turns a missing program into a failure.
const Env = "PATCHBAY_REQUIRE_TOOLS"

// sbin are searched after PATH: cupsd, lpadmin and useradd live there, and
// a non-root PATH often leaves them out.
var sbin = []string{"/usr/local/sbin", "/usr/sbin", "/sbin"}

// Required reports whether a missing program fails the test
// (PATCHBAY_REQUIRE_TOOLS set to anything but "" or "0").
func Required() bool {
	v := os.Getenv(Env)
	return v != "" && v != "0"
}

// Need returns the path of tool: a name looked up in PATH and then in the
// sbin directories, or an absolute path. When it is missing, t skips (or,
// with PATCHBAY_REQUIRE_TOOLS=1, fails) naming tool and debPackage, the
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
// did not find: it skips, naming tool, debPackage and cause, or fails when
// PATCHBAY_REQUIRE_TOOLS is set.
func Missing(t testing.TB, tool, debPackage string, cause error) {
	t.Helper()
	msg := fmt.Sprintf("%s is not installed (%v): apt-get install -y %s", tool, cause, debPackage)
	if Required() {
		t.Fatalf("%s (%s is set, so a missing program fails the test)", msg, Env)
	}
	t.Skipf("%s; set %s=1 to fail instead (.ci/run does)", msg, Env)
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
