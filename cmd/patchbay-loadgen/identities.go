package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/patchbay/patchbay/agent/identity"
	"github.com/patchbay/patchbay/certs"
)

// record is one simulated agent's identity, one JSON object per line of an
// identities file. The file holds private keys: it is written 0600.
type record struct {
	AgentID  string `json:"agent_id"`
	Hostname string `json:"hostname"`
	Cert     string `json:"cert"` // PEM
	Key      string `json:"key"`  // PEM, PKCS#8
	CA       string `json:"ca"`   // PEM
}

// newRecord serialises an enrolled identity.
func newRecord(id *identity.Identity) (record, error) {
	key, ok := id.Cert.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return record{}, errors.New("identity has no ECDSA key")
	}
	keyPEM, err := certs.MarshalKeyPEM(key)
	if err != nil {
		return record{}, err
	}
	return record{
		AgentID:  id.AgentID,
		Hostname: id.Hostname,
		Cert:     string(certs.CertPEM(id.Cert.Leaf.Raw)),
		Key:      string(keyPEM),
		CA:       string(certs.CertPEM(id.CACert.Raw)),
	}, nil
}

// identity rebuilds the in-memory identity of r for the relay at server.
func (r record) identity(server string) (*identity.Identity, error) {
	key, err := certs.ParseKeyPEM([]byte(r.Key))
	if err != nil {
		return nil, err
	}
	cert, err := certs.ParseCertPEM([]byte(r.Cert))
	if err != nil {
		return nil, err
	}
	ca, err := certs.ParseCertPEM([]byte(r.CA))
	if err != nil {
		return nil, err
	}
	id, err := identity.New("", server, nil, key, cert, ca, time.Time{})
	if err != nil {
		return nil, err
	}
	id.Hostname = r.Hostname
	return id, nil
}

// caFingerprint returns the fingerprint of the CA r was issued by.
func (r record) caFingerprint() (string, error) {
	ca, err := certs.ParseCertPEM([]byte(r.CA))
	if err != nil {
		return "", err
	}
	return certs.Fingerprint(ca), nil
}

// writeRecords writes recs to path (mode 0600) through a temporary file and
// a rename, so a crash never leaves a truncated identities file.
func writeRecords(path string, recs []record) error {
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".identities-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	enc := json.NewEncoder(w)
	for i := range recs {
		if err := enc.Encode(&recs[i]); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// readRecords reads count records starting at record from (count < 0: all
// records from there on). Lines before from are skipped without decoding.
func readRecords(path string, from, count int) ([]record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var out []record
	line := 0
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		i := line
		line++
		if i < from {
			continue
		}
		if count >= 0 && len(out) == count {
			break
		}
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s: record %d: %w", path, i, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if count >= 0 && len(out) < count {
		return nil, fmt.Errorf("%s holds %d identities; records %d to %d were asked for", path, line, from, from+count-1)
	}
	return out, nil
}
