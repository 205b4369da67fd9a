package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/testtool"
	"github.com/patchbay/patchbay/plugins/sdk"
)

func TestManifest(t *testing.T) {
	m := patchInstall{}.Manifest()
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if !m.MayReboot || m.Name != "patchinstall" || m.Version != "1.1.0" {
		t.Fatalf("manifest = %+v", m)
	}
	for _, name := range managerNames {
		if backends[name] == nil || backends[name].name() != name || managerTool[name] == "" {
			t.Errorf("manager %s: backend or tool missing", name)
		}
	}
	if _, err := m.ValidateParams(map[string]string{"manager": "yum"}); err == nil {
		t.Fatal("manager=yum accepted")
	}
}

func TestParseOptions(t *testing.T) {
	tests := []struct {
		exclude string
		want    []string
		wantErr string
	}{
		{"", nil, ""},
		{"bash, openssl ,,bash,BASH", []string{"bash", "openssl"}, ""},
		{"libc6:i386,Mozilla.Firefox,macOS Sonoma 14.2.1-23C71", []string{"libc6:i386", "Mozilla.Firefox", "macOS Sonoma 14.2.1-23C71"}, ""},
		{"-o,bash", nil, "is not a package name"},
		{"bash;reboot", nil, "is not a package name"},
		{"a\nb", nil, "is not a package name"},
		{strings.Repeat("x", 201), nil, "is not a package name"},
	}
	for _, tt := range tests {
		o, err := parseOptions(sdk.Params{"exclude": tt.exclude, "security_only": "true", "simulate": "true"})
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("exclude %q: err = %v, want %q", tt.exclude, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(o.exclude, tt.want) || !o.securityOnly || !o.simulate || o.refresh {
			t.Errorf("exclude %q: %+v, %v; want %q", tt.exclude, o, err, tt.want)
		}
	}
}

func TestChooseAndSummary(t *testing.T) {
	ups := []update{
		{Name: "bash", From: "1", To: "2"},
		{Name: "openssl", From: "1", To: "2", Security: true},
		{Name: "libssl3", From: "1", To: "2", Security: true},
		{Name: "linux-image-6.1.0-28-amd64", To: "6.1.119-1", Security: true},
	}
	tests := []struct {
		name     string
		o        options
		p        pendingList
		chosen   []string
		excluded []string
		summary  string
	}{
		{"all", options{}, pendingList{Security: -1}, []string{"bash", "openssl", "libssl3", "linux-image-6.1.0-28-amd64"}, nil,
			"4 updates pending (3 security)"},
		{"security only", options{securityOnly: true}, pendingList{Security: -1}, []string{"openssl", "libssl3", "linux-image-6.1.0-28-amd64"}, nil,
			"3 updates pending (3 security)"},
		{"exclude", options{exclude: []string{"OpenSSL", "nothere"}}, pendingList{Security: -1},
			[]string{"bash", "libssl3", "linux-image-6.1.0-28-amd64"}, []string{"openssl"}, "3 updates pending (2 security)"},
		{"exclude all security", options{securityOnly: true, exclude: []string{"openssl", "libssl3", "linux-image-6.1.0-28-amd64"}},
			pendingList{Security: -1}, nil, []string{"openssl", "libssl3", "linux-image-6.1.0-28-amd64"}, "no security updates pending"},
		{"zypper counts patches", options{}, pendingList{Security: 7}, []string{"bash", "openssl", "libssl3", "linux-image-6.1.0-28-amd64"}, nil,
			"4 updates pending (7 security)"},
		{"winget has no security data", options{}, pendingList{Security: -1, NoSecurityInfo: true},
			[]string{"bash", "openssl", "libssl3", "linux-image-6.1.0-28-amd64"}, nil, "4 updates pending"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chosen, excluded := choose(ups, tt.o)
			var names []string
			for _, u := range chosen {
				names = append(names, u.Name)
			}
			if !reflect.DeepEqual(names, tt.chosen) || !reflect.DeepEqual(excluded, tt.excluded) {
				t.Fatalf("chosen %q excluded %q; want %q %q", names, excluded, tt.chosen, tt.excluded)
			}
			if got := pendingSummary(tt.p, chosen, tt.o); got != tt.summary {
				t.Fatalf("summary = %q, want %q", got, tt.summary)
			}
		})
	}
	if got := pendingSummary(pendingList{Security: -1}, ups[:1], options{}); got != "1 update pending (0 security)" {
		t.Fatalf("one update: %q", got)
	}
	if got := pendingSummary(pendingList{Security: -1}, nil, options{}); got != "no updates pending" {
		t.Fatalf("none: %q", got)
	}
}

