package client

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/internal/atomicfile"
)

// ConfigEnv names the environment variable that overrides the config file's
// location.
const ConfigEnv = "PATCHBAY_CONFIG"

// ErrNotLoggedIn is returned by LoadConfig when no config file exists.
var ErrNotLoggedIn = errors.New("not logged in: run patchbay login --server URL --token TOKEN --ca-fingerprint sha256:<hex>")

// Config is what `patchbay login` saves: where the relay is, the API token,
// and the relay's CA certificate (pinned by fingerprint at login, trusted
// exclusively afterwards). It holds a secret and is stored with mode 0600.
type Config struct {
	Server        string `json:"server"`         // https://host[:port], no trailing slash
	Token         string `json:"token"`          // API token (secret)
	CAPEM         string `json:"ca_pem"`         // the relay's CA certificate, PEM
	CAFingerprint string `json:"ca_fingerprint"` // sha256:<hex> of CAPEM's DER
	Name          string `json:"name"`           // the token's name, as the relay reported at login
	Role          string `json:"role"`           // the token's role, as the relay reported at login
	User          string `json:"user,omitempty"` // the user logged in with a password; empty for a bare API token
}

// ConfigPath returns where the CLI config lives: $PATCHBAY_CONFIG if set,
// else os.UserConfigDir()/patchbay/config.json (on Linux
// $XDG_CONFIG_HOME/patchbay/config.json, by default ~/.config/...).
func ConfigPath() (string, error) {
	if p := os.Getenv(ConfigEnv); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("locate config: %w (set %s to a file path)", err, ConfigEnv)
	}
	return filepath.Join(dir, "patchbay", "config.json"), nil
}

// LoadConfig reads the config at ConfigPath. When the file does not exist
// the error is ErrNotLoggedIn and tells the user how to log in.
func LoadConfig() (Config, error) {
	path, err := ConfigPath()
	if err != nil {
		return Config{}, err
	}
	return LoadConfigFrom(path)
}

// LoadConfigFrom reads and checks the config file at path. On Unix a file
// that others may read is refused (like OpenSSH does for private keys): it
// holds an API token.
func LoadConfigFrom(path string) (Config, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return Config{}, ErrNotLoggedIn
	}
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	if runtime.GOOS != "windows" {
		if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return Config{}, fmt.Errorf("read config %s: file is accessible by others (mode %04o) and holds an API token: run chmod 600 %s",
				path, fi.Mode().Perm(), path)
		}
	}
	var cfg Config
	dec := json.NewDecoder(f)
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("read config %s: %w (run patchbay login again)", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("read config %s: %w (run patchbay login again)", path, err)
	}
	return cfg, nil
}

// SaveConfig writes cfg to ConfigPath atomically with mode 0600, creating
// its directory with mode 0700 when missing (an existing directory keeps its
// mode). It returns the path written.
func SaveConfig(cfg Config) (string, error) {
	path, err := ConfigPath()
	if err != nil {
		return "", err
	}
	return path, SaveConfigTo(path, cfg)
}

// SaveConfigTo is SaveConfig to an explicit path.
func SaveConfigTo(path string, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	data = append(data, '\n')
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	if err := atomicfile.WriteSecret(path, data); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	return nil
}

// RemoveConfig deletes the config file at ConfigPath (patchbay logout). A
// missing file is not an error. It returns the path.
func RemoveConfig() (string, error) {
	path, err := ConfigPath()
	if err != nil {
		return "", err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return path, fmt.Errorf("remove config: %w", err)
	}
	return path, nil
}

// Validate checks that cfg is usable: a valid https server URL, a CA
// certificate that parses, and (when set) a fingerprint that matches it.
func (cfg Config) Validate() error {
	if _, err := ParseServerURL(cfg.Server); err != nil {
		return err
	}
	if _, err := cfg.caCert(); err != nil {
		return err
	}
	return nil
}

// caCert parses CAPEM and checks it against CAFingerprint.
func (cfg Config) caCert() (*x509.Certificate, error) {
	if strings.TrimSpace(cfg.CAPEM) == "" {
		return nil, errors.New("config has no CA certificate")
	}
	cert, err := certs.ParseCertPEM([]byte(cfg.CAPEM))
	if err != nil {
		return nil, fmt.Errorf("config CA certificate: %w", err)
	}
	if cfg.CAFingerprint != "" {
		want, err := certs.ParseFingerprint(cfg.CAFingerprint)
		if err != nil {
			return nil, fmt.Errorf("config CA fingerprint: %w", err)
		}
		if got := certs.Fingerprint(cert); got != want {
			return nil, fmt.Errorf("config CA certificate has fingerprint %s, not the saved %s", got, want)
		}
	}
	return cert, nil
}

// ParseServerURL checks and normalises a relay address. "relay.example.com:8443"
// gets the https scheme; http is refused (the token would travel in clear);
// a trailing slash is removed; query and fragment are not allowed. A path is
// kept, for a relay behind a reverse proxy under a prefix.
func ParseServerURL(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("server URL is empty")
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("server URL %q: %w", s, err)
	}
	switch {
	case !strings.EqualFold(u.Scheme, "https"):
		return nil, fmt.Errorf("server URL %q: scheme must be https", s)
	case u.Hostname() == "":
		return nil, fmt.Errorf("server URL %q: no host", s)
	case u.User != nil:
		return nil, fmt.Errorf("server URL %q: user info is not allowed", s)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("server URL %q: query and fragment are not allowed", s)
	}
	u.Scheme = "https"
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}
