// Package tiersecrets shares a relay tier's secrets through its PostgreSQL
// database: the agent CA (ca.crt, ca.key), the SSH user and host CAs
// (ssh_user_ca, ssh_host_ca and their .pub) and the TLS session ticket key
// (tls-ticket.key), so that any relay of the tier enrolls agents, issues
// certificates and resumes agents' TLS sessions as the others do.
//
// The first relay to start stores the files of its data directory (made
// there first if missing: a relay set up alone, or by copying the files by
// hand, seeds the tier with the CA it has), under a lock that relays
// starting together take in turn (store.TierSecrets). Every other relay
// writes the tier's files into its own data directory, where the relay
// loads them as usual; a data directory that already holds another CA is
// refused rather than overwritten. Each secret is encrypted at rest with
// AES-256-GCM under the operator's tier key (key.go): a dump of the
// database alone does not give the CA.
package tiersecrets

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/internal/atomicfile"
	"github.com/patchbay/patchbay/server/store"
)

// TicketKeyFile is the TLS session ticket key in a relay's data directory:
// 32 random bytes, 0600.
const TicketKeyFile = "tls-ticket.key"

// file is one shared file of the data directory.
type file struct {
	name    string
	private bool // written 0600
	// replace: a different local copy is replaced, not refused (the ticket
	// key: another one only costs agents one full TLS handshake).
	replace bool
}

// files are the shared files, in the order they are checked and written.
var files = []file{
	{name: certs.CACertFile},
	{name: certs.CAKeyFile, private: true},
	{name: certs.SSHUserCAFile, private: true},
	{name: certs.SSHUserCAPubFile},
	{name: certs.SSHHostCAFile, private: true},
	{name: certs.SSHHostCAPubFile},
	{name: TicketKeyFile, private: true, replace: true},
}

// Store keeps the tier's secrets: *store.Store.
type Store interface {
	TierSecrets(ctx context.Context, seed func() ([]store.TierSecret, error)) ([]store.TierSecret, bool, error)
}

// Config is what Sync needs.
type Config struct {
	Store   Store
	DataDir string
	Key     *Key
	Log     zerolog.Logger
}

// Sync makes DataDir hold the tier's secrets: it stores this relay's (made
// first if missing) when the tier has none yet, else writes the tier's into
// DataDir. Call it before the relay loads its CA.
func Sync(ctx context.Context, cfg Config) error {
	seed := func() ([]store.TierSecret, error) { return seedFrom(cfg.DataDir, cfg.Key) }
	rows, seeded, err := cfg.Store.TierSecrets(ctx, seed)
	if err != nil {
		return err
	}
	if seeded {
		cfg.Log.Info().Str("tier_key_id", cfg.Key.ID()).Str("data", cfg.DataDir).
			Msg("stored this relay's CA, SSH CAs and TLS ticket key in the database, encrypted with the tier key: the other relays of the tier take them from there")
		return nil
	}
	plain, err := open(rows, cfg.Key)
	if err != nil {
		return err
	}
	wrote, err := install(cfg.DataDir, plain)
	if err != nil {
		return err
	}
	ev := cfg.Log.Info().Str("tier_key_id", cfg.Key.ID())
	if ca, err := certs.ParseCertPEM(plain[certs.CACertFile]); err == nil {
		ev = ev.Str("ca_fingerprint", certs.Fingerprint(ca))
	}
	if len(wrote) == 0 {
		ev.Msg("this relay's CA, SSH CAs and TLS ticket key are the tier's")
	} else {
		ev.Strs("written", wrote).Msg("took the tier's CA, SSH CAs and TLS ticket key from the database")
	}
	return nil
}

// seedFrom makes the shared files in dir if they are missing (as a relay
// alone does at its first start), then seals them.
func seedFrom(dir string, key *Key) ([]store.TierSecret, error) {
	if _, err := certs.LoadOrCreateCA(dir); err != nil {
		return nil, err
	}
	if _, err := certs.LoadOrCreateSSHCAs(dir); err != nil {
		return nil, err
	}
	if err := createTicketKey(filepath.Join(dir, TicketKeyFile)); err != nil {
		return nil, err
	}
	out := make([]store.TierSecret, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			return nil, fmt.Errorf("seed the tier's secrets: %w", err)
		}
		v, err := key.Seal(f.name, b)
		if err != nil {
			return nil, err
		}
		out = append(out, store.TierSecret{Name: f.name, KeyID: key.ID(), Value: v})
	}
	return out, nil
}

// createTicketKey writes a random session ticket key unless path exists.
func createTicketKey(path string) error {
	if _, err := os.Stat(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return err
	}
	return atomicfile.WriteSecret(path, k[:])
}

// open decrypts the stored secrets: every shared file must be there.
func open(rows []store.TierSecret, key *Key) (map[string][]byte, error) {
	plain := make(map[string][]byte, len(rows))
	for _, r := range rows {
		b, err := key.Open(r.Name, r.KeyID, r.Value)
		if err != nil {
			return nil, err
		}
		plain[r.Name] = b
	}
	var missing []string
	for _, f := range files {
		if _, ok := plain[f.name]; !ok {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the tier's secrets in the database lack %s: restore the tier_secrets table from a backup "+
			"(or delete its rows to have the next relay store its own, after which agents enrolled with the old CA must enroll again)",
			strings.Join(missing, ", "))
	}
	return plain, nil
}

// install writes the tier's files into dir. A CA file that exists there
// with other contents is refused, before anything is written: this relay
// was set up alone and has agents or technicians that trust its own CA.
func install(dir string, plain map[string][]byte) (wrote []string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	var todo []file
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		local, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			todo = append(todo, f)
		case err != nil:
			return nil, fmt.Errorf("tier secrets: %w", err)
		case bytes.Equal(local, plain[f.name]):
		case f.replace:
			todo = append(todo, f)
		default:
			return nil, fmt.Errorf("tier secrets: %s is not the tier's %s (this relay was set up with a CA of its own): "+
				"move the CA files (%s) and server.crt, server.key out of %s to join the tier with its CA; "+
				"agents enrolled with this relay's own CA must then enroll again", path, f.name, sharedNames(), dir)
		}
	}
	for _, f := range todo {
		path := filepath.Join(dir, f.name)
		if f.private {
			err = atomicfile.WriteSecret(path, plain[f.name])
		} else {
			err = atomicfile.Write(path, plain[f.name], 0o644)
		}
		if err != nil {
			return wrote, fmt.Errorf("tier secrets: %w", err)
		}
		wrote = append(wrote, f.name)
	}
	return wrote, nil
}

func sharedNames() string {
	names := make([]string, 0, len(files))
	for _, f := range files {
		names = append(names, f.name)
	}
	return strings.Join(names, ", ")
}
