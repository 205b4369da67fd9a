package trust

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/internal/testtool"
	"github.com/patchbay/patchbay/plugins/signature"
)

// keygen runs the real OpenSSH ssh-keygen in dir.
func keygen(t *testing.T, dir string, stdin []byte, args ...string) (string, error) {
	t.Helper()
	path := testtool.Need(t, "ssh-keygen", "openssh-client")
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustKeygen(t *testing.T, dir string, args ...string) {
	t.Helper()
	if out, err := keygen(t, dir, nil, args...); err != nil {
		t.Fatalf("ssh-keygen %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newKey makes a key pair with ssh-keygen and returns the private key's path
// and the public key file's content.
func newKey(t *testing.T, dir, name string, typeArgs ...string) (string, []byte) {
	t.Helper()
	if len(typeArgs) == 0 {
		typeArgs = []string{"-t", "ed25519"}
	}
	path := filepath.Join(dir, name)
	mustKeygen(t, dir, append([]string{"-q", "-N", "", "-C", name + " key", "-f", path}, typeArgs...)...)
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return path, pub
}

func fingerprint(t *testing.T, pub []byte) string {
	t.Helper()
	k, _, _, _, err := ssh.ParseAuthorizedKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return ssh.FingerprintSHA256(k)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask
		t.Fatal(err)
	}
}

func TestLoadMissingTrustsNothing(t *testing.T) {
	dir := t.TempDir()
	a, err := Load(dir)
	if err != nil || a == nil || a.Len() != 0 {
		t.Fatalf("Load = %v, %v; want an empty set", a, err)
	}
	if entries, err := List(dir); err != nil || len(entries) != 0 {
		t.Errorf("List = %v, %v", entries, err)
	}
	if _, err := a.Verify(strings.NewReader("x"), nil, time.Now()); err == nil {
		t.Error("empty set verified something")
	}
	if _, err := os.Stat(Path(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load created the file: %v", err)
	}
}

// TestAddThenVerify: a key added with Add verifies an ssh-keygen signature,
// and ssh-keygen itself accepts the file Add wrote.
func TestAddThenVerify(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "agent")
	keyPath, pub := newKey(t, dir, "signer", "-t", "ecdsa")
	if err := Add(data, "secops@example.com", pub); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "fix.sh")
	content := []byte("#!/bin/sh\nsystemctl restart cups\n")
	if err := os.WriteFile(file, content, 0o644); err != nil {
		t.Fatal(err)
	}
	mustKeygen(t, dir, "-Y", "sign", "-n", signature.Namespace, "-f", keyPath, file)
	sig, err := os.ReadFile(file + ".sig")
	if err != nil {
		t.Fatal(err)
	}

	a, err := Load(data)
	if err != nil {
		t.Fatal(err)
	}
	s, err := a.Verify(bytes.NewReader(content), sig, time.Now())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if s.Principal != "secops@example.com" || s.Fingerprint != fingerprint(t, pub) {
		t.Errorf("Verify = %+v", s)
	}

	out, err := keygen(t, dir, content, "-Y", "verify", "-f", Path(data), "-I", "secops@example.com",
		"-n", signature.Namespace, "-s", file+".sig")
	if err != nil {
		t.Fatalf("ssh-keygen -Y verify with our file: %v\n%s", err, out)
	}
	// The line is limited to our namespace.
	mustKeygen(t, dir, "-Y", "sign", "-n", "file", "-f", keyPath, file)
	if out, err := keygen(t, dir, content, "-Y", "verify", "-f", Path(data), "-I", "secops@example.com",
		"-n", "file", "-s", file+".sig"); err == nil {
		t.Errorf("ssh-keygen accepted namespace file: %s", out)
	}
}

func TestAddListRemove(t *testing.T) {
	dir := t.TempDir()
	_, edPub := newKey(t, dir, "ed")
	_, ecPub := newKey(t, dir, "ec", "-t", "ecdsa")
	_, rsaPub := newKey(t, dir, "rsa", "-t", "rsa", "-b", "3072")
	_, caPub := newKey(t, dir, "ca")
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	// A hand-edited file: comments, blank lines and a CA line stay untouched.
	handWritten := "# managed by hand\n\n*@example.com cert-authority,namespaces=\"patchbay-plugin\" " +
		strings.TrimSpace(string(caPub)) + "\n   # indented comment\n"
	writeFile(t, Path(data), handWritten, 0o644)

	if err := Add(data, "alice@example.com", edPub); err != nil {
		t.Fatal(err)
	}
	if err := Add(data, "ops", ecPub, "patchbay-plugin", "file"); err != nil {
		t.Fatal(err)
	}
	if err := Add(data, "bob@example.com", rsaPub); err != nil {
		t.Fatal(err)
	}
	got := readFile(t, Path(data))
	if !strings.HasPrefix(got, handWritten) {
		t.Fatalf("hand-written lines changed:\n%s", got)
	}
	wantLine := `alice@example.com namespaces="patchbay-plugin" ` + strings.TrimSpace(string(edPub)) + "\n"
	if !strings.Contains(got, wantLine) {
		t.Errorf("file lacks %q:\n%s", wantLine, got)
	}
	if fi, err := os.Stat(Path(data)); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode: %v %v", fi.Mode(), err)
	}

	entries, err := List(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{Principal: "*@example.com", KeyType: "ssh-ed25519", Fingerprint: fingerprint(t, caPub), CertAuthority: true, Namespaces: []string{"patchbay-plugin"}, Comment: "ca key", Line: 3},
		{Principal: "alice@example.com", KeyType: "ssh-ed25519", Fingerprint: fingerprint(t, edPub), Namespaces: []string{"patchbay-plugin"}, Comment: "ed key", Line: 5},
		{Principal: "ops", KeyType: "ecdsa-sha2-nistp256", Fingerprint: fingerprint(t, ecPub), Namespaces: []string{"patchbay-plugin", "file"}, Comment: "ec key", Line: 6},
		{Principal: "bob@example.com", KeyType: "ssh-rsa", Fingerprint: fingerprint(t, rsaPub), Namespaces: []string{"patchbay-plugin"}, Comment: "rsa key", Line: 7},
	}
	if len(entries) != len(want) {
		t.Fatalf("List = %+v", entries)
	}
	for i := range want {
		e, w := entries[i], want[i]
		if e.Principal != w.Principal || e.KeyType != w.KeyType || e.Fingerprint != w.Fingerprint || e.CertAuthority != w.CertAuthority ||
			strings.Join(e.Namespaces, ",") != strings.Join(w.Namespaces, ",") || e.Comment != w.Comment || e.Line != w.Line {
			t.Errorf("entry %d:\n got %+v\nwant %+v", i, e, w)
		}
	}

	// Remove by principal, then by fingerprint.
	if n, err := Remove(data, "alice@example.com"); n != 1 || err != nil {
		t.Fatalf("Remove(alice) = %d, %v", n, err)
	}
	if n, err := Remove(data, fingerprint(t, ecPub)); n != 1 || err != nil {
		t.Fatalf("Remove(fingerprint) = %d, %v", n, err)
	}
	if n, err := Remove(data, "alice@example.com"); n != 0 || !errors.Is(err, ErrNotFound) {
		t.Fatalf("Remove(alice) again = %d, %v; want ErrNotFound", n, err)
	}
	if _, err := Remove(data, "*"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove(*) is not a wildcard: %v", err)
	}
	got = readFile(t, Path(data))
	wantFile := handWritten + `bob@example.com namespaces="patchbay-plugin" ` + strings.TrimSpace(string(rsaPub)) + "\n"
	if got != wantFile {
		t.Errorf("after remove:\n%s\nwant:\n%s", got, wantFile)
	}
	// A removed key may be added again.
	if err := Add(data, "alice@example.com", edPub); err != nil {
		t.Errorf("re-add: %v", err)
	}
	// The CA line goes by its principal too.
	if n, err := Remove(data, "*@example.com"); n != 1 || err != nil {
		t.Errorf("Remove(CA) = %d, %v", n, err)
	}
}

func TestRemoveMultiplePrincipalsAndLines(t *testing.T) {
	dir := t.TempDir()
	_, pub := newKey(t, dir, "k")
	key := strings.TrimSpace(string(pub))
	writeFile(t, Path(dir), "a,b "+key+"\r\n# keep\nb namespaces=\"x\" "+key+"\nc "+key, 0o600)
	if n, err := Remove(dir, "b"); n != 2 || err != nil {
		t.Fatalf("Remove(b) = %d, %v", n, err)
	}
	if got := readFile(t, Path(dir)); got != "# keep\nc "+key {
		t.Errorf("file = %q", got)
	}
	if fi, _ := os.Stat(Path(dir)); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v not preserved", fi.Mode().Perm())
	}
	// No trailing newline: Add still starts a new line.
	_, pub2 := newKey(t, dir, "k2")
	if err := Add(dir, "d", pub2); err != nil {
		t.Fatal(err)
	}
	if entries, err := List(dir); err != nil || len(entries) != 2 || entries[1].Principal != "d" {
		t.Errorf("List = %+v, %v", entries, err)
	}
}

