package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUpgradeBench runs the upgrade part end to end at a small scale: a
// real relay (built here) serving a release signed in the run, 20
// simulated agents in two agents processes (this command, built here) that
// download and verify it, reconnect on the new version and report; then
// the report section.
func TestUpgradeBench(t *testing.T) {
	bin := t.TempDir()
	for _, pkg := range []string{"../patchbay-server", "."} {
		if out, err := exec.Command("go", "build", "-o", bin+"/", pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "plugins")+"/", "../../plugins/sysinfo").CombinedOutput(); err != nil {
		t.Fatalf("go build sysinfo: %v\n%s", err, out)
	}
	dir := t.TempDir()
	o := benchOptions{
		out: filepath.Join(dir, "benchmarks.md"), procs: 2, cacheDir: filepath.Join(dir, "cache"),
		serverBin: filepath.Join(bin, "patchbay-server"), loadgenBin: filepath.Join(bin, "patchbay-loadgen"),
		heartbeat: 25 * time.Second, only: "upgrade",
		upgrade: upgradeOptions{agents: 20, binaryKiB: 64, warm: 1, canary: "1%", timeout: 2 * time.Minute},
	}
	if err := o.checkSessions(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := runUpgradeOnly(ctx, o, filepath.Join(o.cacheDir, "last-run")); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(o.out)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, want := range []string{
		upgradeBegin, upgradeEnd,
		"canary (1 agents) all succeeded", "; 20 succeeded |", // 1 % of 20 rounds up to one canary agent
		"20 upgraded, 0 failed, 0 not started",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("report lacks %q:\n%s", want, doc)
		}
	}
	t.Log(doc)
}
