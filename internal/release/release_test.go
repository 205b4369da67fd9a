package release

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/plugins/signature"
)

const (
	sumA = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb" // sha256("a")
	sumB = "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d" // sha256("b")
)

func TestParse(t *testing.T) {
	m, err := Parse([]byte(sumB + "  patchbay-agent_v1_linux_amd64\n" + strings.ToUpper(sumA) + " *patchbay_v1_windows_amd64.exe\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 2 || m.Files[0].Name != "patchbay-agent_v1_linux_amd64" || m.Files[1].SHA256 != sumA {
		t.Fatalf("parsed %+v", m.Files)
	}
	if f, err := m.Lookup("patchbay_v1_windows_amd64.exe"); err != nil || f.SHA256 != sumA {
		t.Fatalf("lookup: %+v %v", f, err)
	}
	if _, err := m.Lookup("nope"); !errors.Is(err, ErrNotInRelease) {
		t.Fatalf("lookup of a missing file: %v", err)
	}
	want := sumB + "  patchbay-agent_v1_linux_amd64\n" + sumA + "  patchbay_v1_windows_amd64.exe\n"
	if got := string(m.Marshal()); got != want {
		t.Fatalf("marshal:\n%s\nwant\n%s", got, want)
	}
	for name, in := range map[string]string{
		"empty":          "",
		"short line":     sumA + " x\n",
		"no separator":   sumA + "xxpatchbay\n",
		"not hex":        strings.Repeat("g", 64) + "  x\n",
		"path":           sumA + "  ../etc/passwd\n",
		"slash":          sumA + "  a/b\n",
		"dot file":       sumA + "  .hidden\n",
		"dash":           sumA + "  -rf\n",
		"space in name":  sumA + "  a b\n",
		"duplicate":      sumA + "  a\n" + sumB + "  a\n",
		"blank line":     sumA + "  a\n\n" + sumB + "  b\n",
		"crlf":           sumA + "  a\r\n",
		"too long name":  sumA + "  " + strings.Repeat("x", MaxNameLen+1) + "\n",
		"oversized file": strings.Repeat(sumA+"  a\n", MaxSumsSize/60),
	} {
		if _, err := Parse([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
}

func TestCheckVersion(t *testing.T) {
	for _, v := range []string{"v1.4.0", "v1.4.0-3-g1a2b3c4", "1a2b3c4-dirty", "2026.12+build_7"} {
		if err := CheckVersion(v); err != nil {
			t.Errorf("%s: %v", v, err)
		}
	}
	for _, v := range []string{"", "-v", ".v", "v1/../../x", "v 1", strings.Repeat("1", MaxVersion+1)} {
		if err := CheckVersion(v); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: got %v, want ErrMalformed", v, err)
		}
	}
	if got := AgentName("v2", "windows", "arm64"); got != "patchbay-agent_v2_windows_arm64.exe" {
		t.Errorf("AgentName = %s", got)
	}
	if got := PluginName("sysinfo", "v2", "linux", "amd64"); got != "patchbay-plugin-sysinfo_v2_linux_amd64" {
		t.Errorf("PluginName = %s", got)
	}
}

func newSigner(t *testing.T) (ssh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey())))
}

