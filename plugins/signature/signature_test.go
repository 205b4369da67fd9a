package signature

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestSSHKeygenSignatureVerifies: a signature made by ssh-keygen -Y sign is
// accepted by Verify and Inspect, for every key type.
func TestSSHKeygenSignatureVerifies(t *testing.T) {
	for _, kt := range keyTypes {
		t.Run(kt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			key := newKey(t, dir, "signer", kt.args...)
			file := filepath.Join(dir, "plugin")
			data := []byte("#!/bin/sh\necho fixed\n")
			writeFile(t, file, string(data))
			sig := keygenSign(t, key.Path, file, Namespace)

			a := mustParse(t, "# team\nalice@example.com,bob@example.com namespaces=\"patchbay-plugin\" "+key.PubLine+"\n")
			got, err := a.Verify(bytes.NewReader(data), sig, time.Now())
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := Signer{Principal: "alice@example.com", Fingerprint: ssh.FingerprintSHA256(key.Pub), KeyType: key.Pub.Type()}
			if got != want {
				t.Errorf("Verify = %+v, want %+v", got, want)
			}
			// ssh-keygen prints the same fingerprint.
			if out := mustKeygen(t, dir, nil, "-l", "-f", key.Path+".pub"); !strings.Contains(out, got.Fingerprint) {
				t.Errorf("ssh-keygen -l says %q, we say %s", out, got.Fingerprint)
			}

			ins, err := Inspect(sig, bytes.NewReader(data))
			want.Principal = ""
			if err != nil || ins != want {
				t.Errorf("Inspect = %+v, %v; want %+v", ins, err, want)
			}
		})
	}
}

