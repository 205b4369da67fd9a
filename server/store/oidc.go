package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// OIDCIdentity links a provider's identity (issuer, subject) to the user
// its first sign-in created.
type OIDCIdentity struct {
	Issuer, Subject, UserID string
	Email                   string   // as seen at the last sign-in
	Groups                  []string // as seen at the last sign-in
	CreatedAt, LastLoginAt  time.Time
}

// OIDCUser returns the user linked to the provider identity (issuer,
// subject), or ErrNotFound when there is none (never signed in, or the user
// was deleted since: the next sign-in then creates a new one).
func (s *Store) OIDCUser(ctx context.Context, issuer, subject string) (User, error) {
	u, err := s.scanUser(s.db.QueryRowContext(ctx, `SELECT `+prefixCols("u.", userCols)+`
		FROM oidc_identities i JOIN users u ON u.id = i.user_id WHERE i.issuer = $1 AND i.subject = $2`, issuer, subject))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("get oidc user: %w", err)
	}
	return u, nil
}

// CreateOIDCUser stores a new user (u.Source should be SourceOIDC, with no
// password) linked to id, in one transaction; a stale link of id (to a
// deleted user) is replaced. ErrUserExists when the name is taken.
func (s *Store) CreateOIDCUser(ctx context.Context, u User, id OIDCIdentity) error {
	groups, err := encodeList(id.Groups)
	if err != nil {
		return fmt.Errorf("create oidc user: %w", err)
	}
	u.RecoveryHashes = nil
	return s.createUser(ctx, "create oidc user", u, func(tx *sql.Tx, u User) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM oidc_identities WHERE issuer = $1 AND subject = $2`, id.Issuer, id.Subject); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO oidc_identities (issuer, subject, user_id, email, groups_seen, created_at, last_login_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, id.Issuer, id.Subject, u.ID, id.Email, groups, dbTime(u.CreatedAt), dbTime(u.CreatedAt))
		return err
	})
}

// RecordOIDCLogin stores the email and groups seen at a sign-in of the
// identity (issuer, subject).
func (s *Store) RecordOIDCLogin(ctx context.Context, issuer, subject, email string, groups []string, now time.Time) error {
	enc, err := encodeList(groups)
	if err == nil {
		err = mustAffect(s.db.ExecContext(ctx, `UPDATE oidc_identities SET email = $1, groups_seen = $2, last_login_at = $3
			WHERE issuer = $4 AND subject = $5`, email, enc, dbTime(now), issuer, subject))
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("record oidc login: %w", err)
	}
	return err
}

// SetUserRole changes a user's role. Their tokens never outrank it
// (LookupAPIToken), so a lower role applies to live sessions at once.
func (s *Store) SetUserRole(ctx context.Context, id, role string, now time.Time) error {
	return s.updateUser(ctx, "set user role", id, now, `role = $1`, role)
}

// RevokeUserTokens revokes every token the user owns (sessions and API
// tokens for automation) and returns the IDs it revoked, for the relay to
// end what they opened (api.EndAccess).
func (s *Store) RevokeUserTokens(ctx context.Context, userID string, now time.Time) ([]string, error) {
	ids, err := s.revokeTokens(ctx, `user_id = $1`, userID)(now)
	if err != nil {
		return nil, fmt.Errorf("revoke user tokens: %w", err)
	}
	return ids, nil
}

// revokeTokens returns a function that, in one transaction, revokes the
// unrevoked API tokens matching where (with args from $1) and returns their
// IDs.
func (s *Store) revokeTokens(ctx context.Context, where string, args ...any) func(now time.Time) ([]string, error) {
	return func(now time.Time) ([]string, error) {
		var ids []string
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, `SELECT id FROM api_tokens WHERE revoked_at IS NULL AND `+where+` ORDER BY id`, args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				ids = append(ids, id)
			}
			rows.Close()
			if err := rows.Err(); err != nil || len(ids) == 0 {
				return err
			}
			list, largs := inList(ids, 2)
			_, err = tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id IN (`+list+`)`,
				append([]any{dbTime(now)}, largs...)...)
			return err
		})
		return ids, err
	}
}

// UserTokenIDs returns the IDs of the user's tokens that are not revoked
// (a disabled user's tokens are refused without being revoked: enabling
// the user again brings them back).
func (s *Store) UserTokenIDs(ctx context.Context, userID string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM api_tokens WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list user tokens: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list user tokens: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list user tokens: %w", err)
	}
	return ids, nil
}

// prefixCols qualifies each column of a comma-separated list with prefix.
func prefixCols(prefix, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = prefix + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// SSOHandoff is a one-time code that hands a CLI sign-in from the browser
// back to the CLI. Only the code's hash is stored.
type SSOHandoff struct {
	Hash      string // hex SHA-256 of the code
	UserID    string
	Challenge string            // base64url SHA-256 of the CLI's verifier (S256)
	Detail    map[string]string // what the sign-in saw, for the login's audit record
	CreatedAt time.Time
	ExpiresAt time.Time
}

// CreateSSOHandoff stores a handoff and deletes the expired ones.
func (s *Store) CreateSSOHandoff(ctx context.Context, h SSOHandoff) error {
	detail, err := encodeMap(h.Detail)
	if err != nil {
		return fmt.Errorf("create sso handoff: %w", err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sso_handoffs WHERE expires_at < $1`, dbTime(h.CreatedAt)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sso_handoffs (hash, user_id, challenge, detail, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, h.Hash, h.UserID, h.Challenge, detail, dbTime(h.CreatedAt), dbTime(h.ExpiresAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("create sso handoff: %w", err)
	}
	return nil
}

// ConsumeSSOHandoff removes the handoff with this hash and returns it: a
// code works at most once, also when two requests race. ErrNotFound for an
// unknown, used or (at now) expired code.
func (s *Store) ConsumeSSOHandoff(ctx context.Context, hash string, now time.Time) (SSOHandoff, error) {
	var (
		h       SSOHandoff
		detail  string
		expired bool
	)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var created, expires sql.NullTime
		err := tx.QueryRowContext(ctx, `SELECT hash, user_id, challenge, detail, created_at, expires_at FROM sso_handoffs WHERE hash = $1`, hash).
			Scan(&h.Hash, &h.UserID, &h.Challenge, &detail, &created, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		h.CreatedAt, h.ExpiresAt = fromNull(created), fromNull(expires)
		if err := mustAffect(tx.ExecContext(ctx, `DELETE FROM sso_handoffs WHERE hash = $1`, hash)); err != nil {
			return err
		}
		expired = !now.Before(h.ExpiresAt)
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return SSOHandoff{}, err
		}
		return SSOHandoff{}, fmt.Errorf("consume sso handoff: %w", err)
	}
	if expired {
		return SSOHandoff{}, fmt.Errorf("consume sso handoff: expired: %w", ErrNotFound)
	}
	if h.Detail, err = decodeMap(detail); err != nil {
		return SSOHandoff{}, fmt.Errorf("consume sso handoff: %w", err)
	}
	return h, nil
}
