package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Relays on one PostgreSQL database (issue 14). Relays that share a
// database must form a tier (--nats): a relay without NATS takes no job
// lease and schedules every open job itself, so beside a tier it would run
// the tier's jobs a second time. Each relay on PostgreSQL therefore holds,
// for as long as it runs, a session-level advisory lock on its own
// connection: shared by the relays of a tier, exclusive for a relay alone.
// PostgreSQL grants one or the other, never both, and drops a lock with
// the connection of a relay that died, so the rule needs no clean-up. A
// relay on SQLite has the database to itself and locks nothing.

// relayLockCheck is how often a held lock's connection is checked (and
// the lock taken again on a new one if PostgreSQL dropped it).
const relayLockCheck = 5 * time.Second

// ErrDatabaseInUse is LockRelay's refusal: relays of the other kind (a
// tier, or a relay alone) hold the database.
var ErrDatabaseInUse = errors.New("database in use by other relays")

// RelayLock is a relay's hold on the database (LockRelay).
//
// Ownership: LockRelay starts one goroutine, which keeps the lock; Close
// stops it, waits for it and releases the lock.
type RelayLock struct {
	s     *Store
	tier  bool
	onErr func(error)
	conn  *sql.Conn // the watcher's
	stop  chan struct{}
	done  chan struct{}
}

// LockRelay takes the database for a relay: shared with the other relays
// of its tier when tier is set, else for this relay alone. It fails with
// ErrDatabaseInUse, naming the fix, when relays of the other kind (or,
// for a relay alone, any other relay) hold it. onErr hears of a lock lost
// with its connection and not taken again (it is tried again every few
// seconds). On SQLite it locks nothing.
func (s *Store) LockRelay(ctx context.Context, tier bool, onErr func(error)) (*RelayLock, error) {
	l := &RelayLock{s: s, tier: tier, onErr: onErr}
	if s.dialect != dialectPostgres {
		return l, nil
	}
	conn, err := l.take(ctx)
	if err != nil {
		return nil, err
	}
	l.conn, l.stop, l.done = conn, make(chan struct{}), make(chan struct{})
	go l.watch()
	return l, nil
}

// take takes the lock on a connection of its own and returns it.
func (l *RelayLock) take(ctx context.Context) (*sql.Conn, error) {
	conn, err := l.s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock the database for this relay: %w", err)
	}
	q := `SELECT pg_try_advisory_lock($1)`
	if l.tier {
		q = `SELECT pg_try_advisory_lock_shared($1)`
	}
	var ok bool
	if err := conn.QueryRowContext(ctx, q, lockKeyRelays).Scan(&ok); err != nil {
		conn.Close()
		return nil, fmt.Errorf("lock the database for this relay: %w", err)
	}
	if ok {
		// PostgreSQL notices within about half a minute, not the
		// system's two hours, that a relay holding the lock is gone
		// without closing its connection (its machine crashed), and
		// frees the database for its restart.
		if _, err := conn.ExecContext(ctx, `SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3`); err != nil {
			conn.Close()
			return nil, fmt.Errorf("lock the database for this relay: %w", err)
		}
		return conn, nil
	}
	holders := l.holders(ctx, conn)
	conn.Close()
	if l.tier {
		return nil, fmt.Errorf("%w: a relay started without --nats uses this database%s and schedules every job alone, "+
			"beside which the tier would run jobs twice: restart that relay with --nats URL (this tier's NATS) and --tier-key-file, then start this one",
			ErrDatabaseInUse, holders)
	}
	return nil, fmt.Errorf("%w: other relays use this database%s; relays that share a database must form a tier, "+
		"or they would run the same jobs twice: start this one with --nats URL (the tier's NATS; README: Several relays), "+
		"or give it a database of its own", ErrDatabaseInUse, holders)
}

// holders names, for an error message, the clients holding the relays'
// lock (" (held from 10.0.0.5, 10.0.0.6)"), or "" when PostgreSQL does not
// tell this user.
func (l *RelayLock) holders(ctx context.Context, conn *sql.Conn) string {
	rows, err := conn.QueryContext(ctx, `SELECT COALESCE(host(a.client_addr), 'a local socket') FROM pg_locks k
		JOIN pg_stat_activity a ON a.pid = k.pid
		WHERE k.locktype = 'advisory' AND k.granted AND k.classid = 0 AND k.objid = $1 AND k.objsubid = 1 AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		ORDER BY 1`, lockKeyRelays)
	if err != nil {
		return ""
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h string
		if rows.Scan(&h) == nil {
			out = append(out, h)
		}
	}
	if len(out) == 0 {
		return ""
	}
	return " (held from " + strings.Join(out, ", ") + ")"
}

// watch checks the lock's connection and takes the lock again when
// PostgreSQL dropped it (a restart of the server), until Close.
func (l *RelayLock) watch() {
	defer close(l.done)
	t := time.NewTicker(relayLockCheck)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), relayLockCheck)
		if l.conn != nil {
			if err := l.conn.PingContext(ctx); err != nil {
				l.conn.Close()
				l.conn = nil
			}
		}
		if l.conn == nil {
			conn, err := l.take(ctx)
			if err != nil && l.onErr != nil {
				l.onErr(err)
			}
			l.conn = conn
		}
		cancel()
	}
}

// Close releases the lock (a relay shutting down).
func (l *RelayLock) Close() {
	if l == nil || l.stop == nil {
		return
	}
	close(l.stop)
	<-l.done
	if l.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _ = l.conn.ExecContext(ctx, `SELECT pg_advisory_unlock_all()`)
		cancel()
		l.conn.Close()
	}
}
