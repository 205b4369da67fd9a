package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SSHCert is an SSH user certificate the relay issued (migration 00016).
type SSHCert struct {
	Serial      uint64
	KeyID       string // the technician, as in the certificate
	TokenID     string // the API token that asked for it
	IssuedAt    time.Time
	ValidBefore time.Time
	RevokedAt   time.Time // zero: not revoked
}

// maxTokensPerQuery bounds the IN list of one statement; longer lists are
// done in several.
const maxTokensPerQuery = 500

// RecordSSHCert stores a certificate the relay just issued, and deletes the
// rows of certificates that expired before c.IssuedAt (nobody can use them:
// agents refuse expired certificates on their own). Recording a serial
// twice fails (the serials are random: that is a 2^-64 event or a bug).
func (s *Store) RecordSSHCert(ctx context.Context, c SSHCert) error {
	if c.TokenID == "" || c.KeyID == "" || c.IssuedAt.IsZero() || c.ValidBefore.IsZero() {
		return errors.New("record ssh certificate: token ID, key ID, issue time and expiry are required")
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM ssh_certs WHERE valid_before < $1`, dbTime(c.IssuedAt)); err != nil {
			return fmt.Errorf("prune expired: %w", err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO ssh_certs (serial, key_id, token_id, issued_at, valid_before, revoked_at)
			VALUES ($1, $2, $3, $4, $5, $6)`,
			strconv.FormatUint(c.Serial, 10), c.KeyID, c.TokenID, dbTime(c.IssuedAt), dbTime(c.ValidBefore), dbTime(c.RevokedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("record ssh certificate %d: %w", c.Serial, err)
	}
	return nil
}

// RevokeSSHCertsOfTokens marks every certificate of the given API tokens
// that is still valid at now revoked (at now; one revoked earlier keeps its
// time), and returns all of their certificates that are revoked and still
// valid at now, oldest first: the list the agents must be told.
func (s *Store) RevokeSSHCertsOfTokens(ctx context.Context, tokenIDs []string, now time.Time) ([]SSHCert, error) {
	var out []SSHCert
	for len(tokenIDs) > 0 {
		n := min(len(tokenIDs), maxTokensPerQuery)
		batch := tokenIDs[:n]
		tokenIDs = tokenIDs[n:]
		update, ids := inList(batch, 3) // $1 revoked_at, $2 the expiry test
		sel, _ := inList(batch, 2)      // $1 the expiry test
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `UPDATE ssh_certs SET revoked_at = $1
				WHERE revoked_at IS NULL AND valid_before > $2 AND token_id IN (`+update+`)`,
				append([]any{dbTime(now), dbTime(now)}, ids...)...); err != nil {
				return fmt.Errorf("mark revoked: %w", err)
			}
			got, err := querySSHCerts(ctx, tx, `SELECT `+sshCertCols+` FROM ssh_certs
				WHERE revoked_at IS NOT NULL AND valid_before > $1 AND token_id IN (`+sel+`)
				ORDER BY issued_at`, append([]any{dbTime(now)}, ids...)...)
			if err != nil {
				return fmt.Errorf("list revoked: %w", err)
			}
			out = append(out, got...)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("revoke ssh certificates: %w", err)
		}
	}
	return stillValid(out, now), nil
}

// RevokedSSHCerts returns every revoked certificate still valid at now,
// oldest first: what a relay tells each agent when it connects.
func (s *Store) RevokedSSHCerts(ctx context.Context, now time.Time) ([]SSHCert, error) {
	out, err := querySSHCerts(ctx, s.db, `SELECT `+sshCertCols+` FROM ssh_certs
		WHERE revoked_at IS NOT NULL AND valid_before > $1 ORDER BY issued_at`, dbTime(now))
	if err != nil {
		return nil, fmt.Errorf("list revoked ssh certificates: %w", err)
	}
	return stillValid(out, now), nil
}

// SSHCertsOfToken returns the certificates issued to an API token that are
// still on record (not yet pruned), oldest first.
func (s *Store) SSHCertsOfToken(ctx context.Context, tokenID string) ([]SSHCert, error) {
	out, err := querySSHCerts(ctx, s.db, `SELECT `+sshCertCols+` FROM ssh_certs WHERE token_id = $1 ORDER BY issued_at`, tokenID)
	if err != nil {
		return nil, fmt.Errorf("list ssh certificates of token %s: %w", tokenID, err)
	}
	return out, nil
}

const sshCertCols = `serial, key_id, token_id, issued_at, valid_before, revoked_at`

func querySSHCerts(ctx context.Context, q querier, query string, args ...any) ([]SSHCert, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SSHCert
	for rows.Next() {
		var (
			c                           SSHCert
			serial                      string
			issued, validBefore, revoke sql.NullTime
		)
		if err := rows.Scan(&serial, &c.KeyID, &c.TokenID, &issued, &validBefore, &revoke); err != nil {
			return nil, err
		}
		if c.Serial, err = strconv.ParseUint(serial, 10, 64); err != nil {
			return nil, fmt.Errorf("ssh certificate serial %q: %w", serial, err)
		}
		c.IssuedAt, c.ValidBefore, c.RevokedAt = fromNull(issued), fromNull(validBefore), fromNull(revoke)
		out = append(out, c)
	}
	return out, rows.Err()
}

// stillValid keeps the certificates valid at now (the SQL filter already
// did; this is the store's rule that time comparisons are made in Go),
// oldest first, then by serial (the column is text: SQL would order it as
// text).
func stillValid(list []SSHCert, now time.Time) []SSHCert {
	slices.SortFunc(list, func(a, b SSHCert) int {
		if c := a.IssuedAt.Compare(b.IssuedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.Serial, b.Serial)
	})
	out := list[:0]
	for _, c := range list {
		if now.Before(c.ValidBefore) {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// inList returns "$first, $first+1, ..." for ids and the ids as arguments.
func inList(ids []string, first int) (string, []any) {
	var b strings.Builder
	args := make([]any, len(ids))
	for i, id := range ids {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(first+i))
		args[i] = id
	}
	return b.String(), args
}

// APITokenActive reports whether the API token with this ID exists and is
// neither revoked nor expired at now, and its user (if it has one) is
// neither deleted nor disabled. The relay asks again after it issued a
// certificate or registered a session, so that a revocation that raced
// with the request is not missed.
func (s *Store) APITokenActive(ctx context.Context, id string, now time.Time) (bool, error) {
	t, o, err := scanAPITokenJoin(s.db.QueryRowContext(ctx,
		`SELECT `+apiTokenJoinCols+` FROM `+apiTokenJoin+` WHERE t.id = $1`, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("check api token %s: %w", id, err)
	}
	return tokenUsable(t, o, now) == nil, nil
}
