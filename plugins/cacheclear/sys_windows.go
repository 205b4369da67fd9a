package main

import (
	"errors"
	"io/fs"

	"golang.org/x/sys/windows"
)

// trustedDir is false on Windows: symbolic links in a base path are never
// followed there.
func trustedDir(fs.FileInfo) bool { return false }

// linkCount is 1 on Windows: os.Lstat does not report hard links there.
func linkCount(fs.FileInfo) uint64 { return 1 }

// device is unknown on Windows. Junctions and mount points are reported by
// os.Lstat as irregular files, which are never entered or deleted.
func device(fs.FileInfo) (uint64, bool) { return 0, false }

// dirNotEmpty reports whether err says a directory was not empty.
func dirNotEmpty(err error) bool { return errors.Is(err, windows.ERROR_DIR_NOT_EMPTY) }
