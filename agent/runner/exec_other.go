//go:build !linux

package runner

import (
	"fmt"
	"path/filepath"
	"runtime"

	"github.com/patchbay/patchbay/internal/atomicfile"
)

// execCache is empty outside Linux: every launch writes the verified bytes
// to the runner's private 0700 cache and go-plugin's SecureConfig hashes
// that copy again just before it starts it. Compiled for Windows and macOS;
// not tested on this project's Linux CI.
type execCache struct{}

func newExecCache() *execCache         { return &execCache{} }
func (c *execCache) has(_ string) bool { return false }
func (c *execCache) close()            {}

func (r *Runner) executable(v verified) (string, func(), error) {
	name := v.ref.SHA256 + "-exec"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	p := filepath.Join(r.cacheDir, name)
	if err := atomicfile.Write(p, v.data, 0o700); err != nil {
		return "", nil, fmt.Errorf("write executable: %w", err)
	}
	return p, func() {}, nil
}
