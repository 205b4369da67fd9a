package service

import (
	"os"
	"strings"
	"testing"
)

// TestPackageUnitAgrees keeps the two agent units in step: the one `service
// install` writes and the one the .deb/.rpm ship (deploy/systemd, made by
// `make release`). Every [Service] setting of SystemdUnit but the paths must
// be in the packaged unit with the same value, so an agent behaves the same
// (restart after a self-update's exit 75, stop, hardening) however it was
// installed.
func TestPackageUnitAgrees(t *testing.T) {
	b, err := os.ReadFile("../../deploy/systemd/patchbay-agent.service")
	if err != nil {
		t.Fatal(err)
	}
	packaged := serviceSettings(string(b))
	ours := serviceSettings(SystemdUnit("/usr/bin/patchbay-agent", "/var/lib/patchbay-agent"))
	if len(ours) < 10 {
		t.Fatalf("SystemdUnit has only %d [Service] settings: %v", len(ours), ours)
	}
	for key, val := range ours {
		if key == "ExecStart" {
			continue
		}
		if got, ok := packaged[key]; !ok || got != val {
			t.Errorf("deploy/systemd/patchbay-agent.service: %s=%q, SystemdUnit has %s=%q: change both", key, got, key, val)
		}
	}
}

func serviceSettings(unit string) map[string]string {
	out := map[string]string{}
	section := ""
	for _, line := range strings.Split(unit, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			if k, v, ok := strings.Cut(line, "="); ok {
				out[k] = v
			}
		}
	}
	return out
}
