package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchbay/patchbay/agent/service"
)

// service install --root: the binary, unit, enable link and data directory
// land under the root with their modes; an unenrolled machine is refused
// first and nothing is written.
func TestServiceInstallRoot(t *testing.T) {
	root := t.TempDir()
	out, err := execute(t, "", "service", "install", "--root", root, "--copy-binary", "--data", "/var/lib/patchbay-agent")
	if err == nil || !strings.Contains(err.Error(), "not enrolled") {
		t.Fatalf("install on an unenrolled root: %v\n%s", err, out)
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Fatalf("a refused install wrote %v", ents)
	}

	data := filepath.Join(root, "var/lib/patchbay-agent")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "agent.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = execute(t, "", "service", "install", "--root", root, "--copy-binary", "--data", "/var/lib/patchbay-agent")
	if err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	self, _ := os.Executable()
	want, _ := os.ReadFile(self)
	bin := filepath.Join(root, "usr/local/bin/patchbay-agent")
	st, err := os.Stat(bin)
	if err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("binary: %v %v", st, err)
	}
	if got, _ := os.ReadFile(bin); len(got) != len(want) {
		t.Errorf("binary is not a copy of this one: %d bytes, want %d", len(got), len(want))
	}
	unit, err := os.ReadFile(filepath.Join(root, service.SystemdUnitPath))
	if err != nil || string(unit) != service.SystemdUnit("/usr/local/bin/patchbay-agent", "/var/lib/patchbay-agent") {
		t.Errorf("unit: %v\n%s", err, unit)
	}
	if st, err := os.Stat(data); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("data directory: %v %v, want 0700", st, err)
	}
	out, err = execute(t, "", "service", "status", "--root", root, "--data", "/var/lib/patchbay-agent")
	if err != nil || !strings.Contains(out, "installed: yes") || !strings.Contains(out, "enabled:   yes") {
		t.Errorf("status: %v\n%s", err, out)
	}
	out, err = execute(t, "", "service", "uninstall", "--root", root)
	if err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(root, service.SystemdUnitPath)); !os.IsNotExist(err) {
		t.Errorf("unit still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, "agent.json")); err != nil {
		t.Errorf("uninstall removed the identity: %v", err)
	}
	// --root needs to know which binary the service runs.
	if _, err := execute(t, "", "service", "install", "--root", root); err == nil {
		t.Error("install --root without --copy-binary or --bin succeeded")
	}
}