// TestSignFileVerifiedBySSHKeygen: our signatures pass ssh-keygen -Y verify
// (and our own Verify), and ssh-keygen refuses them over altered data.
func TestSignFileVerifiedBySSHKeygen(t *testing.T) {
	for _, kt := range keyTypes {
		t.Run(kt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			key := newKey(t, dir, "signer", kt.args...)
			signer, err := LoadSigner(key.Path, nil)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, "plugin.bin")
			data := bytes.Repeat([]byte("binary\x00\xff"), 10000)
			if err := os.WriteFile(file, data, 0o755); err != nil {
				t.Fatal(err)
			}
			sigPath, err := SignFile(signer, file)
			if err != nil {
				t.Fatal(err)
			}
			if sigPath != file+".sig" {
				t.Errorf("sigPath = %q", sigPath)
			}
			fi, err := os.Stat(sigPath)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o644 {
				t.Errorf("signature mode %v, want 0644", fi.Mode().Perm())
			}
			if names, _ := filepath.Glob(filepath.Join(dir, ".*")); len(names) != 0 {
				t.Errorf("temporary files left behind: %v", names)
			}
			sig, err := os.ReadFile(sigPath)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(sig, []byte("-----BEGIN SSH SIGNATURE-----\n")) {
				t.Errorf("signature is not armored:\n%s", sig)
			}

			allowed := "alice@example.com " + key.PubLine + "\n"
			if ok, out := keygenVerify(t, allowed, "alice@example.com", sig, data); !ok {
				t.Fatalf("ssh-keygen -Y verify refused our signature: %s", out)
			}
			if ok, out := keygenVerify(t, allowed, "alice@example.com", sig, append(data, '\n')); ok {
				t.Fatalf("ssh-keygen -Y verify accepted altered data: %s", out)
			}
			if _, err := mustParse(t, allowed).Verify(bytes.NewReader(data), sig, time.Now()); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

// TestVerify covers acceptance and refusal, and checks that ssh-keygen -Y
// verify agrees with every verdict.
func TestVerify(t *testing.T) {
	dir := t.TempDir()
	alice := newKey(t, dir, "alice")
	mallory := newKey(t, dir, "mallory", "-t", "ecdsa")
	file := filepath.Join(dir, "script.sh")
	data := []byte("#!/bin/sh\nrm -rf /var/cache/app/*\n")
	writeFile(t, file, string(data))
	sigAlice := keygenSign(t, alice.Path, file, Namespace)
	sigMallory := keygenSign(t, mallory.Path, file, Namespace)
	sigFileNS := keygenSign(t, alice.Path, file, "file")

	now := time.Now()
	past := now.AddDate(0, 0, -2).UTC().Format("20060102") + "Z"
	future := now.AddDate(0, 0, 2).UTC().Format("20060102") + "Z"
	line := func(opts string, k testKey) string {
		if opts != "" {
			opts += " "
		}
		return "alice@example.com " + opts + k.PubLine + "\n"
	}

	tests := []struct {
		name    string
		allowed string
		sig     []byte
		data    []byte
		want    error // nil: accepted
		keygen  bool  // run ssh-keygen too (its verdict must match)
	}{
		{"plain line", line("", alice), sigAlice, data, nil, true},
		{"namespaces include ours", line(`namespaces="file,patchbay-*"`, alice), sigAlice, data, nil, true},
		{"inside window", line(`valid-after="`+past+`",valid-before="`+future+`"`, alice), sigAlice, data, nil, true},
		{"second line trusts", line(`namespaces="file"`, alice) + line("", alice), sigAlice, data, nil, true},
		{"tampered data", line("", alice), sigAlice, append([]byte("x"), data...), ErrBadSignature, true},
		{"truncated data", line("", alice), sigAlice, data[:10], ErrBadSignature, true},
		{"key not listed", line("", alice), sigMallory, data, ErrUntrustedSigner, true},
		{"empty allowed signers", "# nobody\n", sigAlice, data, ErrUntrustedSigner, true},
		{"namespaces exclude ours", line(`namespaces="file,git"`, alice), sigAlice, data, ErrUntrustedSigner, true},
		{"namespace negated", line(`namespaces="*,!patchbay-plugin"`, alice), sigAlice, data, ErrUntrustedSigner, true},
		{"valid-before in the past", line(`valid-before="`+past+`"`, alice), sigAlice, data, ErrUntrustedSigner, true},
		{"valid-after in the future", line(`valid-after="`+future+`"`, alice), sigAlice, data, ErrUntrustedSigner, true},
		{"key listed as a CA only", line("cert-authority", alice), sigAlice, data, ErrUntrustedSigner, true},
		{"signature for namespace file", line("", alice), sigFileNS, data, ErrWrongNamespace, true},
		{"not armored", line("", alice), []byte("hello"), data, ErrBadSignature, false},
		{"empty signature", line("", alice), nil, data, ErrBadSignature, false},
		{"armor with garbage body", line("", alice), []byte("-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n"), data, ErrBadSignature, false},
		{"trailing data", line("", alice), append(append([]byte(nil), sigAlice...), "junk"...), data, ErrBadSignature, false},
		{"oversized", line("", alice), bytes.Repeat([]byte("A"), MaxSignatureSize+1), data, ErrBadSignature, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := mustParse(t, tt.allowed)
			got, err := a.Verify(bytes.NewReader(tt.data), tt.sig, now)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if got.Principal != "alice@example.com" || got.Fingerprint != ssh.FingerprintSHA256(alice.Pub) {
					t.Errorf("Verify = %+v", got)
				}
			} else {
				if !errors.Is(err, tt.want) {
					t.Fatalf("Verify error = %v, want %v", err, tt.want)
				}
				for _, other := range []error{ErrBadSignature, ErrUntrustedSigner, ErrWrongNamespace} {
					if other != tt.want && errors.Is(err, other) {
						t.Errorf("error %v is also %v", err, other)
					}
				}
				if got != (Signer{}) {
					t.Errorf("Verify returned %+v with an error", got)
				}
				t.Logf("refused: %v", err)
			}
			if tt.keygen {
				ok, out := keygenVerify(t, tt.allowed, "alice@example.com", tt.sig, tt.data)
				if ok != (tt.want == nil) {
					t.Errorf("ssh-keygen -Y verify accepted=%v, we accepted=%v: %s", ok, tt.want == nil, out)
				}
			}
		})
	}
}

