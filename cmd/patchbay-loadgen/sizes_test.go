package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunSizesOnly: the sizes section is made from a release directory's
// binaries, marks the Linux agent against 25 MB, is replaced in place on the
// next run, and keeps the rest of the report.
func TestRunSizesOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dist", "v1.0.0")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, size := range map[string]int64{
		"patchbay-agent_v1.0.0_linux_amd64":          20_000_000,
		"patchbay-agent_v1.0.0_linux_arm64":          26_000_000,
		"patchbay-agent_v1.0.0_windows_amd64.exe":    30_000_000,
		"patchbay_v1.0.0_linux_amd64":                15_000_000,
		"patchbay-server_v1.0.0_linux_amd64":         40_000_000,
		"patchbay-plugin-sysinfo_v1.0.0_linux_amd64": 13_000_000,
		"patchbay-agent_1.0.0-1_amd64.deb":           7_000_000,
		"SHA256SUMS":                                 100,
	} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	path := filepath.Join(t.TempDir(), "benchmarks.md")
	other := "# Benchmarks\n\n## Results\n\nfleet figures\n"
	if err := os.WriteFile(path, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	o := benchOptions{out: path, only: "sizes", releaseDir: dir}
	for run := range 2 {
		if err := runSizesOnly(o); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		doc := string(raw)
		if !strings.HasPrefix(doc, other) || strings.Count(doc, sizesBegin) != 1 || strings.Count(doc, sizesEnd) != 1 {
			t.Fatalf("run %d: report is not the old one with one sizes section:\n%s", run, doc)
		}
		for _, want := range []string{
			"| linux/amd64 | 20.0 MB | ≤ 25 MB | **met** | 15.0 MB | 40.0 MB |",
			"| linux/arm64 | 26.0 MB | ≤ 25 MB | **not met** | — | — |",
			"| windows/amd64 | 30.0 MB | — | measured | — | — |",
			"sysinfo 13.0 MB",
		} {
			if !strings.Contains(doc, want) {
				t.Fatalf("run %d: %q missing from\n%s", run, want, doc)
			}
		}
	}
	if err := runSizesOnly(benchOptions{out: path, releaseDir: filepath.Join(dir, "missing")}); err == nil || !strings.Contains(err.Error(), "make release") {
		t.Fatalf("sizes of a missing release directory: %v, want an error saying to run make release", err)
	}
}
