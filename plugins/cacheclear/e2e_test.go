//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/patchbay/patchbay/plugins/sdk"
	"github.com/patchbay/patchbay/plugins/sdk/sdktest"
)

const pluginPkg = "github.com/patchbay/patchbay/plugins/cacheclear"

// TestPluginEndToEnd runs Check, Fix and Check again through the real
// plugin process on a sandbox full of symbolic-link traps.
func TestPluginEndToEnd(t *testing.T) {
	c := sdktest.Start(t, sdktest.Build(t, pluginPkg))
	ctx := context.Background()
	tr := newTrap(t)

	m, err := c.Manifest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "cacheclear" || m.Version != "1.0.0" || len(m.Params) != 4 || !m.Supports("windows") {
		t.Fatalf("manifest = %+v", m)
	}

	req := sdk.Request{Params: sdk.Params{"root": tr.root}}
	chk, err := c.Check(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !chk.Needed {
		t.Fatalf("check: not needed: %+v", chk)
	}
	wantBytes := fmt.Sprintf("bytes temp=%d user=%d package=%d total=%d", tr.temp, tr.user, tr.pkg, tr.temp+tr.user+tr.pkg)
	if !strings.Contains(chk.Details, wantBytes) {
		t.Fatalf("check details lack %q:\n%s", wantBytes, chk.Details)
	}
	if !regexp.MustCompile(`^[0-9.]+ KiB reclaimable \(temp [0-9.]+ KiB, user [0-9.]+ KiB, package [0-9.]+ KiB\), dns skipped \(sandbox root\), 2 errors$`).MatchString(chk.Summary) {
		t.Fatalf("check summary = %q", chk.Summary)
	}
	for _, want := range []string{"alice: chrome", "alice: firefox", "alice: chromium", "alice: edge", "alice: other",
		"temp refused: " + tr.path("var/tmp") + " is a symbolic link", "user refused: " + tr.path("home/bob/.cache"),
		"user skipped: " + tr.path("home/carol/.cache")} {
		if !strings.Contains(chk.Details, want) {
			t.Errorf("check details lack %q", want)
		}
	}
	if !exists(tr.path("tmp/old.txt")) {
		t.Fatal("check deleted a file")
	}

	res, lines, err := sdktest.Fix(ctx, c, req)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || !strings.HasPrefix(res.Summary, "freed ") || !strings.Contains(res.Details, wantBytes) {
		t.Fatalf("fix = %+v", res)
	}
	out := strings.Join(lines, "\n")
	t.Logf("fix output:\n%s\n\n%s", out, res.Details)
	for _, want := range []string{"temp: freed", "user: freed", "package: freed", "dns skipped (sandbox root)", "temp: refused:"} {
		if !strings.Contains(out, want) {
			t.Errorf("fix output lacks %q:\n%s", want, out)
		}
	}

	for _, p := range tr.canaries {
		if !exists(p) {
			t.Errorf("canary outside the sandbox deleted: %s", p)
		}
	}
	for _, rel := range []string{"tmp", "home/alice/.cache", "root/.cache", "var/cache/apt/archives/partial",
		"var/cache/dnf", "tmp/new.txt", "tmp/youngdir", "tmp/.X11-unix/X0", "tmp/fifo", "tmp/hard",
		"tmp/systemd-private-abc/tmp/file", "var/cache/apt/archives/lock", "home/carol/realcache/keep"} {
		if !exists(tr.path(rel)) {
			t.Errorf("%s deleted, want kept", rel)
		}
	}
	for _, rel := range []string{"tmp/old.txt", "tmp/dir", "tmp/youngdir/old3", "tmp/trap", "tmp/filelink",
		"home/alice/.cache/google-chrome", "home/alice/.cache/etc", "root/.cache/x",
		"var/cache/apt/archives/foo.deb", "var/cache/apt/archives/partial/bar.deb.part", "var/cache/dnf/repo"} {
		if exists(tr.path(rel)) {
			t.Errorf("%s kept, want deleted", rel)
		}
	}
	if !isSymlink(tr.path("var/tmp")) || !isSymlink(tr.path("home/bob/.cache")) {
		t.Error("a refused symbolic link base was removed")
	}

	again, err := c.Check(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if again.Needed || !strings.Contains(again.Details, "total=0") {
		t.Fatalf("check after fix: %+v", again)
	}
}

// TestPluginParams checks that bad parameters fail clearly through the
// plugin process, and that user limits the user scope to one home.
func TestPluginParams(t *testing.T) {
	c := sdktest.Start(t, sdktest.Build(t, pluginPkg))
	ctx := context.Background()
	tr := newTrap(t)
	tests := []struct {
		name    string
		params  sdk.Params
		wantErr string
		want    string // in the details
	}{
		{"unknown scope", sdk.Params{"root": tr.root, "scopes": "temp,bogus"}, `unknown scope "bogus"`, ""},
		{"relative root", sdk.Params{"root": "tmp"}, "not an absolute path", ""},
		{"bad min_age", sdk.Params{"root": tr.root, "min_age": "soon"}, "not a duration", ""},
		{"negative min_age", sdk.Params{"root": tr.root, "min_age": "-1h"}, "negative", ""},
		{"user with slash", sdk.Params{"root": tr.root, "user": "../etc"}, "not an account name", ""},
		{"unknown user", sdk.Params{"root": tr.root, "user": "mallory"}, `no home directory for "mallory"`, ""},
		{"one user", sdk.Params{"root": tr.root, "scopes": "user", "user": "root"}, "", "bytes user=80 total=80"},
		{"package only", sdk.Params{"root": tr.root, "scopes": "package"}, "", fmt.Sprintf("bytes package=%d total=%d", tr.pkg, tr.pkg)},
		{"min_age 3h spares all", sdk.Params{"root": tr.root, "scopes": "temp", "min_age": "3h"}, "", "bytes temp=0 total=0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Check(ctx, sdk.Request{Params: tt.params})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(res.Details, tt.want) {
				t.Fatalf("details lack %q:\n%s", tt.want, res.Details)
			}
		})
	}
	if _, err := os.Stat(tr.path("tmp/old.txt")); err != nil {
		t.Fatal("check changed the sandbox")
	}
}
