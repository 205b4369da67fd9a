package inventory

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseDpkgTestdata(t *testing.T) {
	for _, f := range []string{"testdata/dpkg-status.txt", "testdata/dpkg-W.txt"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pkgs := parseDpkg(data, "dpkg")
		if len(pkgs) != 40 {
			t.Errorf("%s: %d packages, want 40 (the rc package left out)", f, len(pkgs))
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || p.Source != "dpkg" || p.Name == "oldpkg" {
				t.Errorf("%s: bad package %+v", f, p)
			}
		}
		if pkgs[0].Name != "adduser" || pkgs[0].Version != "3.134" {
			t.Errorf("%s: first package %+v", f, pkgs[0])
		}
	}
}

// TestParseDpkgReal runs the real dpkg-query of this machine, as the agent
// does, and checks a package every Debian system has.
func TestParseDpkgReal(t *testing.T) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Fatalf("dpkg-query not found: this test parses real dpkg output; run it on Debian or Ubuntu (package dpkg)")
	}
	var c Collector
	pkgs, err := c.Software(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 50 {
		t.Fatalf("only %d packages", len(pkgs))
	}
	i := slices.IndexFunc(pkgs, func(p Package) bool { return p.Name == "dpkg" })
	if i < 0 || pkgs[i].Version == "" {
		t.Fatalf("package dpkg not listed with a version")
	}
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", "dpkg").Output()
	if err != nil || string(out) != pkgs[i].Version {
		t.Errorf("dpkg version %q, dpkg-query says %q (%v)", pkgs[i].Version, out, err)
	}
}

func TestParseRPM(t *testing.T) {
	data, err := os.ReadFile("testdata/rpm-qa.txt")
	if err != nil {
		t.Fatal(err)
	}
	got := parseRPM(data)
	want := []Package{{"bash", "5.2.26-3.fc40", "rpm"}, {"openssl-libs", "1:3.2.2-3.fc40", "rpm"},
		{"kernel-core", "6.9.7-200.fc40", "rpm"}, {"kernel-core", "6.8.11-300.fc40", "rpm"}}
	if !slices.Equal(got, want) {
		t.Errorf("parseRPM = %v, want %v", got, want)
	}
}

func TestPlistVersion(t *testing.T) {
	plist := `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
	<key>CFBundleIdentifier</key><string>org.mozilla.firefox</string>
	<key>CFBundleName</key>
	<string>Firefox</string>
	<key>CFBundleShortVersionString</key>
	<string>127.0.2</string>
	<key>CFBundleVersion</key><string>12724.6.14</string>
</dict></plist>`
	if n, v := plistVersion([]byte(plist), "x"); n != "Firefox" || v != "127.0.2" {
		t.Errorf("plistVersion = %q %q", n, v)
	}
	if n, v := plistVersion([]byte(`<dict><key>CFBundleVersion</key><string>1 &amp; 2</string></dict>`), "Tool"); n != "Tool" || v != "1 & 2" {
		t.Errorf("fallbacks: %q %q", n, v)
	}
}

func TestSoftwareFileHook(t *testing.T) {
	f := filepath.Join(t.TempDir(), "pkgs")
	if err := os.WriteFile(f, []byte("openssl\t3.0.11-1\nfirefox\t127.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(SoftwareFileEnv, f)
	var c Collector
	pkgs, err := c.Software(context.Background())
	if err != nil || len(pkgs) != 2 || pkgs[0] != (Package{"openssl", "3.0.11-1", "file"}) {
		t.Errorf("Software with the hook = %v, %v", pkgs, err)
	}
	t.Setenv(SoftwareFileEnv, f+".missing")
	if _, err := c.Software(context.Background()); err == nil || !strings.Contains(err.Error(), SoftwareFileEnv) {
		t.Errorf("missing hook file: %v", err)
	}
}

func TestHardwareParsers(t *testing.T) {
	model, n := parseCPUInfo(mustRead(t, "testdata/hw/proc/cpuinfo"))
	if model != "11th Gen Intel(R) Core(TM) i5-1145G7 @ 2.60GHz" || n != 2 {
		t.Errorf("cpuinfo: %q %d", model, n)
	}
	if m, err := parseMemInfo(mustRead(t, "testdata/hw/proc/meminfo")); err != nil || m != 7989012*1024 {
		t.Errorf("meminfo: %d %v", m, err)
	}
	if _, err := parseMemInfo([]byte("MemFree: 1 kB\n")); err == nil {
		t.Error("meminfo without MemTotal accepted")
	}
	if bt, err := parseBootTime(mustRead(t, "testdata/hw/proc/stat")); err != nil || !bt.Equal(time.Unix(1714550400, 0)) {
		t.Errorf("btime: %v %v", bt, err)
	}
	if _, err := parseBootTime([]byte("cpu 1 2 3\n")); err == nil {
		t.Error("stat without btime accepted")
	}
	got := parseMounts(mustRead(t, "testdata/hw/proc/mounts"))
	if want := []string{"/", "/boot/efi", "/home dir"}; !slices.Equal(got, want) {
		t.Errorf("mounts %q, want %q", got, want)
	}
}

func mustRead(t *testing.T, f string) []byte {
	t.Helper()
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
