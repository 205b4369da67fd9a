//go:build linux

package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenBase(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	build(t, root, []spec{
		{path: "plain/dir/"},
		{path: "file", size: 1},
		{path: "abs-out", link: outside},
		{path: "rel-out", link: "../" + filepath.Base(outside)},
		{path: "home/dave", link: outside},
		{path: "trusted/var/tmp", link: "../../plain/dir"},
		{path: "untrusted/tmp", link: "../plain/dir"},
		{path: "loop/a", link: "b"},
		{path: "loop/b", link: "a"},
		{path: "dangling", link: "nowhere"},
	})
	build(t, outside, []spec{{path: ".cache/canary", size: 1}})
	untrust(t, filepath.Join(root, "untrusted"))
	trusted := os.Geteuid() == 0 // a root-owned 0755 directory is trusted
	tests := []struct {
		name, rel  string
		wantStatus string // "" for success
		wantMsg    string
		wantPath   string // relative to root, on success
		rootOnly   bool
	}{
		{name: "plain", rel: "plain/dir", wantPath: "plain/dir"},
		{name: "root itself", rel: ".", wantPath: "."},
		{name: "absent", rel: "plain/none", wantStatus: statusAbsent},
		{name: "absent below", rel: "none/deeper", wantStatus: statusAbsent},
		{name: "file", rel: "file", wantStatus: statusRefused, wantMsg: "not a directory"},
		{name: "absolute link out", rel: "abs-out", wantStatus: statusRefused, wantMsg: "outside root"},
		{name: "relative link out", rel: "rel-out", wantStatus: statusRefused, wantMsg: "outside root"},
		{name: "component links out", rel: "home/dave/.cache", wantStatus: statusRefused, wantMsg: "outside root"},
		{name: "untrusted link in", rel: "untrusted/tmp", wantStatus: statusSkipped, wantMsg: "not followed"},
		{name: "trusted link in", rel: "trusted/var/tmp", wantPath: "plain/dir", rootOnly: true},
		{name: "loop", rel: "loop/a", wantStatus: statusRefused, wantMsg: "symbolic links", rootOnly: true},
		{name: "dangling", rel: "dangling", wantStatus: statusAbsent, rootOnly: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.rootOnly && !trusted {
				t.Skip("needs root: only directories root owns are trusted")
			}
			r, path, err := openBase(root, filepath.FromSlash(tt.rel))
			if tt.wantStatus != "" {
				var be *baseError
				if !errors.As(err, &be) || be.status != tt.wantStatus || !strings.Contains(be.msg, tt.wantMsg) {
					t.Fatalf("err = %v, want %s containing %q", err, tt.wantStatus, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if want := filepath.Join(root, tt.wantPath); path != want {
				t.Fatalf("path = %s, want %s", path, want)
			}
			if _, err := r.Stat("."); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestWithin(t *testing.T) {
	tests := []struct {
		root, p string
		want    bool
	}{
		{"/x", "/x", true},
		{"/x", "/x/y", true},
		{"/x", "/xy", false},
		{"/x", "/x/../y", false},
		{"/x", "/", false},
		{"/", "/etc", true},
		{"/x", "/x/..y", true},
	}
	for _, tt := range tests {
		if _, got := within(tt.root, tt.p); got != tt.want {
			t.Errorf("within(%q, %q) = %v, want %v", tt.root, tt.p, got, tt.want)
		}
	}
}
