package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/testtool"
)

// A patchinstall dry run on a real agent lists the machine's pending
// updates with its real package manager (apt here); the relay keeps them as
// the agent's pending updates, shown by inventory show and counted by the
// reports' patch compliance. A second run replaces the list.
func TestPendingUpdatesFromPatchinstall(t *testing.T) {
	t.Parallel() // independent: its own relays, data and agents
	testtool.Need(t, "apt-get", "apt")
	f := newPluginFleet(t)
	cli, target := f.cli, "id="+f.agent.ID
	pi := filepath.Join(t.TempDir(), "patchinstall")
	if out, err := exec.Command("go", "build", "-o", pi, "../plugins/patchinstall").CombinedOutput(); err != nil {
		t.Fatalf("build patchinstall: %v\n%s", err, out)
	}
	cli.publish(t, f.good, pi)

	inventory := func() apiv1.Inventory {
		t.Helper()
		var inv apiv1.Inventory
		if err := json.Unmarshal([]byte(cli.Run("inventory", "show", f.agent.ID, "-o", "json")), &inv); err != nil {
			t.Fatal(err)
		}
		return inv
	}
	if inv := inventory(); inv.Updates != nil {
		t.Fatalf("updates before any run: %+v", inv.Updates)
	}
	var rep apiv1.ReportSummary
	if err := json.Unmarshal([]byte(cli.Run("reports", "summary", "-o", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	if pc := rep.PatchCompliance; !pc.Collected || len(pc.PerAgent) != 1 || pc.PerAgent[0].State != "never-checked" {
		t.Fatalf("compliance before any run: %+v", pc)
	}

	var last apiv1.RunResult
	for i := range 2 {
		j, err := cli.runJob(t, "patchinstall", "--target", target, "--dry-run", "--param", "manager=apt")
		if err != nil {
			t.Fatalf("dry run %d: %v", i, err)
		}
		r := onlyResult(t, j)
		if r.State != "succeeded" && r.State != "skipped" {
			t.Fatalf("dry run %d = %+v", i, r)
		}
		u := inventory().Updates
		if u == nil || u.Manager != "apt" || u.RunID != r.RunID || u.Pending != len(u.List) || u.SecurityOnly ||
			u.Security == nil || (r.Needed != (u.Pending > 0)) {
			t.Fatalf("updates after dry run %d (%s): %+v", i, r.Summary, u)
		}
		if last.RunID != "" && !u.CheckedAt.After(*last.Started) {
			t.Fatalf("second run did not replace the first: checked %s, first run started %s", u.CheckedAt, last.Started)
		}
		last = r
	}
	u := inventory().Updates
	t.Logf("apt lists %d pending updates (%d security): %s", u.Pending, *u.Security, last.Summary)

	show := cli.Run("inventory", "show", f.agent.ID)
	if !strings.Contains(show, "Updates:") || !strings.Contains(show, "Last check:") || !strings.Contains(show, ", apt") {
		t.Fatalf("inventory show:\n%s", show)
	}
	if err := json.Unmarshal([]byte(cli.Run("reports", "summary", "-o", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	pc := rep.PatchCompliance
	want := "patched"
	switch {
	case *u.Security > 0:
		want = "security-pending"
	case u.Pending > 0:
		want = "updates-pending"
	}
	if len(pc.PerAgent) != 1 || pc.PerAgent[0].State != want || pc.PerAgent[0].Pending != u.Pending || len(pc.Sites) != 1 || pc.Sites[0].Agents != 1 {
		t.Fatalf("compliance = %+v, want %s", pc, want)
	}
	csv := cli.Run("reports", "summary", "-o", "csv", "--section", "patch-agents")
	if !strings.HasPrefix(csv, "agent,hostname,site,state,") || !strings.Contains(csv, f.agent.ID+",") || !strings.Contains(csv, ","+want+",") {
		t.Fatalf("patch-agents CSV:\n%s", csv)
	}
}
