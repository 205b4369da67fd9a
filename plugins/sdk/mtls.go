package sdk

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// Mutual TLS between the agent and a plugin process.
//
// go-plugin's AutoMTLS makes a fresh P-521 key and self-signed certificate on
// each side for every launch and pins the other side's certificate. P-521
// key generation, signing and verification cost about 20 ms of a launch that
// is otherwise about 40 ms, on every run of every plugin. Patchbay keeps the
// same guarantees with Ed25519 (about 0.1 ms in all): the host generates two
// fresh key pairs per launch, keeps the client's, and hands the plugin its
// server key and certificate and the client's certificate through an
// inherited pipe (never the environment or the disk; the pipe is read once
// and closed before any plugin code runs). Each side accepts only the other's
// certificate, TLS 1.3 only. A plugin started by a host that sends no pipe
// (any other go-plugin host) falls back to go-plugin's AutoMTLS.

// EnvTLSFD names the environment variable that carries the number of the
// inherited descriptor holding the plugin's TLS material.
const EnvTLSFD = "PATCHBAY_PLUGIN_TLS_FD"

// maxTLSMaterial bounds what a plugin reads from the pipe.
const maxTLSMaterial = 16 << 10

// tlsServerName is the name in both certificates and the client's
// ServerName (the plugin listens on a unix socket; the name is a label).
const tlsServerName = "localhost"

// HostTLS is the host's half of one launch's mutual TLS. Use it for exactly
// one process: NewHostTLS, Attach to the command, pass Config to go-plugin's
// ClientConfig.TLSConfig (with AutoMTLS off), and Close once the process has
// started or failed to.
type HostTLS struct {
	// Config is the client configuration: the host's certificate, and the
	// plugin's certificate as the only root.
	Config *tls.Config
	r      *os.File // read end of the pipe, inherited by the plugin
}

// NewHostTLS generates the key pairs for one launch and writes the plugin's
// half into a pipe.
func NewHostTLS() (*HostTLS, error) {
	server, serverKey, err := selfSigned()
	if err != nil {
		return nil, fmt.Errorf("plugin tls: server certificate: %w", err)
	}
	client, clientKey, err := selfSigned()
	if err != nil {
		return nil, fmt.Errorf("plugin tls: client certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(serverKey)
	if err != nil {
		return nil, fmt.Errorf("plugin tls: %w", err)
	}
	var material []byte
	material = append(material, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: server.Raw})...)
	material = append(material, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	material = append(material, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: client.Raw})...)
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("plugin tls: %w", err)
	}
	// A few hundred bytes: far below the pipe's buffer, so this never blocks.
	_, err = w.Write(material)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("plugin tls: write pipe: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(server)
	return &HostTLS{
		Config: &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{client.Raw}, PrivateKey: clientKey, Leaf: client}},
			RootCAs:      roots,
			ServerName:   tlsServerName,
			MinVersion:   tls.VersionTLS13,
		},
		r: r,
	}, nil
}

// Attach makes cmd inherit the pipe and tells the plugin where it is. Call
// it after cmd.Env is set (go-plugin adds its own variables later).
func (h *HostTLS) Attach(cmd *exec.Cmd) {
	cmd.ExtraFiles = append(cmd.ExtraFiles, h.r)
	fd := 3 + len(cmd.ExtraFiles) - 1
	cmd.Env = append(cmd.Env, EnvTLSFD+"="+strconv.Itoa(fd))
}

// Close closes the host's copy of the pipe.
func (h *HostTLS) Close() error { return h.r.Close() }

// selfSigned makes a fresh Ed25519 key and a certificate for it that is its
// own root, usable for both ends of a TLS connection.
func selfSigned() (*x509.Certificate, ed25519.PrivateKey, error) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: tlsServerName, Organization: []string{"Patchbay plugin launch"}},
		DNSNames:              []string{tlsServerName},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(365 * 24 * time.Hour), // the key dies with the process
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// pluginTLS is the plugin's side: it reads the material from the inherited
// descriptor named by EnvTLSFD, closes it, and returns the server
// configuration. ok is false when the host sent none.
func pluginTLS() (cfg *tls.Config, ok bool, err error) {
	v := os.Getenv(EnvTLSFD)
	if v == "" {
		return nil, false, nil
	}
	os.Unsetenv(EnvTLSFD) // children of the plugin have no business with it
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, true, fmt.Errorf("plugin tls: %s=%q is not an inherited descriptor", EnvTLSFD, v)
	}
	f := os.NewFile(uintptr(fd), "plugin-tls")
	if f == nil {
		return nil, true, fmt.Errorf("plugin tls: descriptor %d is not open", fd)
	}
	material, err := io.ReadAll(io.LimitReader(f, maxTLSMaterial+1))
	f.Close()
	if err != nil {
		return nil, true, fmt.Errorf("plugin tls: read descriptor %d: %w", fd, err)
	}
	cfg, err = parseTLSMaterial(material)
	return cfg, true, err
}

// parseTLSMaterial reads the three PEM blocks NewHostTLS writes: the
// plugin's certificate, its PKCS#8 Ed25519 key, and the host's certificate.
func parseTLSMaterial(material []byte) (*tls.Config, error) {
	if len(material) > maxTLSMaterial {
		return nil, fmt.Errorf("plugin tls: more than %d bytes of key material", maxTLSMaterial)
	}
	want := []string{"CERTIFICATE", "PRIVATE KEY", "CERTIFICATE"}
	blocks := make([][]byte, 0, len(want))
	rest := material
	for _, typ := range want {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil || b.Type != typ {
			return nil, fmt.Errorf("plugin tls: expected PEM block %d to be %s", len(blocks)+1, typ)
		}
		blocks = append(blocks, b.Bytes)
	}
	if len(rest) != 0 {
		return nil, errors.New("plugin tls: unexpected data after the key material")
	}
	server, err := x509.ParseCertificate(blocks[0])
	if err != nil {
		return nil, fmt.Errorf("plugin tls: plugin certificate: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(blocks[1])
	if err != nil {
		return nil, fmt.Errorf("plugin tls: plugin key: %w", err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok || !key.Public().(ed25519.PublicKey).Equal(server.PublicKey) {
		return nil, errors.New("plugin tls: the key does not belong to the plugin certificate")
	}
	client, err := x509.ParseCertificate(blocks[2])
	if err != nil {
		return nil, fmt.Errorf("plugin tls: host certificate: %w", err)
	}
	clients := x509.NewCertPool()
	clients.AddCert(client)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{server.Raw}, PrivateKey: key, Leaf: server}},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clients,
		MinVersion:   tls.VersionTLS13,
	}, nil
}
