// Package atomicfile writes files so that readers see either the old content or
// the complete new content, never a partial file, and so that a secret is never
// readable by anyone else, not even for a moment.
//
// The data goes to a temporary file in the same directory, which is chmod-ed to
// the requested mode before any byte is written, fsync-ed, closed and renamed over
// the target; the directory is then fsync-ed so the rename survives a crash.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// testHookBeforeWrite, when set by tests, runs after the temporary file has its
// final mode and before any data is written to it.
var testHookBeforeWrite func(f *os.File)

// Write atomically replaces path with data, giving the file exactly the mode perm
// (the process umask does not apply). On error the temporary file is removed and
// an existing file at path is left untouched.
func Write(path string, data []byte, perm os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	// CreateTemp makes the file with mode 0600 (before umask), so it is never
	// readable by others between creation and the chmod below.
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: create temp file: %w", path, err)
	}
	tmp := f.Name()
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				_ = f.Close()
			}
			_ = os.Remove(tmp)
		}
	}()

	if err := f.Chmod(perm.Perm()); err != nil {
		return fmt.Errorf("write %s: chmod temp file: %w", path, err)
	}
	if testHookBeforeWrite != nil {
		testHookBeforeWrite(f)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: write temp file: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: sync temp file: %w", path, err)
	}
	closed = true
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: close temp file: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: rename temp file: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		// The new content is in place; only its durability across a crash is in doubt.
		return fmt.Errorf("write %s: sync directory: %w", path, err)
	}
	return nil
}

// WriteSecret is Write with mode 0600, for private keys and tokens.
func WriteSecret(path string, data []byte) error {
	return Write(path, data, 0o600)
}

// syncDir fsyncs a directory so a rename in it is durable. Windows cannot open a
// directory for syncing (and NTFS journals the rename), so it is skipped there.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return err
	}
	return d.Close()
}
