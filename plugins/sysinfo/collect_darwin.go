package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// macOS sources, compiled but not tested here (parseVMStat is): sysctl
// kern.boottime (uptime), vm.loadavg, hw.memsize, vm_stat (available
// memory) and getfsstat (disks, local and browsable ones only). Failed
// services and pending reboots are not checked.

// collect fills r from sysctl, vm_stat and getfsstat. A sandbox root is
// refused: the fake trees the tests use are Linux ones.
func collect(ctx context.Context, c config, r *Report) error {
	if c.sandbox {
		return errors.New("root: only / is supported on darwin")
	}
	r.OS = "darwin"
	boot, err := unix.SysctlTimeval("kern.boottime")
	if err != nil {
		return fmt.Errorf("uptime: sysctl kern.boottime: %w", err)
	}
	r.UptimeSeconds = int64(time.Since(time.Unix(boot.Unix())).Seconds())

	if load, err := loadavg(); err != nil {
		r.note("load: %v", err)
	} else {
		r.Load1, r.Load5, r.Load15 = float(load[0]), float(load[1]), float(load[2])
	}

	if r.MemTotal, err = unix.SysctlUint64("hw.memsize"); err != nil {
		return fmt.Errorf("memory: sysctl hw.memsize: %w", err)
	}
	if path, ok := findTool("vm_stat"); !ok {
		r.note("memory: vm_stat not installed")
	} else if out, code, stderr, err := runTool(ctx, path); err != nil || code != 0 {
		r.note("memory: vm_stat: %v %s", err, stderr)
	} else if r.MemAvailable, err = parseVMStat(out); err != nil {
		r.note("memory: vm_stat: %v", err)
	}

	collectDisks(r)
	r.ServicesNote = "not checked on darwin"
	return ctx.Err()
}

// loadavg reads sysctl vm.loadavg: struct loadavg { fixpt_t ldavg[3];
// long fscale; }, 24 bytes on 64-bit macOS.
func loadavg() ([3]float64, error) {
	var l [3]float64
	raw, err := unix.SysctlRaw("vm.loadavg")
	if err != nil {
		return l, fmt.Errorf("sysctl vm.loadavg: %w", err)
	}
	if len(raw) < 24 {
		return l, fmt.Errorf("sysctl vm.loadavg: %d bytes, want 24", len(raw))
	}
	scale := float64(binary.LittleEndian.Uint64(raw[16:24]))
	if scale == 0 {
		return l, errors.New("sysctl vm.loadavg: zero scale")
	}
	for i := range l {
		l[i] = float64(binary.LittleEndian.Uint32(raw[i*4:])) / scale
	}
	return l, nil
}

// collectDisks reports local, browsable filesystems (the system's hidden
// APFS volumes are not browsable) like df -l.
func collectDisks(r *Report) {
	n, err := unix.Getfsstat(nil, unix.MNT_NOWAIT)
	if err != nil {
		r.note("disks: getfsstat: %v", err)
		return
	}
	buf := make([]unix.Statfs_t, n)
	if n, err = unix.Getfsstat(buf, unix.MNT_NOWAIT); err != nil {
		r.note("disks: getfsstat: %v", err)
		return
	}
	for _, st := range buf[:n] {
		fstype := cstring(st.Fstypename[:])
		if st.Flags&unix.MNT_LOCAL == 0 || st.Flags&unix.MNT_DONTBROWSE != 0 || !realFS(fstype) {
			continue
		}
		r.Disks = append(r.Disks, newDisk(cstring(st.Mntonname[:]), cstring(st.Mntfromname[:]), fstype,
			st.Blocks, st.Bfree, st.Bavail, uint64(st.Bsize)))
	}
}

// cstring converts a NUL-terminated byte array.
func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
