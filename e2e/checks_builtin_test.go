package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A builtin:cert-expiry policy on a real agent fails while the certificate
// file it watches expires within its threshold, naming the subject and the
// date, and passes once the file holds a renewed certificate.
func TestCertExpiryPolicyFailsThenPasses(t *testing.T) {
	t.Parallel() // independent: its own relays, data and agents
	r := StartRelay(t)
	cli := r.Login(r.AdminToken())
	a := r.Enroll(cli.Token()).Start()
	waitFor(t, 20*time.Second, "agent online", func() bool { return cli.Online(a.ID) })
	if _, errOut, err := cli.Try("policies", "create", "x", "--target", "id="+a.ID, "--check", "builtin:nope"); err == nil ||
		!strings.Contains(errOut, "builtin:cert-expiry") || !strings.Contains(errOut, "builtin:stuck-print-queue") {
		t.Fatalf("unknown built-in accepted or not named: %v %s", err, errOut)
	}
	file := filepath.Join(t.TempDir(), "web.pem")
	soon := time.Now().Add(5*24*time.Hour + time.Hour)
	writeTestCert(t, file, "web.example", soon)
	cli.Run("policies", "create", "certs", "--target", "id="+a.ID, "--check", "builtin:cert-expiry",
		"--param", "path="+file, "--threshold", "30", "--interval", "10s")
	state := func(want, summary string) func() bool {
		return func() bool {
			st := cli.policy(t, "certs").States
			return len(st) == 1 && st[0].State == want && strings.Contains(st[0].Summary, summary)
		}
	}
	waitFor(t, 40*time.Second, "the check to fail naming the certificate", state("failed",
		"CN=web.example ("+file+") expires "+soon.UTC().Format(time.DateOnly)))
	writeTestCert(t, file, "web.example", time.Now().Add(365*24*time.Hour))
	waitFor(t, 40*time.Second, "the check to pass after the renewal", state("passed", "1 certificate(s) valid for more than 30 days"))
}

// writeTestCert writes a self-signed PEM certificate for cn valid until
// notAfter to file (atomically: the agent may read it at any time).
func writeTestCert(t *testing.T, file, cn string, notAfter time.Time) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
}
