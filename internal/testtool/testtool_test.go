package testtool

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNeed runs this package's test binary as a child for each case, since
// a skip or a failure ends the test that asks.
func TestNeed(t *testing.T) {
	if name := os.Getenv("TESTTOOL_CHILD"); name != "" {
		t.Logf("found %s", Need(t, name, "the-package"))
		return
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("sh is not installed: apt-get install -y dash")
	}
	missing := "patchbay-no-such-tool"
	for _, tc := range []struct {
		name, tool, require string
		fail                bool
		want                []string
	}{
		{"present", "sh", "1", false, []string{"--- PASS", "found " + sh}},
		{"absolute path", sh, "1", false, []string{"--- PASS", "found " + sh}},
		{"missing fails by default", missing, "", true, []string{"--- FAIL", missing + " is not installed", "apt-get install -y the-package", "set PATCHBAY_REQUIRE_TOOLS=0"}},
		{"missing skips with 0", missing, "0", false, []string{"--- SKIP", missing + " is not installed", "apt-get install -y the-package"}},
		{"missing fails with 1", missing, "1", true, []string{"--- FAIL", missing + " is not installed", "apt-get install -y the-package"}},
		{"missing absolute path fails", filepath.Join(t.TempDir(), missing), "1", true, []string{"--- FAIL", "apt-get install -y the-package"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestNeed$", "-test.v")
			cmd.Env = append(os.Environ(), "TESTTOOL_CHILD="+tc.tool, Env+"="+tc.require)
			out, err := cmd.CombinedOutput()
			if (err != nil) != tc.fail {
				t.Fatalf("child test: %v, want failure %v\n%s", err, tc.fail, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("child output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
