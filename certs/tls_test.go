package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadOrCreateServerCert(t *testing.T) {
	ca, dir := testCA(t)
	hosts := []string{"relay.example.com", "127.0.0.1", "[::1]"}
	first, err := LoadOrCreateServerCert(dir, ca, hosts)
	if err != nil {
		t.Fatal(err)
	}
	checkMode(t, filepath.Join(dir, ServerKeyFile), 0o600)
	checkMode(t, filepath.Join(dir, ServerCertFile), 0o644)

	leaf := first.Leaf
	if len(first.Certificate) != 2 || !bytes.Equal(first.Certificate[0], leaf.Raw) || !bytes.Equal(first.Certificate[1], ca.Cert.Raw) {
		t.Fatal("chain is not [server cert, CA cert]")
	}
	if !slices.Equal(leaf.DNSNames, []string{"relay.example.com"}) {
		t.Errorf("DNSNames = %v", leaf.DNSNames)
	}
	if len(leaf.IPAddresses) != 2 || !leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) || !leaf.IPAddresses[1].Equal(net.IPv6loopback) {
		t.Errorf("IPAddresses = %v", leaf.IPAddresses)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || leaf.IsCA {
		t.Errorf("usage = %v, IsCA = %v", leaf.ExtKeyUsage, leaf.IsCA)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life < ServerValidity || life > ServerValidity+time.Hour {
		t.Errorf("validity = %v", life)
	}
	if _, err := tls.X509KeyPair(readFile(t, dir, ServerCertFile), readFile(t, dir, ServerKeyFile)); err != nil {
		t.Errorf("files on disk are not a key pair: %v", err)
	}

	tests := []struct {
		name    string
		prepare func(t *testing.T) *CA
		hosts   []string
		reissue bool
	}{
		{"same hosts", func(*testing.T) *CA { return ca }, hosts, false},
		{"subset of hosts", func(*testing.T) *CA { return ca }, []string{"127.0.0.1"}, false},
		{"new host", func(*testing.T) *CA { return ca }, append(slices.Clone(hosts), "other.example.com"), true},
		{"new IP", func(*testing.T) *CA { return ca }, []string{"10.1.2.3"}, true},
		{"other CA", func(t *testing.T) *CA { other, _ := testCA(t); return other }, hosts, true},
		{"expiring in 10 days", func(t *testing.T) *CA {
			key, err := NewKey()
			if err != nil {
				t.Fatal(err)
			}
			der, err := issueServerCert(ca, key.Public(), hosts, time.Now(), 10*24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			keyPEM, _ := MarshalKeyPEM(key)
			writeFile(t, filepath.Join(dir, ServerKeyFile), keyPEM)
			writeFile(t, filepath.Join(dir, ServerCertFile), CertPEM(der))
			return ca
		}, hosts, true},
		{"key does not match", func(t *testing.T) *CA {
			key, _ := NewKey()
			keyPEM, _ := MarshalKeyPEM(key)
			writeFile(t, filepath.Join(dir, ServerKeyFile), keyPEM)
			return ca
		}, hosts, true},
		{"key missing", func(t *testing.T) *CA {
			if err := os.Remove(filepath.Join(dir, ServerKeyFile)); err != nil {
				t.Fatal(err)
			}
			return ca
		}, hosts, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Start every case from a fresh, valid certificate for hosts.
			base, err := LoadOrCreateServerCert(dir, ca, hosts)
			if err != nil {
				t.Fatal(err)
			}
			useCA := tt.prepare(t)
			got, err := LoadOrCreateServerCert(dir, useCA, tt.hosts)
			if err != nil {
				t.Fatal(err)
			}
			reissued := !bytes.Equal(got.Leaf.Raw, base.Leaf.Raw)
			if reissued != tt.reissue {
				t.Errorf("reissued = %v, want %v", reissued, tt.reissue)
			}
			if err := got.Leaf.CheckSignatureFrom(useCA.Cert); err != nil {
				t.Errorf("not signed by the CA: %v", err)
			}
			for _, h := range normaliseHosts(tt.hosts) {
				if err := got.Leaf.VerifyHostname(h); err != nil {
					t.Errorf("does not cover %s: %v", h, err)
				}
			}
			onDisk, err := ParseCertPEM(readFile(t, dir, ServerCertFile))
			if err != nil || !bytes.Equal(onDisk.Raw, got.Leaf.Raw) {
				t.Errorf("server.crt on disk is not the returned certificate (%v)", err)
			}
		})
	}
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDefaultHosts(t *testing.T) {
	hosts := DefaultHosts()
	if !slices.Equal(hosts[:3], []string{"localhost", "127.0.0.1", "::1"}) {
		t.Errorf("DefaultHosts() = %v", hosts)
	}
	if name, err := os.Hostname(); err == nil && name != "localhost" && !slices.Contains(hosts, name) {
		t.Errorf("DefaultHosts() = %v lacks hostname %q", hosts, name)
	}
	if len(hosts) != len(normaliseHosts(hosts)) {
		t.Errorf("DefaultHosts() = %v has duplicates", hosts)
	}
	ca, dir := testCA(t)
	c, err := LoadOrCreateServerCert(dir, ca, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if err := c.Leaf.VerifyHostname(h); err != nil {
			t.Errorf("default server cert does not cover %s", h)
		}
	}
}

// handshake runs one TLS handshake over loopback and returns what each side saw.
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) (tls.ConnectionState, error, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type result struct {
		state tls.ConnectionState
		err   error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		sc := tls.Server(c, serverCfg)
		err = sc.HandshakeContext(ctx)
		if err == nil {
			// Read the client's close so a TLS 1.3 client-certificate
			// rejection (sent after the client finishes) is seen by both sides.
			_, _ = sc.Read(make([]byte, 1))
		}
		done <- result{sc.ConnectionState(), err}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cc := tls.Client(conn, clientCfg)
	clientErr := cc.HandshakeContext(ctx)
	_ = cc.Close()
	r := <-done
	return r.state, r.err, clientErr
}

func TestPinnedHandshake(t *testing.T) {
	ca, dir := testCA(t)
	serverCert, err := LoadOrCreateServerCert(dir, ca, DefaultHosts())
	if err != nil {
		t.Fatal(err)
	}
	other, _ := testCA(t)
	serverCfg := ca.ServerTLSConfig(serverCert)
	upperColons := "SHA256:" + strings.ToUpper(colonise(strings.TrimPrefix(ca.Fingerprint(), "sha256:")))
	leafFP := Fingerprint(serverCert.Leaf)

	tests := []struct {
		name, fp, serverName string
		wantErr              string // "" = success
	}{
		{"right fingerprint, IP", ca.Fingerprint(), "127.0.0.1", ""},
		{"right fingerprint, name", ca.Fingerprint(), "localhost", ""},
		{"right fingerprint, IPv6 name", ca.Fingerprint(), "[::1]", ""},
		{"user-typed fingerprint", upperColons, "127.0.0.1", ""},
		{"wrong fingerprint", other.Fingerprint(), "127.0.0.1", "server CA fingerprint mismatch: expected " + other.Fingerprint() + ", server presented " + ca.Fingerprint() + "; check --ca-fingerprint"},
		{"leaf pinned instead of CA", leafFP, "127.0.0.1", "not a CA certificate"},
		{"name not covered", ca.Fingerprint(), "relay.example.org", "verify server certificate"},
		{"IP not covered", ca.Fingerprint(), "10.9.8.7", "verify server certificate"},
		{"unparsable fingerprint", "abc", "127.0.0.1", "parse fingerprint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, serverErr, clientErr := handshake(t, serverCfg, PinnedClientConfig(tt.fp, tt.serverName))
			if tt.wantErr == "" {
				if clientErr != nil || serverErr != nil {
					t.Fatalf("handshake failed: client %v, server %v", clientErr, serverErr)
				}
				return
			}
			if clientErr == nil || !strings.Contains(clientErr.Error(), tt.wantErr) {
				t.Fatalf("client error = %v, want %q", clientErr, tt.wantErr)
			}
			if serverErr == nil {
				t.Error("server completed a handshake the client rejected")
			}
		})
	}
}

func colonise(s string) string {
	var parts []string
	for i := 0; i+2 <= len(s); i += 2 {
		parts = append(parts, s[i:i+2])
	}
	return strings.Join(parts, ":")
}

func TestServerTLSConfig(t *testing.T) {
	ca, dir := testCA(t)
	serverCert, err := LoadOrCreateServerCert(dir, ca, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ca.ServerTLSConfig(serverCert)
	if cfg.MinVersion != tls.VersionTLS12 || cfg.ClientAuth != tls.VerifyClientCertIfGiven || len(cfg.Certificates) != 1 {
		t.Errorf("config: min %x auth %v certs %d", cfg.MinVersion, cfg.ClientAuth, len(cfg.Certificates))
	}
}
