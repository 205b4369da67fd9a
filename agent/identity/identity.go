// Package identity is the agent's enrolled identity and the data directory
// that holds it.
//
// Files in the data directory (created with mode 0700; on Windows with a
// protected DACL granting only SYSTEM and Administrators, see acl.go; Load
// refuses a private key that others can read, on Unix by its mode bits):
//
//	agent.key   the agent's private key, ECDSA P-256, PKCS#8 PEM     0600
//	agent.crt   its client certificate from the relay's CA (PEM)    0644
//	ca.crt      the relay's CA certificate, pinned at enrollment    0644
//	agent.json  relay URL, agent ID, own tags, CA fingerprint,      0600
//	            enrollment time
//
// agent.json is the marker of a complete enrollment: Save removes it before
// replacing the other files and writes it last, so an interrupted enrollment
// never leaves a directory that Load accepts with mismatched files. Load
// checks that the files belong together (key and certificate, certificate and
// CA, CA and its recorded fingerprint, certificate subject and agent ID), so a
// hand-edited or half-restored directory fails with a message naming the file
// instead of a confusing TLS error later.
package identity

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/internal/atomicfile"
	"github.com/patchbay/patchbay/internal/wire"
)

// File names inside the data directory.
const (
	KeyFile    = "agent.key"
	CertFile   = "agent.crt"
	CAFile     = "ca.crt"
	ConfigFile = "agent.json"
	// SSH files (see agent/session): the host key is made by the agent; the
	// user CA is pinned at enrollment; the host certificate comes from the relay.
	SSHHostKeyFile  = "ssh_host_ed25519_key"
	SSHHostCertFile = "ssh_host_ed25519_key-cert.pub"
	SSHUserCAFile   = "ssh_user_ca.pub"
)

// enrollHint is the next step for a directory without a usable identity.
const enrollHint = `run "patchbay-agent enroll --server URL --token TOKEN --ca-fingerprint SHA256:... --data %s" first`

// Identity is an enrolled agent: who it is, which relay it belongs to, and
// the credentials to prove it.
type Identity struct {
	Dir           string            // data directory the identity was loaded from or is saved to
	ServerURL     string            // relay base URL, https://host:port[/prefix], no trailing slash; Servers[0]
	Servers       []string          // every relay of the tier to try, in order (ServerURL first); see SetServers
	AgentID       string            // canonical UUID; the certificate's subject CN
	Tags          map[string]string // the agent's own tags (from enroll --tags), sent in every hello; never nil
	RelayTags     map[string]string // effective tags the relay reported at enrollment (own + token-scoped); informational
	Hostname      string            // host name to report instead of the machine's (enroll --hostname); "" means the live one
	CAFingerprint string            // "sha256:<hex>" of CACert
	EnrolledAt    time.Time
	Cert          tls.Certificate // client certificate; PrivateKey is *ecdsa.PrivateKey, Leaf is set
	CACert        *x509.Certificate
	CAPool        *x509.CertPool // contains CACert only
}

// config is the JSON form of agent.json.
type config struct {
	Server        string            `json:"server"`
	Servers       []string          `json:"servers,omitempty"` // every relay address, server first; absent with one
	AgentID       string            `json:"agent_id"`
	Tags          map[string]string `json:"tags"`
	RelayTags     map[string]string `json:"relay_tags,omitempty"`
	Hostname      string            `json:"hostname,omitempty"`
	CAFingerprint string            `json:"ca_fingerprint"`
	EnrolledAt    time.Time         `json:"enrolled_at"`
}

// New assembles an identity from its parts and checks that they belong
// together. It writes nothing; see Save.
func New(dir, serverURL string, tags map[string]string, key *ecdsa.PrivateKey, cert, ca *x509.Certificate, enrolledAt time.Time) (*Identity, error) {
	server, err := NormalizeServerURL(serverURL)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if key == nil || cert == nil || ca == nil {
		return nil, errors.New("identity: key, certificate and CA are all required")
	}
	if err := CheckTags(tags); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	agentID, err := certs.AgentID(cert)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	id := &Identity{
		Dir:           dir,
		ServerURL:     server,
		Servers:       []string{server},
		AgentID:       agentID,
		Tags:          cloneTags(tags),
		CAFingerprint: certs.Fingerprint(ca),
		EnrolledAt:    enrolledAt.UTC(),
		Cert:          tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert},
		CACert:        ca,
	}
	if err := id.check(); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	return id, nil
}

// check verifies that key, certificate and CA belong together.
func (id *Identity) check() error {
	cert, key := id.Cert.Leaf, id.Cert.PrivateKey.(*ecdsa.PrivateKey)
	if !key.PublicKey.Equal(cert.PublicKey) {
		return fmt.Errorf("%s does not belong to the key in %s", CertFile, KeyFile)
	}
	if err := cert.CheckSignatureFrom(id.CACert); err != nil {
		return fmt.Errorf("%s is not signed by the CA in %s: %w", CertFile, CAFile, err)
	}
	if !id.CACert.IsCA {
		return fmt.Errorf("%s is not a CA certificate", CAFile)
	}
	id.CAPool = x509.NewCertPool()
	id.CAPool.AddCert(id.CACert)
	return nil
}

