package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeRoot writes files (path relative to the root -> content) into a new
// directory and returns it. Directories named in dirs are created too.
func fakeRoot(t *testing.T, files map[string]string, dirs ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// gone marks a file a test case deletes from healthyProc.
const gone = "\x00gone"

// withEdits returns healthyProc with edits applied (gone deletes a file).
func withEdits(edits map[string]string) map[string]string {
	files := healthyProc()
	for k, v := range edits {
		files[k] = v
		if v == gone {
			delete(files, k)
		}
	}
	return files
}

// healthyProc is a minimal, well-formed /proc.
func healthyProc() map[string]string {
	return map[string]string{
		"proc/uptime":  "277200.50 100.00\n",
		"proc/loadavg": "0.52 0.40 0.30 2/300 4242\n",
		"proc/meminfo": "MemTotal: 1000000 kB\nMemFree: 100000 kB\nMemAvailable: 590000 kB\n",
		"proc/self/mounts": "/dev/sda1 / ext4 rw 0 0\n" +
			"proc /proc proc rw 0 0\n" +
			"tmpfs /run tmpfs rw 0 0\n" +
			"/dev/sda1 /srv/bind ext4 rw 0 0\n" + // a bind mount: reported once, under /
			"/dev/sdb1 /data\\040disk xfs rw 0 0\n" +
			"/dev/sdc1 /gone ext4 rw 0 0\n" + // no such directory below root: ignored
			"/dev/sda1 /etc/hosts ext4 rw 0 0\n", // a file mount (Docker): ignored
	}
}

func TestCollectFakeRoot(t *testing.T) {
	files := healthyProc()
	files["etc/hosts"] = "127.0.0.1 localhost\n"
	root := fakeRoot(t, files, "srv/bind", "data disk", "run")
	r := &Report{DiskWarn: 90}
	if err := collect(context.Background(), config{root: root, sandbox: true, diskWarn: 90}, r); err != nil {
		t.Fatal(err)
	}
	r.finish()
	if r.UptimeSeconds != 277200 || *r.Load1 != 0.52 || *r.Load15 != 0.30 ||
		r.MemTotal != 1000000*1024 || r.MemAvailable != 590000*1024 || r.MemUsedPercent != 41 {
		t.Fatalf("report = %+v", r)
	}
	var mounts []string
	for _, d := range r.Disks {
		mounts = append(mounts, d.Mount)
		if d.Total == 0 || d.Percent < 0 || d.Percent > 100 {
			t.Errorf("disk %+v", d)
		}
	}
	if strings.Join(mounts, "|") != "/|/data disk" {
		t.Fatalf("disks = %q, notes %q", mounts, r.Notes)
	}
	if r.FailedServicesKnown || r.ServicesNote != "not checked (sandbox root)" || r.RebootPending {
		t.Fatalf("services/reboot: %+v", r)
	}
	if !strings.HasPrefix(r.Summary(), "up 3d5h, load 0.52, mem 41% used, disk ") ||
		!strings.HasSuffix(r.Summary(), ", failed services unknown, no reboot pending") {
		t.Fatalf("summary = %q", r.Summary())
	}
}

func TestCollectMalformed(t *testing.T) {
	tests := []struct {
		name    string
		edit    map[string]string // files replaced; "" deletes
		wantErr string
	}{
		{"no uptime", map[string]string{"proc/uptime": gone}, "proc/uptime: no such file"},
		{"bad uptime", map[string]string{"proc/uptime": "up for ages"}, `proc/uptime: "up" is not a non-negative number`},
		{"empty uptime", map[string]string{"proc/uptime": " "}, "proc/uptime: empty"},
		{"short loadavg", map[string]string{"proc/loadavg": "0.1"}, "proc/loadavg: \"0.1\": want three load averages"},
		{"no meminfo", map[string]string{"proc/meminfo": gone}, "proc/meminfo: no such file"},
		{"bad meminfo", map[string]string{"proc/meminfo": "MemTotal: 12 kB\nMemFree: -3 kB\n"}, "proc/meminfo: line 2"},
		{"meminfo without total", map[string]string{"proc/meminfo": "MemFree: 3 kB\n"}, "proc/meminfo: no MemTotal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fakeRoot(t, withEdits(tt.edit))
			err := collect(context.Background(), config{root: root, sandbox: true, diskWarn: 90}, &Report{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestCollectDegrades(t *testing.T) {
	tests := []struct {
		name      string
		edit      map[string]string
		wantNote  string
		wantDisks int
	}{
		{"no mounts at all", map[string]string{"proc/self/mounts": gone}, "disks: open", 0},
		{"falls back to /proc/mounts", map[string]string{"proc/self/mounts": gone, "proc/mounts": "/dev/sda1 / ext4 rw 0 0\n"}, "", 1},
		{"malformed mounts", map[string]string{"proc/self/mounts": "garbage\n"}, `line 1: "garbage"`, 0},
		{"empty mounts", map[string]string{"proc/self/mounts": ""}, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Report{}
			if err := collect(context.Background(), config{root: fakeRoot(t, withEdits(tt.edit)), sandbox: true}, r); err != nil {
				t.Fatal(err)
			}
			if len(r.Disks) != tt.wantDisks || (tt.wantNote != "" && !strings.Contains(strings.Join(r.Notes, "\n"), tt.wantNote)) {
				t.Fatalf("disks %+v, notes %q", r.Disks, r.Notes)
			}
		})
	}
}

func TestCollectReboot(t *testing.T) {
	tests := []struct {
		name       string
		files      map[string]string // edits to healthyProc
		wantReason string
	}{
		{"none", nil, ""},
		{"debian", map[string]string{"var/run/reboot-required": "*** System restart required ***\n"}, "/var/run/reboot-required exists"},
		{"debian with packages", map[string]string{"run/reboot-required": "", "run/reboot-required.pkgs": "linux-image\nlibc6\nlinux-image\na\nb\nc\nd\n"},
			"/run/reboot-required exists (linux-image, libc6, a, b, c and 1 more)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Report{}
			collectReboot(context.Background(), config{root: fakeRoot(t, withEdits(tt.files)), sandbox: true}, r)
			if r.RebootPending != (tt.wantReason != "") || r.RebootReason != tt.wantReason {
				t.Fatalf("pending %v, reason %q; want %q", r.RebootPending, r.RebootReason, tt.wantReason)
			}
		})
	}
}

func TestTools(t *testing.T) {
	dir := t.TempDir()
	script := "#!/bin/sh\necho '● bad.service loaded failed failed Bad'\necho ' * glibc' \necho oops >&2\nexit ${EXIT:-0}\n"
	for _, name := range []string{"systemctl", "needs-restarting"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	saved := toolDirs
	toolDirs = []string{dir}
	t.Cleanup(func() { toolDirs = saved })
	root := fakeRoot(t, nil)

	r := &Report{}
	collectServices(context.Background(), config{root: root}, r)
	if !r.FailedServicesKnown || strings.Join(r.FailedServices, ",") != "bad.service" {
		t.Fatalf("services: %+v", r)
	}
	t.Setenv("EXIT", "1")
	r = &Report{}
	collectServices(context.Background(), config{root: root}, r)
	if r.FailedServicesKnown || r.ServicesNote != "systemctl exited with status 1: oops" {
		t.Fatalf("services in a container: %+v", r)
	}
	collectReboot(context.Background(), config{root: root}, r)
	if !r.RebootPending || r.RebootReason != "needs-restarting -r: reboot required (glibc updated)" {
		t.Fatalf("needs-restarting: %+v", r)
	}
	t.Setenv("EXIT", "0")
	r = &Report{}
	collectReboot(context.Background(), config{root: root}, r)
	if r.RebootPending || len(r.Notes) != 0 {
		t.Fatalf("needs-restarting, no reboot: %+v", r)
	}
	toolDirs = []string{t.TempDir()}
	collectServices(context.Background(), config{root: root}, r)
	if r.ServicesNote != "systemctl not installed" {
		t.Fatalf("no systemctl: %+v", r)
	}
}
