//go:build linux

package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// old is the age given to everything in a sandbox unless a spec says new.
const old = 2 * time.Hour

// spec is one entry of a test tree, by path relative to the tree.
//
//	"dir/"            a directory
//	"file" size N     a file of N bytes
//	"link" -> target  a symbolic link
//	"fifo" fifo       a named pipe
//	"hard" hard tgt   a hard link to tgt
type spec struct {
	path   string
	size   int
	link   string // symlink target
	hard   string // hard link target (absolute)
	fifo   bool
	newish bool // modified now instead of `old` ago
}

// build creates specs below dir, then dates every entry (links included,
// without following them) `old` ago unless marked newish. Directories are
// dated last, so creating their contents does not make them new again.
func build(t *testing.T, dir string, specs []spec) {
	t.Helper()
	for _, s := range specs {
		p := filepath.Join(dir, s.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(s.path, "/"):
			err = os.MkdirAll(p, 0o755)
		case s.link != "":
			err = os.Symlink(s.link, p)
		case s.hard != "":
			err = os.Link(s.hard, p)
		case s.fifo:
			err = syscall.Mkfifo(p, 0o600)
		default:
			err = os.WriteFile(p, make([]byte, s.size), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	newish := map[string]bool{}
	for _, s := range specs {
		if s.newish {
			newish[filepath.Join(dir, strings.TrimSuffix(s.path, "/"))] = true
		}
	}
	then := time.Now().Add(-old)
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
			return nil
		}
		return touch(p, then, newish[p])
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := len(dirs) - 1; i >= 0; i-- { // deepest first
		if err := touch(dirs[i], then, newish[dirs[i]]); err != nil {
			t.Fatal(err)
		}
	}
}

// touch sets p's times (a link's own, not its target's) to then, or now.
func touch(p string, then time.Time, now bool) error {
	if now {
		then = time.Now()
	}
	tv := unix.NsecToTimeval(then.UnixNano())
	return unix.Lutimes(p, []unix.Timeval{tv, tv})
}

// exists reports whether p exists, without following a final link.
func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// isSymlink reports whether p is a symbolic link.
func isSymlink(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.Mode()&fs.ModeSymlink != 0
}

// untrust makes dir one a non-administrator could change, whoever runs
// the test: world-writable (and owned by a user, when the test is root).
func untrust(t *testing.T, dir string) {
	t.Helper()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Lchown(dir, 12345, 12345); err != nil {
			t.Fatal(err)
		}
	}
}

// trap is a sandbox with files in every scope and symbolic-link traps
// pointing at canaries outside it.
type trap struct {
	root, outside string
	canaries      []string // must survive everything
	// bytes each scope should free with min_age 1h.
	temp, user, pkg int64
}

func newTrap(t *testing.T) trap {
	t.Helper()
	tr := trap{root: t.TempDir(), outside: t.TempDir()}
	out := tr.outside
	build(t, out, []spec{
		{path: "secret/canary", size: 11},
		{path: "canary-file", size: 12},
		{path: "vartmp/canary", size: 13},
		{path: "etc/passwd", size: 14},
		{path: "bobcache/canary", size: 15},
		{path: "hardtarget", size: 16},
	})
	for _, c := range []string{"secret/canary", "canary-file", "vartmp/canary", "etc/passwd", "bobcache/canary", "hardtarget"} {
		tr.canaries = append(tr.canaries, filepath.Join(out, c))
	}
	trapLink := filepath.Join(out, "secret")
	fileLink := filepath.Join(out, "canary-file")
	etcLink := filepath.Join(out, "etc")
	build(t, tr.root, []spec{
		// temp
		{path: "tmp/old.txt", size: 1000},
		{path: "tmp/new.txt", size: 2000, newish: true},
		{path: "tmp/dir/sub/old2", size: 300},
		{path: "tmp/youngdir/old3", size: 400},
		{path: "tmp/youngdir/", newish: true},
		{path: "tmp/.X11-unix/X0", fifo: true},
		{path: "tmp/systemd-private-abc/tmp/file", size: 50},
		{path: "tmp/fifo", fifo: true},
		{path: "tmp/trap", link: trapLink},
		{path: "tmp/filelink", link: fileLink},
		{path: "tmp/hard", hard: filepath.Join(out, "hardtarget")},
		{path: "var/tmp", link: filepath.Join(out, "vartmp")},
		// user
		{path: "home/alice/.cache/google-chrome/Default/Cache/data_1", size: 2000},
		{path: "home/alice/.cache/chromium/Default/Cache/data_1", size: 100},
		{path: "home/alice/.cache/mozilla/firefox/abc.default/cache2/entries/x", size: 3000},
		{path: "home/alice/.cache/microsoft-edge/Default/Cache/d", size: 700},
		{path: "home/alice/.cache/other/thing", size: 500},
		{path: "home/alice/.cache/etc", link: etcLink},
		{path: "home/bob/.cache", link: filepath.Join(out, "bobcache")},
		{path: "home/carol/realcache/keep", size: 60},
		{path: "home/carol/.cache", link: "realcache"},
		{path: "home/notes.txt", size: 1}, // not a home: ignored, not an error
		{path: "root/.cache/x", size: 80},
		// package
		{path: "var/cache/apt/archives/foo.deb", size: 5000},
		{path: "var/cache/apt/archives/lock", size: 0},
		{path: "var/cache/apt/archives/partial/bar.deb.part", size: 600},
		{path: "var/cache/dnf/repo/pkg.rpm", size: 7000},
	})
	untrust(t, filepath.Join(tr.root, "home", "carol"))
	tr.temp = 1000 + 300 + 400 + int64(len(trapLink)+len(fileLink))
	tr.user = 2000 + 100 + 3000 + 700 + 500 + int64(len(etcLink)) + 80
	tr.pkg = 5000 + 600 + 7000
	return tr
}

// path returns the sandbox path of rel.
func (tr trap) path(rel string) string { return filepath.Join(tr.root, rel) }
