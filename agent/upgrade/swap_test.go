package upgrade

import (
	"os"
	"path/filepath"
	"testing"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// swap keeps the old binary as .prev and installs the new one; restore
// puts the old one back and keeps the failed one as .failed.
func TestSwapAndRestore(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "patchbay-agent")
	writeFile(t, exe, "old")
	writeFile(t, exe+PrevSuffix, "older") // from an earlier upgrade: replaced
	tmp := filepath.Join(dir, ".patchbay-agent.upgrade-1")
	writeFile(t, tmp, "new")
	if err := swap(exe, tmp); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, exe); got != "new" {
		t.Fatalf("exe = %q after swap", got)
	}
	if got := readFile(t, exe+PrevSuffix); got != "old" {
		t.Fatalf("prev = %q after swap", got)
	}
	if st, err := os.Stat(exe + PrevSuffix); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("prev: %v, %v; want mode 0755", st, err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("the temporary file is still there: %v", err)
	}
	if err := restore(exe); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, exe); got != "old" {
		t.Fatalf("exe = %q after restore", got)
	}
	if got := readFile(t, exe+".failed"); got != "new" {
		t.Fatalf("failed = %q after restore", got)
	}
	if _, err := os.Stat(exe + PrevSuffix); !os.IsNotExist(err) {
		t.Fatalf("prev still there after restore: %v", err)
	}
	// Nothing to restore: an error, and exe is untouched.
	if err := restore(exe); err == nil {
		t.Fatal("restore without a .prev succeeded")
	}
	if got := readFile(t, exe); got != "old" {
		t.Fatalf("exe = %q after a failed restore", got)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("directory holds %d files, want exe and .failed", len(ents))
	}
}

// A swap into a directory the new binary is not in fails and leaves exe.
func TestSwapFailureKeepsExe(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "patchbay-agent")
	writeFile(t, exe, "old")
	if err := swap(exe, filepath.Join(dir, "missing")); err == nil {
		t.Fatal("swap of a missing file succeeded")
	}
	if got := readFile(t, exe); got != "old" {
		t.Fatalf("exe = %q after a failed swap", got)
	}
}
