//go:build !windows

package main

// rebootPending is the Windows registry check; winget only runs on Windows.
func rebootPending() (bool, string) { return false, "" }
