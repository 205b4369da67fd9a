//go:build unix

package main

import (
	"errors"
	"io/fs"
	"syscall"
)

// trustedDir reports whether only the superuser can change the directory
// described by fi: owned by uid 0 and not writable by group or others. A
// symbolic link in such a directory was put there by an administrator.
func trustedDir(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0 && fi.Mode().Perm()&0o022 == 0
}

// linkCount returns the number of hard links to the file described by fi.
func linkCount(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

// device returns the device the file described by fi lives on, and whether
// that is known.
func device(fi fs.FileInfo) (uint64, bool) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), true
	}
	return 0, false
}

// dirNotEmpty reports whether err says a directory was not empty.
func dirNotEmpty(err error) bool {
	return errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST)
}
