package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/patchbay/patchbay/internal/apiv1"
)

func TestJobTableShowsTheRestartDecision(t *testing.T) {
	for _, tc := range []struct{ details, want string }{
		{"updated 3 packages\nrestart: tonight at 22:00, chosen by bob\n", "(restart: tonight at 22:00, chosen by bob)"},
		{"restart pending: policy never", "(restart pending: policy never)"},
		{"updated 3 packages", "(reboot required)"},
		{"", "(reboot required)"},
		{"restart now: nobody logged in\x1b[2J", "(restart now: nobody logged in"},
	} {
		var b bytes.Buffer
		j := apiv1.Job{ID: "j", Plugin: "patchinstall", State: "done", Results: []apiv1.RunResult{{
			Hostname: "pc-1", AgentID: "a", State: "succeeded", Summary: "ok", RebootRequired: true, Details: apiv1.ParseDetails(tc.details, true)}}}
		if err := writeJobTable(&b, j); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), tc.want) || strings.Contains(b.String(), "\x1b") {
			t.Errorf("details %q: table\n%s\nwant %q and no escape", tc.details, b.String(), tc.want)
		}
	}
}
