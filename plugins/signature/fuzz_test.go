package signature

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// seed reads a file from testdata (real ssh-keygen outputs, public only).
func seed(f *testing.F, name string) []byte {
	f.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzParseAllowedSigners: the parser never panics, and whatever it accepts
// is a well-formed set of entries.
func FuzzParseAllowedSigners(f *testing.F) {
	f.Add(seed(f, "allowed_signers"))
	f.Add([]byte(`"a b",c cert-authority,namespaces="x,\"y",valid-after="20200101Z",valid-before="203001011200UTC" ` + edKey + " c\n"))
	f.Add([]byte("# c\n\n*@x,!y namespaces=\"*,!git\" " + ecKey + "\r\n"))
	f.Add([]byte("a " + certKey))
	f.Add([]byte("a " + dsaKey))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAllowedSigners(bytes.NewReader(b))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "line ") && !strings.HasPrefix(err.Error(), "allowed signers: ") {
				t.Fatalf("error does not name a line: %v", err)
			}
			return
		}
		for _, e := range a.Entries() {
			if e.Key == nil || e.Principal() == "" || e.Line < 1 {
				t.Fatalf("bad entry %+v", e)
			}
			if e.Namespaces != nil && len(e.Namespaces) == 0 {
				t.Fatalf("empty namespace list %+v", e)
			}
			_ = e.AllowsNamespace(Namespace)
		}
	})
}

// FuzzVerify: Verify and Inspect never panic on hostile signature bytes, and
// never accept what they should not.
func FuzzVerify(f *testing.F) {
	allowed, err := ParseAllowedSigners(bytes.NewReader(seed(f, "allowed_signers")))
	if err != nil {
		f.Fatal(err)
	}
	data := seed(f, "data.txt")
	for _, name := range []string{"ed25519.sig", "ecdsa.sig", "rsa.sig", "cert.sig", "ed-namespace-file.sig"} {
		f.Add(seed(f, name), data)
	}
	f.Add([]byte("-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n"), data)
	f.Add([]byte{}, []byte{})
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, sig, msg []byte) {
		s, err := allowed.Verify(bytes.NewReader(msg), sig, now)
		if err == nil {
			// Only the seed files' signatures over the seed data can be
			// trusted; a forgery would be a bug (or broken crypto).
			if !bytes.Equal(msg, data) || s.Principal == "" || s.Fingerprint == "" {
				t.Fatalf("accepted %+v for %q", s, msg)
			}
		} else if !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrUntrustedSigner) && !errors.Is(err, ErrWrongNamespace) {
			t.Fatalf("error without a sentinel: %v", err)
		}
		i, err := Inspect(sig, bytes.NewReader(msg))
		if err == nil && (i.Fingerprint == "" || i.Principal != "") {
			t.Fatalf("Inspect = %+v", i)
		}
	})
}
