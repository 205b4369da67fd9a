//go:build !linux

package runner

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/patchbay/patchbay/internal/atomicfile"
)

// executable writes v's bytes to the runner's private cache (0700 directory)
// and returns that path; go-plugin's SecureConfig hashes it again just
// before it starts it. This path is compiled for Windows and macOS and not
// tested on this project's Linux CI.
func executable(v verified, cacheDir string) (string, func(), error) {
	name := v.ref.SHA256 + "-exec"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	p := filepath.Join(cacheDir, name)
	if err := atomicfile.Write(p, v.data, 0o700); err != nil {
		return "", nil, fmt.Errorf("write executable: %w", err)
	}
	return p, func() { os.Remove(p) }, nil
}
