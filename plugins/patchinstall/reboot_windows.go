//go:build windows

package main

import "golang.org/x/sys/windows/registry"

// rebootPending reads the registry markers Windows and its installers
// leave while a reboot is pending: Component Based Servicing's
// RebootPending key, Windows Update's RebootRequired key and the Session
// Manager's PendingFileRenameOperations value. A heuristic (installers
// run by winget may need a reboot without saying so); untested here.
func rebootPending() (bool, string) {
	keys := []string{
		`SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending`,
		`SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired`,
	}
	for _, k := range keys {
		key, err := registry.OpenKey(registry.LOCAL_MACHINE, k, registry.QUERY_VALUE)
		if err == nil {
			key.Close()
			return true, `HKLM\` + k + " exists"
		}
	}
	key, err := registry.OpenKey(registry.LOCAL_MACHINE, `SYSTEM\CurrentControlSet\Control\Session Manager`, registry.QUERY_VALUE)
	if err != nil {
		return false, ""
	}
	defer key.Close()
	if v, _, err := key.GetStringsValue("PendingFileRenameOperations"); err == nil && len(v) > 0 {
		return true, "pending file rename operations (Session Manager)"
	}
	return false, ""
}
