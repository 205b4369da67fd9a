package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseSources(t *testing.T) {
	one, err := parseSources("127.0.0.2")
	if err != nil || len(one) != 1 || one[0].String() != "127.0.0.2" {
		t.Fatalf("one address: %v %v", one, err)
	}
	r, err := parseSources("127.0.0.2-127.0.0.255")
	if err != nil || len(r) != 254 || r[0].String() != "127.0.0.2" || r[253].String() != "127.0.0.255" {
		t.Fatalf("range: %d addresses, %v", len(r), err)
	}
	cross, err := parseSources("10.0.0.255-10.0.1.1")
	if err != nil || len(cross) != 3 || cross[1].String() != "10.0.1.0" {
		t.Fatalf("range across a /24: %v %v", cross, err)
	}
	for _, bad := range []string{"", "nope", "127.0.0.9-127.0.0.2", "127.0.0.1-::1", "127.0.0.1-x", "10.0.0.0-10.1.0.0"} {
		if _, err := parseSources(bad); err == nil {
			t.Errorf("parseSources(%q): no error", bad)
		}
	}
}

func TestDue(t *testing.T) {
	for _, c := range []struct {
		el   time.Duration
		rate int
		want int
	}{{0, 1000, 0}, {999 * time.Microsecond, 1000, 0}, {time.Millisecond, 1000, 1}, {2500 * time.Millisecond, 1000, 2500}, {time.Second, 3, 3}} {
		if got := due(c.el, c.rate); got != c.want {
			t.Errorf("due(%v, %d) = %d, want %d", c.el, c.rate, got, c.want)
		}
	}
}

func TestFloodStatsReport(t *testing.T) {
	var s floodStats
	for i := range 100 {
		s.add(429, "3", time.Duration(i+1)*time.Millisecond, nil)
	}
	s.add(401, "", 80*time.Millisecond, nil)
	s.add(429, "12", time.Millisecond, nil)
	s.add(0, "", 0, errors.New("dial: refused"))
	r := s.report(103, 7, 1, 2*time.Second)
	if r.Status["429"] != 101 || r.Status["401"] != 1 || r.Errors != 1 || r.Skipped != 7 || r.RetryAfter != 12 || r.LastError != "dial: refused" {
		t.Fatalf("report: %+v", r)
	}
	if l := r.LatencyMS["429"]; l.N != 101 || l.P50 != 50 || l.P99 != 99 {
		t.Fatalf("429 latency: %+v", l)
	}
	txt := floodText(&r)
	for _, want := range []string{"103 sent in 2.0 s (52/s) from 1 address(es)", "**1 × 401**", "**101 × 429**", "1 with no answer", "7 not sent", "Retry-After 12 s"} {
		if !strings.Contains(txt, want) {
			t.Errorf("floodText lacks %q: %s", want, txt)
		}
	}
	if strings.Index(txt, "× 401") > strings.Index(txt, "× 429") {
		t.Errorf("statuses out of order: %s", txt)
	}
}

func TestStatusKeys(t *testing.T) {
	got := strings.Join(statusKeys(map[string]int{"500": 1, "429": 1, "1000": 1, "401": 1}), ",")
	if got != "401,429,500,1000" {
		t.Fatalf("statusKeys = %s", got)
	}
}

func TestHashMet(t *testing.T) {
	r := &authResults{hashWall: make([]time.Duration, 4)}
	for cpu, want := range map[time.Duration]bool{4 * 49 * time.Millisecond: false, 4 * 76 * time.Millisecond: true, 4 * 101 * time.Millisecond: false} {
		r.hashCPU = cpu
		if r.hashMet() != want {
			t.Errorf("hash CPU %v per hash: met %v, want %v", r.hashPerCPU(), !want, want)
		}
	}
	if (&authResults{}).hashMet() {
		t.Error("nothing measured counts as met")
	}
}

func TestWriteAuthOnlyKeepsOtherParts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench.md")
	other := "# Benchmarks\n\nfleet figures\n\n" + consoleBegin + "\nconsole figures\n" + consoleEnd + "\n"
	if err := os.WriteFile(path, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	ms := func(v ...int) []time.Duration {
		var ds []time.Duration
		for _, x := range v {
			ds = append(ds, time.Duration(x)*time.Millisecond)
		}
		return ds
	}
	r := &authResults{opts: benchOptions{auth: authOptions{agents: 5, window: 10 * time.Second, rate: 1000}}, cmd: "bench --only auth",
		hashWall: ms(80, 81), hashCPU: 160 * time.Millisecond, agents: 5,
		phases: []authPhase{
			{name: "idle", wall: 10 * time.Second, relayCPU: time.Second, whoami: ms(1, 2), bobLogin: ms(90, 95)},
			{name: "one source", floodCmd: "patchbay-loadgen auth-flood --sources 127.0.0.2", wall: 10 * time.Second, relayCPU: 5 * time.Second,
				whoami: ms(2, 4), bobLogin: ms(100), flood: &floodReport{Sources: 1, Sent: 10000, Seconds: 10, Status: map[string]int{"401": 23, "429": 9977}}},
		}}
	for i := range 2 { // twice: the second run replaces the section
		if err := writeAuthOnly(path, r); err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile(path)
		doc := string(raw)
		if strings.Count(doc, authBegin) != 1 || strings.Count(doc, authEnd) != 1 {
			t.Fatalf("run %d: want one auth section:\n%s", i, doc)
		}
		for _, want := range []string{"fleet figures", "console figures", "**80.0 ms of CPU per hash**", "**met**",
			"**23 × 401**", "**9,977 × 429**", "p99 2.0× idle's", "**50 %**", "auth-flood --sources 127.0.0.2",
			"the relay checked **23 wrong passwords where its limits allow 11**", "took up to **100.0 ms** (idle: 95.0 ms)"} {
			if !strings.Contains(doc, want) {
				t.Errorf("run %d: report lacks %q", i, want)
			}
		}
	}
}

func TestLimiterBudget(t *testing.T) {
	// One user name from unknown addresses: the user's 10 at once, then one
	// per 10 s, whatever the number of sources.
	for _, c := range []struct {
		sources int
		secs    float64
		want    int
	}{{1, 0, 10}, {1, 31, 13}, {254, 31, 13}, {254, 9.9, 10}} {
		if got := limiterBudget(c.sources, c.secs); got != c.want {
			t.Errorf("limiterBudget(%d, %v) = %d, want %d", c.sources, c.secs, got, c.want)
		}
	}
}

func TestCountLinesAndLoadAvg(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.log")
	log := `{"level":"warn","message":"failed sign-in (further failures ...)"}` + "\n" +
		`{"level":"warn","message":"something else"}` + "\n" + `{"level":"warn","message":"failed sign-in"}` + "\n"
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	if n := countLines(path, `"message":"failed sign-in`); n != 2 {
		t.Fatalf("countLines = %d, want 2", n)
	}
	if n := countLines(filepath.Join(t.TempDir(), "none"), "x"); n != 0 {
		t.Fatalf("countLines of a missing file = %d", n)
	}
	if f := strings.Split(loadAvg(), ", "); len(f) != 3 {
		t.Fatalf("loadAvg = %q, want three fields", loadAvg())
	}
}
