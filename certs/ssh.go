package certs

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/internal/atomicfile"
)

// Files of the relay's SSH certificate authorities inside the data directory.
// The private keys are in OpenSSH format (what ssh-keygen writes), mode 0600;
// the public keys are one authorized_keys line each, mode 0644.
const (
	SSHUserCAFile    = "ssh_user_ca"
	SSHUserCAPubFile = "ssh_user_ca.pub"
	SSHHostCAFile    = "ssh_host_ca"
	SSHHostCAPubFile = "ssh_host_ca.pub"
)

// Comments on the CA keys, also used in the known_hosts line.
const (
	sshUserCAComment = "patchbay-user-ca"
	sshHostCAComment = "patchbay-host-ca"
)

// SSH certificate extensions granted to technicians. Agent and X11 forwarding
// are deliberately absent, and the agent refuses them whatever the certificate says.
const (
	SSHExtPermitPTY         = "permit-pty"
	SSHExtPermitPortForward = "permit-port-forwarding"
)

// SSHHostPattern is the host pattern the host CA is trusted for in known_hosts:
// agents are reached as AGENT.patchbay through `ProxyCommand patchbay proxy %h`.
const SSHHostPattern = "*.patchbay"

// SSHCAs are the relay's two SSH certificate authorities (Ed25519), kept in the
// data directory: User certifies technicians' keys (short-lived certificates
// issued at `patchbay login`), Host certifies agents' host keys, so that an
// OpenSSH client with one @cert-authority line in known_hosts trusts every agent.
type SSHCAs struct {
	User, Host ssh.Signer
}

// LoadOrCreateSSHCAs loads the user and host CA keys from dir, creating any
// that does not exist yet. The directory is created with mode 0700 if missing.
// A missing .pub file is rewritten from its private key; a .pub file without
// its private key, or one that does not match it, is an error and nothing is
// written: a CA key is never replaced silently, since every technician
// certificate (user CA) or agent known_hosts entry (host CA) depends on it.
func LoadOrCreateSSHCAs(dir string) (*SSHCAs, error) {
	user, err := loadOrCreateSSHCA(dir, SSHUserCAFile, SSHUserCAPubFile, sshUserCAComment)
	if err != nil {
		return nil, fmt.Errorf("ssh user ca: %w", err)
	}
	host, err := loadOrCreateSSHCA(dir, SSHHostCAFile, SSHHostCAPubFile, sshHostCAComment)
	if err != nil {
		return nil, fmt.Errorf("ssh host ca: %w", err)
	}
	return &SSHCAs{User: user, Host: host}, nil
}

func loadOrCreateSSHCA(dir, keyName, pubName, comment string) (ssh.Signer, error) {
	keyPath := filepath.Join(dir, keyName)
	pubPath := filepath.Join(dir, pubName)
	keyOK, err := exists(keyPath)
	if err != nil {
		return nil, err
	}
	pubOK, err := exists(pubPath)
	if err != nil {
		return nil, err
	}
	if !keyOK && pubOK {
		return nil, fmt.Errorf("%s is missing but %s exists; restore the key from backup, or remove %s to create a new CA", keyPath, pubPath, pubPath)
	}
	if keyOK {
		signer, err := loadSSHKey(keyPath)
		if err != nil {
			return nil, err
		}
		pubLine := authorizedKeyLine(signer.PublicKey(), comment)
		if !pubOK {
			if err := atomicfile.Write(pubPath, pubLine, 0o644); err != nil {
				return nil, err
			}
			return signer, nil
		}
		data, err := os.ReadFile(pubPath)
		if err != nil {
			return nil, err
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pubPath, err)
		}
		if !bytes.Equal(pub.Marshal(), signer.PublicKey().Marshal()) {
			return nil, fmt.Errorf("%s does not belong to %s", pubPath, keyPath)
		}
		return signer, nil
	}

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := atomicfile.WriteSecret(keyPath, pem.EncodeToMemory(block)); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(pubPath, authorizedKeyLine(signer.PublicKey(), comment), 0o644); err != nil {
		// Nothing has been signed with this fresh key yet: removing it lets the next start begin cleanly.
		_ = os.Remove(keyPath)
		return nil, err
	}
	return signer, nil
}

func loadSSHKey(path string) (ssh.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, ok := signer.PublicKey().(*ssh.Certificate); ok {
		return nil, fmt.Errorf("%s: a certificate cannot be a CA key", path)
	}
	return signer, nil
}

