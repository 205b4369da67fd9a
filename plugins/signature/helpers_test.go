package signature

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/internal/testtool"
)

// keygen runs the real OpenSSH ssh-keygen in dir with stdin and returns its
// combined output.
func keygen(t *testing.T, dir string, stdin []byte, args ...string) (string, error) {
	t.Helper()
	path := testtool.Need(t, "ssh-keygen", "openssh-client")
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustKeygen is keygen that fails the test on error.
func mustKeygen(t *testing.T, dir string, stdin []byte, args ...string) string {
	t.Helper()
	out, err := keygen(t, dir, stdin, args...)
	if err != nil {
		t.Fatalf("ssh-keygen %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// testKey is a key pair made by ssh-keygen in a test's temporary directory.
type testKey struct {
	Path    string // private key; the public key is Path + ".pub"
	PubLine string // "type base64 comment"
	Pub     ssh.PublicKey
}

// keyTypes are the key types the tests sign with, as ssh-keygen arguments.
var keyTypes = []struct {
	name string
	args []string
}{
	{"ed25519", []string{"-t", "ed25519"}},
	{"ecdsa", []string{"-t", "ecdsa"}},
	{"ecdsa384", []string{"-t", "ecdsa", "-b", "384"}},
	{"rsa", []string{"-t", "rsa", "-b", "3072"}},
}

// newKey makes an unencrypted key pair named name in dir.
func newKey(t *testing.T, dir, name string, typeArgs ...string) testKey {
	t.Helper()
	if len(typeArgs) == 0 {
		typeArgs = []string{"-t", "ed25519"}
	}
	path := filepath.Join(dir, name)
	args := append([]string{"-q", "-N", "", "-C", name + "@test", "-f", path}, typeArgs...)
	mustKeygen(t, dir, nil, args...)
	line, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(line)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{Path: path, PubLine: strings.TrimSpace(string(line)), Pub: pub}
}

// keygenSign signs file with ssh-keygen in namespace ns and returns the
// armored signature. keyPath may be a certificate with its private key next
// to it.
func keygenSign(t *testing.T, keyPath, file, ns string) []byte {
	t.Helper()
	_ = os.Remove(file + ".sig")
	mustKeygen(t, filepath.Dir(file), nil, "-Y", "sign", "-n", ns, "-f", keyPath, file)
	sig, err := os.ReadFile(file + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// keygenVerify runs ssh-keygen -Y verify and reports whether it accepted.
func keygenVerify(t *testing.T, allowedSigners, principal string, sig, data []byte) (bool, string) {
	t.Helper()
	dir := t.TempDir()
	as := filepath.Join(dir, "allowed_signers")
	sigPath := filepath.Join(dir, "file.sig")
	writeFile(t, as, allowedSigners)
	writeFile(t, sigPath, string(sig))
	out, err := keygen(t, dir, data, "-Y", "verify", "-f", as, "-I", principal, "-n", Namespace, "-s", sigPath)
	return err == nil, out
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustParse(t *testing.T, s string) *AllowedSigners {
	t.Helper()
	a, err := ParseAllowedSigners(strings.NewReader(s))
	if err != nil {
		t.Fatalf("ParseAllowedSigners: %v\n%s", err, s)
	}
	return a
}
