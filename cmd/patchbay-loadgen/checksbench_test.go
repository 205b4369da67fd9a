package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/testtool"
)

// TestChecksBench runs the checks part end to end at a small scale: a real
// relay (built here) on a PostgreSQL started for it, 20 simulated agents in
// two agents processes (this command, built here) that get the policy and
// report every 10 s; then the report section. Every agent holds the policy,
// the passing window's results were acknowledged, and the changing window
// (half the results change) wrote rows where the passing one wrote none
// beyond the idle floor's.
func TestChecksBench(t *testing.T) {
	if _, err := exec.LookPath("initdb"); err != nil {
		if dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(dirs) == 0 {
			testtool.Missing(t, "initdb", "postgresql", err)
		}
	}
	bin := t.TempDir()
	for _, pkg := range []string{"../patchbay-server", "."} {
		if out, err := exec.Command("go", "build", "-o", bin+"/", pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	dir := t.TempDir()
	o := benchOptions{
		out: filepath.Join(dir, "benchmarks.md"), procs: 2, cacheDir: filepath.Join(dir, "cache"),
		serverBin: filepath.Join(bin, "patchbay-server"), loadgenBin: filepath.Join(bin, "patchbay-loadgen"),
		heartbeat: 25 * time.Second, only: "checks",
		checks: checksOptions{agents: 20, interval: 10 * time.Second, window: 12 * time.Second, flip: 0.5},
	}
	if err := o.checkSessions(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := runChecks(ctx, o, filepath.Join(o.cacheDir, "last-run"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.phases) != 3 {
		t.Fatalf("%d phases, want idle, passing, changing", len(r.phases))
	}
	idle, pass, chg := r.phases[0], r.phases[1], r.phases[2]
	if idle.sent != 0 || pass.agentsWithPolicy != 20 || pass.sent < 20 || pass.acked < pass.sent-20 || pass.changed != 0 {
		t.Errorf("idle sent %d; passing: %d agents with the policy, %d sent, %d acknowledged, %d changed", idle.sent,
			pass.agentsWithPolicy, pass.sent, pass.acked, pass.changed)
	}
	if chg.changed == 0 || chg.rows() < 2*chg.changed {
		t.Errorf("changing window: %d results changed, %d rows written (want at least the event and the state of each)", chg.changed, chg.rows())
	}
	if err := writeChecksOnly(o.out, r); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(o.out)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, want := range []string{checksBegin, checksEnd, "idle, no policy", "every result passing", "50 % of results changing", "pg_stat_database"} {
		if !strings.Contains(doc, want) {
			t.Errorf("report lacks %q:\n%s", want, doc)
		}
	}
	t.Log(doc)
}