// authorizedKeyLine is "TYPE BASE64 COMMENT\n".
func authorizedKeyLine(pub ssh.PublicKey, comment string) []byte {
	line := bytes.TrimSpace(ssh.MarshalAuthorizedKey(pub))
	return append(append(line, ' '), comment+"\n"...)
}

// SignUserCert certifies a technician's public key: key ID and the only
// principal are technician, the certificate is valid from now-5m (clock skew)
// to now+ttl, has a random serial and the extensions permit-pty and
// permit-port-forwarding (no agent or X11 forwarding, no critical options: a
// source-address option would be checked against the relay, not the technician).
func (c *SSHCAs) SignUserCert(pub ssh.PublicKey, technician string, ttl time.Duration, now time.Time) (*ssh.Certificate, error) {
	if err := checkPrincipal(technician); err != nil {
		return nil, fmt.Errorf("sign ssh user certificate: technician: %w", err)
	}
	cert, err := newSSHCert(pub, ssh.UserCert, technician, []string{technician}, ttl, now)
	if err != nil {
		return nil, fmt.Errorf("sign ssh user certificate: %w", err)
	}
	cert.Permissions.Extensions = map[string]string{
		SSHExtPermitPTY:         "",
		SSHExtPermitPortForward: "",
	}
	if err := cert.SignCert(rand.Reader, c.User); err != nil {
		return nil, fmt.Errorf("sign ssh user certificate: %w", err)
	}
	return cert, nil
}

// SignHostCert certifies an agent's host key: key ID "agent:"+agentID,
// principals as given (the caller passes agentID, agentID+".patchbay" and
// hostname+".patchbay"), valid from now-5m to now+ttl, random serial.
func (c *SSHCAs) SignHostCert(pub ssh.PublicKey, agentID string, principals []string, ttl time.Duration, now time.Time) (*ssh.Certificate, error) {
	if err := checkPrincipal(agentID); err != nil {
		return nil, fmt.Errorf("sign ssh host certificate: agent id: %w", err)
	}
	if len(principals) == 0 {
		return nil, errors.New("sign ssh host certificate: no principals")
	}
	for _, p := range principals {
		if err := checkPrincipal(p); err != nil {
			return nil, fmt.Errorf("sign ssh host certificate: principal: %w", err)
		}
	}
	cert, err := newSSHCert(pub, ssh.HostCert, "agent:"+agentID, principals, ttl, now)
	if err != nil {
		return nil, fmt.Errorf("sign ssh host certificate: %w", err)
	}
	if err := cert.SignCert(rand.Reader, c.Host); err != nil {
		return nil, fmt.Errorf("sign ssh host certificate: %w", err)
	}
	return cert, nil
}

// KnownHostsLine returns the OpenSSH known_hosts line that trusts the host CA
// for every agent: "@cert-authority *.patchbay <host CA public key> patchbay-host-ca".
func (c *SSHCAs) KnownHostsLine() string {
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(c.Host.PublicKey())))
	return "@cert-authority " + SSHHostPattern + " " + key + " " + sshHostCAComment
}

func newSSHCert(pub ssh.PublicKey, certType uint32, keyID string, principals []string, ttl time.Duration, now time.Time) (*ssh.Certificate, error) {
	if pub == nil {
		return nil, errors.New("no public key")
	}
	if _, ok := pub.(*ssh.Certificate); ok {
		return nil, errors.New("the key to certify is itself a certificate")
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("validity %v is not positive", ttl)
	}
	var serial [8]byte
	if _, err := rand.Read(serial[:]); err != nil {
		return nil, fmt.Errorf("random serial: %w", err)
	}
	return &ssh.Certificate{
		Key:             pub,
		Serial:          binary.BigEndian.Uint64(serial[:]),
		CertType:        certType,
		KeyId:           keyID,
		ValidPrincipals: append([]string(nil), principals...),
		ValidAfter:      uint64(now.Add(-clockSkew).Unix()),
		ValidBefore:     uint64(now.Add(ttl).Unix()),
	}, nil
}

// checkPrincipal accepts a non-empty name of at most 255 bytes without spaces,
// commas (OpenSSH's list separator) or control characters.
func checkPrincipal(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > 255 {
		return fmt.Errorf("%d bytes (limit 255)", len(s))
	}
	for _, r := range s {
		if r == ',' || unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar {
			return fmt.Errorf("%q contains %q", s, r)
		}
	}
	return nil
}
