package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// TestTierPoliciesAndInventoryRefresh: two relays on one PostgreSQL (A runs
// the embedded NATS), a real agent on A. A policy created through relay B
// reaches the agent on A without it reconnecting: its check fails, the
// policy's fix runs as a self-heal job, the check passes, and B shows it
// all. A policy deleted through B leaves the agent. An inventory refresh
// asked through B reaches the agent on A (its new software list is
// stored), and the relay that holds the agent audits it.
func TestTierPoliciesAndInventoryRefresh(t *testing.T) {
	t.Parallel() // independent: its own relays, data and agents
	base := startTier(t)
	db, key, natsAddr, creds, a := base.db, base.key, base.natsAddr, base.creds, base.a
	b := startTierRelay(t, a, "--db", db, "--nats", "nats://"+natsAddr, "--nats-creds", creds, "--tier-key-file", key)
	token := strings.TrimSpace(run(t, nil, bin("patchbay-server"), "admin-token", "--data", a.Dir, "--db", db))
	cliB := b.Login(token)
	good := newSigner(t, "secops@example.com")

	ag := a.Enroll(cliB.Token("--tags", "fleet=tierchecks"), "--trust", good.allowedSigners(t))
	pkgs := startWithSoftware(t, ag, "openssl\t3.0.11-1\n")
	waitFor(t, 30*time.Second, "the agent on A to be online for B", func() bool { return cliB.Online(ag.ID) })
	waitFor(t, 30*time.Second, "the agent's first software list", func() bool { return len(cliB.holders(t, "openssl")) == 1 })
	waitFor(t, 30*time.Second, "the agent's (empty) policy set from A", func() bool { return ag.proc.log.Count("policies received") > 0 })

	// 1. A failing check with a fix, made through B.
	cliB.publish(t, good, bin("plugins/script"))
	dir := t.TempDir()
	script := filepath.Join(dir, "clear-dir.sh")
	os.WriteFile(script, []byte("#!/bin/sh\n# patchbay:begin\n# name: clear-dir\n# description: empties a cache directory\n# os: linux, darwin\n"+
		"# param: dir string required -- the directory to empty\n# patchbay:end\nrm -f \"$PATCHBAY_PARAM_DIR\"/*\n"), 0o644)
	cliB.Run("plugins", "sign", "--key", good.Key, script)
	cliB.Run("scripts", "publish", script)
	cache := filepath.Join(dir, "cache")
	os.Mkdir(cache, 0o755)
	os.WriteFile(filepath.Join(cache, "junk"), make([]byte, 10000), 0o644)
	from := logLines(ag)
	cliB.Run("policies", "create", "tiercache", "--target", "id="+ag.ID, "--check", "builtin:dir-size",
		"--param", "path="+cache, "--threshold", "1000", "--interval", "1h",
		"--fix", "script:clear-dir", "--fix-param", "dir="+cache)
	waitPolicySet(t, ag, from, 1)
	waitFor(t, 60*time.Second, "the check on A's agent to fail, self-heal and pass, seen through B", func() bool {
		p := cliB.policy(t, "tiercache")
		return slices.ContainsFunc(p.Events, func(e apiv1.CheckEvent) bool { return e.Fix == "helped" && e.State == "passed" })
	})
	p := cliB.policy(t, "tiercache")
	if p.Events[0].State != "failed" {
		t.Fatalf("events %+v: the failure is missing", p.Events)
	}
	if jobs := cliB.selfHealJobs(t, "tiercache"); len(jobs) != 1 || len(jobs[0].Results) != 1 || jobs[0].Results[0].State != "succeeded" {
		t.Fatalf("self-heal jobs: %+v", jobs)
	}
	if _, err := os.Stat(filepath.Join(cache, "junk")); err == nil {
		t.Fatal("the fix did not empty the cache")
	}

	// 2. Deleted through B: the agent drops it.
	from = logLines(ag)
	cliB.Run("policies", "delete", "tiercache")
	waitPolicySet(t, ag, from, 0)

	// 3. Inventory refresh through B, audited by A, which holds the agent.
	os.WriteFile(pkgs, []byte("openssl\t3.0.14-1\ncurl\t7.88.1-10\n"), 0o644)
	cliB.Run("inventory", "refresh", ag.ID)
	waitFor(t, 30*time.Second, "the refreshed software list", func() bool { return len(cliB.holders(t, "curl")) == 1 })
	audit := cliB.Run("audit", "list", "--action", "agent.inventory_refresh", "-o", "json")
	if strings.Count(audit, ag.ID) != 1 || !strings.Contains(audit, "via_relay") {
		t.Fatalf("inventory refresh audit (want one record, forwarded by B):\n%s", audit)
	}
	if linesWith(b.Log().String(), "forwarding a session to the relay that holds the agent", "inventory/refresh") != 1 {
		t.Fatalf("relay B did not forward the refresh to A:\n%s", b.Log())
	}
}

// logLines is how many lines the agent has logged.
func logLines(a *Agent) int { return strings.Count(a.proc.log.String(), "\n") }

// waitPolicySet waits for the agent to log a set of n policies after its
// first from lines, and fails the test if it reconnected before (the set
// must reach it on the link it has: a new link brings every set anyway).
func waitPolicySet(t *testing.T, a *Agent, from, n int) {
	t.Helper()
	want := fmt.Sprintf(`"policies":%d,`, n)
	waitFor(t, 30*time.Second, fmt.Sprintf("the agent to receive a set of %d policies on its link", n), func() bool {
		lines := strings.Split(a.proc.log.String(), "\n")
		for _, l := range lines[min(from, len(lines)):] {
			if strings.Contains(l, "connected to relay") {
				t.Fatalf("the agent reconnected before its new policy set arrived: %s", l)
			}
			if strings.Contains(l, "policies received") && strings.Contains(l, want) {
				return true
			}
		}
		return false
	})
}
