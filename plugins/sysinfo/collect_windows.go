package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

// Windows sources, compiled but not tested here: GetTickCount64 (uptime),
// GlobalMemoryStatusEx (memory), GetDiskFreeSpaceEx on every fixed drive,
// and the registry keys Windows Update and Component Based Servicing set
// while a reboot is pending. Windows has no load average (reported as
// null), and failed services are not checked.

var (
	kernel32                 = windows.NewLazySystemDLL("kernel32.dll")
	procGetTickCount64       = kernel32.NewProc("GetTickCount64")
	procGlobalMemoryStatusEx = kernel32.NewProc("GlobalMemoryStatusEx")
)

// memoryStatusEx is MEMORYSTATUSEX.
type memoryStatusEx struct {
	Length               uint32
	MemoryLoad           uint32
	TotalPhys            uint64
	AvailPhys            uint64
	TotalPageFile        uint64
	AvailPageFile        uint64
	TotalVirtual         uint64
	AvailVirtual         uint64
	AvailExtendedVirtual uint64
}

// collect fills r from the Windows APIs. A sandbox root is refused: the
// fake trees the tests use are Linux ones.
func collect(ctx context.Context, c config, r *Report) error {
	if c.sandbox {
		return errors.New("root: only / is supported on windows")
	}
	r.OS = "windows"
	if err := procGetTickCount64.Find(); err != nil {
		return fmt.Errorf("uptime: %w", err)
	}
	ms, _, _ := procGetTickCount64.Call()
	r.UptimeSeconds = int64(ms / 1000)

	m := memoryStatusEx{Length: uint32(unsafe.Sizeof(memoryStatusEx{}))}
	if ok, _, err := procGlobalMemoryStatusEx.Call(uintptr(unsafe.Pointer(&m))); ok == 0 {
		return fmt.Errorf("memory: GlobalMemoryStatusEx: %w", err)
	}
	r.MemTotal, r.MemAvailable = m.TotalPhys, m.AvailPhys

	collectDisks(r)
	r.ServicesNote = "not checked on windows"
	collectReboot(r)
	return ctx.Err()
}

// collectDisks reports every fixed drive.
func collectDisks(r *Report) {
	buf := make([]uint16, 256)
	n, err := windows.GetLogicalDriveStrings(uint32(len(buf)), &buf[0])
	if err != nil {
		r.note("disks: GetLogicalDriveStrings: %v", err)
		return
	}
	for _, drive := range strings.Split(windows.UTF16ToString(buf[:n]), "\x00") {
		if drive == "" {
			continue
		}
		p, err := windows.UTF16PtrFromString(drive)
		if err != nil || windows.GetDriveType(p) != windows.DRIVE_FIXED {
			continue
		}
		var avail, total, free uint64
		if err := windows.GetDiskFreeSpaceEx(p, &avail, &total, &free); err != nil {
			r.note("disks: %s: %v", drive, err)
			continue
		}
		// Blocks of one byte: newDisk's arithmetic then works on bytes.
		r.Disks = append(r.Disks, newDisk(drive, "", "", total, free, avail, 1))
	}
}

// collectReboot checks the registry markers of a pending reboot.
func collectReboot(r *Report) {
	keys := []struct{ path, reason string }{
		{`SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending`, "component based servicing"},
		{`SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired`, "windows update"},
	}
	var reasons []string
	for _, k := range keys {
		key, err := registry.OpenKey(registry.LOCAL_MACHINE, k.path, registry.QUERY_VALUE)
		if err == nil {
			key.Close()
			reasons = append(reasons, k.reason)
		}
	}
	key, err := registry.OpenKey(registry.LOCAL_MACHINE, `SYSTEM\CurrentControlSet\Control\Session Manager`, registry.QUERY_VALUE)
	if err == nil {
		if v, _, err := key.GetStringsValue("PendingFileRenameOperations"); err == nil && len(v) > 0 {
			reasons = append(reasons, "pending file rename operations")
		}
		key.Close()
	}
	if len(reasons) > 0 {
		r.RebootPending, r.RebootReason = true, strings.Join(reasons, ", ")
	}
}
