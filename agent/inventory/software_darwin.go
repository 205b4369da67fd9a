//go:build darwin

package inventory

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// software lists /Applications/*.app with CFBundleShortVersionString from
// each Contents/Info.plist; binary property lists are converted with
// plutil first.
func (c *Collector) software(ctx context.Context) ([]Package, error) {
	apps, err := filepath.Glob(c.path("/Applications/*.app"))
	if err != nil || len(apps) == 0 {
		return nil, errors.New("software: no applications in /Applications")
	}
	var pkgs []Package
	for _, app := range apps {
		plist := filepath.Join(app, "Contents", "Info.plist")
		data, err := os.ReadFile(plist)
		if err != nil {
			continue
		}
		if bytes.HasPrefix(data, []byte("bplist")) {
			if data, err = c.command(ctx, "plutil", "-convert", "xml1", "-o", "-", plist); err != nil {
				continue
			}
		}
		name, ver := plistVersion(data, strings.TrimSuffix(filepath.Base(app), ".app"))
		pkgs = append(pkgs, Package{Name: name, Version: ver, Source: "app"})
	}
	return pkgs, nil
}
