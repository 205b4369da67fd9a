//go:build linux

package main

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// testConfig is a config for a sandbox root.
func testConfig(root string, minAge time.Duration) config {
	return config{scopes: map[string]bool{scopeTemp: true}, root: root, sandbox: true, minAge: minAge, now: time.Now()}
}

// listTree returns every path below dir, relative to it, sorted.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		paths = append(paths, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	return paths
}

func TestCleanMinAge(t *testing.T) {
	tests := []struct {
		name     string
		minAge   time.Duration
		wantLeft []string
		wantGone int64 // files
	}{
		{"zero deletes everything", 0, []string{"."}, 4},
		{"1h spares the new file and its directory", time.Hour, []string{".", "fresh", "fresh/new"}, 3},
		{"3h spares everything", 3 * time.Hour, []string{".", "a", "a/b", "a/b/old", "fresh", "fresh/new", "link", "old"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			build(t, root, []spec{
				{path: "tmp/old", size: 10},
				{path: "tmp/a/b/old", size: 20},
				{path: "tmp/fresh/new", size: 30, newish: true},
				{path: "tmp/fresh/", newish: true},
				{path: "tmp/link", link: "old"},
			})
			for _, apply := range []bool{false, true} {
				res, err := cleanTarget(context.Background(), testConfig(root, tt.minAge), target{scope: scopeTemp, rel: "tmp"}, apply)
				if err != nil {
					t.Fatal(err)
				}
				if res.status != statusOK || res.total.Files != tt.wantGone || res.total.Errors != 0 {
					t.Fatalf("apply=%v: %+v", apply, res)
				}
			}
			if got := listTree(t, filepath.Join(root, "tmp")); !slices.Equal(got, tt.wantLeft) {
				t.Fatalf("left %q, want %q", got, tt.wantLeft)
			}
		})
	}
}

func TestCheckChangesNothing(t *testing.T) {
	tr := newTrap(t)
	before := listTree(t, tr.root)
	c := testConfig(tr.root, 0)
	c.scopes = map[string]bool{scopeTemp: true, scopeUser: true, scopePackage: true, scopeDNS: true}
	r, err := run(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !r.changes() || r.dns == nil || r.dns.status != statusSkipped {
		t.Fatalf("report: changes %v, dns %+v", r.changes(), r.dns)
	}
	if after := listTree(t, tr.root); !slices.Equal(before, after) {
		t.Fatalf("check changed the tree:\nbefore %q\nafter  %q", before, after)
	}
}

func TestCleanKeeps(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	build(t, outside, []spec{{path: "target", size: 5}})
	build(t, root, []spec{
		{path: "tmp/fifo", fifo: true},
		{path: "tmp/hard", hard: filepath.Join(outside, "target")},
		{path: "tmp/.X11-unix/X0", fifo: true},
		{path: "tmp/krb5cc_1000", size: 5},
		{path: "tmp/dir/fifo", fifo: true},
		{path: "tmp/dir/gone", size: 5},
		{path: "archives/a.deb", size: 5},
		{path: "archives/lock", size: 0},
		{path: "archives/partial/b.deb", size: 5},
	})
	c := testConfig(root, 0)
	res, err := cleanTarget(context.Background(), c, target{scope: scopeTemp, rel: "tmp", keepTop: keepInTemp}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{".", ".X11-unix", ".X11-unix/X0", "dir", "dir/fifo", "fifo", "hard", "krb5cc_1000"}
	if got := listTree(t, filepath.Join(root, "tmp")); !slices.Equal(got, want) || res.total.Files != 1 || res.total.Kept != 5 {
		t.Fatalf("left %q (want %q), %+v", got, want, res.total)
	}
	res, err = cleanTarget(context.Background(), c, target{scope: scopePackage, rel: "archives", flat: true, match: globMatch("*.deb")}, true)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{".", "lock", "partial", "partial/b.deb"}
	if got := listTree(t, filepath.Join(root, "archives")); !slices.Equal(got, want) || res.total.Files != 1 {
		t.Fatalf("flat: left %q (want %q), %+v", got, want, res.total)
	}
}

func TestCleanVanishedEntries(t *testing.T) {
	root := t.TempDir()
	build(t, root, []spec{{path: "tmp/"}})
	base, _, err := openBase(root, "tmp")
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	res := &targetResult{target: target{scope: scopeTemp}, path: filepath.Join(root, "tmp")}
	cl := &cleaner{ctx: context.Background(), base: base, res: res, cutoff: time.Now(), apply: true}
	// Names read from a directory that are gone by the time they are
	// looked at: a file, and a directory deleted during its own walk.
	for _, name := range []string{"vanished-file", "vanished-dir"} {
		gone, err := cl.entry(".", name)
		if err != nil || !gone {
			t.Fatalf("entry(%s) = %v, %v", name, gone, err)
		}
	}
	if empty, err := cl.walk("vanished-dir"); err != nil || !empty {
		t.Fatalf("walk(vanished) = %v, %v", empty, err)
	}
	if fi, err := os.Stat(root); err != nil || !cl.remove("vanished", fi) {
		t.Fatal("remove of a vanished file failed")
	}
	if res.total.Errors != 0 {
		t.Fatalf("errors: %v", res.errs)
	}
}

func TestCleanErrorsAreCounted(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions")
	}
	root := t.TempDir()
	build(t, root, []spec{{path: "tmp/locked/a", size: 1}, {path: "tmp/locked/b", size: 1}, {path: "tmp/free", size: 1}})
	if err := os.Chmod(filepath.Join(root, "tmp", "locked"), 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(root, "tmp", "locked"), 0o755) })
	res, err := cleanTarget(context.Background(), testConfig(root, 0), target{scope: scopeTemp, rel: "tmp"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.total.Errors != 2 || res.total.Files != 1 || len(res.errs) != 2 ||
		!strings.HasPrefix(res.errs[0], "remove "+filepath.Join(root, "tmp", "locked")) {
		t.Fatalf("%+v %q", res.total, res.errs)
	}
}

func TestCleanStopsWhenCancelled(t *testing.T) {
	root := t.TempDir()
	build(t, root, []spec{{path: "tmp/a", size: 1}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := cleanTarget(ctx, testConfig(root, 0), target{scope: scopeTemp, rel: "tmp"}, true)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if !exists(filepath.Join(root, "tmp", "a")) {
		t.Fatal("a cancelled clean deleted a file")
	}
}
