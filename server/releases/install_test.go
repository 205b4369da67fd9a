package releases

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/patchbay/patchbay/internal/installer"
)

func TestServeInstallScripts(t *testing.T) {
	mux := http.NewServeMux()
	RegisterInstall(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, name := range []string{"linux.sh", "darwin.sh", "windows.ps1", "nope.sh"} {
		resp, err := http.Get(srv.URL + installer.PathPrefix + name)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want, ok := installer.Script(name)
		if !ok {
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s: status %d, want 404", name, resp.StatusCode)
			}
			continue
		}
		if resp.StatusCode != 200 || !bytes.Equal(body, want) || len(want) < 100 {
			t.Errorf("%s: status %d, %d bytes, want 200 and the %d-byte script", name, resp.StatusCode, len(body), len(want))
		}
	}
}
