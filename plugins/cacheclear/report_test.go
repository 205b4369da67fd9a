package main

import (
	"strings"
	"testing"
)

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1 KiB"},
		{1536, "1.5 KiB"},
		{1048575, "1 MiB"},
		{300 << 20, "300 MiB"},
		{1288490189, "1.2 GiB"},
		{5 << 40, "5 TiB"},
	}
	for _, tt := range tests {
		if got := formatBytes(tt.n); got != tt.want {
			t.Errorf("formatBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestSummary(t *testing.T) {
	all := map[string]bool{scopeTemp: true, scopeUser: true, scopePackage: true, scopeDNS: true}
	res := func(scope string, bytes, errs int64) *targetResult {
		return &targetResult{target: target{scope: scope}, total: tally{Bytes: bytes, Errors: errs}}
	}
	tests := []struct {
		name        string
		r           report
		want        string
		wantChanges bool
	}{
		{"check", report{cfg: config{scopes: all}, results: []*targetResult{res(scopeTemp, 300<<20, 0), res(scopeUser, 900<<20, 0)},
			dns: &dnsResult{status: statusSkipped, msg: "sandbox root"}},
			"1.2 GiB reclaimable (temp 300 MiB, user 900 MiB, package 0 B), dns skipped (sandbox root)", true},
		{"fix with errors", report{cfg: config{scopes: map[string]bool{scopeTemp: true}}, fix: true,
			results: []*targetResult{res(scopeTemp, 10, 1), res(scopeTemp, 0, 2)}},
			"freed 10 B (temp 10 B), 3 errors", true},
		{"nothing", report{cfg: config{scopes: map[string]bool{scopeUser: true}}, results: []*targetResult{res(scopeUser, 0, 0)}},
			"0 B reclaimable (user 0 B)", false},
		{"dns only", report{cfg: config{scopes: map[string]bool{scopeDNS: true}}, dns: &dnsResult{status: "pending", msg: "would run resolvectl flush-caches"}},
			"dns pending (would run resolvectl flush-caches)", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.summary(); got != tt.want {
				t.Errorf("summary = %q, want %q", got, tt.want)
			}
			if got := tt.r.changes(); got != tt.wantChanges {
				t.Errorf("changes = %v, want %v", got, tt.wantChanges)
			}
			if d := tt.r.details(); !strings.Contains(d, "bytes ") {
				t.Errorf("details lack the bytes line:\n%s", d)
			}
		})
	}
}
