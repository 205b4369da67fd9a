package service

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSystemdUnit(t *testing.T) {
	u := SystemdUnit("/usr/local/bin/patchbay-agent", "/var/lib/patchbay-agent")
	for _, want := range []string{
		"\n[Service]\n", "\nExecStart=/usr/local/bin/patchbay-agent run --data /var/lib/patchbay-agent\n",
		"\nRestart=always\n", "\nKillMode=mixed\n", "\nUMask=0077\n", "\nStateDirectory=patchbay-agent\n",
		"\n[Install]\nWantedBy=multi-user.target\n", "\nAfter=network-online.target\n",
	} {
		if !strings.Contains(u, want) {
			t.Errorf("unit lacks %q:\n%s", want, u)
		}
	}
	// The agent installs packages and its sessions may sudo: neither may be blocked.
	for _, bad := range []string{"ProtectSystem", "NoNewPrivileges", "ProtectHome"} {
		if strings.Contains(u, bad) {
			t.Errorf("unit sets %s, which breaks the agent's job:\n%s", bad, u)
		}
	}
	args, err := ParseExecStart(u)
	if err != nil {
		t.Fatal(err)
	}
	if want := ExecArgs("linux", "/usr/local/bin/patchbay-agent", "/var/lib/patchbay-agent"); !slices.Equal(args, want) {
		t.Errorf("ExecStart parses to %q, want %q", args, want)
	}
	// Another data directory: no StateDirectory (it only covers /var/lib/NAME).
	if u := SystemdUnit("/opt/pb/agent", "/srv/pb"); strings.Contains(u, "StateDirectory") {
		t.Errorf("StateDirectory for a data directory outside /var/lib:\n%s", u)
	}
}

func TestSystemdQuoteRoundTrip(t *testing.T) {
	for _, c := range [][2]string{
		{"/opt/Patch Bay/agent", "/var/lib/my data"},
		{`/opt/we"ird\path`, "/data/100%$HOME"},
		{"/plain", "/tab\there"},
	} {
		u := SystemdUnit(c[0], c[1])
		args, err := ParseExecStart(u)
		if err != nil {
			t.Fatalf("%q: %v", c, err)
		}
		if want := []string{c[0], "run", "--data", c[1]}; !slices.Equal(args, want) {
			t.Errorf("ExecStart %q parses to %q, want %q", u, args, want)
		}
	}
}

func TestLaunchdPlist(t *testing.T) {
	p := LaunchdPlist("/usr/local/bin/patchbay-agent", "/var/lib/a&b <agent>")
	// A plist is XML: decode it into its keys and values.
	var doc struct {
		Dict struct {
			Inner []byte `xml:",innerxml"`
		} `xml:"dict"`
	}
	if err := xml.Unmarshal([]byte(p), &doc); err != nil {
		t.Fatalf("plist is not XML: %v\n%s", err, p)
	}
	dec := xml.NewDecoder(bytes.NewReader(doc.Dict.Inner))
	var keys, strs []string
	var cur *[]string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			switch tok.Name.Local {
			case "key":
				cur = &keys
			case "string":
				cur = &strs
			default:
				cur = nil
			}
		case xml.CharData:
			if cur != nil {
				*cur = append(*cur, string(tok))
				cur = nil
			}
		}
	}
	for _, k := range []string{"Label", "ProgramArguments", "RunAtLoad", "KeepAlive", "SuccessfulExit", "StandardErrorPath"} {
		if !slices.Contains(keys, k) {
			t.Errorf("plist lacks key %s: %q", k, keys)
		}
	}
	want := append([]string{LaunchdLabel}, ExecArgs("darwin", "/usr/local/bin/patchbay-agent", "/var/lib/a&b <agent>")...)
	if !slices.Equal(strs[:len(want)], want) {
		t.Errorf("plist strings %q, want label and program arguments %q", strs, want)
	}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode()
}

