package checks

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/wire"
)

// newCert returns a self-signed certificate for cn valid until notAfter,
// its DER bytes and its key.
func newCert(t *testing.T, cn string, notAfter time.Time) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		DNSNames: []string{cn}, NotBefore: time.Now().Add(-400 * 24 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

func writePEM(t *testing.T, name, typ string, der ...[]byte) {
	t.Helper()
	var b []byte
	for _, d := range der {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: d})...)
	}
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCertExpiryFiles(t *testing.T) {
	day := 24 * time.Hour
	now := time.Now()
	dir := t.TempDir()
	long, key := newCert(t, "long.example", now.Add(200*day))
	soon, _ := newCert(t, "soon.example", now.Add(10*day+time.Hour))
	gone, _ := newCert(t, "gone.example", now.Add(-3*day))
	ctx := context.Background()
	run := func(p map[string]string) (string, string) {
		t.Helper()
		return RunBuiltin(ctx, BuiltinCertExpiry, p)
	}

	good := filepath.Join(dir, "good")
	os.Mkdir(good, 0o700)
	writePEM(t, filepath.Join(good, "long.pem"), "CERTIFICATE", long)
	os.WriteFile(filepath.Join(good, "long.der"), long, 0o600)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	writePEM(t, filepath.Join(good, "long-key.pem"), "EC PRIVATE KEY", keyDER) // skipped in a directory
	os.WriteFile(filepath.Join(good, "notes.txt"), []byte("not a certificate"), 0o600)
	if st, s := run(map[string]string{"path": good}); st != wire.CheckPassed || !strings.Contains(s, "2 certificate(s) valid for more than 30 days") {
		t.Fatalf("good directory: %s %s", st, s)
	}
	// A chain file: the second certificate expires within 30 days.
	chain := filepath.Join(dir, "chain.crt")
	writePEM(t, chain, "CERTIFICATE", long, soon)
	st, s := run(map[string]string{"path": chain})
	if st != wire.CheckFailed || !strings.Contains(s, "CN=soon.example ("+chain+") expires "+now.Add(10*day+time.Hour).UTC().Format(time.DateOnly)+", in 10 days") {
		t.Fatalf("chain with a certificate expiring soon: %s %s", st, s)
	}
	if st, s := run(map[string]string{"path": chain, "days": "7"}); st != wire.CheckPassed {
		t.Fatalf("days=7: %s %s", st, s)
	}
	expired := filepath.Join(dir, "expired.pem")
	writePEM(t, expired, "CERTIFICATE", gone)
	if st, s := run(map[string]string{"path": expired, "threshold": "0"}); st != wire.CheckFailed || !strings.Contains(s, "CN=gone.example") || !strings.Contains(s, "expired "+now.Add(-3*day).UTC().Format(time.DateOnly)) {
		t.Fatalf("expired: %s %s", st, s)
	}
	// Malformed files are errors naming the file.
	bad := filepath.Join(dir, "bad")
	os.Mkdir(bad, 0o700)
	writePEM(t, filepath.Join(bad, "a.pem"), "CERTIFICATE", long)
	broken := filepath.Join(bad, "broken.crt")
	writePEM(t, broken, "CERTIFICATE", []byte("garbage"))
	if st, s := run(map[string]string{"path": bad}); st != wire.CheckError || !strings.Contains(s, broken) {
		t.Fatalf("broken certificate: %s %s", st, s)
	}
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("hello"), 0o600)
	if st, s := run(map[string]string{"path": junk}); st != wire.CheckError || !strings.Contains(s, junk) {
		t.Fatalf("not a certificate: %s %s", st, s)
	}
	onlyKey := filepath.Join(good, "long-key.pem")
	if st, s := run(map[string]string{"path": onlyKey}); st != wire.CheckError || !strings.Contains(s, "no CERTIFICATE block") {
		t.Fatalf("key file as path: %s %s", st, s)
	}
	for _, p := range []map[string]string{{}, {"path": good, "days": "-1"}, {"path": filepath.Join(dir, "none")},
		{"host": "nohostport"}, {"path": good, "timeout": "forever"}} {
		if st, s := run(p); st != wire.CheckError {
			t.Errorf("%v: %s %s, want error", p, st, s)
		}
	}
}

// TestCertExpiryHost checks the chain a real TLS listener presents.
func TestCertExpiryHost(t *testing.T) {
	now := time.Now()
	der, key := newCert(t, "localhost", now.Add(5*24*time.Hour+time.Hour))
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	host := ln.Addr().String()
	st, s := RunBuiltin(context.Background(), BuiltinCertExpiry, map[string]string{"host": host})
	if st != wire.CheckFailed || !strings.Contains(s, "CN=localhost ("+host+") expires") || !strings.Contains(s, "in 5 days") {
		t.Fatalf("host with a certificate expiring in 5 days: %s %s", st, s)
	}
	if st, s := RunBuiltin(context.Background(), BuiltinCertExpiry, map[string]string{"host": host, "days": "3"}); st != wire.CheckPassed {
		t.Fatalf("days=3: %s %s", st, s)
	}
	// Nothing listening: an error naming the host, within the timeout.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	if st, s := RunBuiltin(context.Background(), BuiltinCertExpiry, map[string]string{"host": dead, "timeout": "2s"}); st != wire.CheckError || !strings.Contains(s, dead) {
		t.Fatalf("nothing listening: %s %s", st, s)
	}
}
