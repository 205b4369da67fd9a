package main

import (
	"strings"
	"testing"
)

func TestWindowsSessionUser(t *testing.T) {
	for _, tc := range []struct {
		name    string
		console bool
		err     string
	}{
		{"", false, ""},
		{"console", true, ""},
		{"Console", true, ""},
		{"support", false, "--session-user support is not supported on Windows"},
		{`DOMAIN\alice`, false, "use --session-user console"},
	} {
		console, err := windowsSessionUser(tc.name)
		if console != tc.console {
			t.Errorf("windowsSessionUser(%q) console = %v, want %v", tc.name, console, tc.console)
		}
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("windowsSessionUser(%q): %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("windowsSessionUser(%q) error = %v, want one containing %q", tc.name, err, tc.err)
		}
	}
}