func TestInstallRootLinux(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(t.TempDir(), "agent-src")
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho agent\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	o := Options{GOOS: "linux", Root: root, Binary: DefaultBinary("linux"), CopyFrom: src, DataDir: "/var/lib/patchbay-agent", Out: &out}
	ctx := context.Background()
	if err := Install(ctx, o); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "usr/local/bin/patchbay-agent")
	if m := mode(t, bin); m.Perm() != 0o755 || !m.IsRegular() {
		t.Errorf("binary mode %v, want 0755 regular file", m)
	}
	if b, _ := os.ReadFile(bin); string(b) != "#!/bin/sh\necho agent\n" {
		t.Errorf("binary content %q", b)
	}
	unit := filepath.Join(root, "etc/systemd/system/patchbay-agent.service")
	if m := mode(t, unit); m.Perm() != 0o644 {
		t.Errorf("unit mode %v, want 0644", m)
	}
	if b, _ := os.ReadFile(unit); string(b) != SystemdUnit("/usr/local/bin/patchbay-agent", "/var/lib/patchbay-agent") {
		t.Errorf("unit is not SystemdUnit's:\n%s", b)
	}
	if m := mode(t, filepath.Join(root, "var/lib/patchbay-agent")); m.Perm() != 0o700 || !m.IsDir() {
		t.Errorf("data directory mode %v, want 0700 directory", m)
	}
	link := filepath.Join(root, "etc/systemd/system/multi-user.target.wants/patchbay-agent.service")
	if target, err := os.Readlink(link); err != nil || target != SystemdUnitPath {
		t.Errorf("enable link %s -> %q (%v), want %s", link, target, err, SystemdUnitPath)
	}
	st, err := GetStatus(ctx, o)
	if err != nil || !st.Installed || !st.Enabled {
		t.Errorf("status after install: %+v, %v", st, err)
	}
	// Again: idempotent, the binary replaced.
	if err := os.WriteFile(src, []byte("v2"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Install(ctx, o); err != nil {
		t.Fatalf("second install: %v", err)
	}
	if b, _ := os.ReadFile(bin); string(b) != "v2" {
		t.Errorf("binary not replaced: %q", b)
	}
	if err := Uninstall(ctx, o); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{unit, link} {
		if _, err := os.Lstat(gone); !os.IsNotExist(err) {
			t.Errorf("%s still there after uninstall (%v)", gone, err)
		}
	}
	if _, err := os.Stat(bin); err != nil {
		t.Errorf("uninstall removed the binary: %v", err)
	}
	if st, err := GetStatus(ctx, o); err != nil || st.Installed || st.Enabled {
		t.Errorf("status after uninstall: %+v, %v", st, err)
	}
	if err := Uninstall(ctx, o); err == nil || !strings.Contains(err.Error(), "not installed") {
		t.Errorf("second uninstall: %v, want not installed", err)
	}
}

func TestInstallRootDarwin(t *testing.T) {
	root := t.TempDir()
	o := Options{GOOS: "darwin", Root: root, Binary: "/usr/local/bin/patchbay-agent", DataDir: "/var/lib/patchbay-agent"}
	if err := Install(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	plist := filepath.Join(root, "Library/LaunchDaemons/com.patchbay.agent.plist")
	if m := mode(t, plist); m.Perm() != 0o644 {
		t.Errorf("plist mode %v, want 0644", m)
	}
	if b, _ := os.ReadFile(plist); string(b) != LaunchdPlist(o.Binary, o.DataDir) {
		t.Errorf("plist is not LaunchdPlist's:\n%s", b)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/local/bin/patchbay-agent")); !os.IsNotExist(err) {
		t.Errorf("binary copied without CopyFrom: %v", err)
	}
}

func TestInstallRefusals(t *testing.T) {
	ctx := context.Background()
	for name, o := range map[string]Options{
		"windows root": {GOOS: "windows", Root: t.TempDir(), Binary: "x", DataDir: "y"},
		"other os":     {GOOS: "plan9", Root: t.TempDir(), Binary: "x", DataDir: "y"},
		"no binary":    {GOOS: "linux", Root: t.TempDir(), DataDir: "y"},
	} {
		if err := Install(ctx, o); err == nil {
			t.Errorf("%s: installed", name)
		}
	}
}
