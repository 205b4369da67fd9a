package runner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/plugins/sdk"
	"github.com/patchbay/patchbay/plugins/sdk/sdktest"
)

const testPluginPkg = "github.com/patchbay/patchbay/plugins/sdk/testplugin"

// catalog stands in for the relay's catalog: files by SHA-256, as a
// compromised relay could serve them.
type catalog struct {
	mu    sync.Mutex
	files map[string][2][]byte
	calls int
}

func (c *catalog) Fetch(_ context.Context, sha string) ([]byte, []byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	f, ok := c.files[sha]
	if !ok {
		return nil, nil, fmt.Errorf("404 %s", sha)
	}
	return f[0], f[1], nil
}

func (c *catalog) put(sha string, data, sig []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.files == nil {
		c.files = map[string][2][]byte{}
	}
	c.files[sha] = [2][]byte{data, sig}
}

// key makes an ed25519 key with ssh-keygen and returns its path and an
// allowed_signers line for principal.
func key(t testing.TB, principal string) (string, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", p).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	pub, _ := os.ReadFile(p + ".pub")
	f := strings.Fields(string(pub))
	return p, principal + ` namespaces="patchbay-plugin" ` + f[0] + " " + f[1] + "\n"
}

// sign signs data with ssh-keygen -Y sign, as a person would.
func sign(t testing.TB, keyPath string, data []byte) []byte {
	t.Helper()
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, data, 0o600)
	if out, err := exec.Command("ssh-keygen", "-Y", "sign", "-n", "patchbay-plugin", "-f", keyPath, f).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v %s", err, out)
	}
	sig, err := os.ReadFile(f + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

type fixture struct {
	r       *Runner
	cat     *catalog
	key     string
	plugin  []byte
	ref     wire.ArtifactRef
	trusted string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	k, line := key(t, "secops@example.com")
	dir := t.TempDir()
	trustFile := filepath.Join(dir, "allowed_signers")
	os.WriteFile(trustFile, []byte(line), 0o644)
	data, err := os.ReadFile(sdktest.Build(t, testPluginPkg))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{cat: &catalog{}, key: k, plugin: data, trusted: trustFile}
	f.ref = wire.ArtifactRef{Name: "testplugin", Version: "1.0.0", SHA256: hexSum(data), Size: int64(len(data))}
	f.cat.put(f.ref.SHA256, data, sign(t, k, data))
	f.r, err = New(Config{
		Dir:   filepath.Join(dir, "runner"),
		Fetch: f.cat,
		Trust: func() (Trust, error) { return LoadTrust(trustFile) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) req(params map[string]string) wire.RunRequest {
	return wire.RunRequest{
		RunID: uuid.Must(uuid.NewV7()).String(), JobID: uuid.Must(uuid.NewV7()).String(),
		Plugin: f.ref, Params: params, Timeout: wire.Duration(30 * time.Second),
	}
}

func TestRunVerifiedPlugin(t *testing.T) {
	f := newFixture(t)
	res := f.r.Run(context.Background(), f.req(map[string]string{"mode": "echo", "text": "hi there"}), Hooks{})
	if res.State != wire.StateSucceeded || res.Output != "hi there\n" || !res.Changed || !strings.HasPrefix(res.Signer, "secops@example.com SHA256:") {
		t.Fatalf("result = %+v", res)
	}
	// Second run comes from the cache, not the relay.
	f.r.Run(context.Background(), f.req(map[string]string{"mode": "clean"}), Hooks{})
	if f.cat.calls != 1 {
		t.Fatalf("fetched %d times, want 1 (cache)", f.cat.calls)
	}
	// Cache files are private.
	st, err := os.Stat(filepath.Join(f.r.cacheDir, f.ref.SHA256))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("cache file: %v %v", st.Mode(), err)
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t)
	tampered := bytes.Clone(f.plugin)
	tampered[len(tampered)/2] ^= 0xff
	other, otherLine := key(t, "mallory@example.com")
	_ = otherLine

	tests := []struct {
		name  string
		setup func() wire.ArtifactRef
		want  string
	}{
		{"relay swaps the bytes", func() wire.ArtifactRef {
			ref := f.ref
			ref.SHA256 = strings.Repeat("a", 64)
			f.cat.put(ref.SHA256, tampered, sign(t, f.key, f.plugin))
			return ref
		}, "not the requested"},
		{"bytes altered after signing", func() wire.ArtifactRef {
			ref := f.ref
			ref.SHA256 = hexSum(tampered)
			f.cat.put(ref.SHA256, tampered, sign(t, f.key, f.plugin))
			return ref
		}, "signature check failed"},
		{"unsigned", func() wire.ArtifactRef {
			ref := f.ref
			ref.SHA256 = hexSum(tampered)
			f.cat.put(ref.SHA256, tampered, nil)
			return ref
		}, "signature check failed"},
		{"untrusted key", func() wire.ArtifactRef {
			ref := f.ref
			ref.SHA256 = hexSum(tampered)
			f.cat.put(ref.SHA256, tampered, sign(t, other, tampered))
			return ref
		}, "does not trust"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := f.req(map[string]string{"mode": "echo", "text": "x"})
			req.Plugin = tt.setup()
			res := f.r.Run(context.Background(), req, Hooks{})
			if res.State != wire.StateFailed || !strings.Contains(res.Error, tt.want) || res.Output != "" {
				t.Fatalf("result = %+v, want failed with %q", res, tt.want)
			}
		})
	}
	// Manifest and catalog disagree on the version: refused.
	req := f.req(nil)
	req.Plugin.Version = "1.0.1"
	if res := f.r.Run(context.Background(), req, Hooks{}); res.State != wire.StateFailed || !strings.Contains(res.Error, "says it is") {
		t.Fatalf("version mismatch: %+v", res)
	}
	// Parameters outside the manifest: refused before Check.
	if res := f.r.Run(context.Background(), f.req(map[string]string{"rm": "-rf"}), Hooks{}); res.State != wire.StateFailed || !strings.Contains(res.Error, "unknown parameter") {
		t.Fatalf("bad param: %+v", res)
	}
}

func TestDowngradeRefused(t *testing.T) {
	f := newFixture(t)
	if err := f.r.recordVersion(mustManifest("testplugin", "2.0.0")); err != nil {
		t.Fatal(err)
	}
	res := f.r.Run(context.Background(), f.req(nil), Hooks{})
	if res.State != wire.StateFailed || !strings.Contains(res.Error, "older than 2.0.0") {
		t.Fatalf("downgrade: %+v", res)
	}
	req := f.req(map[string]string{"mode": "clean"})
	req.AllowDowngrade = true
	if res := f.r.Run(context.Background(), req, Hooks{}); res.State != wire.StateSkipped {
		t.Fatalf("allowed downgrade: %+v", res)
	}
}

func TestTimeoutCancelAndCap(t *testing.T) {
	f := newFixture(t)
	req := f.req(map[string]string{"mode": "hang"})
	req.Timeout = wire.Duration(2 * time.Second)
	start := time.Now()
	res := f.r.Run(context.Background(), req, Hooks{})
	if res.State != wire.StateFailed || !strings.Contains(res.Error, "timed out") || time.Since(start) > 15*time.Second {
		t.Fatalf("hang: %+v after %v", res, time.Since(start))
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(time.Second, cancel)
	res = f.r.Run(ctx, f.req(map[string]string{"sleep": "1m"}), Hooks{})
	if res.State != wire.StateCancelled {
		t.Fatalf("cancel: %+v", res)
	}

	f.r.cfg.MaxOutput = 64 << 10
	res = f.r.Run(context.Background(), f.req(map[string]string{"mode": "flood"}), Hooks{})
	if res.State != wire.StateFailed || !strings.Contains(res.Error, "more than 65536 bytes") || len(res.Output) > wire.MaxOutputBytes {
		t.Fatalf("flood: state=%s err=%s output=%d", res.State, res.Error, len(res.Output))
	}
}

func mustManifest(name, version string) sdk.Manifest {
	return sdk.Manifest{Name: name, Version: version}
}

// A plugin that cannot be downloaded leaves the run not started (nothing
// ran; the agent may try again), while one downloaded and refused fails it.
func TestDownloadFailureIsNotStarted(t *testing.T) {
	f := newFixture(t)
	req := f.req(nil)
	req.Plugin.SHA256 = hexSum([]byte("not in the catalog"))
	if res := f.r.Run(context.Background(), req, Hooks{}); res.State != wire.StateNotStarted || !strings.Contains(res.Error, "download plugin") {
		t.Fatalf("result = %+v", res)
	}
	other := []byte("other bytes")
	f.cat.put(req.Plugin.SHA256, other, sign(t, f.key, other)) // served under the wrong hash
	if res := f.r.Run(context.Background(), req, Hooks{}); res.State != wire.StateFailed {
		t.Fatalf("a refused download: result = %+v", res)
	}
}
