package sshd

import (
	"slices"
	"testing"
)

func TestIsLegacySCP(t *testing.T) {
	for _, tc := range []struct {
		cmd  string
		want bool
	}{
		{"scp -t /tmp/x", true},
		{"scp -f /tmp/x", true},
		{"scp -v -r -p -d -t /tmp/dir", true},
		{"scp -prt /tmp", true},
		{"scp -t -- -odd-name", true},
		{"scp -f '/tmp/remote dir/file.bin'", true},
		{`scp -f /tmp/remote\ dir/file.bin`, true},
		{"scp -f ~/Documents/*.txt", true},
		{"scp -t /tmp/été", true},
		{"scp -t", false},
		{"scp /tmp/x", false},
		{"scp -t -f /tmp/x", false},
		{"scp -tf /tmp/x", false},
		{"scp -t /tmp/x /tmp/y", false},
		{"scp -o ProxyCommand=x -t /tmp/x", false},
		{"scp -S /bin/sh -t /tmp/x", false},
		{"scp -t /tmp; id", false},
		{"scp -t /tmp && id", false},
		{"scp -t /tmp | id", false},
		{"scp -t $(id)", false},
		{"scp -t `id`", false},
		{"scp -t /tmp/$HOME", false},
		{"scp -t >/etc/passwd", false},
		{"scp -t \"/tmp/x\"", false},
		{"scp -t '/tmp/x", false},
		{"scp -t /tmp/x\nid", false},
		{"scp -t /tmp/x\\\nid", false},
		{"scp -t {a,b}", false},
		{"/usr/bin/scp -t /tmp", false},
		{"scpx -t /tmp", false},
		{"echo scp -t /tmp", false},
		{"", false},
	} {
		if got := isLegacySCP(tc.cmd); got != tc.want {
			t.Errorf("isLegacySCP(%q) = %v, want %v", tc.cmd, got, tc.want)
		}
	}
}

func TestLoopbackTargets(t *testing.T) {
	for _, tc := range []struct {
		host string
		want []string
	}{
		{"127.0.0.1", []string{"127.0.0.1:80"}},
		{"127.1.2.3", []string{"127.1.2.3:80"}},
		{"::1", []string{"[::1]:80"}},
		{"::ffff:127.0.0.1", []string{"127.0.0.1:80"}},
		{"localhost", []string{"127.0.0.1:80", "[::1]:80"}},
		{"localhost.", []string{"127.0.0.1:80", "[::1]:80"}},
		{"LOCALHOST", nil},
		{"localhost.example.com", nil},
		{"10.0.0.1", nil},
		{"0.0.0.0", nil},
		{"::", nil},
		{"::ffff:10.0.0.1", nil},
		{"fe80::1%lo", nil},
		{"::1%lo", nil},
		{"127.0.0.1.nip.io", nil},
		{"2130706433", nil},
		{"0x7f000001", nil},
		{"", nil},
	} {
		got, ok := loopbackTargets(tc.host, 80)
		if ok != (tc.want != nil) || !slices.Equal(got, tc.want) {
			t.Errorf("loopbackTargets(%q) = %q, %v; want %q", tc.host, got, ok, tc.want)
		}
	}
}

func TestShellSpecs(t *testing.T) {
	if s := loginShellSpec("/bin/bash"); s.path != "/bin/bash" || !slices.Equal(s.args, []string{"-bash"}) {
		t.Errorf("login shell %+v", s)
	}
	if s := commandSpec("/bin/sh", "echo hi"); !slices.Equal(s.args, []string{"sh", "-c", "echo hi"}) {
		t.Errorf("command %+v", s)
	}
	if s := commandSpec(`C:\Windows\System32\cmd.exe`, "dir"); !slices.Equal(s.args, []string{`C:\Windows\System32\cmd.exe`, "/c", "dir"}) {
		t.Errorf("cmd.exe %+v", s)
	}
	if s := commandSpec("pwsh.exe", "Get-Date"); !slices.Equal(s.args, []string{"pwsh.exe", "-NoProfile", "-NonInteractive", "-Command", "Get-Date"}) {
		t.Errorf("pwsh %+v", s)
	}
}
