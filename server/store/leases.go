package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// Job leases (migration 00022). In a tier of relays sharing this database,
// exactly one relay schedules a given open job at a time: the one named in
// the job's lease while the lease has not expired. Taking and renewing are
// one conditional UPDATE, so two relays can never both hold a lease: the
// database decides. A relay alone takes no lease.
//
// Leases are timed by the database's clock, never by the relays': the
// relays of a tier run on different machines whose clocks may disagree by
// minutes, and a relay whose clock ran ahead would take leases that have
// not expired (two relays scheduling one job), one whose clock lagged
// would write leases that expired already. Each take reads the database's
// time first (dbNow) and both sets and compares expiry against it.

// dbNow returns the database's time: PostgreSQL's now() (the server's
// clock, the same for every relay of the tier); SQLite's own time, which
// is this process's clock (SQLite runs in it and reads the same clock).
func (s *Store) dbNow(ctx context.Context) (time.Time, error) {
	if s.dialect != dialectPostgres {
		return time.Now().UTC(), nil
	}
	var now time.Time
	if err := s.db.QueryRowContext(ctx, `SELECT now()`).Scan(&now); err != nil {
		return time.Time{}, fmt.Errorf("read the database's clock: %w", err)
	}
	return now.UTC(), nil
}

// TakeJobLeases renews the leases node holds and takes those of open jobs
// that nobody holds or whose holder let them expire, all until ttl from
// now by the database's clock. It returns the IDs of the open jobs node
// holds now, in ID order.
func (s *Store) TakeJobLeases(ctx context.Context, node string, ttl time.Duration) ([]string, error) {
	now, err := s.dbNow(ctx)
	if err != nil {
		return nil, fmt.Errorf("take job leases: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `UPDATE jobs SET lease_node = $1, lease_expires = $2
		WHERE ended_at IS NULL AND (lease_node = $3 OR lease_node = '' OR lease_expires IS NULL OR lease_expires < $4)
		RETURNING id`, node, dbTime(now.Add(ttl)), node, dbTime(now))
	if err != nil {
		return nil, fmt.Errorf("take job leases: %w", err)
	}
	held, err := returnedIDs(rows, nil)
	if err != nil {
		return nil, fmt.Errorf("take job leases: %w", err)
	}
	out := make([]string, 0, len(held))
	for id := range held {
		out = append(out, id)
	}
	slices.Sort(out)
	return out, nil
}

// TakeJobLease takes (or renews) one open job's lease for node until ttl
// from now (the database's clock), unless another node holds it unexpired.
// It reports whether node holds it now.
func (s *Store) TakeJobLease(ctx context.Context, jobID, node string, ttl time.Duration) (bool, error) {
	now, err := s.dbNow(ctx)
	if err != nil {
		return false, fmt.Errorf("take the lease of job %s: %w", jobID, err)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE jobs SET lease_node = $1, lease_expires = $2
		WHERE id = $3 AND ended_at IS NULL AND (lease_node = $4 OR lease_node = '' OR lease_expires IS NULL OR lease_expires < $5)`,
		node, dbTime(now.Add(ttl)), jobID, node, dbTime(now))
	if err != nil {
		return false, fmt.Errorf("take the lease of job %s: %w", jobID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("take the lease of job %s: %w", jobID, err)
	}
	return n > 0, nil
}

// ReleaseJobLeases gives up the leases node holds (a relay shutting down),
// so that another relay takes its jobs at once instead of after the ttl.
func (s *Store) ReleaseJobLeases(ctx context.Context, node string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE jobs SET lease_node = '', lease_expires = NULL WHERE lease_node = $1`, node)
	if err != nil {
		return fmt.Errorf("release job leases: %w", err)
	}
	return nil
}

// JobLease returns who holds a job's lease and until when ("" and zero:
// nobody).
func (s *Store) JobLease(ctx context.Context, jobID string) (node string, expires time.Time, err error) {
	var exp sql.NullTime
	if err := s.db.QueryRowContext(ctx, `SELECT lease_node, lease_expires FROM jobs WHERE id = $1`, jobID).Scan(&node, &exp); err != nil {
		return "", time.Time{}, fmt.Errorf("lease of job %s: %w", jobID, err)
	}
	return node, fromNull(exp), nil
}
