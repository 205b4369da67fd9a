package tiersecrets

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/internal/pgtest"
	"github.com/patchbay/patchbay/server/store"
)

var pg = pgtest.New()

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Close()
	os.Exit(code)
}

func openStore(t *testing.T, url string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func sync1(t *testing.T, st *store.Store, dir string, key *Key) error {
	t.Helper()
	return Sync(context.Background(), Config{Store: st, DataDir: dir, Key: key, Log: zerolog.Nop()})
}

func sameFiles(t *testing.T, a, b string) {
	t.Helper()
	for _, f := range files {
		x, err := os.ReadFile(filepath.Join(a, f.name))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(b, f.name))
		if err != nil {
			t.Fatalf("%s was not written: %v", f.name, err)
		}
		if !bytes.Equal(x, y) {
			t.Fatalf("%s differs between %s and %s", f.name, a, b)
		}
		fi, _ := os.Stat(filepath.Join(b, f.name))
		if f.private && fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v, want 0600", f.name, fi.Mode().Perm())
		}
	}
}

// TestSyncRelaysStartingTogether: relays on empty data directories that
// start at once end up with one CA, which the database holds encrypted.
func TestSyncRelaysStartingTogether(t *testing.T) {
	url := pg.NewDB(t)
	key := newKey(t)
	const relays = 3
	dirs := make([]string, relays)
	errs := make([]error, relays)
	var wg sync.WaitGroup
	for i := range dirs {
		dirs[i] = filepath.Join(t.TempDir(), "relay")
		st := openStore(t, url)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = sync1(t, st, dirs[i], key)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("relay %d: %v", i, err)
		}
	}
	for _, d := range dirs[1:] {
		sameFiles(t, dirs[0], d)
	}
	ca, err := certs.LoadOrCreateCA(dirs[2])
	if err != nil {
		t.Fatal(err)
	}
	// The database holds no key in the clear.
	rows, _, err := openStore(t, url).TierSecrets(context.Background(), func() ([]store.TierSecret, error) {
		t.Fatal("seeded again")
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	caKey, _ := os.ReadFile(filepath.Join(dirs[0], certs.CAKeyFile))
	for _, r := range rows {
		if strings.Contains(r.Value, "PRIVATE") || strings.Contains(r.Value, string(caKey[30:60])) || r.KeyID != key.ID() {
			t.Fatalf("row %s is not sealed with the tier key: %+v", r.Name, r)
		}
	}
	t.Logf("tier CA %s", ca.Fingerprint())
}

// TestSyncSeedsFromLocalFiles: a relay set up alone (its CA in its data
// directory) seeds an empty tier with that CA; a relay with a CA of its own
// joining a tier is refused; a wrong key is refused; a relay with another
// ticket key gets the tier's.
func TestSyncSeedsFromLocalFiles(t *testing.T) {
	url := pg.NewDB(t)
	key := newKey(t)
	old := t.TempDir()
	ca, err := certs.LoadOrCreateCA(old)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := certs.LoadOrCreateSSHCAs(old); err != nil {
		t.Fatal(err)
	}
	if err := sync1(t, openStore(t, url), old, key); err != nil {
		t.Fatal(err)
	}
	if again, err := certs.LoadOrCreateCA(old); err != nil || again.Fingerprint() != ca.Fingerprint() {
		t.Fatalf("seeding changed the relay's own CA: %v", err)
	}

	b := t.TempDir()
	if err := createTicketKey(filepath.Join(b, TicketKeyFile)); err != nil {
		t.Fatal(err)
	}
	if err := sync1(t, openStore(t, url), b, key); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, old, b)
	if got, _ := certs.LoadOrCreateCA(b); got.Fingerprint() != ca.Fingerprint() {
		t.Fatalf("relay B has CA %s, want the seeded %s", got.Fingerprint(), ca.Fingerprint())
	}

	// A relay with its own CA is refused, and nothing in its directory changes.
	own := t.TempDir()
	ownCA, _ := certs.LoadOrCreateCA(own)
	err = sync1(t, openStore(t, url), own, key)
	if err == nil || !strings.Contains(err.Error(), "CA of its own") {
		t.Fatalf("a relay with its own CA: %v", err)
	}
	if got, _ := certs.LoadOrCreateCA(own); got.Fingerprint() != ownCA.Fingerprint() {
		t.Fatal("a refused relay's CA was replaced")
	}
	if _, err := os.Stat(filepath.Join(own, certs.SSHUserCAFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused relay got files written: %v", err)
	}

	// Another tier key is refused by name.
	err = sync1(t, openStore(t, url), t.TempDir(), newKey(t))
	if !errors.Is(err, ErrWrongKey) {
		t.Fatalf("another tier key: %v, want ErrWrongKey", err)
	}
}
