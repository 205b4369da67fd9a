package server

import (
	"context"
	"fmt"

	"github.com/patchbay/patchbay/server/store"
	"github.com/patchbay/patchbay/server/tiersecrets"
)

// syncTierSecrets makes a relay on a shared database (PostgreSQL) use the
// tier's CA, SSH CAs and TLS ticket key, kept in the database sealed with
// the tier key (server/tiersecrets). On SQLite the data directory alone
// holds them, as before. It returns the tier key (nil on SQLite).
func syncTierSecrets(ctx context.Context, cfg Config, st *store.Store) (*tiersecrets.Key, error) {
	if !st.Shared() {
		if cfg.TierKeyFile != "" {
			return nil, fmt.Errorf("--tier-key-file is for a tier of relays on PostgreSQL (--db postgres://...); this relay's database is SQLite")
		}
		return nil, nil
	}
	if cfg.TierKeyFile == "" {
		return nil, fmt.Errorf("a relay on PostgreSQL shares its CA with the other relays of the tier through the database, encrypted " +
			"with the tier key: give --tier-key-file FILE (create it once with \"patchbay-server tier-key new FILE\" and give " +
			"every relay of the tier a copy)")
	}
	key, err := tiersecrets.ReadKeyFile(cfg.TierKeyFile)
	if err != nil {
		return nil, fmt.Errorf("--tier-key-file: %w", err)
	}
	return key, tiersecrets.Sync(ctx, tiersecrets.Config{Store: st, DataDir: cfg.DataDir, Key: key,
		Log: cfg.Logger.With().Str("component", "tiersecrets").Logger()})
}
