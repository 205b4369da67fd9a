// Package releases serves the organisation's signed releases (internal/release)
// from a directory on the relay, for agent installers and self-updates.
//
// The relay neither signs nor trusts a release: it serves the bytes, and the
// installer or the agent checks SHA256SUMS.sig against the organisation's
// allowed signers and each file against SHA256SUMS. Binaries are not secret,
// so the routes need no credential (an installer has none yet).
package releases

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"

	"github.com/patchbay/patchbay/internal/release"
)

// Dir is a directory holding one subdirectory per version
// (DIR/<version>/SHA256SUMS, ...). The zero value (Root "") holds none.
type Dir struct {
	Root string
}

// Release describes one version.
type Release struct {
	Version string         `json:"version"`
	Signed  bool           `json:"signed"` // SHA256SUMS.sig is present (not checked here)
	Files   []release.File `json:"files"`
}

// ErrNoRelease: no such version, or its SHA256SUMS is missing or malformed.
var ErrNoRelease = errors.New("no such release")

// List returns the versions whose SHA256SUMS parses, sorted by version
// string. Subdirectories that are not releases are left out.
func (d Dir) List() ([]Release, error) {
	if d.Root == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(d.Root)
	if err != nil {
		return nil, fmt.Errorf("read releases directory: %w", err)
	}
	var out []Release
	for _, e := range entries {
		if !e.IsDir() || release.CheckVersion(e.Name()) != nil {
			continue
		}
		r, err := d.Get(e.Name())
		if err != nil {
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Get reads version's manifest.
func (d Dir) Get(version string) (Release, error) {
	if d.Root == "" {
		return Release{}, fmt.Errorf("%w: %s (the relay serves no releases: start it with --releases DIR)", ErrNoRelease, version)
	}
	if err := release.CheckVersion(version); err != nil {
		return Release{}, err
	}
	b, err := readLimited(filepath.Join(d.Root, version, release.SumsName), release.MaxSumsSize)
	if err != nil {
		return Release{}, fmt.Errorf("%w: %s: %w", ErrNoRelease, version, err)
	}
	m, err := release.Parse(b)
	if err != nil {
		return Release{}, fmt.Errorf("%w: %s: %w", ErrNoRelease, version, err)
	}
	_, serr := os.Stat(filepath.Join(d.Root, version, release.SigName))
	return Release{Version: version, Signed: serr == nil, Files: m.Files}, nil
}

// Path returns the file path of name in version: SHA256SUMS, its signature,
// or a file the manifest lists. Anything else is ErrNoRelease or
// release.ErrNotInRelease.
func (d Dir) Path(version, name string) (string, error) {
	r, err := d.Get(version)
	if err != nil {
		return "", err
	}
	if name != release.SumsName && name != release.SigName {
		m := release.Manifest{Files: r.Files}
		if _, err := m.Lookup(name); err != nil {
			return "", err
		}
	}
	return filepath.Join(d.Root, version, name), nil
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	b := make([]byte, st.Size())
	_, err = f.ReadAt(b, 0)
	return b, err
}

// Register adds the routes:
//
//	GET /releases/                   JSON list of Release
//	GET /releases/{version}/         JSON Release
//	GET /releases/{version}/{name}   the file (Range requests work)
func (d Dir) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /releases/{$}", func(w http.ResponseWriter, r *http.Request) {
		list, err := d.List()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, append([]Release{}, list...))
	})
	mux.HandleFunc("GET /releases/{version}/{$}", func(w http.ResponseWriter, r *http.Request) {
		rel, err := d.Get(r.PathValue("version"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		writeJSON(w, rel)
	})
	mux.HandleFunc("GET /releases/{version}/{name}", func(w http.ResponseWriter, r *http.Request) {
		path, err := d.Path(r.PathValue("version"), r.PathValue("name"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			http.Error(w, "release file listed in SHA256SUMS but missing on the relay: "+r.PathValue("name"), http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, "open release file: "+err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil || st.IsDir() {
			http.Error(w, "release file is not a regular file", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, r.PathValue("name"), st.ModTime(), f)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
