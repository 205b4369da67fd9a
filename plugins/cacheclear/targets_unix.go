//go:build linux || darwin

package main

import (
	"path/filepath"
	"strings"
)

// partByPrefix returns a part function naming an entry by the first
// component of its path: prefixes maps a first component (or, ending in
// "*", a prefix of it) to a part name; anything else is "other".
func partByPrefix(prefixes map[string]string) func(rel string) string {
	return func(rel string) string {
		first, _, _ := strings.Cut(rel, string(filepath.Separator))
		if p, ok := prefixes[first]; ok {
			return p
		}
		for k, p := range prefixes {
			if strings.HasSuffix(k, "*") && strings.HasPrefix(first, strings.TrimSuffix(k, "*")) {
				return p
			}
		}
		return "other"
	}
}