// TestVerifyReasons: the untrusted-signer message says which line matched
// and why it was refused.
func TestVerifyReasons(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t, dir, "k")
	file := filepath.Join(dir, "f")
	writeFile(t, file, "data")
	sig := keygenSign(t, k.Path, file, Namespace)
	a := mustParse(t, "\n# x\nbob namespaces=\"git\" "+k.PubLine+"\nbob valid-before=\"20200101Z\" "+k.PubLine+"\n")
	_, err := a.Verify(strings.NewReader("data"), sig, time.Now())
	for _, want := range []string{"untrusted signer", ssh.FingerprintSHA256(k.Pub), "line 3: namespaces", "line 4: expired at 2020-01-01T00:00:00Z"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not contain %q", err, want)
		}
	}
	var zero *AllowedSigners
	if _, err := zero.Verify(strings.NewReader("data"), sig, time.Now()); !errors.Is(err, ErrUntrustedSigner) {
		t.Errorf("nil AllowedSigners: %v, want ErrUntrustedSigner", err)
	}
}

// TestVerifyWindowBoundaries: valid-after and valid-before are inclusive,
// to the second, as in OpenSSH.
func TestVerifyWindowBoundaries(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t, dir, "k")
	file := filepath.Join(dir, "f")
	writeFile(t, file, "data")
	sig := keygenSign(t, k.Path, file, Namespace)
	a := mustParse(t, `p valid-after="20300101000000Z",valid-before="20300102000000Z" `+k.PubLine)
	after := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	before := time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		now time.Time
		ok  bool
	}{
		{after.Add(-time.Second), false},
		{after, true},
		{before, true},
		{before.Add(999 * time.Millisecond), true},
		{before.Add(time.Second), false},
	}
	for _, tt := range tests {
		_, err := a.Verify(strings.NewReader("data"), sig, tt.now)
		if (err == nil) != tt.ok {
			t.Errorf("now %v: err %v, want ok=%v", tt.now, err, tt.ok)
		}
	}
}

// TestCertificates: user certificates issued by a cert-authority line's CA.
func TestCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := newKey(t, dir, "ca")
	otherCA := newKey(t, dir, "otherca")
	file := filepath.Join(dir, "f")
	data := []byte("payload")
	writeFile(t, file, string(data))

	// cert makes a certificate for a new user key with ssh-keygen -s and
	// signs file with it through ssh-keygen -Y sign.
	n := 0
	cert := func(caKey testKey, certArgs ...string) []byte {
		n++
		user := newKey(t, dir, fmt.Sprintf("user%d", n))
		args := append([]string{"-q", "-s", caKey.Path, "-I", fmt.Sprintf("cert%d", n)}, certArgs...)
		mustKeygen(t, dir, nil, append(args, user.Path+".pub")...)
		return keygenSign(t, user.Path+"-cert.pub", file, Namespace)
	}
	good := cert(ca, "-n", "carol@corp.example,alice@example.com")
	caLine := `*@example.com cert-authority,namespaces="patchbay-plugin" ` + ca.PubLine + "\n"

	tests := []struct {
		name    string
		allowed string
		sig     []byte
		want    error
		keygen  string // principal for the ssh-keygen cross-check; "" to skip
	}{
		{"issued by CA", caLine, good, nil, "alice@example.com"},
		{"CA listed as a plain key", "*@example.com " + ca.PubLine + "\n", good, ErrUntrustedSigner, "alice@example.com"},
		{"other CA", "*@example.com cert-authority " + otherCA.PubLine + "\n", good, ErrUntrustedSigner, "alice@example.com"},
		{"no matching principal", "*@other.example cert-authority " + ca.PubLine + "\n", good, ErrUntrustedSigner, "alice@other.example"},
		{"namespace excluded", `*@example.com cert-authority,namespaces="file" ` + ca.PubLine + "\n", good, ErrUntrustedSigner, "alice@example.com"},
		{"expired certificate", caLine, cert(ca, "-n", "alice@example.com", "-V", "20200101:20200102"), ErrUntrustedSigner, "alice@example.com"},
		{"not yet valid certificate", caLine, cert(ca, "-n", "alice@example.com", "-V", "+52w:+53w"), ErrUntrustedSigner, "alice@example.com"},
		{"host certificate", caLine, cert(ca, "-h", "-n", "alice@example.com"), ErrUntrustedSigner, "alice@example.com"},
		{"no principals", caLine, cert(ca), ErrUntrustedSigner, ""},
		{"critical option", caLine, cert(ca, "-n", "alice@example.com", "-O", "force-command=/bin/true"), ErrUntrustedSigner, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mustParse(t, tt.allowed).Verify(bytes.NewReader(data), tt.sig, time.Now())
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if got.Principal != "alice@example.com" || got.CAFingerprint != ssh.FingerprintSHA256(ca.Pub) ||
					got.KeyType != ssh.CertAlgoED25519v01 || !strings.HasPrefix(got.Fingerprint, "SHA256:") {
					t.Errorf("Verify = %+v", got)
				}
			} else {
				if !errors.Is(err, tt.want) {
					t.Fatalf("Verify error = %v, want %v", err, tt.want)
				}
				t.Logf("refused: %v", err)
			}
			if tt.keygen != "" {
				ok, out := keygenVerify(t, tt.allowed, tt.keygen, tt.sig, data)
				if ok != (tt.want == nil) {
					t.Errorf("ssh-keygen -Y verify accepted=%v, we accepted=%v: %s", ok, tt.want == nil, out)
				}
			}
		})
	}
}

