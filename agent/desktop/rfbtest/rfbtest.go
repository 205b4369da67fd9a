// Package rfbtest is test support for the remote desktop: a check that the
// programs a test drives (Xvfb, x11vnc, xdotool...) are installed, and a
// starter for a real Xvfb display. The viewer the tests look through is
// agent/desktop/rfbclient. It fakes nothing.
package rfbtest

import (
	"os/exec"
	"testing"
)

// Need fails t, naming the Debian package, when a program is not installed.
func Need(t testing.TB, tools ...string) {
	t.Helper()
	pkg := map[string]string{"Xvfb": "xvfb", "x11vnc": "x11vnc", "xsetroot": "x11-xserver-utils", "xdotool": "xdotool"}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			p := pkg[tool]
			if p == "" {
				p = tool
			}
			t.Fatalf("%s is not installed: apt-get install -y %s (.ci/run installs it)", tool, p)
		}
	}
}
