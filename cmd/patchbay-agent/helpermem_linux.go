//go:build linux

package main

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
)

// releaseStartupPages gives back what the helper touched only while
// starting. It is a subcommand of the whole agent binary: package
// initialisation touches megabytes of its code and read-only data (the
// kernel maps 64 KiB around each page fault), which an idle helper never
// uses again but keeps in its RSS. Measured with make bench (BENCH_ONLY=consent):
// an idle helper held about 18 MiB, 15 MiB of it clean pages of the binary;
// about 7 MiB with this (a minimal Go program: 4 MiB).
//
// It drops those pages from this process with MADV_DONTNEED (they stay in
// the page cache and fault back in from it when used), only in mappings of
// the executable that are not writable and hold no private (relocated)
// copies, so nothing but clean file pages is dropped; then it returns
// the heap garbage of start-up to the system.
func releaseStartupPages() {
	debug.FreeOSMemory()
	exe, err := os.Executable()
	if err != nil {
		return
	}
	if p, err := filepath.EvalSymlinks(exe); err == nil {
		exe = p
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return
	}
	defer f.Close()
	type span struct{ start, end uintptr }
	var drop []span
	var cur *span
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 {
			continue
		}
		if len(fs) >= 5 && strings.Contains(fs[0], "-") && len(fs[1]) == 4 {
			cur = nil
			if len(fs) < 6 || fs[5] != exe || strings.Contains(fs[1], "w") {
				continue
			}
			lo, hi, _ := strings.Cut(fs[0], "-")
			a, err1 := strconv.ParseUint(lo, 16, 64)
			b, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			cur = &span{uintptr(a), uintptr(b)}
			continue
		}
		// "Anonymous: 0 kB": no page of the mapping is a private copy.
		if cur != nil && fs[0] == "Anonymous:" && len(fs) >= 2 {
			if fs[1] == "0" {
				drop = append(drop, *cur)
			}
			cur = nil
		}
	}
	for _, s := range drop {
		syscall.Syscall(syscall.SYS_MADVISE, s.start, s.end-s.start, syscall.MADV_DONTNEED)
	}
}