// TestSignWithCertificate: Sign with a certificate signer (ssh.NewCertSigner),
// checked by ssh-keygen, for Ed25519 and RSA (which must use rsa-sha2-512).
func TestSignWithCertificate(t *testing.T) {
	for _, kt := range []string{"ed25519", "rsa"} {
		t.Run(kt, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			ca := newKey(t, dir, "ca")
			user := newKey(t, dir, "user", "-t", kt)
			mustKeygen(t, dir, nil, "-q", "-s", ca.Path, "-I", "id", "-n", "alice@example.com", user.Path+".pub")
			certLine, err := os.ReadFile(user.Path + "-cert.pub")
			if err != nil {
				t.Fatal(err)
			}
			pub, _, _, _, err := ssh.ParseAuthorizedKey(certLine)
			if err != nil {
				t.Fatal(err)
			}
			s, err := LoadSigner(user.Path, nil)
			if err != nil {
				t.Fatal(err)
			}
			cs, err := ssh.NewCertSigner(pub.(*ssh.Certificate), s)
			if err != nil {
				t.Fatal(err)
			}
			data := []byte("data")
			sig, err := Sign(cs, bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			allowed := "alice@example.com cert-authority " + ca.PubLine + "\n"
			if ok, out := keygenVerify(t, allowed, "alice@example.com", sig, data); !ok {
				t.Fatalf("ssh-keygen refused: %s", out)
			}
			got, err := mustParse(t, allowed).Verify(bytes.NewReader(data), sig, time.Now())
			if err != nil || got.Fingerprint != ssh.FingerprintSHA256(user.Pub) {
				t.Fatalf("Verify = %+v, %v", got, err)
			}
		})
	}
}

func TestInspect(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t, dir, "k", "-t", "ecdsa")
	file := filepath.Join(dir, "f")
	data := []byte("uploaded bytes")
	writeFile(t, file, string(data))
	sig := keygenSign(t, k.Path, file, Namespace)
	other := keygenSign(t, k.Path, file, "file")

	tests := []struct {
		name string
		sig  []byte
		data []byte
		want error
	}{
		{"matches", sig, data, nil},
		{"other bytes", sig, []byte("uploaded bytes!"), ErrBadSignature},
		{"other namespace", other, data, ErrWrongNamespace},
		{"garbage", []byte("-----BEGIN SSH SIGNATURE-----\n-----END SSH SIGNATURE-----\n"), data, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Inspect(tt.sig, bytes.NewReader(tt.data))
			if !errors.Is(err, tt.want) || (tt.want != nil) != (err != nil) {
				t.Fatalf("Inspect error = %v, want %v", err, tt.want)
			}
			if tt.want == nil && (got.Fingerprint != ssh.FingerprintSHA256(k.Pub) || got.Principal != "" || got.KeyType != ssh.KeyAlgoECDSA256) {
				t.Errorf("Inspect = %+v", got)
			}
		})
	}
}

