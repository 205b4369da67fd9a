package releases

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchbay/patchbay/internal/release"
)

const sumA = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb" // sha256("a")

func TestServe(t *testing.T) {
	root := t.TempDir()
	v1 := filepath.Join(root, "v1.0.0")
	must(t, os.MkdirAll(v1, 0o755))
	must(t, os.WriteFile(filepath.Join(v1, release.SumsName), []byte(sumA+"  patchbay-agent_v1.0.0_linux_amd64\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(v1, release.SigName), []byte("sig"), 0o644))
	must(t, os.WriteFile(filepath.Join(v1, "patchbay-agent_v1.0.0_linux_amd64"), []byte("a"), 0o755))
	must(t, os.WriteFile(filepath.Join(v1, "secret.key"), []byte("not listed"), 0o600))
	must(t, os.MkdirAll(filepath.Join(root, "broken"), 0o755)) // no SHA256SUMS: not a release
	must(t, os.WriteFile(filepath.Join(root, "outside"), []byte("x"), 0o600))

	mux := http.NewServeMux()
	Dir{Root: root}.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/releases/")
	var list []Release
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list) != 1 || list[0].Version != "v1.0.0" || !list[0].Signed {
		t.Fatalf("list: %d %s", code, body)
	}
	if code, body := get("/releases/v1.0.0/patchbay-agent_v1.0.0_linux_amd64"); code != 200 || body != "a" {
		t.Fatalf("file: %d %q", code, body)
	}
	if code, body := get("/releases/v1.0.0/SHA256SUMS"); code != 200 || !strings.HasPrefix(body, sumA) {
		t.Fatalf("sums: %d %q", code, body)
	}
	for _, path := range []string{
		"/releases/v1.0.0/secret.key",        // present but not in the manifest
		"/releases/broken/SHA256SUMS",        // not a release
		"/releases/v2/SHA256SUMS",            // no such version
		"/releases/..%2Foutside/SHA256SUMS",  // escape attempt
		"/releases/v1.0.0/..%2F..%2Foutside", // escape attempt
		"/releases/.hidden/SHA256SUMS",       // bad version
	} {
		if code, body := get(path); code != http.StatusNotFound {
			t.Errorf("%s: %d %q, want 404", path, code, body)
		}
	}
	// No --releases: an empty list, and a clear 404.
	mux2 := http.NewServeMux()
	Dir{}.Register(mux2)
	srv2 := httptest.NewServer(mux2)
	defer srv2.Close()
	resp, err := http.Get(srv2.URL + "/releases/v1.0.0/SHA256SUMS")
	must(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(b), "--releases") {
		t.Fatalf("no releases dir: %d %s", resp.StatusCode, b)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
