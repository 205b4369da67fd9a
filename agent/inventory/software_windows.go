//go:build windows

package inventory

import (
	"context"
	"errors"

	"golang.org/x/sys/windows/registry"
)

const uninstallKey = `SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall`

// software reads DisplayName and DisplayVersion of the uninstall keys:
// HKLM in the 64-bit and the 32-bit registry views, and HKCU. Entries
// without a DisplayName, system components and updates are skipped.
func (c *Collector) software(context.Context) ([]Package, error) {
	var pkgs []Package
	var errs []error
	for _, src := range []struct {
		root   registry.Key
		access uint32
	}{
		{registry.LOCAL_MACHINE, registry.WOW64_64KEY},
		{registry.LOCAL_MACHINE, registry.WOW64_32KEY},
		{registry.CURRENT_USER, 0},
	} {
		k, err := registry.OpenKey(src.root, uninstallKey, registry.ENUMERATE_SUB_KEYS|registry.QUERY_VALUE|src.access)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		names, err := k.ReadSubKeyNames(-1)
		if err != nil {
			errs = append(errs, err)
		}
		for _, n := range names {
			sk, err := registry.OpenKey(k, n, registry.QUERY_VALUE|src.access)
			if err != nil {
				continue
			}
			name, _, _ := sk.GetStringValue("DisplayName")
			ver, _, _ := sk.GetStringValue("DisplayVersion")
			sys, _, _ := sk.GetIntegerValue("SystemComponent")
			parent, _, _ := sk.GetStringValue("ParentKeyName")
			sk.Close()
			if name == "" || sys == 1 || parent != "" {
				continue
			}
			pkgs = append(pkgs, Package{Name: name, Version: ver, Source: "registry"})
		}
		k.Close()
	}
	if len(pkgs) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return pkgs, nil
}
