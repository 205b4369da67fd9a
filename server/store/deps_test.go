package store

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoPluginRuntime keeps the store and the REST API from linking the
// plugin runtime: they need a plugin's manifest (internal/manifest), not
// go-plugin and gRPC, which plugins/sdk brings along.
func TestNoPluginRuntime(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("find the go tool to list dependencies: %v: put go on PATH (Debian package golang-go)", err)
	}
	for _, pkg := range []string{".", "../api"} {
		out, err := exec.Command(gobin, "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		var bad []string
		for _, dep := range strings.Fields(string(out)) {
			if strings.Contains(dep, "go-plugin") || strings.Contains(dep, "google.golang.org/grpc") ||
				dep == "github.com/patchbay/patchbay/plugins/sdk" {
				bad = append(bad, dep)
			}
		}
		if len(bad) > 0 {
			t.Errorf("%s depends on %s: import github.com/patchbay/patchbay/internal/manifest for the manifest, not plugins/sdk",
				pkg, strings.Join(bad, ", "))
		}
	}
}
