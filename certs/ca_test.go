package certs

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// testCA creates a CA in a fresh temporary directory.
func testCA(t testing.TB) (*CA, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	ca, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatalf("LoadOrCreateCA: %v", err)
	}
	return ca, dir
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	if runtime.GOOS == "windows" {
		return
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Errorf("%s mode = %v, want %v", path, fi.Mode().Perm(), want)
	}
}

func TestLoadOrCreateCARoundTrip(t *testing.T) {
	ca, dir := testCA(t)
	checkMode(t, filepath.Join(dir, CAKeyFile), 0o600)
	checkMode(t, filepath.Join(dir, CACertFile), 0o644)
	checkMode(t, dir, 0o700)

	c := ca.Cert
	if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("CA constraints: IsCA=%v valid=%v maxPathLen=%d zero=%v", c.IsCA, c.BasicConstraintsValid, c.MaxPathLen, c.MaxPathLenZero)
	}
	if c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("KeyUsage = %v", c.KeyUsage)
	}
	if !regexp.MustCompile(`^Patchbay CA [0-9a-f]{8}$`).MatchString(c.Subject.CommonName) {
		t.Errorf("CN = %q", c.Subject.CommonName)
	}
	if life := c.NotAfter.Sub(c.NotBefore); life < CAValidity || life > CAValidity+time.Hour {
		t.Errorf("validity = %v, want about %v", life, CAValidity)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("not self-signed: %v", err)
	}

	again, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if again.Fingerprint() != ca.Fingerprint() {
		t.Errorf("reloaded fingerprint %s, want %s", again.Fingerprint(), ca.Fingerprint())
	}
	if !again.Key.Equal(ca.Key) {
		t.Error("reloaded key differs")
	}
	if !bytes.Equal(again.CertPEM, ca.CertPEM) {
		t.Error("reloaded CertPEM differs")
	}

	other, _ := testCA(t)
	if other.Fingerprint() == ca.Fingerprint() || other.Cert.Subject.CommonName == ca.Cert.Subject.CommonName {
		t.Error("two new CAs are not distinct")
	}
}

func TestLoadOrCreateCAOneFileMissing(t *testing.T) {
	for _, missing := range []string{CAKeyFile, CACertFile} {
		t.Run(missing, func(t *testing.T) {
			_, dir := testCA(t)
			kept := CACertFile
			if missing == CACertFile {
				kept = CAKeyFile
			}
			before, err := os.ReadFile(filepath.Join(dir, kept))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(dir, missing)); err != nil {
				t.Fatal(err)
			}
			_, err = LoadOrCreateCA(dir)
			if err == nil {
				t.Fatal("LoadOrCreateCA succeeded with one file missing")
			}
			if !strings.Contains(err.Error(), filepath.Join(dir, missing)+" is missing") {
				t.Errorf("error %q does not name the missing file", err)
			}
			after, err := os.ReadFile(filepath.Join(dir, kept))
			if err != nil || !bytes.Equal(before, after) {
				t.Errorf("%s changed or vanished: %v", kept, err)
			}
			if _, err := os.Stat(filepath.Join(dir, missing)); !os.IsNotExist(err) {
				t.Errorf("%s was recreated", missing)
			}
		})
	}
}

func TestLoadCABadFiles(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(t *testing.T, dir string)
		want    string
	}{
		{
			name: "key from another CA",
			corrupt: func(t *testing.T, dir string) {
				_, other := testCA(t)
				copyFile(t, filepath.Join(other, CAKeyFile), filepath.Join(dir, CAKeyFile))
			},
			want: "does not belong to",
		},
		{
			name: "garbage certificate",
			corrupt: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, CACertFile), []byte("not pem"))
			},
			want: "no CERTIFICATE PEM block",
		},
		{
			name: "garbage key",
			corrupt: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, CAKeyFile), []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
			},
			want: "parse key",
		},
		{
			name: "not a CA",
			corrupt: func(t *testing.T, dir string) {
				ca, err := LoadOrCreateCA(dir)
				if err != nil {
					t.Fatal(err)
				}
				der, err := issueServerCert(ca, ca.Key.Public(), []string{"x"}, time.Now(), time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(dir, CACertFile), CertPEM(der))
			},
			want: "not a CA certificate",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, dir := testCA(t)
			tt.corrupt(t, dir)
			key, _ := os.ReadFile(filepath.Join(dir, CAKeyFile))
			_, err := LoadOrCreateCA(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "load ca: ") {
				t.Errorf("error %q lacks the step", err)
			}
			if after, _ := os.ReadFile(filepath.Join(dir, CAKeyFile)); !bytes.Equal(key, after) {
				t.Error("key file was changed")
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, b)
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestFingerprintFormat(t *testing.T) {
	ca, _ := testCA(t)
	fp := ca.Fingerprint()
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(fp) {
		t.Errorf("fingerprint %q has the wrong form", fp)
	}
	if Fingerprint(ca.Cert) != fp {
		t.Error("Fingerprint and CA.Fingerprint disagree")
	}
	if got, err := ParseFingerprint(fp); err != nil || got != fp {
		t.Errorf("ParseFingerprint(own output) = %q, %v", got, err)
	}
}

func TestParseFingerprint(t *testing.T) {
	const hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	const want = "sha256:" + hex
	colons := func(s string) string {
		var parts []string
		for i := 0; i < len(s); i += 2 {
			parts = append(parts, s[i:i+2])
		}
		return strings.Join(parts, ":")
	}
	good := []string{
		"sha256:" + hex,
		"SHA256:" + hex,
		"Sha256:" + strings.ToUpper(hex),
		"SHA256:" + strings.ToUpper(colons(hex)),
		"sha256:" + colons(hex),
		"  sha256:" + hex + "\n",
	}
	for _, in := range good {
		got, err := ParseFingerprint(in)
		if err != nil || got != want {
			t.Errorf("ParseFingerprint(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []struct{ in, why string }{
		{"", "prefix"},
		{hex, "prefix"},
		{"sha1:" + hex[:40], "prefix"},
		{"sha256:", "0 hex digits"},
		{"sha256:" + hex[:62], "62 hex digits"},
		{"sha256:" + hex + "00", "66 hex digits"},
		{"sha256:" + hex[:63] + "g", "not hexadecimal"},
		{"sha256:" + colons(hex)[1:], "pairs"},
		{"sha256:" + colons(hex) + ":", "pairs"},
		{"sha256::" + hex, "pairs"},
		{"sha256:" + hex[:32] + ":" + hex[32:], "pairs"},
		{"sha256: " + hex, "not hexadecimal"},
	}
	for _, tt := range bad {
		_, err := ParseFingerprint(tt.in)
		if err == nil {
			t.Errorf("ParseFingerprint(%q) succeeded", tt.in)
			continue
		}
		if !strings.Contains(err.Error(), tt.why) || !strings.Contains(err.Error(), `"sha256:" followed by 64 hex digits`) {
			t.Errorf("ParseFingerprint(%q) error %q should mention %q and the expected form", tt.in, err, tt.why)
		}
	}
}

func FuzzParseFingerprint(f *testing.F) {
	f.Add("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	f.Add("SHA256:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF")
	f.Add("sha256:")
	f.Add(":::")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseFingerprint(s)
		if err != nil {
			return
		}
		if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(got) {
			t.Fatalf("ParseFingerprint(%q) = %q, not canonical", s, got)
		}
		if again, err := ParseFingerprint(got); err != nil || again != got {
			t.Fatalf("canonical form %q does not round-trip: %q, %v", got, again, err)
		}
	})
}
