package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/patchbay/patchbay/internal/atomicfile"
	"github.com/patchbay/patchbay/server/store"
	"github.com/patchbay/patchbay/server/tiersecrets"
)

// SecretsKeyFile is the key, in the data directory of a relay on SQLite,
// that seals the secrets its database keeps (alert routes' webhook HMAC
// keys and SMTP passwords, users' TOTP secrets: store/sealed.go). It is in
// the text form of a tier key (0600), made at the first start; backup
// keeps it and restore puts it back. On PostgreSQL the tier key
// (--tier-key-file) seals them, so that every relay of the tier reads them.
const SecretsKeyFile = "secrets.key"

// sealStoreSecrets gives st the key that seals its secrets, which seals the
// ones still plain and checks that every sealed one opens with it: a
// relay with the wrong key, or that lost its key, does not start.
func sealStoreSecrets(ctx context.Context, cfg Config, st *store.Store, tierKey *tiersecrets.Key) error {
	var (
		key       *tiersecrets.Key
		file, fix string
	)
	if st.Shared() {
		key, file = tierKey, "--tier-key-file "+cfg.TierKeyFile
		fix = "give this relay a copy of the tier key file the other relays of the tier were started with"
	} else {
		path := filepath.Join(cfg.DataDir, SecretsKeyFile)
		var err error
		if key, err = loadOrCreateSecretsKey(ctx, st, path); err != nil {
			return err
		}
		file = path
		fix = "restore " + path + " from a backup of this data directory (patchbay-server backup keeps it, restore puts it back), then start the relay again"
	}
	n, err := st.UseSealer(ctx, key, file, fix)
	if err != nil {
		return fmt.Errorf("start the relay: %w", err)
	}
	if n > 0 {
		cfg.Logger.Info().Int("secrets", n).Str("key_id", key.ID()).
			Msg("encrypted the alert routes' and users' TOTP secrets that were stored in plain text")
	}
	return nil
}

// loadOrCreateSecretsKey reads the secrets key at path, or makes it when
// missing, unless the database already holds secrets sealed with a key:
// then the key was lost, and a new one would never open them.
func loadOrCreateSecretsKey(ctx context.Context, st *store.Store, path string) (*tiersecrets.Key, error) {
	key, err := tiersecrets.ReadKeyFile(path)
	if err == nil {
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("secrets key %s (seals the alert routes' and TOTP secrets in the database): %w; "+
			"restore it from a backup of this data directory", path, err)
	}
	ids, err := st.SealedSecretKeys(ctx)
	if err != nil {
		return nil, err
	}
	if len(ids) > 0 {
		return nil, fmt.Errorf("the database holds alert route and TOTP secrets sealed with key %s, but its key file %s is missing: "+
			"restore %s from a backup of this data directory (patchbay-server restore puts it back), then start the relay again",
			strings.Join(ids, ", "), path, SecretsKeyFile)
	}
	text, err := tiersecrets.NewKey()
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteSecret(path, text); err != nil {
		return nil, fmt.Errorf("create the secrets key: %w", err)
	}
	return tiersecrets.ParseKey(text)
}
