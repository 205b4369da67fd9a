package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// policy returns patchbay policies show NAME -o json.
func (c *CLI) policy(t *testing.T, name string) apiv1.Policy {
	t.Helper()
	var p apiv1.Policy
	if err := json.Unmarshal([]byte(c.Run("policies", "show", name, "-o", "json")), &p); err != nil {
		t.Fatalf("policies show %s: %v", name, err)
	}
	return p
}

// selfHealJobs returns the jobs a policy created.
func (c *CLI) selfHealJobs(t *testing.T, policy string) []apiv1.Job {
	t.Helper()
	var all, out []apiv1.Job
	if err := json.Unmarshal([]byte(c.Run("jobs", "list", "-o", "json")), &all); err != nil {
		t.Fatal(err)
	}
	for _, j := range all {
		if j.CreatedBy == "policy "+policy+" (self-heal)" {
			out = append(out, c.job(t, j.ID))
		}
	}
	return out
}

func countLines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\n")
}

// TestChecksSelfHealAndOffline: a check that fails makes the agent ask for
// its policy's fix, which runs as a signed script through a job the policy
// owns (visible in jobs and the audit log), and the check passes after it;
// a fix that does not help is not repeated; checks go on while the relay is
// down and their results arrive after it is back.
func TestChecksSelfHealAndOffline(t *testing.T) {
	t.Parallel() // independent: its own relays, data and agents
	f := newPluginFleet(t)
	cli := f.cli
	cli.publish(t, f.good, bin("plugins/script"))
	dir := t.TempDir()
	script := filepath.Join(dir, "clear-dir.sh")
	os.WriteFile(script, []byte("#!/bin/sh\n# patchbay:begin\n# name: clear-dir\n# description: empties a cache directory\n# os: linux, darwin\n"+
		"# param: dir string required -- the directory to empty\n# param: log string required -- a file that counts the runs\n# patchbay:end\n"+
		"rm -f \"$PATCHBAY_PARAM_DIR\"/*\necho ran >> \"$PATCHBAY_PARAM_LOG\"\n"), 0o644)
	cli.Run("plugins", "sign", "--key", f.good.Key, script)
	cli.Run("scripts", "publish", script)

	// A cache directory over its limit; the fix empties it.
	cache, cacheLog := filepath.Join(dir, "cache"), filepath.Join(dir, "cache.log")
	os.Mkdir(cache, 0o755)
	fill := func() { os.WriteFile(filepath.Join(cache, "junk"), make([]byte, 10000), 0o644) }
	fill()
	cli.Run("policies", "create", "cache", "--target", "id="+f.agent.ID, "--check", "builtin:dir-size",
		"--param", "path="+cache, "--threshold", "1000", "--interval", "10s",
		"--fix", "script:clear-dir", "--fix-param", "dir="+cache, "--fix-param", "log="+cacheLog, "--max-fixes-per-day", "3")
	// The disk is never 100% free: this check fails whatever its fix does.
	diskLog := filepath.Join(dir, "disk.log")
	cli.Run("policies", "create", "disk", "--target", "fleet=plugins", "--check", "builtin:disk-space",
		"--param", "path="+dir, "--threshold", "100", "--interval", "10s",
		"--fix", "script:clear-dir", "--fix-param", "dir="+filepath.Join(dir, "elsewhere"), "--fix-param", "log="+diskLog)
	if out := cli.Run("policies", "list"); !strings.Contains(out, "cache") || !strings.Contains(out, "builtin:disk-space") {
		t.Fatalf("policies list:\n%s", out)
	}

	fixedOnce := func() bool {
		p := cli.policy(t, "cache")
		n := 0
		for _, e := range p.Events {
			if e.Fix == "helped" && e.State == "passed" {
				n++
			}
		}
		return n >= 1
	}
	waitFor(t, 60*time.Second, "the cache check to fail, self-heal and pass", fixedOnce)
	if _, err := os.Stat(filepath.Join(cache, "junk")); err == nil {
		t.Fatal("the fix did not empty the cache")
	}
	p := cli.policy(t, "cache")
	if len(p.States) != 1 || p.States[0].State != "passed" || p.States[0].CheckedAt == nil {
		t.Fatalf("cache state: %+v", p.States)
	}
	if p.Events[0].State != "failed" {
		t.Fatalf("first event %+v, want the failure", p.Events[0])
	}
	jobs := cli.selfHealJobs(t, "cache")
	if len(jobs) != 1 || jobs[0].Script != "clear-dir" || len(jobs[0].Results) != 1 || jobs[0].Results[0].State != "succeeded" {
		t.Fatalf("self-heal jobs: %+v", jobs)
	}
	audit := cli.Run("audit", "list", "--action", "job.create", "-o", "json")
	if !strings.Contains(audit, "policy cache (self-heal)") || !strings.Contains(audit, jobs[0].ID) {
		t.Fatalf("self-heal job not audited:\n%s", audit)
	}
	// The failure opened a check alert, which the passing check resolved by
	// itself (server/checkalerts.go).
	waitFor(t, 30*time.Second, "the cache check's alert to be resolved by itself", func() bool {
		for _, a := range cli.alerts(t, "--kind", "check") {
			if a.Check == "cache" && a.AgentID == f.agent.ID && a.State == "resolved" && a.ResolvedBy == "system" {
				return true
			}
		}
		return false
	})

	// The disk fix did not help: it ran once, and the check keeps failing
	// (reported at least twice more) without another fix.
	var notHelped time.Time
	waitFor(t, 60*time.Second, "the disk self-heal to be found useless", func() bool {
		for _, e := range cli.policy(t, "disk").Events {
			if e.Fix == "not_helped" {
				notHelped = e.At
				return true
			}
		}
		return false
	})
	waitFor(t, 60*time.Second, "two more disk checks", func() bool {
		st := cli.policy(t, "disk").States
		return len(st) == 1 && st[0].CheckedAt != nil && st[0].CheckedAt.After(notHelped.Add(15*time.Second))
	})
	if n := countLines(diskLog); n != 1 {
		t.Fatalf("the useless fix ran %d times, want 1", n)
	}
	if n := len(cli.selfHealJobs(t, "disk")); n != 1 {
		t.Fatalf("%d self-heal jobs for disk, want 1", n)
	}
	// The useless fix opened a selfheal_failed alert that stays open.
	healAlert := false
	for _, a := range cli.alerts(t, "--kind", "selfheal_failed", "--state", "open") {
		healAlert = healAlert || (a.Check == "disk" && a.AgentID == f.agent.ID)
	}
	if !healAlert {
		t.Fatalf("no open selfheal_failed alert for disk: %+v", cli.alerts(t))
	}

	// Relay down: the agent keeps checking; the cache fills and the check
	// fails with nobody to tell; its result arrives after the restart.
	f.relay.proc.stop(t)
	down := time.Now()
	fill()
	waitFor(t, 60*time.Second, "the agent to find the cache full while the relay is down", func() bool {
		return strings.Contains(f.agent.proc.log.String(), `"state":"failed","summary":"`+cache)
	})
	f.relay.Start()
	waitFor(t, 90*time.Second, "the offline failure to arrive, and the second self-heal to fix it", func() bool {
		p := cli.policy(t, "cache")
		failedWhileDown, healed := false, 0
		for _, e := range p.Events {
			if e.State == "failed" && e.At.After(down) {
				failedWhileDown = true
			}
			if e.Fix == "helped" {
				healed++
			}
		}
		return failedWhileDown && healed == 2
	})
	if n := countLines(cacheLog); n != 2 {
		t.Fatalf("the cache fix ran %d times, want 2", n)
	}
	cli.Run("policies", "delete", "disk")
	if _, _, err := cli.Try("policies", "show", "disk"); err == nil {
		t.Fatal("deleted policy still shown")
	}
}

