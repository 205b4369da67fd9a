package store

import (
	"context"
	"fmt"
	"time"
)

// ProbeWrite writes one small row (relay_health) to prove that the database
// still takes writes: it fails when the disk is full or the database is
// read-only, which reads alone would not show. relay names the row.
func (s *Store) ProbeWrite(ctx context.Context, relay string, now time.Time) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO relay_health (relay, checked_at) VALUES ($1, $2)
		 ON CONFLICT (relay) DO UPDATE SET checked_at = excluded.checked_at`, relay, dbTime(now))
	if err != nil {
		return fmt.Errorf("write to the database: %w", err)
	}
	return nil
}
