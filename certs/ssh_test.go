package certs

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/internal/testtool"
)

func testSSHCAs(t *testing.T) (*SSHCAs, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	cas, err := LoadOrCreateSSHCAs(dir)
	if err != nil {
		t.Fatalf("LoadOrCreateSSHCAs: %v", err)
	}
	return cas, dir
}

func newSSHPub(t *testing.T) (ssh.PublicKey, ssh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s.PublicKey(), s
}

func samePub(a, b ssh.PublicKey) bool { return bytes.Equal(a.Marshal(), b.Marshal()) }

func TestLoadOrCreateSSHCAs(t *testing.T) {
	cas, dir := testSSHCAs(t)
	checkMode(t, dir, 0o700)
	checkMode(t, filepath.Join(dir, SSHUserCAFile), 0o600)
	checkMode(t, filepath.Join(dir, SSHHostCAFile), 0o600)
	checkMode(t, filepath.Join(dir, SSHUserCAPubFile), 0o644)
	checkMode(t, filepath.Join(dir, SSHHostCAPubFile), 0o644)
	if cas.User.PublicKey().Type() != ssh.KeyAlgoED25519 || cas.Host.PublicKey().Type() != ssh.KeyAlgoED25519 {
		t.Errorf("key types %s, %s; want ed25519", cas.User.PublicKey().Type(), cas.Host.PublicKey().Type())
	}
	if samePub(cas.User.PublicKey(), cas.Host.PublicKey()) {
		t.Error("user and host CA share a key")
	}

	again, err := LoadOrCreateSSHCAs(dir)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if !samePub(again.User.PublicKey(), cas.User.PublicKey()) || !samePub(again.Host.PublicKey(), cas.Host.PublicKey()) {
		t.Error("reloaded CAs differ")
	}

	pemData, err := os.ReadFile(filepath.Join(dir, SSHUserCAFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(pemData, []byte("-----BEGIN OPENSSH PRIVATE KEY-----")) {
		t.Errorf("private key is not in OpenSSH format: %.40q", pemData)
	}
	pubData, err := os.ReadFile(filepath.Join(dir, SSHHostCAPubFile))
	if err != nil {
		t.Fatal(err)
	}
	pub, comment, _, _, err := ssh.ParseAuthorizedKey(pubData)
	if err != nil || !samePub(pub, cas.Host.PublicKey()) || comment != "patchbay-host-ca" {
		t.Errorf("host CA .pub: %v, comment %q", err, comment)
	}

	// A lost .pub is rewritten from the key; a .pub without its key is refused.
	if err := os.Remove(filepath.Join(dir, SSHUserCAPubFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateSSHCAs(dir); err != nil {
		t.Fatalf("reload without user .pub: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, SSHUserCAPubFile)); err != nil || !strings.HasPrefix(string(b), "ssh-ed25519 ") {
		t.Errorf("user .pub not rewritten: %q, %v", b, err)
	}
	if err := os.Remove(filepath.Join(dir, SSHHostCAFile)); err != nil {
		t.Fatal(err)
	}
	_, err = LoadOrCreateSSHCAs(dir)
	if err == nil || !strings.Contains(err.Error(), SSHHostCAFile+" is missing") {
		t.Errorf("missing host CA key: err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, SSHHostCAFile)); !os.IsNotExist(err) {
		t.Error("a new host CA key was written over a kept .pub")
	}

	// A .pub of another key is refused.
	_, dir2 := testSSHCAs(t)
	if err := os.WriteFile(filepath.Join(dir2, SSHUserCAPubFile), pubData, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateSSHCAs(dir2); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Errorf("mismatched .pub: err = %v", err)
	}
}

func TestSignUserCert(t *testing.T) {
	cas, _ := testSSHCAs(t)
	pub, _ := newSSHPub(t)
	now := time.Now()
	cert, err := cas.SignUserCert(pub, "alice", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if cert.CertType != ssh.UserCert || cert.KeyId != "alice" || !slices.Equal(cert.ValidPrincipals, []string{"alice"}) {
		t.Errorf("cert type %d key id %q principals %q", cert.CertType, cert.KeyId, cert.ValidPrincipals)
	}
	if got, want := int64(cert.ValidAfter), now.Add(-5*time.Minute).Unix(); got != want {
		t.Errorf("ValidAfter %d, want %d", got, want)
	}
	if got, want := int64(cert.ValidBefore), now.Add(time.Hour).Unix(); got != want {
		t.Errorf("ValidBefore %d, want %d", got, want)
	}
	wantExt := map[string]string{"permit-pty": "", "permit-port-forwarding": ""}
	if len(cert.Extensions) != len(wantExt) || cert.Extensions["permit-pty"] != "" || cert.Extensions["permit-port-forwarding"] != "" {
		t.Errorf("extensions %v, want %v", cert.Extensions, wantExt)
	}
	if _, ok := cert.Extensions["permit-port-forwarding"]; !ok {
		t.Error("no permit-port-forwarding")
	}
	if len(cert.CriticalOptions) != 0 {
		t.Errorf("critical options %v", cert.CriticalOptions)
	}
	other, err := cas.SignUserCert(pub, "alice", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if other.Serial == cert.Serial {
		t.Error("two certificates share a serial")
	}

	checker := &ssh.CertChecker{
		IsUserAuthority: func(auth ssh.PublicKey) bool { return samePub(auth, cas.User.PublicKey()) },
		Clock:           func() time.Time { return now },
	}
	if err := checker.CheckCert("alice", cert); err != nil {
		t.Errorf("CheckCert: %v", err)
	}
	if err := checker.CheckCert("bob", cert); err == nil {
		t.Error("certificate valid for another principal")
	}
	checker.Clock = func() time.Time { return now.Add(2 * time.Hour) }
	if err := checker.CheckCert("alice", cert); err == nil {
		t.Error("expired certificate accepted")
	}
	if checker.IsUserAuthority(cas.Host.PublicKey()) {
		t.Error("host CA taken for the user CA")
	}

	for _, bad := range []string{"", "a b", "a,b", "x\n"} {
		if _, err := cas.SignUserCert(pub, bad, time.Hour, now); err == nil {
			t.Errorf("technician %q accepted", bad)
		}
	}
	if _, err := cas.SignUserCert(cert, "alice", time.Hour, now); err == nil {
		t.Error("certified a certificate")
	}
	if _, err := cas.SignUserCert(pub, "alice", 0, now); err == nil {
		t.Error("zero ttl accepted")
	}
}

func TestSignHostCert(t *testing.T) {
	cas, _ := testSSHCAs(t)
	pub, _ := newSSHPub(t)
	const id = "0f8fad5b-d9cb-469f-a165-70867728950e"
	principals := []string{id, id + ".patchbay", "pc-17.patchbay"}
	cert, err := cas.SignHostCert(pub, id, principals, 24*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if cert.CertType != ssh.HostCert || cert.KeyId != "agent:"+id || !slices.Equal(cert.ValidPrincipals, principals) {
		t.Errorf("cert type %d key id %q principals %q", cert.CertType, cert.KeyId, cert.ValidPrincipals)
	}
	checker := &ssh.CertChecker{
		IsHostAuthority: func(auth ssh.PublicKey, _ string) bool { return samePub(auth, cas.Host.PublicKey()) },
	}
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}
	if err := checker.CheckHostKey(id+".patchbay:22", addr, cert); err != nil {
		t.Errorf("CheckHostKey: %v", err)
	}
	if err := checker.CheckHostKey("other.patchbay:22", addr, cert); err == nil {
		t.Error("host certificate accepted for another name")
	}
	// A user CA does not vouch for hosts.
	userSigned, err := (&SSHCAs{Host: cas.User}).SignHostCert(pub, id, principals, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := checker.CheckHostKey(id+".patchbay:22", addr, userSigned); err == nil {
		t.Error("host certificate from the wrong CA accepted")
	}
	if _, err := cas.SignHostCert(pub, id, nil, time.Hour, time.Now()); err == nil {
		t.Error("no principals accepted")
	}
}

func TestKnownHostsLine(t *testing.T) {
	cas, _ := testSSHCAs(t)
	line := cas.KnownHostsLine()
	if !strings.HasPrefix(line, "@cert-authority *.patchbay ssh-ed25519 ") || !strings.HasSuffix(line, " patchbay-host-ca") {
		t.Errorf("line = %q", line)
	}
	marker, hosts, pub, _, _, err := ssh.ParseKnownHosts([]byte(line + "\n"))
	if err != nil || marker != "cert-authority" || !slices.Equal(hosts, []string{"*.patchbay"}) || !samePub(pub, cas.Host.PublicKey()) {
		t.Errorf("ParseKnownHosts: %v marker %q hosts %q", err, marker, hosts)
	}
}

// TestSSHKeygenReadsCerts checks the files and certificates with OpenSSH's own tool.
func TestSSHKeygenReadsCerts(t *testing.T) {
	keygen := testtool.Need(t, "ssh-keygen", "openssh-client")
	cas, dir := testSSHCAs(t)
	pub, _ := newSSHPub(t)
	cert, err := cas.SignUserCert(pub, "alice", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certPath := filepath.Join(t.TempDir(), "id-cert.pub")
	if err := os.WriteFile(certPath, ssh.MarshalAuthorizedKey(cert), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(keygen, "-L", "-f", certPath).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -L: %v\n%s", err, out)
	}
	fp := ssh.FingerprintSHA256(cas.User.PublicKey())
	for _, want := range []string{"user certificate", `Key ID: "alice"`, "Signing CA: ED25519 " + fp, "permit-pty", "permit-port-forwarding", "Critical Options: (none)"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ssh-keygen -L output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "permit-agent-forwarding") || strings.Contains(string(out), "permit-X11-forwarding") {
		t.Errorf("certificate permits forwarding:\n%s", out)
	}

	host, err := cas.SignHostCert(pub, "agent-1", []string{"agent-1", "agent-1.patchbay"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, ssh.MarshalAuthorizedKey(host), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(keygen, "-L", "-f", certPath).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "host certificate") || !strings.Contains(string(out), `Key ID: "agent:agent-1"`) {
		t.Errorf("ssh-keygen -L host cert: %v\n%s", err, out)
	}

	// ssh-keygen derives the same public key from the private key file.
	out, err = exec.Command(keygen, "-y", "-f", filepath.Join(dir, SSHUserCAFile)).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -y: %v\n%s", err, out)
	}
	derived, _, _, _, err := ssh.ParseAuthorizedKey(out)
	if err != nil || !samePub(derived, cas.User.PublicKey()) {
		t.Errorf("ssh-keygen -y gives another key: %v\n%s", err, out)
	}
}
