// Package sdktest builds a plugin's main package and starts it as a real
// go-plugin subprocess, for plugin tests. It does none of the agent's
// verification (that is agent/runner's job and is tested there).
package sdktest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/patchbay/patchbay/plugins/sdk"
)

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// Build compiles the main package at pkg (an import path such as
// "github.com/patchbay/patchbay/plugins/sysinfo") once per test binary and
// returns the executable's path. Built with -race when the test is.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[pkg]; ok {
		return p
	}
	dir, err := os.MkdirTemp("", "sdktest-")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	built[pkg] = out
	return out
}

// Start launches the plugin executable at path with env (KEY=VALUE strings;
// the host environment is not inherited) and returns a client. The process
// is killed when the test ends.
func Start(t testing.TB, path string, env ...string) *sdk.Client {
	t.Helper()
	cmd := exec.Command(path)
	cmd.Env = env
	mtls, err := sdk.NewHostTLS()
	if err != nil {
		t.Fatal(err)
	}
	defer mtls.Close()
	mtls.Attach(cmd)
	return start(t, path, &plugin.ClientConfig{Cmd: cmd, TLSConfig: mtls.Config}) // as the agent does
}

// start completes cfg (gRPC only, no host environment) and starts it.
func start(t testing.TB, path string, cfg *plugin.ClientConfig) *sdk.Client {
	t.Helper()
	cfg.HandshakeConfig = sdk.Handshake
	cfg.Plugins = sdk.PluginMap(nil)
	cfg.AllowedProtocols = []plugin.Protocol{plugin.ProtocolGRPC}
	cfg.SkipHostEnv = true
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Warn})
	c := plugin.NewClient(cfg)
	t.Cleanup(c.Kill)
	rpc, err := c.Client()
	if err != nil {
		t.Fatalf("start plugin %s: %v", path, err)
	}
	raw, err := rpc.Dispense(sdk.PluginName)
	if err != nil {
		t.Fatalf("dispense plugin %s: %v", path, err)
	}
	return raw.(*sdk.Client)
}

// StartAutoMTLS launches the plugin the way any other go-plugin host would,
// with go-plugin's AutoMTLS instead of the agent's key pipe.
func StartAutoMTLS(t testing.TB, path string, env ...string) *sdk.Client {
	t.Helper()
	cmd := exec.Command(path)
	cmd.Env = env
	return start(t, path, &plugin.ClientConfig{Cmd: cmd, AutoMTLS: true})
}

// Fix runs Fix and collects the output lines.
func Fix(ctx context.Context, c *sdk.Client, req sdk.Request) (sdk.FixResult, []string, error) {
	var lines []string
	res, err := c.Fix(ctx, req, func(s string) error { lines = append(lines, s); return nil })
	return res, lines, err
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
