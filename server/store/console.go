package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ConsoleLink is a one-time login link of the web console. Only the hash of
// its secret is stored.
type ConsoleLink struct {
	Hash      string // hex SHA-256 of the link's secret
	TokenHash string // the API token whose identity the link logs in
	CreatedAt time.Time
	ExpiresAt time.Time
}

// ConsoleSession is a browser session of the web console. Only the hash of
// the cookie's secret is stored.
type ConsoleSession struct {
	Hash       string // hex SHA-256 of the cookie's secret
	ID         string // shown in the audit log; not a secret
	TokenHash  string // the API token whose identity and role the session carries
	Method     string // how it was opened: "link", "token"
	RemoteAddr string
	CreatedAt  time.Time
	LastUsedAt time.Time
	ExpiresAt  time.Time // absolute expiry; idle expiry is LastUsedAt + the relay's idle limit
}

// CreateConsoleLink stores a new one-time link and deletes links that have
// expired by its creation time.
func (s *Store) CreateConsoleLink(ctx context.Context, l ConsoleLink) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM console_links WHERE expires_at < $1`, dbTime(l.CreatedAt)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO console_links (hash, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
			l.Hash, l.TokenHash, dbTime(l.CreatedAt), dbTime(l.ExpiresAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("create console link: %w", err)
	}
	return nil
}

// ConsumeConsoleLink removes the link with this hash and returns it. A link
// is used at most once, also when two requests race: only the one whose
// DELETE removed the row gets it. It returns ErrNotFound for an unknown or
// already used link and for one expired at now (which is removed too).
func (s *Store) ConsumeConsoleLink(ctx context.Context, hash string, now time.Time) (ConsoleLink, error) {
	var (
		l       ConsoleLink
		expired bool
	)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var created, expires sql.NullTime
		err := tx.QueryRowContext(ctx, `SELECT hash, token_hash, created_at, expires_at FROM console_links WHERE hash = $1`, hash).
			Scan(&l.Hash, &l.TokenHash, &created, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		l.CreatedAt, l.ExpiresAt = fromNull(created), fromNull(expires)
		if err := mustAffect(tx.ExecContext(ctx, `DELETE FROM console_links WHERE hash = $1`, hash)); err != nil {
			return err
		}
		expired = !now.Before(l.ExpiresAt) // deleted all the same
		return nil
	})
	if err != nil {
		return ConsoleLink{}, fmt.Errorf("consume console link: %w", err)
	}
	if expired {
		return ConsoleLink{}, fmt.Errorf("consume console link: expired: %w", ErrNotFound)
	}
	return l, nil
}

const consoleSessionCols = `hash, id, token_hash, method, remote_addr, created_at, last_used_at, expires_at`

// CreateConsoleSession stores a new browser session and deletes sessions
// whose absolute expiry has passed by its creation time.
func (s *Store) CreateConsoleSession(ctx context.Context, cs ConsoleSession) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE expires_at < $1`, dbTime(cs.CreatedAt)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO console_sessions (`+consoleSessionCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			cs.Hash, cs.ID, cs.TokenHash, cs.Method, cs.RemoteAddr, dbTime(cs.CreatedAt), dbTime(cs.LastUsedAt), dbTime(cs.ExpiresAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("create console session: %w", err)
	}
	return nil
}

// GetConsoleSession returns the session whose cookie secret hashes to hash,
// or ErrNotFound. Expiry is the caller's to judge.
func (s *Store) GetConsoleSession(ctx context.Context, hash string) (ConsoleSession, error) {
	var (
		cs                     ConsoleSession
		created, used, expires sql.NullTime
	)
	err := s.db.QueryRowContext(ctx, `SELECT `+consoleSessionCols+` FROM console_sessions WHERE hash = $1`, hash).
		Scan(&cs.Hash, &cs.ID, &cs.TokenHash, &cs.Method, &cs.RemoteAddr, &created, &used, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return cs, fmt.Errorf("get console session: %w", ErrNotFound)
	}
	if err != nil {
		return cs, fmt.Errorf("get console session: %w", err)
	}
	cs.CreatedAt, cs.LastUsedAt, cs.ExpiresAt = fromNull(created), fromNull(used), fromNull(expires)
	return cs, nil
}

// TouchConsoleSession records that the session was used at t.
func (s *Store) TouchConsoleSession(ctx context.Context, hash string, t time.Time) error {
	if err := mustAffect(s.db.ExecContext(ctx, `UPDATE console_sessions SET last_used_at = $1 WHERE hash = $2`, dbTime(t), hash)); err != nil {
		return fmt.Errorf("touch console session: %w", err)
	}
	return nil
}

// DeleteConsoleSession ends a session; ErrNotFound if it did not exist.
func (s *Store) DeleteConsoleSession(ctx context.Context, hash string) error {
	if err := mustAffect(s.db.ExecContext(ctx, `DELETE FROM console_sessions WHERE hash = $1`, hash)); err != nil {
		return fmt.Errorf("delete console session: %w", err)
	}
	return nil
}
