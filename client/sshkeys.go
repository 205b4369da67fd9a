package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/internal/atomicfile"
)

// SSH files kept beside the CLI config (the directory of ConfigPath).
const (
	SSHKeyFile        = "id_ed25519"          // the technician's SSH key (0600), made here, never sent
	SSHCertFile       = "id_ed25519-cert.pub" // its short-lived certificate from the relay's user CA
	SSHKnownHostsFile = "known_hosts"         // "@cert-authority *.patchbay <host CA>"
)

// SSHIdentity is the technician's SSH key, certificate and the host CA that
// certifies agents, as files an OpenSSH client can use too.
type SSHIdentity struct {
	Dir         string
	Signer      ssh.Signer       // the key with its certificate
	Cert        *ssh.Certificate //
	HostCA      ssh.PublicKey    // agents' host certificates must come from it
	ValidBefore time.Time
}

// KeyPath, CertPath and KnownHostsPath name the files.
func (s *SSHIdentity) KeyPath() string        { return filepath.Join(s.Dir, SSHKeyFile) }
func (s *SSHIdentity) CertPath() string       { return filepath.Join(s.Dir, SSHCertFile) }
func (s *SSHIdentity) KnownHostsPath() string { return filepath.Join(s.Dir, SSHKnownHostsFile) }

// SSHDir is the directory of the SSH files: beside the config file.
func SSHDir() (string, error) {
	p, err := ConfigPath()
	if err != nil {
		return "", err
	}
	return filepath.Dir(p), nil
}

// EnsureSSHIdentity loads the technician's SSH key from dir (creating it on
// first use) and asks the relay for a new certificate when there is none,
// it is for another key, or it expires within minValid.
func (c *Client) EnsureSSHIdentity(ctx context.Context, dir string, minValid time.Duration) (*SSHIdentity, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("SSH key directory: %w", err)
	}
	id := &SSHIdentity{Dir: dir}
	key, err := loadOrCreateKey(id.KeyPath())
	if err != nil {
		return nil, err
	}
	cert, hostCA := readCert(id.CertPath(), key.PublicKey()), readHostCA(id.KnownHostsPath())
	if cert == nil || hostCA == nil || time.Unix(int64(cert.ValidBefore), 0).Before(time.Now().Add(minValid)) {
		res, err := c.SSHCertificate(ctx, string(ssh.MarshalAuthorizedKey(key.PublicKey())))
		if err != nil {
			return nil, err
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(res.Certificate))
		if err != nil {
			return nil, fmt.Errorf("SSH certificate from the relay: %w", err)
		}
		var ok bool
		if cert, ok = pub.(*ssh.Certificate); !ok || !bytes.Equal(cert.Key.Marshal(), key.PublicKey().Marshal()) {
			return nil, errors.New("SSH certificate from the relay does not certify this key")
		}
		if err := atomicfile.Write(id.CertPath(), []byte(res.Certificate+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("save SSH certificate: %w", err)
		}
		if err := atomicfile.Write(id.KnownHostsPath(), []byte(res.KnownHosts+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("save known_hosts: %w", err)
		}
		if hostCA = readHostCA(id.KnownHostsPath()); hostCA == nil {
			return nil, errors.New("the relay sent no usable SSH host CA")
		}
	}
	signer, err := ssh.NewCertSigner(cert, key)
	if err != nil {
		return nil, err
	}
	id.Signer, id.Cert, id.HostCA = signer, cert, hostCA
	id.ValidBefore = time.Unix(int64(cert.ValidBefore), 0)
	return id, nil
}

func loadOrCreateKey(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		blk, err := ssh.MarshalPrivateKey(priv, "patchbay technician key")
		if err != nil {
			return nil, err
		}
		b = pem.EncodeToMemory(blk)
		if err := atomicfile.WriteSecret(path, b); err != nil {
			return nil, fmt.Errorf("save SSH key: %w", err)
		}
		pub, _ := ssh.NewPublicKey(priv.Public())
		if err := atomicfile.Write(path+".pub", ssh.MarshalAuthorizedKey(pub), 0o644); err != nil {
			return nil, fmt.Errorf("save SSH public key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("read SSH key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("SSH key %s: %w (delete it and run patchbay login again)", path, err)
	}
	return s, nil
}

func readCert(path string, key ssh.PublicKey) *ssh.Certificate {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil
	}
	c, ok := pub.(*ssh.Certificate)
	if !ok || !bytes.Equal(c.Key.Marshal(), key.Marshal()) {
		return nil
	}
	return c
}

// readHostCA returns the key of the first @cert-authority line.
func readHostCA(path string) ssh.PublicKey {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	for len(b) > 0 {
		marker, _, pub, _, rest, err := ssh.ParseKnownHosts(b)
		if err != nil {
			return nil
		}
		if marker == "cert-authority" {
			return pub
		}
		b = rest
	}
	return nil
}

// HostKeyCallback accepts only host certificates from the host CA for the
// given agent.
func (s *SSHIdentity) HostKeyCallback() ssh.HostKeyCallback {
	checker := &ssh.CertChecker{
		IsHostAuthority: func(auth ssh.PublicKey, _ string) bool {
			return bytes.Equal(auth.Marshal(), s.HostCA.Marshal())
		},
		HostKeyFallback: func(hostname string, _ net.Addr, key ssh.PublicKey) error {
			return fmt.Errorf("agent %s presented a plain host key (%s), not a certificate from the relay's host CA: refused", strings.TrimSuffix(hostname, ":22"), ssh.FingerprintSHA256(key))
		},
	}
	return checker.CheckHostKey
}
