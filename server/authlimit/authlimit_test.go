package authlimit

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func TestSourceThrottledThenDrains(t *testing.T) {
	l := New(Config{SourceBurst: 3, SourceEvery: 2 * time.Second})
	for i := range 3 {
		if th := l.Allow("198.51.100.7", "", t0); th != nil {
			t.Fatalf("attempt %d refused: %v", i, th)
		}
		l.Failed("198.51.100.7", "", t0)
	}
	th := l.Allow("198.51.100.7", "", t0)
	if th == nil || th.RetryAfter != 2*time.Second || !strings.Contains(th.Error(), "198.51.100.7: retry in 2s") {
		t.Fatalf("fourth attempt: %v; want a refusal saying retry in 2s", th)
	}
	if th := l.Allow("198.51.100.8", "", t0); th != nil {
		t.Fatalf("another source refused: %v", th)
	}
	if th := l.Allow("198.51.100.7", "", t0.Add(2*time.Second)); th != nil {
		t.Fatalf("after one drain period: %v", th)
	}
}

// An attacker's guesses against alice throttle alice from unknown
// addresses, never from the address she signed in from before.
func TestUserLimitSparesKnownSources(t *testing.T) {
	l := New(Config{SourceBurst: 1000, UserBurst: 5, UserEvery: 10 * time.Second})
	l.Succeeded("192.0.2.10", "alice", t0) // alice's office
	for i := range 5 {
		src := "203.0.113." + string(rune('1'+i)) // a botnet: a new address per guess
		if th := l.Allow(src, "alice", t0); th != nil {
			t.Fatalf("guess %d refused early: %v", i, th)
		}
		l.Failed(src, "alice", t0)
	}
	if th := l.Allow("203.0.113.99", "alice", t0); th == nil || th.User != "alice" || !strings.Contains(th.Error(), "user alice") {
		t.Fatalf("sixth guess from a new address: %v; want the user's limit", th)
	}
	if th := l.Allow("192.0.2.10", "alice", t0); th != nil {
		t.Fatalf("alice from her known address: %v; want allowed", th)
	}
	if th := l.Allow("203.0.113.99", "bob", t0); th != nil {
		t.Fatalf("another user: %v", th)
	}
	// alice mistyping from her known address does not count against her user limit.
	l2 := New(Config{UserBurst: 1})
	l2.Succeeded("192.0.2.10", "alice", t0)
	l2.Failed("192.0.2.10", "alice", t0)
	l2.Failed("192.0.2.10", "alice", t0)
	if th := l2.Allow("192.0.2.11", "alice", t0); th != nil {
		t.Fatalf("known-source typos counted against the user: %v", th)
	}
}

func TestFlushSummarises(t *testing.T) {
	l := New(Config{SourceBurst: 2})
	if !l.Failed("198.51.100.7", "alice", t0) {
		t.Fatal("first failure not reported as first")
	}
	if l.Failed("198.51.100.7", "bob", t0.Add(time.Second)) {
		t.Fatal("second failure reported as first")
	}
	l.Allow("198.51.100.7", "carol", t0.Add(2*time.Second)) // refused: counted
	got := l.Flush(t0.Add(3 * time.Second))
	if len(got) != 1 {
		t.Fatalf("summaries %+v", got)
	}
	s := got[0]
	if s.Source != "198.51.100.7" || s.Failures != 2 || s.Throttled != 1 || strings.Join(s.Users, ",") != "alice,bob,carol" ||
		!s.First.Equal(t0) || !s.Last.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("summary %+v", s)
	}
	if got := l.Flush(t0.Add(4 * time.Second)); len(got) != 0 {
		t.Fatalf("second flush %+v; want nothing new", got)
	}
	if !l.Failed("198.51.100.7", "", t0.Add(5*time.Second)) {
		t.Fatal("first failure after a flush not reported as first")
	}
}

func TestBoundedMemory(t *testing.T) {
	l := New(Config{MaxEntries: 100})
	for i := range 10_000 {
		src := SourceOf("[2001:db8:" + string(rune('a'+i%26)) + "::1]:443")
		l.Failed(src+string(rune(i)), "u"+string(rune(i)), t0)
	}
	if len(l.sources) > 100 || len(l.users) > 100 {
		t.Fatalf("%d sources, %d users tracked; want at most 100", len(l.sources), len(l.users))
	}
}

func TestSourceOf(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:5555":             "192.0.2.1",
		"[::ffff:192.0.2.1]:1":       "192.0.2.1",
		"[2001:db8:1:2:aaaa::1]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:bbbb::9]:443": "2001:db8:1:2::/64",
		"not an address":             "not an address",
		"[fe80::1%eth0]:22":          "fe80::/64",
	} {
		if got := SourceOf(in); got != want {
			t.Errorf("SourceOf(%q) = %q; want %q", in, got, want)
		}
	}
}