// TestPluginChecksAndSiteLimit: a plugin's Check runs as a policy check
// (verified like any run, nothing changed); two agents of one site fail the
// same policy and the relay allows one self-heal per site and hour: the
// other agent's request is refused.
func TestPluginChecksAndSiteLimit(t *testing.T) {
	f := newPluginFleet(t)
	cli := f.cli
	second := f.relay.Enroll(cli.Token("--tags", "fleet=plugins"), "--trust", f.good.allowedSigners(t)).Start()
	waitFor(t, 10*time.Second, "second agent online", func() bool { return cli.Online(second.ID) })
	cli.publish(t, f.good, bin("plugins/testplugin"))

	cli.Run("policies", "create", "plug-ok", "--target", "fleet=plugins", "--check", "testplugin", "--param", "mode=clean", "--interval", "10s")
	count := filepath.Join(t.TempDir(), "count")
	cli.Run("policies", "create", "plug-bad", "--target", "fleet=plugins", "--check", "testplugin", "--param", "mode=echo",
		"--param", "text=broken", "--interval", "10s", "--fix", "testplugin", "--fix-param", "countfile="+count,
		"--max-fixes-per-site-hour", "1", "--max-fixes-per-day", "5")
	states := func(name, want, summary string) bool {
		st := cli.policy(t, name).States
		if len(st) != 2 {
			return false
		}
		for _, s := range st {
			if s.State != want || !strings.Contains(s.Summary, summary) {
				return false
			}
		}
		return true
	}
	waitFor(t, 60*time.Second, "both agents to pass plug-ok", func() bool { return states("plug-ok", "passed", "nothing to do") })
	waitFor(t, 60*time.Second, "both agents to fail plug-bad", func() bool { return states("plug-bad", "failed", "broken") })
	waitFor(t, 60*time.Second, "one self-heal to run and not help, the other to be refused", func() bool {
		notHelped := 0
		for _, e := range cli.policy(t, "plug-bad").Events {
			if e.Fix == "not_helped" {
				notHelped++
			}
		}
		return notHelped == 1 && strings.Contains(f.relay.Log().String(), "self-heal refused")
	})
	if n := len(cli.selfHealJobs(t, "plug-bad")); n != 1 {
		t.Fatalf("%d self-heal jobs, want 1 (the site allows one an hour)", n)
	}
	if n := countLines(count); n != 1 {
		t.Fatalf("the fix ran %d times, want 1", n)
	}
	if !strings.Contains(f.relay.Log().String(), "self-heals in this site within the hour") {
		t.Fatal("the refusal does not name the site limit")
	}
}
