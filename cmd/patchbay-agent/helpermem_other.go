//go:build !linux

package main

import "runtime/debug"

// releaseStartupPages returns the heap garbage of start-up to the system
// (see helpermem_linux.go for what Linux also drops).
func releaseStartupPages() { debug.FreeOSMemory() }