func TestStillPending(t *testing.T) {
	chosen := []update{{Name: "a", Arch: "amd64"}, {Name: "b", Arch: "amd64"}, {Name: "b", Arch: "i386"}}
	after := []update{{Name: "b", Arch: "i386"}, {Name: "c"}}
	installed, still := stillPending(chosen, after)
	if len(installed) != 2 || installed[0].Name != "a" || installed[1].Arch != "amd64" || !reflect.DeepEqual(still, []string{"b"}) {
		t.Fatalf("installed %+v, still %q", installed, still)
	}
}

func TestInstallArgs(t *testing.T) {
	ups := []update{{Name: "bash", From: "1"}, {Name: "linux-image-new"}, {Name: "openssl", From: "1"}}
	tests := []struct {
		name string
		got  []string
		want string
	}{
		{"apt all", aptInstallArgs(options{}, ups),
			"-y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold --with-new-pkgs upgrade"},
		{"apt simulate", aptInstallArgs(options{simulate: true}, ups),
			"-y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -s -o Debug::NoLocking=1 --with-new-pkgs upgrade"},
		{"apt security only names upgrades, not new packages", aptInstallArgs(options{securityOnly: true}, ups),
			"-y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install --only-upgrade bash openssl"},
		{"apt exclude", aptInstallArgs(options{exclude: []string{"x"}}, ups[:1]),
			"-y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install --only-upgrade bash"},
		{"dnf all", dnfInstallArgs(options{}), "-y upgrade"},
		{"dnf simulate security exclude", dnfInstallArgs(options{simulate: true, securityOnly: true, exclude: []string{"kernel", "glibc"}}),
			"-C --assumeno upgrade --security --exclude=kernel --exclude=glibc"},
		{"zypper all", zypperInstallArgs(options{}, ups), "--non-interactive --no-refresh update --auto-agree-with-licenses"},
		{"zypper simulate exclude", zypperInstallArgs(options{simulate: true, exclude: []string{"x"}}, ups[:1]),
			"--non-interactive --no-refresh update --auto-agree-with-licenses --dry-run bash"},
		{"zypper security", zypperInstallArgs(options{securityOnly: true, simulate: true}, nil),
			"--non-interactive --no-refresh patch --category security --auto-agree-with-licenses --dry-run"},
		{"zypper security exclude", zypperInstallArgs(options{securityOnly: true, exclude: []string{"x"}}, []update{{Name: "SUSE-2024-1"}}),
			"--non-interactive --no-refresh install --auto-agree-with-licenses patch:SUSE-2024-1"},
		{"winget", wingetInstallArgs(update{Name: "Mozilla.Firefox"}),
			"upgrade --id Mozilla.Firefox --exact --silent --accept-package-agreements --accept-source-agreements --disable-interactivity"},
		{"softwareupdate", softwareupdateInstallArgs([]update{{Name: "macOS Sonoma 14.2.1-23C71"}, {Name: "Safari"}}),
			"--install --agree-to-license macOS Sonoma 14.2.1-23C71 Safari"},
	}
	for _, tt := range tests {
		if got := strings.Join(tt.got, " "); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}

func TestCommandEnv(t *testing.T) {
	got := commandEnv([]string{"PATH=/bin", "LANG=de_DE.UTF-8", "LC_MESSAGES=fr_FR", "DEBIAN_FRONTEND=dialog", "HOME=/root"})
	want := []string{"PATH=/bin", "HOME=/root", "LANG=C", "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("commandEnv = %q, want %q", got, want)
	}
}

func TestDetectOrder(t *testing.T) {
	for goos, want := range map[string][]string{
		"linux": {"apt", "dnf", "zypper"}, "windows": {"windowsupdate", "winget"}, "darwin": {"softwareupdate"},
	} {
		if got := detectOrder(goos); !reflect.DeepEqual(got, want) {
			t.Errorf("detectOrder(%s) = %q, want %q", goos, got, want)
		}
	}
	if _, err := selectBackend("yum"); err == nil || !strings.Contains(err.Error(), "unknown") {
		t.Fatalf("selectBackend(yum) = %v", err)
	}
}

func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{max: 8}
	_, _ = tb.Write([]byte("hello "))
	_, _ = tb.Write([]byte("world"))
	if got := tb.String(); got != "lo world" {
		t.Fatalf("tail = %q", got)
	}
	if got := lastLine("a\nb\n\n"); got != "b" {
		t.Fatalf("lastLine = %q", got)
	}
}

func TestExitCodeWithChildHoldingOutput(t *testing.T) {
	sh := testtool.Need(t, "sh", "dash")
	for _, code := range []int{0, 3} {
		// The background sleep keeps stdout open after sh exits.
		cmd := exec.CommandContext(t.Context(), sh, "-c", fmt.Sprintf("sleep 1 & exit %d", code))
		cmd.Stdout = &bytes.Buffer{}
		cmd.WaitDelay = 50 * time.Millisecond
		err := cmd.Run()
		if got := exitCode(cmd, err); got != code {
			t.Errorf("exit %d: exitCode = %d (err %v)", code, got, err)
		}
	}
}
