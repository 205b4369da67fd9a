package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// TierSecret is one secret a tier of relays shares, as stored: Value is
// opaque here (server/tiersecrets encrypts it; KeyID names the key).
type TierSecret struct {
	Name  string
	KeyID string
	Value string
}

// Shared reports whether the database can be shared by several relays
// (PostgreSQL); a SQLite store belongs to one relay.
func (s *Store) Shared() bool { return s.dialect == dialectPostgres }

// TierSecrets returns the tier's stored secrets, by name. When there are
// none, it calls seed and stores what seed returns, all under a lock that
// relays starting together take in turn: the first seeds, the others find
// its secrets (seeded reports which). seed runs inside the transaction and
// should be quick (key generation, file reads).
func (s *Store) TierSecrets(ctx context.Context, seed func() ([]TierSecret, error)) (secrets []TierSecret, seeded bool, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		secrets, seeded = nil, false
		if err := s.lockTx(ctx, tx, lockKeyTierSecrets); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT name, key_id, value FROM tier_secrets ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var ts TierSecret
			if err := rows.Scan(&ts.Name, &ts.KeyID, &ts.Value); err != nil {
				return err
			}
			secrets = append(secrets, ts)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(secrets) > 0 {
			return nil
		}
		secrets, err = seed()
		if err != nil {
			return err
		}
		now := dbTime(time.Now())
		for _, ts := range secrets {
			if _, err := tx.ExecContext(ctx, `INSERT INTO tier_secrets (name, key_id, value, created_at) VALUES ($1, $2, $3, $4)`,
				ts.Name, ts.KeyID, ts.Value, now); err != nil {
				return fmt.Errorf("store tier secret %s: %w", ts.Name, err)
			}
		}
		seeded = true
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("tier secrets: %w", err)
	}
	return secrets, seeded, nil
}
