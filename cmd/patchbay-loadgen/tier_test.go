package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWriteTierOnly: the tier section is added to a report, then replaced
// in place on the next run, and the rest of the report is kept.
func TestWriteTierOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "benchmarks.md")
	other := "# Benchmarks\n\n## Results\n\nfleet figures\n"
	if err := os.WriteFile(path, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &tierResults{started: time.Now(), pg: "15", killed: "C", killedAgents: 10, backHealth: 2 * time.Second, backPresence: 3 * time.Second}
	r.opts.tier = tierOptions{agents: 30, relays: 3, warm: 1}
	run := jobRun{elapsed: 100 * time.Millisecond, relayCPU: 3 * time.Millisecond, ok: true}
	r.single = tierJobs{name: "one", relays: 1, agents: 30, first: run, warm: []jobRun{run}}
	slow := run
	slow.elapsed = 200 * time.Millisecond
	r.tier = tierJobs{name: "tier", relays: 3, agents: 30, first: slow, warm: []jobRun{slow}}
	r.idle = []tierRelayUse{{name: "A", online: 10, restKiB: 100, idleKiB: 200}}
	r.idleWindow = 10 * time.Second
	for run := range 2 {
		if err := writeTierOnly(path, r); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		doc := string(raw)
		if !strings.HasPrefix(doc, other) || strings.Count(doc, tierBegin) != 1 || strings.Count(doc, tierEnd) != 1 {
			t.Fatalf("run %d: report is not the old one with one tier section:\n%s", run, doc)
		}
		// 200 ms against 100 ms: twice one relay, over the 1.5× target.
		if !strings.Contains(doc, "**NOT met** (2.00×)") {
			t.Fatalf("run %d: the job ratio is not 2.00× and not met:\n%s", run, doc)
		}
		if !strings.Contains(doc, "**2.0 s**") {
			t.Fatalf("run %d: the failover time is missing:\n%s", run, doc)
		}
	}
}
