//go:build linux

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchbay/patchbay/plugins/sdk"
)

// fakeTools installs shell scripts as tools in a temporary directory and
// points toolDirs at it for the test.
func fakeTools(t *testing.T, scripts map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	saved := toolDirs
	toolDirs = []string{dir}
	t.Cleanup(func() { toolDirs = saved })
	return dir
}

func TestDNS(t *testing.T) {
	tests := []struct {
		name      string
		sandbox   bool
		scripts   map[string]string
		wantCheck string
		wantFix   string
	}{
		{"sandbox", true, map[string]string{"resolvectl": "exit 0"}, "dns skipped (sandbox root)", "dns skipped (sandbox root)"},
		{"none installed", false, nil, "dns skipped (none of resolvectl, systemd-resolve, nscd is installed)",
			"dns skipped (none of"},
		{"resolvectl", false, map[string]string{"resolvectl": `echo "flushing $1"`},
			"dns pending (would run resolvectl flush-caches)", "dns flushed (resolvectl flush-caches)"},
		{"falls back", false, map[string]string{"resolvectl": "echo no resolved >&2; exit 1", "nscd": "exit 0"},
			"dns pending (would run resolvectl flush-caches)", "dns flushed (nscd -i hosts)"},
		{"all fail", false, map[string]string{"systemd-resolve": "exit 3"},
			"dns pending (would run systemd-resolve --flush-caches)", "dns failed ("},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := fakeTools(t, tt.scripts)
			c := config{scopes: map[string]bool{scopeDNS: true}, root: "/", sandbox: tt.sandbox}
			if got := checkDNS(c).String(); got != tt.wantCheck {
				t.Errorf("check = %q, want %q", got, tt.wantCheck)
			}
			if got := fixDNS(context.Background(), c, &sdk.Output{}).String(); !strings.HasPrefix(got, tt.wantFix) {
				t.Errorf("fix = %q, want prefix %q", got, tt.wantFix)
			}
			if strings.Contains(checkDNS(c).String(), dir) {
				t.Error("tool directory leaked into the summary")
			}
		})
	}
}
