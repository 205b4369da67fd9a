//go:build !windows

package service

import "errors"

var errNotWindows = errors.New("service: the Windows service manager exists only on Windows")

func installWindows(Options) error   { return errNotWindows }
func uninstallWindows(Options) error { return errNotWindows }
func statusWindows() (Status, error) { return Status{}, errNotWindows }
