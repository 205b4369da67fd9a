//go:build windows

package checks

import (
	"context"

	"golang.org/x/sys/windows"
)

const defaultMount = `C:\`

// rebootMarker: Windows keeps pending reboots in the registry (not read
// yet); the check needs an explicit path there.
const rebootMarker = ""

func diskFree(path string) (free, total uint64, err error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return 0, 0, err
	}
	if err := windows.GetDiskFreeSpaceEx(p, &free, &total, nil); err != nil {
		return 0, 0, err
	}
	return free, total, nil
}

func serviceActive(context.Context, string) (bool, string, error) {
	return false, "", errUnsupported
}