func TestAddDuplicate(t *testing.T) {
	dir := t.TempDir()
	_, pub := newKey(t, dir, "k")
	if err := Add(dir, "alice@example.com", pub); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, Path(dir))
	err := Add(dir, "mallory@example.com", pub)
	if !errors.Is(err, ErrAlreadyTrusted) || !strings.Contains(err.Error(), "alice@example.com") || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("Add duplicate = %v; want ErrAlreadyTrusted naming alice@example.com", err)
	}
	// The same key with another comment is still the same key.
	other := bytes.Replace(pub, []byte("k key"), []byte("renamed"), 1)
	if err := Add(dir, "alice@example.com", other); !errors.Is(err, ErrAlreadyTrusted) {
		t.Fatalf("Add same key, other comment = %v", err)
	}
	if readFile(t, Path(dir)) != before {
		t.Error("a refused Add changed the file")
	}
}

func TestAddRefuses(t *testing.T) {
	dir := t.TempDir()
	_, pub := newKey(t, dir, "k")
	_, pub2 := newKey(t, dir, "k2")
	caPath, _ := newKey(t, dir, "ca")
	mustKeygen(t, dir, "-q", "-s", caPath, "-I", "id", "-n", "alice", filepath.Join(dir, "k.pub"))
	cert, err := os.ReadFile(filepath.Join(dir, "k-cert.pub"))
	if err != nil {
		t.Fatal(err)
	}
	_, smallRSA := newKey(t, dir, "small", "-t", "rsa", "-b", "1024")
	key := strings.TrimSpace(string(pub))

	tests := []struct {
		name       string
		principal  string
		pub        []byte
		namespaces []string
		want       string
	}{
		{"empty principal", "", pub, nil, "empty principal"},
		{"space in principal", "alice smith", pub, nil, "no white space"},
		{"tab in principal", "alice\tsmith", pub, nil, "no white space"},
		{"newline in principal", "alice\nbob ssh-ed25519 AAAA", pub, nil, "no white space"},
		{"quote in principal", `al"ice`, pub, nil, "quotes"},
		{"single quote in principal", `al'ice`, pub, nil, "quotes"},
		{"comma in principal", "alice,bob", pub, nil, "commas"},
		{"comment principal", "#alice", pub, nil, "must not start with '#'"},
		{"negated principal", "!alice", pub, nil, "must not start with '!'"},
		{"long principal", strings.Repeat("a", 129), pub, nil, "longer than 128"},
		{"control character", "alice\x7f", pub, nil, "control"},
		{"not a key", "alice", []byte("hello world\n"), nil, "not an OpenSSH public key"},
		{"empty key", "alice", nil, nil, "not an OpenSSH public key"},
		{"private key", "alice", []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"), nil, "not an OpenSSH public key"},
		{"authorized_keys options", "alice", []byte(`from="10.0.0.1" ` + key), nil, "options"},
		{"allowed_signers line", "alice", []byte("bob " + key), nil, "not an authorized_keys or allowed_signers line"},
		{"two keys", "alice", append(append([]byte{}, pub...), pub2...), nil, "more than one public key"},
		{"certificate", "alice", cert, nil, "certificate"},
		{"small RSA", "alice", smallRSA, nil, "1024-bit RSA key"},
		{"empty namespace", "alice", pub, []string{""}, "empty namespace"},
		{"namespace with quote", "alice", pub, []string{`a"b`}, "namespace"},
		{"namespace with comma", "alice", pub, []string{"a,b"}, "namespace"},
		{"namespace with space", "alice", pub, []string{"a b"}, "namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Add(dir, tt.principal, tt.pub, tt.namespaces...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Add = %v, want error containing %q", err, tt.want)
			}
			if _, err := os.Stat(Path(dir)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a refused Add wrote the file")
			}
		})
	}
	// Wildcards and unusual but harmless characters are fine.
	if err := Add(dir, "*@example.com", pub); err != nil {
		t.Errorf("wildcard principal: %v", err)
	}
}

