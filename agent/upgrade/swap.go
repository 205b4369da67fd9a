package upgrade

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
)

// PrevSuffix names the previous binary kept next to the executable.
const PrevSuffix = ".prev"

// swap installs the new binary tmp (in exe's directory) as exe and keeps
// the running one as exe.prev. On Unix exe.prev is a copy and the new
// binary is renamed over exe, so exe always exists; on Windows a running
// executable can be renamed but not overwritten, so exe is renamed to
// exe.prev first (and back if the second rename fails).
func swap(exe, tmp string) error {
	prev := exe + PrevSuffix
	if runtime.GOOS == "windows" {
		if err := os.Remove(prev); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove the old %s: %w", prev, err)
		}
		if err := os.Rename(exe, prev); err != nil {
			return fmt.Errorf("keep the running binary as %s: %w", prev, err)
		}
		if err := os.Rename(tmp, exe); err != nil {
			if rerr := os.Rename(prev, exe); rerr != nil {
				return fmt.Errorf("install the new binary: %w; and putting the previous one back failed: %v (rename %s to %s by hand)", err, rerr, prev, exe)
			}
			return fmt.Errorf("install the new binary: %w", err)
		}
		return nil
	}
	if err := copyFile(exe, prev); err != nil {
		return fmt.Errorf("keep the running binary as %s: %w", prev, err)
	}
	if err := os.Rename(tmp, exe); err != nil {
		return fmt.Errorf("install the new binary: %w", err)
	}
	syncDir(filepath.Dir(exe))
	return nil
}

// restore puts exe.prev back as exe. The failed new binary is kept as
// exe.failed for inspection (on Windows it may still be running).
func restore(exe string) error {
	prev := exe + PrevSuffix
	if _, err := os.Stat(prev); err != nil {
		return fmt.Errorf("previous binary: %w", err)
	}
	failed := exe + ".failed"
	if err := os.Remove(failed); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove the old %s: %w", failed, err)
	}
	if runtime.GOOS == "windows" {
		if err := os.Rename(exe, failed); err != nil {
			return fmt.Errorf("move the new binary aside: %w", err)
		}
	} else if err := copyFile(exe, failed); err != nil {
		return fmt.Errorf("keep the new binary as %s: %w", failed, err)
	}
	if err := os.Rename(prev, exe); err != nil {
		return fmt.Errorf("restore %s: %w", prev, err)
	}
	syncDir(filepath.Dir(exe))
	return nil
}

// copyFile copies src to dst (mode 0755) through a synced temporary file
// renamed into place.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.CreateTemp(filepath.Dir(dst), ".patchbay-agent.copy-*")
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Chmod(0o755)
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(out.Name(), dst)
	}
	if err != nil {
		os.Remove(out.Name())
	}
	return err
}

// syncDir makes renames in dir durable where the OS allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