// NormalizeServerURL checks a relay URL and returns its canonical form:
// scheme https (added when missing; http is refused because agent links are
// mutual TLS), no trailing slash, no query, fragment or user information. A
// path is kept, for relays published under a prefix behind a reverse proxy.
func NormalizeServerURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("server url is empty; want https://HOST:PORT")
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("server url %q: %w", s, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "https", "wss":
	case "http", "ws":
		return "", fmt.Errorf("server url %q: the relay only speaks HTTPS; use https://%s", s, u.Host)
	default:
		return "", fmt.Errorf("server url %q: scheme %q is not https", s, u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", fmt.Errorf("server url %q has no host; want https://HOST:PORT", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("server url %q: user information, query and fragment are not allowed", s)
	}
	u.Scheme = "https"
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// CheckTags validates the agent's own tags with the relay's rules.
func CheckTags(tags map[string]string) error { return wire.ValidTags(tags) }

func cloneTags(tags map[string]string) map[string]string {
	out := make(map[string]string, len(tags))
	for k, v := range tags {
		out[k] = v
	}
	return out
}

// Enrolled reports whether dir holds an enrollment (its agent.json exists),
// returning the path of that file. Files left by an interrupted enrollment
// without agent.json do not count.
func Enrolled(dir string) (string, bool, error) {
	p := filepath.Join(dir, ConfigFile)
	_, err := os.Stat(p)
	switch {
	case err == nil:
		return p, true, nil
	case errors.Is(err, fs.ErrNotExist):
		return p, false, nil
	default:
		return p, false, fmt.Errorf("check enrollment: %w", err)
	}
}

// Load reads and checks the identity in dir. Its errors say what to do: an
// empty directory needs `patchbay-agent enroll`; inconsistent files name the
// file and suggest enrolling again with --force.
func Load(dir string) (*Identity, error) {
	cfgPath := filepath.Join(dir, ConfigFile)
	raw, err := os.ReadFile(cfgPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("agent not enrolled: %s not found; "+enrollHint, cfgPath, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("load identity: %w", err)
	}
	broken := func(format string, args ...any) error {
		return fmt.Errorf("load identity: %s; restore the directory from backup or enroll again with --force", fmt.Sprintf(format, args...))
	}
	var cfg config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, broken("%s: %v", cfgPath, err)
	}
	server, err := NormalizeServerURL(cfg.Server)
	if err != nil {
		return nil, broken("%s: %v", cfgPath, err)
	}
	fp, err := certs.ParseFingerprint(cfg.CAFingerprint)
	if err != nil {
		return nil, broken("%s: ca_fingerprint: %v", cfgPath, err)
	}
	if err := CheckTags(cfg.Tags); err != nil {
		return nil, broken("%s: %v", cfgPath, err)
	}

	if err := checkPrivate(dir); err != nil {
		return nil, err
	}
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, broken("%v", err)
		}
		return b, nil
	}
	keyPEM, err := read(KeyFile)
	if err != nil {
		return nil, err
	}
	key, err := certs.ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, broken("%s: %v", filepath.Join(dir, KeyFile), err)
	}
	certPEM, err := read(CertFile)
	if err != nil {
		return nil, err
	}
	cert, err := certs.ParseCertPEM(certPEM)
	if err != nil {
		return nil, broken("%s: %v", filepath.Join(dir, CertFile), err)
	}
	caPEM, err := read(CAFile)
	if err != nil {
		return nil, err
	}
	ca, err := certs.ParseCertPEM(caPEM)
	if err != nil {
		return nil, broken("%s: %v", filepath.Join(dir, CAFile), err)
	}
	if got := certs.Fingerprint(ca); got != fp {
		return nil, broken("%s has fingerprint %s but %s pins %s", filepath.Join(dir, CAFile), got, cfgPath, fp)
	}
	id, err := New(dir, server, cfg.Tags, key, cert, ca, cfg.EnrolledAt)
	if err != nil {
		return nil, broken("%s", strings.TrimPrefix(err.Error(), "identity: "))
	}
	id.RelayTags, id.Hostname = cfg.RelayTags, cfg.Hostname
	if len(cfg.Servers) > 0 {
		if err := id.SetServers(cfg.Servers); err != nil {
			return nil, broken("%s: servers: %v", cfgPath, err)
		}
		if id.ServerURL != server {
			return nil, broken("%s: server %s is not the first of servers", cfgPath, server)
		}
	}
	if id.AgentID != cfg.AgentID {
		return nil, broken("%s is for agent %s but %s names agent %q", filepath.Join(dir, CertFile), id.AgentID, cfgPath, cfg.AgentID)
	}
	return id, nil
}

