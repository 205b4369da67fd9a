package packaging

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// need fails the test when tool is missing, naming it and its Debian package.
func need(t *testing.T, tool, debPkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Fatalf("%s not found: install it (Debian: apt-get install %s)", tool, debPkg)
	}
}

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

const testVersion = "v1.2.3-4-gabcdef0"

// TestRelease builds a small release (agent and relay for linux/amd64, signed
// with a fresh key), installs its .debs into a throw-away root with dpkg and
// checks the files, the units (systemd-analyze verify), the manifest and its
// signature, and the .rpm metadata.
func TestRelease(t *testing.T) {
	need(t, "dpkg", "dpkg")
	need(t, "dpkg-deb", "dpkg")
	need(t, "systemd-analyze", "systemd")
	need(t, "systemd-sysusers", "systemd")
	need(t, "ssh-keygen", "openssh-client")
	need(t, "sha256sum", "coreutils")

	tmp := t.TempDir()
	key := filepath.Join(tmp, "release_key")
	run(t, tmp, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "release@example.com", "-f", key)
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	signers := filepath.Join(tmp, "allowed_signers")
	if err := os.WriteFile(signers, []byte("release@example.com namespaces=\"patchbay-release\" "+string(pub)), 0o644); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(tmp, "dist", testVersion)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	var log bytes.Buffer
	err = Build(ctx, Options{
		Version: testVersion, Repo: "../..", Out: out, Key: key,
		Platforms: []Platform{{"linux", "amd64"}},
		Programs:  []Program{Programs[0], Programs[2]}, // agent and relay
		Log:       &log,
	})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log.String())
	}

	pv := PackageVersion(testVersion)
	want := []string{
		"SHA256SUMS", "SHA256SUMS.sig",
		"patchbay-agent-" + pv + "-1.x86_64.rpm",
		"patchbay-agent_" + pv + "-1_amd64.deb",
		"patchbay-agent_" + testVersion + "_linux_amd64",
		"patchbay-server-" + pv + "-1.x86_64.rpm",
		"patchbay-server_" + pv + "-1_amd64.deb",
		"patchbay-server_" + testVersion + "_linux_amd64",
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("release directory holds\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	t.Run("version", func(t *testing.T) {
		v := run(t, out, nil, filepath.Join(out, "patchbay-agent_"+testVersion+"_linux_amd64"), "version")
		if !strings.Contains(v, testVersion) {
			t.Fatalf("patchbay-agent version = %q, want it to contain %s (-X main.version)", v, testVersion)
		}
	})

	t.Run("manifest", func(t *testing.T) {
		sums, err := os.ReadFile(filepath.Join(out, SumsName))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(sums), "\n"), "\n")
		if len(lines) != len(want)-2 {
			t.Fatalf("SHA256SUMS has %d lines, want one per file other than itself and its signature (%d):\n%s", len(lines), len(want)-2, sums)
		}
		if !sort.StringsAreSorted(names(lines)) {
			t.Fatalf("SHA256SUMS is not sorted by name:\n%s", sums)
		}
		run(t, out, nil, "sha256sum", "--strict", "-c", SumsName)
		if err := CheckSums(out); err != nil {
			t.Fatal(err)
		}
		// A changed file no longer matches.
		bad := t.TempDir()
		for _, n := range want {
			b, err := os.ReadFile(filepath.Join(out, n))
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(n, "_linux_amd64") && strings.HasPrefix(n, "patchbay-agent") {
				b[len(b)/2] ^= 1
			}
			if err := os.WriteFile(filepath.Join(bad, n), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := CheckSums(bad); err == nil || !strings.Contains(err.Error(), "patchbay-agent_") {
			t.Fatalf("CheckSums of a release with a changed agent: %v, want an error naming it", err)
		}
		cmd := exec.Command("sha256sum", "--status", "-c", SumsName)
		cmd.Dir = bad
		if cmd.Run() == nil {
			t.Fatal("sha256sum -c passed on a release with a changed agent")
		}
	})

	t.Run("signature", func(t *testing.T) {
		verify := func(sums []byte, namespace string) error {
			cmd := exec.Command("ssh-keygen", "-Y", "verify", "-f", signers, "-I", "release@example.com",
				"-n", namespace, "-s", filepath.Join(out, SigName))
			cmd.Stdin = bytes.NewReader(sums)
			b, err := cmd.CombinedOutput()
			if err != nil {
				return &verifyError{err: err, out: string(b)}
			}
			return nil
		}
		sums, err := os.ReadFile(filepath.Join(out, SumsName))
		if err != nil {
			t.Fatal(err)
		}
		if err := verify(sums, Namespace); err != nil {
			t.Fatalf("ssh-keygen -Y verify of the signed SHA256SUMS: %v", err)
		}
		tampered := bytes.Clone(sums)
		tampered[0] ^= 1
		if verify(tampered, Namespace) == nil {
			t.Fatal("ssh-keygen -Y verify accepted a tampered SHA256SUMS")
		}
		if verify(sums, "file") == nil {
			t.Fatal("ssh-keygen -Y verify accepted the signature in namespace \"file\"")
		}
	})

	t.Run("deb", func(t *testing.T) {
		root := throwAwayRoot(t)
		env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
		dpkg := func(args ...string) string {
			return run(t, "", env, "dpkg", append([]string{"--root=" + root, "--force-script-chrootless", "--force-not-root", "--log=/dev/null"}, args...)...)
		}
		dpkg("-i", filepath.Join(out, "patchbay-agent_"+pv+"-1_amd64.deb"), filepath.Join(out, "patchbay-server_"+pv+"-1_amd64.deb"))
		for path, mode := range map[string]os.FileMode{
			"usr/bin/patchbay-agent":                     0o755,
			"usr/bin/patchbay-server":                    0o755,
			"lib/systemd/system/patchbay-agent.service":  0o644,
			"lib/systemd/system/patchbay-server.service": 0o644,
			"etc/patchbay":                               os.ModeDir | 0o755,
			"etc/patchbay/patchbay-agent.env":            0o644,
			"etc/patchbay/patchbay-server.env":           0o644,
			"usr/lib/sysusers.d/patchbay-server.conf":    0o644,
			"var/lib/patchbay-agent":                     os.ModeDir | 0o700,
			"var/lib/patchbay":                           os.ModeDir | 0o700,
		} {
			fi, err := os.Stat(filepath.Join(root, path))
			if err != nil {
				t.Errorf("after dpkg -i: %v", err)
				continue
			}
			if fi.Mode() != mode {
				t.Errorf("/%s: mode %v, want %v", path, fi.Mode(), mode)
			}
		}
		bin, err := os.ReadFile(filepath.Join(root, "usr/bin/patchbay-agent"))
		if err != nil {
			t.Fatal(err)
		}
		orig, err := os.ReadFile(filepath.Join(out, "patchbay-agent_"+testVersion+"_linux_amd64"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(bin, orig) {
			t.Error("/usr/bin/patchbay-agent differs from the release's patchbay-agent_" + testVersion + "_linux_amd64")
		}
		// The postinstall made the relay's user in the throw-away root (systemd-sysusers --root).
		passwd, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(passwd), "\npatchbay:x:") || !strings.Contains(string(passwd), ":/var/lib/patchbay:/usr/sbin/nologin") {
			t.Errorf("the server's postinstall did not create the patchbay user in the root's /etc/passwd:\n%s", passwd)
		}
		status := run(t, "", env, "dpkg-query", "--root="+root, "-W", "-f", "${Package} ${Version} ${Status} ${Conffiles}\n")
		for _, w := range []string{"patchbay-agent " + pv + "-1 install ok installed", "patchbay-server " + pv + "-1 install ok installed",
			"/etc/patchbay/patchbay-agent.env", "/etc/patchbay/patchbay-server.env"} {
			if !strings.Contains(status, w) {
				t.Errorf("dpkg-query in the root: %q missing from\n%s", w, status)
			}
		}

		// systemd-analyze verify resolves the units' binaries and dependencies
		// in the root: it needs the system's targets there.
		targets, err := filepath.Glob("/lib/systemd/system/*.target")
		if err != nil || len(targets) == 0 {
			t.Fatalf("no systemd targets in /lib/systemd/system (%v): install systemd (Debian: apt-get install systemd)", err)
		}
		dst := filepath.Join(root, "usr/lib/systemd/system")
		if err := os.MkdirAll(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, p := range targets {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, filepath.Base(p)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command("systemd-analyze", "verify", "--root="+root,
			"/lib/systemd/system/patchbay-agent.service", "/lib/systemd/system/patchbay-server.service")
		b, err := cmd.CombinedOutput()
		if err != nil || len(bytes.TrimSpace(b)) > 0 {
			// Warnings (an unknown directive, a bad value) exit 0: they count too.
			t.Errorf("systemd-analyze verify --root %s of the installed units: %v\n%s", root, err, b)
		}

		// Removing keeps the conffile and the data, drops the binary.
		dpkg("-r", "patchbay-agent")
		if _, err := os.Stat(filepath.Join(root, "usr/bin/patchbay-agent")); !os.IsNotExist(err) {
			t.Errorf("after dpkg -r patchbay-agent, /usr/bin/patchbay-agent: %v, want it gone", err)
		}
		if _, err := os.Stat(filepath.Join(root, "etc/patchbay/patchbay-agent.env")); err != nil {
			t.Errorf("after dpkg -r patchbay-agent the conffile went: %v", err)
		}
	})

	t.Run("rpm", func(t *testing.T) {
		for _, spec := range []struct{ name, script string }{
			{"patchbay-agent", "try-restart"},
			{"patchbay-server", "systemd-sysusers"},
		} {
			b, err := os.ReadFile(filepath.Join(out, spec.name+"-"+pv+"-1.x86_64.rpm"))
			if err != nil {
				t.Fatal(err)
			}
			// The lead (96 bytes, magic ed ab ee db, binary package) and the
			// signature header's magic follow the RPM file format; the main
			// header is not compressed, so its tags are readable as they are.
			if len(b) < 200 || !bytes.Equal(b[:4], []byte{0xed, 0xab, 0xee, 0xdb}) || b[6] != 0 || b[7] != 0 {
				t.Fatalf("%s: no RPM lead of a binary package", spec.name)
			}
			if !bytes.Equal(b[96:99], []byte{0x8e, 0xad, 0xe8}) {
				t.Fatalf("%s: no signature header after the lead", spec.name)
			}
			for _, w := range []string{spec.name, pv, "x86_64", "linux", "/usr/bin/", "/lib/systemd/system/", spec.name + ".service",
				"/etc/patchbay/", spec.name + ".env", spec.script} {
				if !bytes.Contains(b, []byte(w)) {
					t.Errorf("%s rpm header: %q missing", spec.name, w)
				}
			}
		}
	})
}

type verifyError struct {
	err error
	out string
}

func (e *verifyError) Error() string { return e.err.Error() + ": " + e.out }

func names(lines []string) []string {
	var n []string
	for _, l := range lines {
		_, name, _ := strings.Cut(l, "  ")
		n = append(n, name)
	}
	return n
}

// throwAwayRoot makes an empty dpkg root with a minimal /etc/passwd and /etc/group.
func throwAwayRoot(t *testing.T) string {
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{
		"var/lib/dpkg/status": "", "var/lib/dpkg/available": "",
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n", "etc/group": "root:x:0:\n",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestNoNfpmInShippedBinaries checks that the agent, CLI and relay do not link nfpm.
func TestNoNfpmInShippedBinaries(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../../cmd/patchbay-agent", "../../cmd/patchbay", "../../cmd/patchbay-server").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "github.com/goreleaser/") || l == "github.com/patchbay/patchbay/internal/packaging" {
			t.Errorf("a shipped binary depends on %s: keep packaging in cmd/patchbay-release", l)
		}
	}
}

func TestPackageVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3":                  "1.2.3",
		"1.2.3":                   "1.2.3",
		"v1.2.3-4-gabcdef0":       "1.2.3+4.gabcdef0",
		"v1.2.3-4-gabcdef0-dirty": "1.2.3+4.gabcdef0.dirty",
		"abcdef0":                 "0.0.0+abcdef0",
		"abcdef0-dirty":           "0.0.0+abcdef0.dirty",
		"dev":                     "0.0.0+dev",
		"v2.0.0-rc1":              "2.0.0+rc1",
	} {
		if got := PackageVersion(in); got != want {
			t.Errorf("PackageVersion(%q) = %q, want %q", in, got, want)
		}
	}
}
