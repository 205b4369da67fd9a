package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// newTierKey makes a tier key the way an operator does and returns its path.
func newTierKey(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tier.key")
	out := run(t, nil, bin("patchbay-server"), "tier-key", "new", path)
	if !strings.Contains(out, "--tier-key-file") {
		t.Fatalf("tier-key new does not say what to do with the key: %q", out)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("tier-key new wrote no key: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	return path
}
