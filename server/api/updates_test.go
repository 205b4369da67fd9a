package api

import (
	"strings"
	"testing"
)

// A job's restart wish is one of the patch policy choices, and
// force-in-window needs a window.
func TestCheckJobReboot(t *testing.T) {
	for _, tc := range []struct{ reboot, window, err string }{
		{"", "", ""}, {"ask", "", ""}, {"never", "", ""}, {"force-in-window", `{"name":"w"}`, ""},
		{"force-in-window", "", "reboot force-in-window needs a maintenance window"},
		{"always", "w", `reboot "always": want ask, never or force-in-window`},
	} {
		err := checkJobReboot(tc.reboot, tc.window)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("checkJobReboot(%q, %q) = %v, want %q", tc.reboot, tc.window, err, tc.err)
		}
	}
}