func TestMalformedFile(t *testing.T) {
	dir := t.TempDir()
	_, pub := newKey(t, dir, "k")
	content := "# ok\nalice " + strings.TrimSpace(string(pub)) + "\nbob frobnicate " + strings.TrimSpace(string(pub)) + "\n"
	writeFile(t, Path(dir), content, 0o644)
	for name, f := range map[string]func() error{
		"Load":   func() error { _, err := Load(dir); return err },
		"List":   func() error { _, err := List(dir); return err },
		"Add":    func() error { _, pub2 := newKey(t, t.TempDir(), "k2"); return Add(dir, "carol", pub2) },
		"Remove": func() error { _, err := Remove(dir, "alice"); return err },
	} {
		err := f()
		if err == nil || !strings.Contains(err.Error(), Path(dir)+": line 3: unknown option \"frobnicate\"") {
			t.Errorf("%s = %v; want the file and line named", name, err)
		}
	}
	if readFile(t, Path(dir)) != content {
		t.Error("a malformed file was modified")
	}
}

func TestInsecureFile(t *testing.T) {
	dir := t.TempDir()
	_, pub := newKey(t, dir, "k")
	writeFile(t, Path(dir), "alice "+string(pub), 0o666)
	if _, err := Load(dir); !errors.Is(err, ErrInsecureFile) || !strings.Contains(err.Error(), "chmod go-w") {
		t.Fatalf("Load = %v, want ErrInsecureFile", err)
	}
	if _, err := Remove(dir, "alice"); !errors.Is(err, ErrInsecureFile) {
		t.Fatalf("Remove = %v, want ErrInsecureFile", err)
	}
	if err := os.Chmod(Path(dir), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err != nil {
		t.Fatalf("Load(0640) = %v", err)
	}
	if err := os.Remove(Path(dir)); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(Path(dir), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("Load(directory) = %v", err)
	}
}

func TestImport(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	_, pub := newKey(t, dir, "k")
	key := strings.TrimSpace(string(pub))
	good := filepath.Join(dir, "good")
	goodContent := "# from the admin\n*@example.com namespaces=\"patchbay-*\" " + key + "\r\n"
	writeFile(t, good, goodContent, 0o600)

	if err := Import(data, good); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, Path(data)); got != goodContent {
		t.Fatalf("imported %q, want %q", got, goodContent)
	}
	if fi, _ := os.Stat(Path(data)); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	if a, err := Load(data); err != nil || a.Len() != 1 {
		t.Fatalf("Load after import = %v", err)
	}

	tests := []struct {
		name    string
		content string
		want    string
	}{
		{"malformed", "alice " + key + "\nbob nonsense\n", "line 2:"},
		{"empty", "", "no line trusting a key for namespace patchbay-plugin"},
		{"only comments", "# nobody\n", "no line trusting"},
		{"other namespaces only", `alice namespaces="file" ` + key + "\n", "no line trusting"},
		{"missing", "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := filepath.Join(dir, "bad-"+strings.ReplaceAll(tt.name, " ", "-"))
			if tt.name != "missing" {
				writeFile(t, src, tt.content, 0o644)
			}
			err := Import(data, src)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Import = %v, want error containing %q", err, tt.want)
			}
			if got := readFile(t, Path(data)); got != goodContent {
				t.Errorf("a refused Import changed the file to %q", got)
			}
		})
	}

	// Import replaces what was there.
	other := filepath.Join(dir, "other")
	writeFile(t, other, "bob "+key+"\n", 0o644)
	if err := Import(data, other); err != nil {
		t.Fatal(err)
	}
	if entries, err := List(data); err != nil || len(entries) != 1 || entries[0].Principal != "bob" {
		t.Errorf("after second import: %+v, %v", entries, err)
	}
}

func TestPath(t *testing.T) {
	if got := Path(filepath.Join("var", "lib", "patchbay")); got != filepath.Join("var", "lib", "patchbay", "allowed_signers") {
		t.Errorf("Path = %q", got)
	}
}
