package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
)

// target is one directory whose contents a scope cleans. The directory
// itself is never deleted.
type target struct {
	scope string // temp, user or package
	name  string // row label: "tmp", "alice", "apt"
	rel   string // path below root, OS separators

	// flat targets delete only the files directly in the base whose name
	// match accepts (apt's *.deb next to its lock file); sub-directories
	// are left alone.
	flat  bool
	match func(name string) bool

	// keepTop, if set, spares entries directly in the base that long-lived
	// processes rely on (X11 sockets, systemd's private temp directories).
	keepTop func(name string) bool

	// part, if set, names the part of the base an entry (path relative to
	// the base, OS separators) belongs to, so details can show bytes per
	// browser inside one cache directory.
	part func(rel string) string
}

// home is one account's home directory.
type home struct {
	user string // account name (the directory's name)
	rel  string // path below root
}

// findHomes lists the homes below root: every directory in each of parents
// (relative to root, like "home") plus the extra homes (like "root" for
// the superuser's), skipping names in ignore. With user set, only that
// account's home is returned, and it is an error if there is none.
func findHomes(root string, parents []string, extra map[string]string, ignore []string, user string) ([]home, error) {
	var homes []home
	seen := map[string]bool{}
	add := func(name, rel string) {
		if seen[name] || slices.Contains(ignore, name) || strings.HasPrefix(name, ".") {
			return
		}
		if user != "" && !sameUser(name, user) {
			return
		}
		seen[name] = true
		homes = append(homes, home{user: name, rel: rel})
	}
	for name, rel := range extra {
		if _, err := os.Lstat(filepath.Join(root, rel)); err == nil {
			add(name, rel)
		}
	}
	for _, parent := range parents {
		// Only names are read here; openBase checks every path before use.
		entries, err := os.ReadDir(filepath.Join(root, parent))
		if err != nil {
			continue
		}
		for _, e := range entries {
			if e.IsDir() || e.Type()&os.ModeSymlink != 0 {
				add(e.Name(), filepath.Join(parent, e.Name()))
			}
		}
	}
	sort.Slice(homes, func(i, j int) bool { return homes[i].user < homes[j].user })
	if user != "" && len(homes) == 0 {
		var where []string
		for _, p := range parents {
			where = append(where, filepath.Join(root, p, user))
		}
		return nil, fmt.Errorf("user: no home directory for %q (looked for %s)", user, strings.Join(where, ", "))
	}
	return homes, nil
}

// sameUser compares account names: case-insensitively on Windows.
func sameUser(a, b string) bool {
	if runtime.GOOS == "windows" {
		return strings.EqualFold(a, b)
	}
	return a == b
}
