package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWriteInventoryOnly: the inventory section is added, then replaced in
// place, the rest of the report kept; a slow query or a wrong count is
// reported as missing the target.
func TestWriteInventoryOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "benchmarks.md")
	other := "# Benchmarks\n\n## Results\n\nfleet figures\n"
	if err := os.WriteFile(path, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &inventoryResults{started: time.Now(), opts: inventoryOptions{agents: 10, packages: 5}, cmd: "bench --only inventory"}
	r.engines = []inventoryEngine{
		{name: "SQLite", first: time.Second, rows: 50, bytes: 1 << 20, queries: []time.Duration{time.Millisecond}, matched: 5, wantMatched: 5},
		{name: "PostgreSQL", first: time.Second, rows: 50, bytes: 1 << 20, queries: []time.Duration{300 * time.Millisecond}, matched: 5, wantMatched: 5},
	}
	for run := range 2 {
		if err := writeInventoryOnly(path, r); err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile(path)
		doc := string(raw)
		if !strings.HasPrefix(doc, other) || strings.Count(doc, inventoryBegin) != 1 || strings.Count(doc, inventoryEnd) != 1 {
			t.Fatalf("run %d: not the old report with one inventory section:\n%s", run, doc)
		}
		if !strings.Contains(doc, "SQLite: first round 1.0 s") || !strings.Contains(doc, "5 agents (want 5): meets") ||
			!strings.Contains(doc, "(max 300 ms), 5 agents (want 5): **misses**") {
			t.Fatalf("run %d: figures or verdicts wrong:\n%s", run, doc)
		}
	}
	// The selector selects exactly the agents with an old openssl.
	for i := range 8 {
		p := benchPackages(i, 4, false)
		if len(p) != 4 || p[len(p)-1].Name != "openssl" {
			t.Fatalf("agent %d packages %v", i, p)
		}
	}
}
