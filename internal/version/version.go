// Package version names a build of a Patchbay command.
package version

import "runtime/debug"

// Full is v (set at build time with -ldflags "-X main.version=..."), plus
// the VCS revision for development builds ("dev+0123456789ab").
func Full(v string) string {
	if v != "dev" {
		return v
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return v + "+" + s.Value[:12]
		}
	}
	return v
}
