package main

import (
	"strings"
	"testing"
	"time"
)

func TestCheckToolsNamesTheMissingOne(t *testing.T) {
	err := checkTools([]string{"sh", "patchbay-no-such-tool"})
	if err == nil || !strings.Contains(err.Error(), "patchbay-no-such-tool") || strings.Contains(err.Error(), "sh,") {
		t.Fatalf("checkTools: %v", err)
	}
	if err := checkTools([]string{"sh"}); err != nil {
		t.Fatalf("checkTools(sh): %v", err)
	}
}

func TestRenderConsent(t *testing.T) {
	ds := func(ms ...int) []time.Duration {
		var out []time.Duration
		for _, m := range ms {
			out = append(out, time.Duration(m)*time.Millisecond)
		}
		return out
	}
	r := &consentResults{
		opts:    benchOptions{consentPrompts: 3, consentSettle: 10 * time.Second, consentIdle: 30 * time.Second},
		cmd:     "patchbay-loadgen bench --only consent",
		prompts: ds(150, 160, 900), floor: ds(120, 130, 140), told: ds(20, 30, 40),
		helper:    footprint{rss: 7 << 10, anon: 3 << 10, file: 4 << 10, threads: 7, window: 30 * time.Second},
		floorProc: footprint{rss: 4 << 10, window: 30 * time.Second},
	}
	doc := renderConsent(r)
	for _, want := range []string{
		consentBegin, consentEnd,
		"| Consent prompt visible in the user's session: technician's request → prompt window mapped (X MapNotify) | p50 160.0 ms, p99 900.0 ms, max 900.0 ms (3 prompts, 0 failed) | p99 ≤ 1 s | **met** |",
		"| Floor, same run: the same zenity dialog", "p50 130.0 ms",
		"| Helper RSS, idle (connected, nothing shown for 10s) | **7.0 MiB**", "| ≤ 5 MB (5 MiB) | **NOT met** |",
		"helper = **1.8×** floor",
		"| Helper CPU while idle", "0.000 % of one core: 0.00 s of CPU over 30.0 s", "| **met** |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("report lacks %q:\n%s", want, doc)
		}
	}
	// Splicing it keeps the other sections, and replaces the old one.
	old := "# Benchmarks\n\nfleet figures\n\n" + sessionsBegin + "\nsessions figures\n" + sessionsEnd + "\n\n" + consentBegin + "\nold consent\n" + consentEnd + "\n"
	got := spliceSection(old, consentBegin, consentEnd, doc)
	if !strings.Contains(got, "fleet figures") || !strings.Contains(got, "sessions figures") || strings.Contains(got, "old consent") ||
		strings.Count(got, consentBegin) != 1 || !strings.Contains(got, "p99 900.0 ms") {
		t.Errorf("spliced report:\n%s", got)
	}
}
