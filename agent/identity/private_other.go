//go:build !windows

package identity

import (
	"fmt"
	"os"
	"path/filepath"
)

// protectDir: the directory is created with mode 0700 (MakeDir).
func protectDir(string) error { return nil }

// protectFile: secrets are written with mode 0600 (atomicfile.WriteSecret).
func protectFile(string) error { return nil }

// checkPrivate refuses a private key that group or others can access.
func checkPrivate(dir string) error {
	path := filepath.Join(dir, KeyFile)
	st, err := os.Stat(path)
	if err != nil {
		return nil // reading it reports the problem
	}
	if err := checkKeyMode(path, st.Mode()); err != nil {
		return fmt.Errorf("load identity: %w", err)
	}
	return nil
}
