package sdk

import (
	"bytes"
	"crypto/tls"
	"encoding/pem"
	"io"
	"net"
	"strings"
	"testing"
)

// material returns what h wrote for the plugin.
func material(t *testing.T, h *HostTLS) []byte {
	t.Helper()
	b, err := io.ReadAll(h.r)
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	return b
}

// handshake runs a TLS handshake between client and server configs over
// a loopback connection and returns the client's and server's errors.
func handshake(t *testing.T, client, server *tls.Config) (cerr, serr error) {
	// Loopback TCP, not net.Pipe: TLS needs buffered writes (both sides may
	// write an alert or a ticket at once).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		s := tls.Server(b, server)
		err := s.Handshake()
		if err == nil {
			// TLS 1.3: the server learns of a rejected server certificate
			// only when it reads the client's alert.
			_, err = s.Read(make([]byte, 1))
		}
		b.Close()
		done <- err
	}()
	c := tls.Client(a, client)
	cerr = c.Handshake()
	if cerr == nil {
		_, cerr = c.Write([]byte{1})
	}
	a.Close()
	return cerr, <-done
}

func TestHostTLSPinsBothSides(t *testing.T) {
	h1, err := NewHostTLS()
	if err != nil {
		t.Fatal(err)
	}
	h2, err := NewHostTLS()
	if err != nil {
		t.Fatal(err)
	}
	srv1, err := parseTLSMaterial(material(t, h1))
	if err != nil {
		t.Fatal(err)
	}
	srv2, err := parseTLSMaterial(material(t, h2))
	if err != nil {
		t.Fatal(err)
	}
	if cerr, serr := handshake(t, h1.Config, srv1); cerr != nil || serr != nil {
		t.Fatalf("matching pair: client %v, server %v", cerr, serr)
	}
	// Another launch's plugin is not this host's plugin...
	if cerr, _ := handshake(t, h1.Config, srv2); cerr == nil || !strings.Contains(cerr.Error(), "certificate") {
		t.Fatalf("client accepted another launch's plugin: %v", cerr)
	}
	// ...and another launch's host is not this plugin's host.
	if _, serr := handshake(t, h2.Config, srv1); serr == nil || !strings.Contains(serr.Error(), "certificate") {
		t.Fatalf("plugin accepted another launch's host: %v", serr)
	}
	// The plugin insists on a client certificate.
	anon := h1.Config.Clone()
	anon.Certificates = nil
	if _, serr := handshake(t, anon, srv1); serr == nil {
		t.Fatal("plugin accepted a host without a certificate")
	}
}

func TestParseTLSMaterialRefuses(t *testing.T) {
	h1, _ := NewHostTLS()
	h2, _ := NewHostTLS()
	m1, m2 := material(t, h1), material(t, h2)
	blocks := func(m []byte) [][]byte {
		var out [][]byte
		for {
			b, rest := pem.Decode(m)
			if b == nil {
				return out
			}
			out = append(out, m[:len(m)-len(rest)])
			m = rest
		}
	}
	b1, b2 := blocks(m1), blocks(m2)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name, input, want string
	}{
		{"empty", "", "block 1 to be CERTIFICATE"},
		{"garbage", "not pem at all", "block 1 to be CERTIFICATE"},
		{"key first", string(cat(b1[1], b1[0], b1[2])), "block 1 to be CERTIFICATE"},
		{"no host certificate", string(cat(b1[0], b1[1])), "block 3 to be CERTIFICATE"},
		{"key of another launch", string(cat(b1[0], b2[1], b1[2])), "does not belong"},
		{"trailing data", string(cat(m1, []byte("x"))), "unexpected data"},
		{"oversized", strings.Repeat("A", maxTLSMaterial+1), "more than"},
		{"bad certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" + string(cat(b1[1], b1[2])), "plugin certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseTLSMaterial([]byte(tt.input))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
