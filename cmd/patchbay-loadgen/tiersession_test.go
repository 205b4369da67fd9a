package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWriteTierSessionOnly: the tier session section goes right after the
// tier section, is replaced in place on the next run, keeps the rest of the
// report, and compares B with A against the 0.8× target.
func TestWriteTierSessionOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "benchmarks.md")
	before := "# Benchmarks\n\n" + tierBegin + "\ntier figures\n" + tierEnd
	after := "\n\n### Six relays\n\nby hand\n"
	if err := os.WriteFile(path, []byte(before+after), 0o644); err != nil {
		t.Fatal(err)
	}
	copyOf := func(d time.Duration, relay, peer time.Duration) scpResult {
		return scpResult{transfer: transfer{bytes: 512 << 20, elapsed: d, use: cpuUse{relay: relay, peer: peer, wall: d}}, cipher: "aes128-gcm@openssh.com"}
	}
	r := &tierSessionResults{started: time.Now(), pg: "15", loadBefore: "1.00, 1.00, 1.00", loadAfter: "2.00, 1.00, 1.00"}
	r.opts.scpMiB = 512
	r.sameDown, r.sameUp = copyOf(4*time.Second, 2*time.Second, 0), copyOf(4*time.Second, 2*time.Second, 0)
	r.fwdDown = copyOf(5*time.Second, 2*time.Second, time.Second) // 0.80×: met
	r.fwdUp = copyOf(8*time.Second, 2*time.Second, time.Second)   // 0.50×: not met
	for run := range 2 {
		if err := writeTierSessionOnly(path, r); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		doc := string(raw)
		if !strings.HasPrefix(doc, before+"\n\n"+tierSessionBegin) || !strings.HasSuffix(doc, tierSessionEnd+after) ||
			strings.Count(doc, tierSessionBegin) != 1 {
			t.Fatalf("run %d: the section is not once, right after the tier section, with the rest kept:\n%s", run, doc)
		}
		for _, want := range []string{"| 0.80× | ≥ 0.8× | **met** |", "| 0.50× | ≥ 0.8× | **NOT met** |",
			"relay A 40 %, relay B 20 %", "from the agent 6.00 s with the technician on B, 4.00 s on A", "load average"} {
			if !strings.Contains(strings.ToLower(doc), strings.ToLower(want)) {
				t.Fatalf("run %d: %q missing:\n%s", run, want, doc)
			}
		}
	}
}
