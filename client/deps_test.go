package client_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestNoServerPackages keeps the clients (the client library, the CLI and
// the browser's webssh) apart from the relay: what they share with it (the
// audit record format, the wire types) lives under internal/. Only non-test
// code counts: tests may start a real relay.
func TestNoServerPackages(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("find the go tool to list dependencies: %v: put go on PATH (Debian package golang-go)", err)
	}
	for _, c := range []struct {
		pkg string
		env []string
	}{
		{pkg: "."},
		{pkg: "../cmd/patchbay"},
		{pkg: "../cmd/patchbay-webssh", env: []string{"GOOS=js", "GOARCH=wasm"}},
	} {
		cmd := exec.Command(gobin, "list", "-deps", c.pkg)
		cmd.Env = append(os.Environ(), c.env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", c.pkg, err, out)
		}
		var bad []string
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "github.com/patchbay/patchbay/server/") || dep == "github.com/patchbay/patchbay/server" ||
				strings.HasPrefix(dep, "github.com/patchbay/patchbay/client/clienttest") {
				bad = append(bad, dep)
			}
		}
		if len(bad) > 0 {
			t.Errorf("%s depends on %s: move what the client shares with the relay to internal/ and import it from there",
				c.pkg, strings.Join(bad, ", "))
		}
	}
}
