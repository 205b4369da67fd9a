//go:build linux

package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/patchbay/patchbay/plugins/sdk"
	"github.com/patchbay/patchbay/plugins/sdk/sdktest"
)

const pluginPkg = "github.com/patchbay/patchbay/plugins/sysinfo"

// summaryRE is the shape of every summary.
var summaryRE = regexp.MustCompile(`^up (\d+d\d+h|\d+h\d+m|\d+m), load (\d+\.\d\d|n/a), mem \d{1,3}% used, ` +
	`disk (n/a|.+ \d{1,3}%( \(\d+ disks at \d+% or more\))?), (\d+ failed services?|failed services unknown), (no reboot|reboot) pending$`)

// TestPluginOnThisMachine runs the real plugin process against the real
// machine (root /) and checks the summary's shape and the details' fields.
func TestPluginOnThisMachine(t *testing.T) {
	c := sdktest.Start(t, sdktest.Build(t, pluginPkg))
	ctx := context.Background()
	m, err := c.Manifest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "sysinfo" || m.Version != "1.0.0" || len(m.Params) != 2 || !m.Supports("darwin") {
		t.Fatalf("manifest = %+v", m)
	}
	chk, err := c.Check(ctx, sdk.Request{Params: sdk.Params{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("summary: %s\ndetails: %s", chk.Summary, chk.Details)
	if !summaryRE.MatchString(chk.Summary) {
		t.Fatalf("summary %q does not match %s", chk.Summary, summaryRE)
	}
	var d map[string]any
	if err := json.Unmarshal([]byte(chk.Details), &d); err != nil {
		t.Fatalf("details are not JSON: %v\n%s", err, chk.Details)
	}
	for _, field := range []string{"uptime_seconds", "load1", "load5", "load15", "mem_total", "mem_available",
		"disks", "failed_services", "failed_services_known", "reboot_pending", "problems"} {
		if _, ok := d[field]; !ok {
			t.Errorf("details lack %q", field)
		}
	}
	if d["os"] != "linux" || d["mem_total"].(float64) <= 0 {
		t.Errorf("details: os %v, mem_total %v", d["os"], d["mem_total"])
	}
	disks, _ := d["disks"].([]any)
	for _, x := range disks {
		disk := x.(map[string]any)
		for _, f := range []string{"mount", "total", "used", "percent"} {
			if _, ok := disk[f]; !ok {
				t.Errorf("disk %v lacks %q", disk, f)
			}
		}
	}
	if problems := d["problems"].([]any); chk.Needed != (len(problems) > 0) {
		t.Errorf("needed %v with problems %v", chk.Needed, problems)
	}

	res, lines, err := sdktest.Fix(ctx, c, sdk.Request{Params: sdk.Params{}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed || res.RebootRequired || !summaryRE.MatchString(res.Summary) ||
		len(lines) == 0 || !strings.Contains(lines[0], "read-only") {
		t.Fatalf("fix = %+v, lines %q", res, lines)
	}
}

// TestPluginFakeRoot runs the plugin process on fake trees: a healthy one,
// one with a pending reboot, and broken ones that must fail clearly.
func TestPluginFakeRoot(t *testing.T) {
	c := sdktest.Start(t, sdktest.Build(t, pluginPkg))
	ctx := context.Background()
	healthy := fakeRoot(t, healthyProc(), "data disk", "srv/bind")
	reboot := fakeRoot(t, withEdits(map[string]string{"var/run/reboot-required": "x"}))
	tests := []struct {
		name        string
		params      sdk.Params
		wantNeeded  bool
		wantSummary string // prefix
		wantErr     string
	}{
		{"healthy", sdk.Params{"root": healthy}, false, "up 3d5h, load 0.52, mem 41% used, disk ", ""},
		{"low threshold", sdk.Params{"root": healthy, "disk_warn_percent": "1"}, true, "up 3d5h", ""},
		{"reboot", sdk.Params{"root": reboot}, true, "up 3d5h, load 0.52, mem 41% used", ""},
		{"malformed", sdk.Params{"root": fakeRoot(t, withEdits(map[string]string{"proc/meminfo": "MemTotal: x kB"}))}, false, "",
			`proc/meminfo: line 1: "MemTotal: x kB": bad number`},
		{"missing proc", sdk.Params{"root": t.TempDir()}, false, "", "proc/uptime: no such file or directory"},
		{"relative root", sdk.Params{"root": "proc"}, false, "", "not an absolute path"},
		{"bad threshold", sdk.Params{"root": healthy, "disk_warn_percent": "101"}, false, "", "not a percentage from 1 to 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chk, err := c.Check(ctx, sdk.Request{Params: tt.params})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if chk.Needed != tt.wantNeeded || !strings.HasPrefix(chk.Summary, tt.wantSummary) || !summaryRE.MatchString(chk.Summary) {
				t.Fatalf("check = %+v", chk)
			}
		})
	}
}