func allowed(t *testing.T, lines ...string) *signature.AllowedSigners {
	t.Helper()
	a, err := signature.ParseAllowedSigners(strings.NewReader(strings.Join(lines, "\n") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestVerify(t *testing.T) {
	org, orgKey := newSigner(t)
	other, otherKey := newSigner(t)
	sums := []byte(sumA + "  patchbay-agent_v1_linux_amd64\n")
	sig, err := signature.SignNamespace(org, bytes.NewReader(sums), signature.ReleaseNamespace)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	trusted := allowed(t, `org@example namespaces="patchbay-release" `+orgKey, `other@example `+otherKey)
	m, who, err := Verify(sums, sig, trusted, now)
	if err != nil || who.Principal != "org@example" || len(m.Files) != 1 {
		t.Fatalf("verify: %+v %+v %v", m, who, err)
	}

	// Tampered manifest: one hex digit changed.
	bad := bytes.Replace(sums, []byte("ca97"), []byte("ca98"), 1)
	if _, _, err := Verify(bad, sig, trusted, now); !errors.Is(err, signature.ErrBadSignature) {
		t.Errorf("tampered manifest: %v", err)
	}
	// A plugin signature (namespace patchbay-plugin) is not a release signature.
	pluginSig, err := signature.Sign(org, bytes.NewReader(sums))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Verify(sums, pluginSig, trusted, now); !errors.Is(err, signature.ErrWrongNamespace) {
		t.Errorf("plugin-namespace signature: %v", err)
	}
	// A key trusted for plugins only may not sign releases.
	pluginsOnly := allowed(t, `org@example namespaces="patchbay-plugin" `+orgKey)
	if _, _, err := Verify(sums, sig, pluginsOnly, now); !errors.Is(err, signature.ErrUntrustedSigner) {
		t.Errorf("key trusted for plugins only: %v", err)
	}
	// A key nobody listed.
	otherSig, err := signature.SignNamespace(other, bytes.NewReader(sums), signature.ReleaseNamespace)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Verify(sums, otherSig, allowed(t, `org@example `+orgKey), now); !errors.Is(err, signature.ErrUntrustedSigner) {
		t.Errorf("unlisted key: %v", err)
	}
	// A signed but malformed manifest is refused before anything else.
	junk := []byte("not a manifest\n")
	junkSig, _ := signature.SignNamespace(org, bytes.NewReader(junk), signature.ReleaseNamespace)
	if _, _, err := Verify(junk, junkSig, trusted, now); !errors.Is(err, ErrMalformed) {
		t.Errorf("malformed manifest: %v", err)
	}
}

func TestCheck(t *testing.T) {
	f := File{Name: "a", SHA256: sumA}
	if err := Check(strings.NewReader("a"), f); err != nil {
		t.Fatal(err)
	}
	if err := Check(strings.NewReader("b"), f); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("got %v, want ErrHashMismatch", err)
	}
}

// TestStockTools checks the format both ways with sha256sum and ssh-keygen.
func TestStockTools(t *testing.T) {
	for _, tool := range []string{"sha256sum", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (Debian packages coreutils, openssh-client): %v", tool, err)
		}
	}
	dir := t.TempDir()
	for name, body := range map[string]string{"patchbay-agent_v1_linux_amd64": "a", "patchbay_v1_linux_amd64": "b"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("sh", "-c", "cd "+dir+" && sha256sum patchbay-agent_v1_linux_amd64 patchbay_v1_linux_amd64").Output()
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(out)
	if err != nil {
		t.Fatalf("parse sha256sum output: %v\n%s", err, out)
	}
	sumsPath := filepath.Join(dir, SumsName)
	if err := os.WriteFile(sumsPath, m.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sh", "-c", "cd "+dir+" && sha256sum -c --quiet SHA256SUMS").CombinedOutput(); err != nil {
		t.Fatalf("sha256sum -c of our SHA256SUMS: %v\n%s", err, out)
	}

	key := filepath.Join(dir, "org")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "org", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	if out, err := exec.Command("ssh-keygen", "-Y", "sign", "-n", "patchbay-release", "-f", key, sumsPath).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	sig, err := os.ReadFile(sumsPath + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	signers := allowed(t, `org@example namespaces="patchbay-release" `+strings.TrimSpace(string(pub)))
	if _, _, err := Verify(m.Marshal(), sig, signers, time.Now()); err != nil {
		t.Fatalf("verify a signature made by ssh-keygen -Y sign: %v", err)
	}
	// And ssh-keygen verifies ours.
	priv, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := signature.SignNamespace(signer, bytes.NewReader(m.Marshal()), signature.ReleaseNamespace)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sumsPath+".sig", ours, 0o644); err != nil {
		t.Fatal(err)
	}
	as := filepath.Join(dir, "allowed_signers")
	if err := os.WriteFile(as, []byte(fmt.Sprintf("org@example namespaces=\"patchbay-release\" %s", pub)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ssh-keygen", "-Y", "verify", "-f", as, "-I", "org@example", "-n", "patchbay-release", "-s", sumsPath+".sig")
	cmd.Stdin = bytes.NewReader(m.Marshal())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y verify of our signature: %v\n%s", err, out)
	}
}
