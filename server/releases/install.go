package releases

import (
	"net/http"

	"github.com/patchbay/patchbay/internal/installer"
)

// RegisterInstall adds GET /install/{name}: the agent install scripts
// (linux.sh, darwin.sh, windows.ps1) that one-line installers download and
// check against the SHA-256 they carry. Public, like the releases.
func RegisterInstall(mux *http.ServeMux) {
	mux.HandleFunc("GET "+installer.PathPrefix+"{name}", func(w http.ResponseWriter, r *http.Request) {
		b, ok := installer.Script(r.PathValue("name"))
		if !ok {
			http.Error(w, "no such install script (linux.sh, darwin.sh, windows.ps1)", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(b)
	})
}
