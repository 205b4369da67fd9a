package session

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/agent/identity"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/atomicfile"
)

// Files in the agent's data directory.
const (
	HostKeyFile  = identity.SSHHostKeyFile  // the agent's SSH host key (0600), made here, never sent
	HostCertFile = identity.SSHHostCertFile // its certificate from the relay's host CA
	UserCAFile   = identity.SSHUserCAFile   // the user CA whose certificates the agent accepts
)

// renewBefore is how long before its expiry the host certificate is renewed.
const renewBefore = 7 * 24 * time.Hour

// KeyStore holds the agent's SSH host key, its certificate and the pinned
// user CA. The user CA is pinned the first time it is learnt (at enrollment,
// or from the first host certificate answer of an agent enrolled before
// sessions existed); a relay that later presents another user CA is refused
// until an admin at the endpoint deletes the file.
type KeyStore struct {
	dir  string
	host ssh.Signer // the bare host key

	mu     sync.Mutex
	cert   *ssh.Certificate // nil until the relay certified the host key
	userCA ssh.PublicKey    // nil until learnt
}

// OpenKeyStore loads the key files in dir, creating the host key if missing.
func OpenKeyStore(dir string) (*KeyStore, error) {
	k := &KeyStore{dir: dir}
	path := filepath.Join(dir, HostKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		_, priv, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return nil, gerr
		}
		blk, merr := ssh.MarshalPrivateKey(priv, "patchbay agent host key")
		if merr != nil {
			return nil, merr
		}
		var buf bytes.Buffer
		if err := pemEncode(&buf, blk); err != nil {
			return nil, err
		}
		b = buf.Bytes()
		if err := atomicfile.WriteSecret(path, b); err != nil {
			return nil, fmt.Errorf("write SSH host key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("read SSH host key: %w", err)
	}
	if k.host, err = ssh.ParsePrivateKey(b); err != nil {
		return nil, fmt.Errorf("SSH host key %s: %w (delete it to make a new one)", path, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, UserCAFile)); err == nil {
		if k.userCA, _, _, _, err = ssh.ParseAuthorizedKey(b); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, UserCAFile), err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, HostCertFile)); err == nil {
		pub, _, _, _, err := ssh.ParseAuthorizedKey(b)
		if c, ok := pub.(*ssh.Certificate); err == nil && ok && bytes.Equal(c.Key.Marshal(), k.host.PublicKey().Marshal()) {
			k.cert = c
		}
	}
	return k, nil
}

// Keys returns the certified host key and the user CA, or why sessions
// cannot be served yet.
func (k *KeyStore) Keys() (Keys, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.userCA == nil {
		return Keys{}, errors.New("no SSH user CA pinned yet: the agent learns it from the relay when it connects")
	}
	if k.cert == nil {
		return Keys{}, errors.New("the SSH host key has no certificate yet: the agent gets one from the relay when it connects")
	}
	signer, err := ssh.NewCertSigner(k.cert, k.host)
	if err != nil {
		return Keys{}, err
	}
	return Keys{Host: signer, UserCA: k.userCA}, nil
}

// NeedsRenewal reports whether the host certificate is missing or expires
// within a week.
func (k *KeyStore) NeedsRenewal(now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cert == nil || k.userCA == nil || time.Unix(int64(k.cert.ValidBefore), 0).Before(now.Add(renewBefore))
}

// PinUserCA records the user CA (authorized_keys format) learnt at
// enrollment. A different CA than the one pinned is refused.
func (k *KeyStore) PinUserCA(authorizedKey string) error {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(authorizedKey))
	if err != nil {
		return fmt.Errorf("SSH user CA from the relay: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.userCA != nil {
		if !bytes.Equal(k.userCA.Marshal(), pub.Marshal()) {
			return fmt.Errorf("the relay presents SSH user CA %s but this agent pinned %s: refused (if the relay's CA was replaced on purpose, delete %s on the endpoint)",
				ssh.FingerprintSHA256(pub), ssh.FingerprintSHA256(k.userCA), filepath.Join(k.dir, UserCAFile))
		}
		return nil
	}
	if err := atomicfile.Write(filepath.Join(k.dir, UserCAFile), ssh.MarshalAuthorizedKey(pub), 0o644); err != nil {
		return fmt.Errorf("pin SSH user CA: %w", err)
	}
	k.userCA = pub
	return nil
}

// Renew asks the relay (over mutual TLS) to certify the host key, and pins
// the user CA it names.
func (k *KeyStore) Renew(ctx context.Context, server string, tlsCfg *tls.Config) error {
	body, _ := json.Marshal(apiv1.AgentSSHRequest{PublicKey: string(ssh.MarshalAuthorizedKey(k.host.PublicKey()))})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, server+"/v1/agent/ssh-host-cert", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg, Proxy: http.ProxyFromEnvironment}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("renew SSH host certificate: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("renew SSH host certificate: relay answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var out apiv1.AgentSSH
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("renew SSH host certificate: %w", err)
	}
	if err := k.PinUserCA(out.UserCA); err != nil {
		return err
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(out.HostCertificate))
	if err != nil {
		return fmt.Errorf("host certificate from the relay: %w", err)
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok || cert.CertType != ssh.HostCert || !bytes.Equal(cert.Key.Marshal(), k.host.PublicKey().Marshal()) {
		return errors.New("host certificate from the relay does not certify this agent's host key")
	}
	if err := atomicfile.Write(filepath.Join(k.dir, HostCertFile), ssh.MarshalAuthorizedKey(cert), 0o644); err != nil {
		return fmt.Errorf("save host certificate: %w", err)
	}
	k.mu.Lock()
	k.cert = cert
	k.mu.Unlock()
	return nil
}

func pemEncode(w io.Writer, b *pem.Block) error { return pem.Encode(w, b) }