// Save writes the identity into id.Dir (created 0700 if missing), replacing
// any identity already there. agent.json is removed first and written last,
// so a crash part-way leaves a directory that Load reports as not enrolled
// rather than one with files from two enrollments.
func Save(id *Identity) error {
	if id.Dir == "" {
		return errors.New("save identity: no data directory")
	}
	key, ok := id.Cert.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || id.Cert.Leaf == nil || id.CACert == nil {
		return errors.New("save identity: incomplete identity (need an ECDSA key, a certificate and a CA)")
	}
	keyPEM, err := certs.MarshalKeyPEM(key)
	if err != nil {
		return fmt.Errorf("save identity: %w", err)
	}
	cfg, err := id.configJSON()
	if err != nil {
		return fmt.Errorf("save identity: %w", err)
	}
	if err := MakeDir(id.Dir); err != nil {
		return fmt.Errorf("save identity: %w", err)
	}
	cfgPath := filepath.Join(id.Dir, ConfigFile)
	if err := os.Remove(cfgPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("save identity: remove the old %s: %w", cfgPath, err)
	}
	if err := atomicfile.WriteSecret(filepath.Join(id.Dir, KeyFile), keyPEM); err != nil {
		return fmt.Errorf("save identity: %w", err)
	}
	if err := protectFile(filepath.Join(id.Dir, KeyFile)); err != nil {
		return fmt.Errorf("save identity: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(id.Dir, CertFile), certs.CertPEM(id.Cert.Leaf.Raw), 0o644); err != nil {
		return fmt.Errorf("save identity: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(id.Dir, CAFile), certs.CertPEM(id.CACert.Raw), 0o644); err != nil {
		return fmt.Errorf("save identity: %w", err)
	}
	if err := atomicfile.WriteSecret(cfgPath, append(cfg, '\n')); err != nil {
		return fmt.Errorf("save identity: %w", err)
	}
	return nil
}

// configJSON is the content of agent.json.
func (id *Identity) configJSON() ([]byte, error) {
	c := config{
		Server:        id.ServerURL,
		AgentID:       id.AgentID,
		Tags:          cloneTags(id.Tags),
		RelayTags:     id.RelayTags,
		Hostname:      id.Hostname,
		CAFingerprint: id.CAFingerprint,
		EnrolledAt:    id.EnrolledAt.UTC(),
	}
	if len(id.Servers) > 1 {
		c.Servers = id.Servers
	}
	return json.MarshalIndent(c, "", "  ")
}

// SetServers sets the relay addresses the agent tries, in order: the
// relays of one tier, which share the CA the identity pins. Each is
// normalised (NormalizeServerURL); duplicates are dropped.
func (id *Identity) SetServers(urls []string) error {
	var out []string
	for _, u := range urls {
		n, err := NormalizeServerURL(u)
		if err != nil {
			return err
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return errors.New("no relay address; want https://HOST:PORT")
	}
	id.Servers, id.ServerURL = out, out[0]
	return nil
}

// SaveServers rewrites agent.json in id.Dir with id's relay addresses (the
// other files do not change).
func SaveServers(id *Identity) error {
	cfg, err := id.configJSON()
	if err != nil {
		return fmt.Errorf("save relay addresses: %w", err)
	}
	if err := atomicfile.WriteSecret(filepath.Join(id.Dir, ConfigFile), append(cfg, '\n')); err != nil {
		return fmt.Errorf("save relay addresses: %w", err)
	}
	return nil
}

// MakeDir creates dir with mode 0700 if it does not exist (on Windows: gives
// it a protected ACL for SYSTEM and Administrators only) and checks that a
// file can be created in it, so enrollment fails before it spends a token
// rather than after.
func MakeDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	if err := protectDir(dir); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("data directory %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// Host returns the host name or IP address of the relay URL, without
// brackets or port: the name the relay's certificate must cover.
func (id *Identity) Host() string { return hostOf(id.ServerURL) }

func hostOf(server string) string {
	u, err := url.Parse(server)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// TLSConfig returns the client TLS configuration for agent links: the
// agent's certificate, the pinned CA as the only root, and the relay's host
// as the server name. Build it once and reuse it for every reconnect.
//
// The config keeps a one-entry session cache: a reconnect (also to a relay
// that restarted with the same data directory) resumes the TLS session and
// skips both certificate signatures; TLS 1.3 resumption still runs a fresh
// key exchange, and the relay still checks revocation.
func (id *Identity) TLSConfig() *tls.Config { return id.TLSConfigFor(id.ServerURL) }

// TLSConfigFor is TLSConfig for another relay of the tier (one of
// Servers): the same certificate and pinned CA, that relay's host name.
func (id *Identity) TLSConfigFor(server string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		Certificates:       []tls.Certificate{id.Cert},
		RootCAs:            id.CAPool,
		ServerName:         hostOf(server),
		ClientSessionCache: tls.NewLRUClientSessionCache(1),
	}
}
