package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/testtool"
	"github.com/patchbay/patchbay/plugins/sdk"
	"github.com/patchbay/patchbay/plugins/sdk/sdktest"
)

const pluginPkg = "github.com/patchbay/patchbay/plugins/patchinstall"

// dpkgState fingerprints what an install, a lock or a list refresh would
// touch: dpkg's status database, its lock files and the apt lists folder.
func dpkgState(t *testing.T) string {
	t.Helper()
	h := sha256.New()
	for _, f := range []string{"/var/lib/dpkg/status", "/var/lib/dpkg/lock", "/var/lib/dpkg/lock-frontend", "/var/lib/apt/extended_states"} {
		fi, err := os.Stat(f)
		if err != nil {
			fmt.Fprintf(h, "%s: missing\n", f)
			continue
		}
		fmt.Fprintf(h, "%s %d %s\n", f, fi.Size(), fi.ModTime().Format(time.RFC3339Nano))
		if fi.Size() < 64<<20 {
			if r, err := os.Open(f); err == nil {
				_, _ = io.Copy(h, r)
				r.Close()
			}
		}
	}
	lists, _ := filepath.Glob("/var/lib/apt/lists/*")
	for _, f := range lists {
		if fi, err := os.Stat(f); err == nil {
			fmt.Fprintf(h, "%s %d %s\n", f, fi.Size(), fi.ModTime().Format(time.RFC3339Nano))
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func requireApt(t *testing.T) {
	t.Helper()
	// The end-to-end test runs against a Debian or Ubuntu machine's apt.
	testtool.Need(t, "apt-get", "apt")
}

func startPlugin(t *testing.T) *sdk.Client {
	t.Helper()
	return sdktest.Start(t, sdktest.Build(t, pluginPkg), "PATH="+os.Getenv("PATH"))
}

// check runs Check and verifies that the summary, Needed and the details
// agree with each other.
func check(t *testing.T, c *sdk.Client, params sdk.Params) checkDetails {
	t.Helper()
	res, err := c.Check(t.Context(), sdk.Request{Params: params})
	if err != nil {
		t.Fatalf("check %v: %v", params, err)
	}
	var d checkDetails
	if err := json.Unmarshal([]byte(res.Details), &d); err != nil {
		t.Fatalf("check details: %v\n%s", err, res.Details)
	}
	if d.Manager != "apt" || d.Security == nil {
		t.Fatalf("check details: manager %q, security %v", d.Manager, d.Security)
	}
	sec := 0
	for _, u := range d.Pending {
		if u.Name == "" || u.To == "" {
			t.Fatalf("malformed pending update %+v", u)
		}
		if u.Security {
			sec++
		}
	}
	if sec != *d.Security {
		t.Fatalf("details count %d security updates, flags say %d", *d.Security, sec)
	}
	want := fmt.Sprintf("%d updates pending (%d security)", len(d.Pending), sec)
	switch {
	case len(d.Pending) == 0 && d.SecurityOnly:
		want = "no security updates pending"
	case len(d.Pending) == 0:
		want = "no updates pending"
	case len(d.Pending) == 1:
		want = fmt.Sprintf("1 update pending (%d security)", sec)
	}
	if res.Summary != want || res.Needed != (len(d.Pending) > 0) {
		t.Fatalf("check = needed %v %q; details say %d pending, want %q", res.Needed, res.Summary, len(d.Pending), want)
	}
	t.Logf("check %v: %s", params, res.Summary)
	return d
}

// TestAgainstThisMachine runs Check and a simulated Fix through the real
// plugin process against this machine's apt. Nothing is installed: Fix
// runs with simulate=true (apt-get -s) and the test verifies that dpkg's
// state and the package lists are untouched.
func TestAgainstThisMachine(t *testing.T) {
	requireApt(t)
	before := dpkgState(t)
	c := startPlugin(t)

	all := check(t, c, sdk.Params{})
	sec := check(t, c, sdk.Params{"security_only": "true"})
	if len(sec.Pending) != *all.Security {
		t.Fatalf("security_only lists %d updates, the full check counted %d security", len(sec.Pending), *all.Security)
	}
	for _, u := range sec.Pending {
		if !u.Security {
			t.Fatalf("security_only listed %+v", u)
		}
	}
	if len(all.Pending) > 0 {
		name := all.Pending[0].Name
		ex := check(t, c, sdk.Params{"exclude": name, "manager": "apt"})
		if len(ex.Pending) != len(all.Pending)-1 || len(ex.Excluded) != 1 || ex.Excluded[0] != name {
			t.Fatalf("exclude %s: %d pending (of %d), excluded %q", name, len(ex.Pending), len(all.Pending), ex.Excluded)
		}
	}

	tests := []struct {
		name    string
		params  sdk.Params
		pending int
		args    string // in the streamed apt-get command line
	}{
		{"all", sdk.Params{"simulate": "true", "refresh": "true"}, len(all.Pending), "-s -o Debug::NoLocking=1 --with-new-pkgs upgrade"},
		{"security only", sdk.Params{"simulate": "true", "security_only": "true"}, len(sec.Pending), "-s -o Debug::NoLocking=1 install --only-upgrade"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, lines, err := sdktest.Fix(t.Context(), c, sdk.Request{Params: tt.params})
			output := strings.Join(lines, "\n")
			if err != nil {
				t.Fatalf("fix: %v\n%s", err, output)
			}
			var d fixDetails
			if err := json.Unmarshal([]byte(res.Details), &d); err != nil {
				t.Fatalf("fix details: %v\n%s", err, res.Details)
			}
			if res.Changed || res.RebootRequired || !d.Simulated || d.Manager != "apt" || len(d.Packages) != 0 && len(d.Packages) != tt.pending {
				t.Fatalf("fix = %+v, details %+v", res, d)
			}
			if tt.params["refresh"] == "true" && !strings.Contains(output, "simulate: not refreshing") {
				t.Fatalf("refresh was not skipped:\n%s", output)
			}
			if tt.pending == 0 {
				if !strings.HasPrefix(res.Summary, "no ") {
					t.Fatalf("nothing pending, summary %q", res.Summary)
				}
				return
			}
			if want := "simulated: would install " + countUpdates(tt.pending); res.Summary != want || len(d.Packages) != tt.pending {
				t.Fatalf("summary %q with %d packages, want %q", res.Summary, len(d.Packages), want)
			}
			if !strings.Contains(output, tt.args) || !strings.Contains(output, "\nInst ") {
				t.Fatalf("output lacks %q or apt's Inst lines:\n%s", tt.args, output)
			}
		})
	}
	if after := dpkgState(t); after != before {
		t.Fatal("dpkg state or apt lists changed during Check and simulated Fix")
	}
}

func TestUnavailableManager(t *testing.T) {
	requireApt(t)
	c := startPlugin(t)
	for _, m := range []string{"winget", "softwareupdate"} {
		_, err := c.Check(t.Context(), sdk.Request{Params: sdk.Params{"manager": m}})
		if err == nil || !strings.Contains(err.Error(), "manager "+m) || !strings.Contains(err.Error(), "not found") {
			t.Errorf("manager %s: err = %v", m, err)
		}
	}
	_, err := c.Check(t.Context(), sdk.Request{Params: sdk.Params{"exclude": "--purge"}})
	if err == nil || !strings.Contains(err.Error(), "not a package name") {
		t.Errorf("exclude --purge: err = %v", err)
	}
}