// errAfter fails reading after some bytes.
type errAfter struct{ n int }

var errDisk = errors.New("disk on fire")

func (e *errAfter) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, errDisk
	}
	n := min(len(p), e.n)
	e.n -= n
	return n, nil
}

// TestReadErrorIsNotBadSignature: failing to read the data is an I/O error,
// not a verdict on the signature.
func TestReadErrorIsNotBadSignature(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t, dir, "k")
	file := filepath.Join(dir, "f")
	writeFile(t, file, "data")
	sig := keygenSign(t, k.Path, file, Namespace)
	_, err := mustParse(t, "p "+k.PubLine).Verify(&errAfter{n: 2}, sig, time.Now())
	if !errors.Is(err, errDisk) || errors.Is(err, ErrBadSignature) {
		t.Errorf("Verify = %v, want the read error", err)
	}
}

func TestLoadSigner(t *testing.T) {
	dir := t.TempDir()
	enc := filepath.Join(dir, "enc")
	mustKeygen(t, dir, nil, "-q", "-t", "ed25519", "-N", "correct horse", "-f", enc)
	plain := newKey(t, dir, "plain")
	dsa := filepath.Join(dir, "garbage")
	writeFile(t, dsa, "not a key\n")

	tests := []struct {
		name       string
		path       string
		passphrase []byte
		want       error // nil: loads
		wantText   string
	}{
		{"encrypted, no passphrase", enc, nil, ErrPassphraseNeeded, enc},
		{"encrypted, wrong passphrase", enc, []byte("wrong"), ErrBadPassphrase, enc},
		{"encrypted, empty passphrase", enc, []byte{}, ErrBadPassphrase, enc},
		{"encrypted, right passphrase", enc, []byte("correct horse"), nil, ""},
		{"plain", plain.Path, nil, nil, ""},
		{"plain, passphrase ignored", plain.Path, []byte("x"), nil, ""},
		{"not a key", dsa, nil, nil, "load signing key " + dsa},
		{"public key", plain.Path + ".pub", nil, nil, "load signing key"},
		{"missing", filepath.Join(dir, "nope"), nil, os.ErrNotExist, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := LoadSigner(tt.path, tt.passphrase)
			switch {
			case tt.want == nil && tt.wantText == "":
				if err != nil || s == nil {
					t.Fatalf("LoadSigner = %v, %v", s, err)
				}
			case err == nil:
				t.Fatalf("LoadSigner succeeded, want error")
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("LoadSigner error = %v, want %v", err, tt.want)
			case !strings.Contains(err.Error(), tt.wantText):
				t.Fatalf("LoadSigner error %q does not contain %q", err, tt.wantText)
			}
		})
	}
}

func TestLoadSignerRefusesSmallRSA(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t, dir, "small", "-t", "rsa", "-b", "1024")
	if _, err := LoadSigner(k.Path, nil); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("LoadSigner(1024-bit RSA) = %v, want ErrUnsupportedKey", err)
	}
}

// TestTestdata: the committed fuzz seeds (made by ssh-keygen; their private
// keys were discarded) still verify, so the fuzzers start from real inputs.
func TestTestdata(t *testing.T) {
	a, err := LoadAllowedSigners(filepath.Join("testdata", "allowed_signers"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join("testdata", "data.txt"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		sig       string
		principal string
		want      error
	}{
		{"ed25519.sig", "seed-ed25519@example.com", nil},
		{"ecdsa.sig", "seed-ecdsa@example.com", nil},
		{"rsa.sig", "seed-rsa@example.com", nil},
		{"cert.sig", "seed@example.com", nil},
		{"ed-namespace-file.sig", "", ErrWrongNamespace},
	}
	for _, tt := range tests {
		sig, err := os.ReadFile(filepath.Join("testdata", tt.sig))
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.Verify(bytes.NewReader(data), sig, time.Now())
		if !errors.Is(err, tt.want) || got.Principal != tt.principal {
			t.Errorf("%s: Verify = %+v, %v; want %s, %v", tt.sig, got, err, tt.principal, tt.want)
		}
	}
}
