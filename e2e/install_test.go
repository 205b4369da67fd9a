package e2e

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/agent/service"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/release"
	"github.com/patchbay/patchbay/plugins/signature"
)

// newReleaseKey makes an organisation's release signing key.
func newReleaseKey(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// releaseSigners writes an allowed_signers file trusting key for releases.
func installReleaseSigners(t *testing.T, key ssh.Signer) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "release_signers")
	line := `it@example.org namespaces="patchbay-release" ` + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key.PublicKey()))) + "\n"
	if err := os.WriteFile(f, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// writeRelease lays out release version in dir as make release does, with
// this build's agent for linux/GOARCH, signed by key (nil: unsigned). It
// returns the agent binary's path in the release.
func writeRelease(t *testing.T, dir, version string, key ssh.Signer) string {
	t.Helper()
	vdir := filepath.Join(dir, version)
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		t.Fatal(err)
	}
	agent, err := os.ReadFile(bin("patchbay-agent"))
	if err != nil {
		t.Fatal(err)
	}
	name := release.AgentName(version, "linux", runtime.GOARCH)
	path := filepath.Join(vdir, name)
	if err := os.WriteFile(path, agent, 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(agent)
	m := release.Manifest{Files: []release.File{{Name: name, SHA256: hex.EncodeToString(sum[:])}}}
	sums := m.Marshal()
	if err := os.WriteFile(filepath.Join(vdir, release.SumsName), sums, 0o644); err != nil {
		t.Fatal(err)
	}
	if key != nil {
		sig, err := signature.SignNamespace(key, bytes.NewReader(sums), signature.ReleaseNamespace)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(vdir, release.SigName), sig, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// installLine runs the line in a shell with PATCHBAY_INSTALL_ROOT=root.
func installLine(line, root string) (string, string, error) {
	return try([]string{"PATCHBAY_INSTALL_ROOT=" + root}, "sh", "-c", line)
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the one-line installer needs %s: install it (Debian package %s)", tool, map[string]string{"curl": "curl", "sha256sum": "coreutils", "sh": "dash"}[tool])
		}
	}
}

// The Linux one-liner, run against a live relay in a temp root, installs the
// release's agent, enrolls it and the installed unit's command brings it
// online; SIGTERM stops it cleanly; the token cannot be used twice.
func TestInstallerLinux(t *testing.T) {
	needTools(t, "sh", "curl", "sha256sum")
	key := newReleaseKey(t)
	dir := t.TempDir()
	relAgent := writeRelease(t, dir, "v9.1.0", key)
	writeRelease(t, dir, "v9.0.7", key) // older: not the default
	r := StartRelayArgs(t, "--releases", dir)
	cli := r.Login(r.AdminToken())
	out := cli.Run("agents", "installer", "--os", "linux", "--arch", runtime.GOARCH, "--allowed-signers", installReleaseSigners(t, key), "--tags", "role=kiosk",
		"--relay-url", r.URL+"/")
	line := strings.TrimSpace(out)
	if strings.Contains(line, "\n") || !strings.Contains(line, r.FP) || !strings.Contains(line, "'v9.1.0'") || !strings.Contains(line, r.URL+"/install/linux.sh") {
		t.Fatalf("installer line lacks the CA fingerprint, the newest version or the script URL, or is not one line:\n%s", out)
	}

	root := t.TempDir()
	stdout, stderr, err := installLine(line, root)
	if err != nil {
		t.Fatalf("one-line installer: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	installed := filepath.Join(root, "usr/local/bin/patchbay-agent")
	st, err := os.Stat(installed)
	if err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("installed agent: %v %v", st, err)
	}
	want, _ := os.ReadFile(relAgent)
	if got, _ := os.ReadFile(installed); !bytes.Equal(got, want) {
		t.Fatal("installed agent differs from the release's")
	}
	unit, err := os.ReadFile(filepath.Join(root, service.SystemdUnitPath))
	if err != nil {
		t.Fatalf("unit not installed: %v\n%s", err, stdout)
	}
	if string(unit) != service.SystemdUnit("/usr/local/bin/patchbay-agent", "/var/lib/patchbay-agent") {
		t.Errorf("installed unit is not service.SystemdUnit's:\n%s", unit)
	}
	status := run(t, nil, installed, "service", "status", "--root", root, "--data", "/var/lib/patchbay-agent")
	if !strings.Contains(status, "installed: yes") || !strings.Contains(status, "enabled:   yes") || !strings.Contains(status, "enrolled:  yes") {
		t.Errorf("service status:\n%s", status)
	}

	// No systemd here: start what the unit's ExecStart says, inside the root.
	args, err := service.ParseExecStart(string(unit))
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range args {
		if strings.HasPrefix(a, "/") {
			args[i] = filepath.Join(root, a)
		}
	}
	p := startProc(t, "installed agent", nil, append(args, "--log-format", "json")...)
	waitFor(t, 30*time.Second, "the installed agent to come online and report linux/"+runtime.GOARCH, func() bool {
		for _, a := range cli.Agents("role=kiosk") {
			return a.Online && a.OS == "linux" && a.Arch == runtime.GOARCH
		}
		return false
	})
	p.stop(t)
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("agent exited with %d on SIGTERM, want 0\n%s", code, tail(p.log.String(), 2048))
	}

	// The token was single-use: the same line cannot enroll another machine.
	root2 := t.TempDir()
	if _, stderr, err := installLine(line, root2); err == nil {
		t.Errorf("the line installed a second agent with a used token:\n%s", stderr)
	}
}

// A relay (or network) that swaps the agent binary or the install script is
// refused before anything runs; unsigned and wrongly signed releases get no
// installer at all.
func TestInstallerRefusals(t *testing.T) {
	needTools(t, "sh", "curl", "sha256sum")
	key := newReleaseKey(t)
	dir := t.TempDir()
	good := writeRelease(t, dir, "v2.0.0", key)
	writeRelease(t, dir, "v2.0.1-unsigned", nil)
	writeRelease(t, dir, "v2.0.2-otherkey", newReleaseKey(t))
	signers := installReleaseSigners(t, key)
	r := StartRelayArgs(t, "--releases", dir)
	cli := r.Login(r.AdminToken())
	installer := func(version string) (string, string, error) {
		return cli.Try("agents", "installer", "--os", "linux", "--arch", runtime.GOARCH, "--version", version, "--allowed-signers", signers)
	}
	tokens := func() []apiv1.EnrollToken {
		var toks []apiv1.EnrollToken
		if err := json.Unmarshal([]byte(cli.Run("tokens", "list", "-o", "json")), &toks); err != nil {
			t.Fatal(err)
		}
		return toks
	}
	emptyRoot := func(root string) {
		t.Helper()
		if ents, _ := os.ReadDir(root); len(ents) != 0 {
			t.Errorf("something was installed in %s: %v", root, ents)
		}
	}

	t.Run("unsigned", func(t *testing.T) {
		_, stderr, err := installer("v2.0.1-unsigned")
		if err == nil || !strings.Contains(stderr, "unsigned") {
			t.Errorf("installer for an unsigned release: %v\n%s", err, stderr)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		_, stderr, err := installer("v2.0.2-otherkey")
		if err == nil || !strings.Contains(stderr, "refusing") || !strings.Contains(stderr, "not trusted") && !strings.Contains(stderr, "untrusted") {
			t.Errorf("installer for a release signed by another key: %v\n%s", err, stderr)
		}
	})
	t.Run("no signers", func(t *testing.T) {
		_, stderr, err := cli.Try("agents", "installer", "--os", "linux", "--version", "v2.0.0")
		if err == nil || !strings.Contains(stderr, "--allowed-signers") {
			t.Errorf("installer without allowed signers: %v\n%s", err, stderr)
		}
	})
	if n := len(tokens()); n != 0 {
		t.Errorf("refused installers created %d tokens", n)
	}

	out, stderr, err := installer("v2.0.0")
	if err != nil {
		t.Fatalf("installer: %v\n%s", err, stderr)
	}
	line := strings.TrimSpace(out)

	t.Run("swapped script", func(t *testing.T) {
		// The line's script hash no longer matches what the relay serves.
		re := regexp.MustCompile(`" = ([0-9a-f]{64}) \]`)
		if !re.MatchString(line) {
			t.Fatalf("no script hash check in the line:\n%s", line)
		}
		bad := re.ReplaceAllString(line, `" = `+strings.Repeat("0", 64)+` ]`)
		root := t.TempDir()
		_, stderr, err := installLine(bad, root)
		if err == nil || !strings.Contains(stderr, "install script") {
			t.Errorf("line with another script hash: %v\n%s", err, stderr)
		}
		emptyRoot(root)
	})
	t.Run("swapped binary", func(t *testing.T) {
		f, err := os.OpenFile(good, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("\nbackdoor"))
		f.Close()
		root := t.TempDir()
		_, stderr, err := installLine(line, root)
		if err == nil || !strings.Contains(stderr, "refusing to run it") {
			t.Errorf("tampered binary: %v\n%s", err, stderr)
		}
		emptyRoot(root)
	})
	for _, tok := range tokens() {
		if tok.Uses != 0 {
			t.Errorf("token %s used %d times: the refused installs enrolled", tok.ID, tok.Uses)
		}
	}
}
