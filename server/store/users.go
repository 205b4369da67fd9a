package store

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// User is a person who logs in with a password (and a TOTP code), or, later,
// through single sign-on. Credentials are stored as the account package makes
// them: an argon2id PHC string, a base32 TOTP secret, SHA-256 hashes of the
// recovery codes. The store only keeps them; it checks nothing.
type User struct {
	ID, Name, Role string
	PasswordHash   string
	TOTPSecret     string // "" = no second factor
	TOTPPending    string // a secret being enrolled, until its first code confirms it
	TOTPLastStep   int64  // the last accepted TOTP time step
	RecoveryHashes []string
	Source         string // SourceLocal or SourceOIDC
	CreatedAt      time.Time
	UpdatedAt      time.Time
	DisabledAt     time.Time // zero = enabled
	// Sites are the user's grants (site IDs, or AllSites), written by
	// CreateUser (user_sites); read them with UserSites.
	Sites []string
}

// Sources of users.
const (
	SourceLocal = "local"
	SourceOIDC  = "oidc"
)

// Errors of the user functions.
var (
	ErrUserExists   = errors.New("a user with this name exists")
	ErrTOTPReplayed = errors.New("totp time step already used")
)

const userCols = `id, name, role, password_hash, totp_secret, totp_pending, totp_last_step, recovery_hashes,
	source, created_at, updated_at, disabled_at`

// scanUser reads a row of userCols, opening its TOTP secrets (sealed.go).
func (s *Store) scanUser(sc scanner) (User, error) {
	var (
		u                          User
		recovery                   string
		created, updated, disabled sql.NullTime
	)
	if err := sc.Scan(&u.ID, &u.Name, &u.Role, &u.PasswordHash, &u.TOTPSecret, &u.TOTPPending, &u.TOTPLastStep,
		&recovery, &u.Source, &created, &updated, &disabled); err != nil {
		return User{}, err
	}
	var err error
	if u.RecoveryHashes, err = decodeList(recovery); err != nil {
		return User{}, fmt.Errorf("user %s: recovery codes: %w", u.ID, err)
	}
	if u.TOTPSecret, err = s.open(totpSecret, u.ID, u.TOTPSecret); err != nil {
		return User{}, err
	}
	if u.TOTPPending, err = s.open(totpPending, u.ID, u.TOTPPending); err != nil {
		return User{}, err
	}
	u.CreatedAt, u.UpdatedAt, u.DisabledAt = fromNull(created), fromNull(updated), fromNull(disabled)
	return u, nil
}

// CreateUser stores a new user. u.ID must be set (see NewID) and u.Name is
// stored as given (the API lower-cases names). It returns ErrUserExists when
// the name is taken. Zero CreatedAt and UpdatedAt are set to now; an empty
// Source is SourceLocal.
func (s *Store) CreateUser(ctx context.Context, u User) error {
	return s.createUser(ctx, "create user", u, nil)
}

// createUser inserts u, then runs also (when set) in the same transaction.
func (s *Store) createUser(ctx context.Context, step string, u User, also func(tx *sql.Tx, u User) error) error {
	if u.ID == "" {
		return errors.New(step + ": empty id (use store.NewID)")
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = time.Now()
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	if u.Source == "" {
		u.Source = SourceLocal
	}
	recovery, err := encodeList(u.RecoveryHashes)
	if err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	secret, err := s.seal(totpSecret, u.ID, u.TOTPSecret)
	if err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	pending, err := s.seal(totpPending, u.ID, u.TOTPPending)
	if err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE name = $1`, u.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrUserExists
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (`+userCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			u.ID, u.Name, u.Role, u.PasswordHash, secret, pending, u.TOTPLastStep, recovery,
			u.Source, dbTime(u.CreatedAt), dbTime(u.UpdatedAt), dbTime(u.DisabledAt)); isUniqueViolation(err) {
			return ErrUserExists // created by a concurrent request since the count (PostgreSQL)
		} else if err != nil {
			return err
		}
		if err := setUserSites(ctx, tx, u.ID, u.Sites); err != nil {
			return err
		}
		if also != nil {
			return also(tx, u)
		}
		return nil
	})
	switch {
	case errors.Is(err, ErrUserExists):
		return err
	case err != nil:
		return fmt.Errorf("%s %s: %w", step, u.Name, err)
	}
	return nil
}

// GetUser returns the user with this ID, or ErrNotFound.
func (s *Store) GetUser(ctx context.Context, id string) (User, error) {
	return s.getUser(ctx, `id`, id)
}

// GetUserByName returns the user with this exact name, or ErrNotFound.
func (s *Store) GetUserByName(ctx context.Context, name string) (User, error) {
	return s.getUser(ctx, `name`, name)
}

func (s *Store) getUser(ctx context.Context, col, v string) (User, error) {
	u, err := s.scanUser(s.db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE `+col+` = $1`, v))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("get user: %w", err)
	}
	return u, nil
}

// FindUsers returns the users ref names: the one with that name or ID if
// there is one, else those whose ID starts with ref, at most limit, by ID.
func (s *Store) FindUsers(ctx context.Context, ref string, limit int) ([]User, error) {
	if ref == "" {
		return nil, nil
	}
	for _, get := range []func(context.Context, string) (User, error){s.GetUserByName, s.GetUser} {
		u, err := get(ctx, ref)
		if err == nil {
			return []User{u}, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("find user %q: %w", ref, err)
		}
	}
	if lower := strings.ToLower(ref); lower != ref {
		if u, err := s.GetUserByName(ctx, lower); err == nil {
			return []User{u}, nil
		}
	}
	where, args, ok := prefixWhere(ref, 2)
	if !ok {
		return nil, nil
	}
	return s.queryUsers(ctx, `SELECT `+userCols+` FROM users WHERE `+where+` ORDER BY id LIMIT $1`,
		append([]any{limit}, args...)...)
}

// ListUsers returns every user, by name.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	users, err := s.queryUsers(ctx, `SELECT `+userCols+` FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

func (s *Store) queryUsers(ctx context.Context, q string, args ...any) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := s.scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// updateUser runs one UPDATE of users (set, with its parameters from $1)
// WHERE id = the last parameter, setting updated_at; ErrNotFound when no
// such user.
func (s *Store) updateUser(ctx context.Context, what, id string, now time.Time, set string, args ...any) error {
	n := len(args)
	q := fmt.Sprintf(`UPDATE users SET %s, updated_at = $%d WHERE id = $%d`, set, n+1, n+2)
	err := mustAffect(s.db.ExecContext(ctx, q, append(args, dbTime(now), id)...))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return err
}

// SetUserPassword stores a new password hash.
func (s *Store) SetUserPassword(ctx context.Context, id, hash string, now time.Time) error {
	return s.updateUser(ctx, "set user password", id, now, `password_hash = $1`, hash)
}

// SetUserDisabled disables the user at now (disabled) or enables them. A
// disabled user's tokens stop working at once (LookupAPIToken).
func (s *Store) SetUserDisabled(ctx context.Context, id string, disabled bool, now time.Time) error {
	var at any
	if disabled {
		at = dbTime(now)
	}
	return s.updateUser(ctx, "disable user", id, now, `disabled_at = $1`, at)
}

// SetUserTOTPPending stores a secret being enrolled (until ConfirmUserTOTP).
func (s *Store) SetUserTOTPPending(ctx context.Context, id, secret string, now time.Time) error {
	sealed, err := s.seal(totpPending, id, secret)
	if err != nil {
		return fmt.Errorf("start totp enrolment: %w", err)
	}
	return s.updateUser(ctx, "start totp enrolment", id, now, `totp_pending = $1`, sealed)
}

// ConfirmUserTOTP makes the pending secret the user's second factor, with
// step (the confirming code's) as the last accepted step and the recovery
// codes' hashes. It returns ErrNotFound unless the pending secret is still
// pending (a concurrent confirmation or a new enrolment changed it).
func (s *Store) ConfirmUserTOTP(ctx context.Context, id, pending string, step int64, recovery []string, now time.Time) error {
	rec, err := encodeList(recovery)
	if err != nil {
		return fmt.Errorf("confirm totp: %w", err)
	}
	// The stored pending secret is sealed (sealed.go): compare it opened,
	// then replace it only if it is still the value read.
	stored, err := rawSecret(ctx, s.db, totpPending, id)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("confirm totp: %w", err)
	}
	got, err := s.open(totpPending, id, stored)
	if err != nil {
		return fmt.Errorf("confirm totp: %w", err)
	}
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(pending)) != 1 {
		return ErrNotFound
	}
	secret, err := s.seal(totpSecret, id, got)
	if err != nil {
		return fmt.Errorf("confirm totp: %w", err)
	}
	err = mustAffect(s.db.ExecContext(ctx, `UPDATE users SET totp_secret = $1, totp_pending = '',
		totp_last_step = $2, recovery_hashes = $3, updated_at = $4
		WHERE id = $5 AND totp_pending = $6`, secret, step, rec, dbTime(now), id, stored))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("confirm totp: %w", err)
	}
	return err
}

// ClearUserTOTP removes the user's second factor, any pending one and the
// recovery codes. The last accepted step stays: a code seen before is never
// accepted again, even after a new enrolment with the same secret.
func (s *Store) ClearUserTOTP(ctx context.Context, id string, now time.Time) error {
	return s.updateUser(ctx, "clear totp", id, now, `totp_secret = '', totp_pending = '', recovery_hashes = '[]'`)
}

// AcceptTOTPStep records step as the user's last accepted TOTP step if it is
// later than the stored one, atomically: of two logins with the same code,
// only one gets nil; the other gets ErrTOTPReplayed.
func (s *Store) AcceptTOTPStep(ctx context.Context, id string, step int64) error {
	err := mustAffect(s.db.ExecContext(ctx,
		`UPDATE users SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $3`, step, id, step))
	if errors.Is(err, ErrNotFound) {
		return ErrTOTPReplayed
	}
	if err != nil {
		return fmt.Errorf("accept totp step: %w", err)
	}
	return nil
}

// UseRecoveryCode removes the recovery code with this hash from the user's
// list, in one transaction: it returns nil once per code and ErrNotFound
// for a code not (or no longer) in the list.
func (s *Store) UseRecoveryCode(ctx context.Context, id, hash string, now time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var rec string
		if err := tx.QueryRowContext(ctx, `SELECT recovery_hashes FROM users WHERE id = $1`, id).Scan(&rec); errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		list, err := decodeList(rec)
		if err != nil {
			return err
		}
		kept := make([]string, 0, len(list))
		for _, h := range list {
			if h != hash {
				kept = append(kept, h)
			}
		}
		if len(kept) == len(list) {
			return ErrNotFound
		}
		enc, err := encodeList(kept)
		if err != nil {
			return err
		}
		return mustAffect(tx.ExecContext(ctx, `UPDATE users SET recovery_hashes = $1, updated_at = $2 WHERE id = $3 AND recovery_hashes = $4`,
			enc, dbTime(now), id, rec))
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("use recovery code: %w", err)
	}
	return err
}

// DeleteUser deletes the user and revokes every token they own, in one
// transaction. ErrNotFound when no such user.
func (s *Store) DeleteUser(ctx context.Context, id string, now time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := mustAffect(tx.ExecContext(ctx, `DELETE FROM users WHERE id = $1`, id)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM user_sites WHERE user_id = $1`, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE user_id = $2`, dbTime(now), id)
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("delete user: %w", err)
	}
	return err
}

// RevokeUserSessions revokes the user's session tokens (those of password
// logins; not their API tokens for automation) except the one with ID
// except, and returns the IDs it revoked.
func (s *Store) RevokeUserSessions(ctx context.Context, userID, except string, now time.Time) ([]string, error) {
	ids, err := s.revokeTokens(ctx, `user_id = $1 AND kind IN ($2, $3) AND id <> $4`, userID, KindSession, KindEnrol, except)(now)
	if err != nil {
		return nil, fmt.Errorf("revoke user sessions: %w", err)
	}
	return ids, nil
}

// SetAPITokenKind changes a token's kind (a session that enrolled TOTP stops
// being limited to enrolment).
func (s *Store) SetAPITokenKind(ctx context.Context, id, kind string) error {
	err := mustAffect(s.db.ExecContext(ctx, `UPDATE api_tokens SET kind = $1 WHERE id = $2`, kind, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("set api token kind: %w", err)
	}
	return err
}

// Relay-wide settings (relay_settings).
const SettingRequireTOTP = "require_totp"

// Setting returns a relay setting's value, "" when it was never set.
func (s *Store) Setting(ctx context.Context, name string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM relay_settings WHERE name = $1`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read setting %s: %w", name, err)
	}
	return v, nil
}

// SetSetting stores a relay setting.
func (s *Store) SetSetting(ctx context.Context, name, value string, now time.Time) error {
	// One upsert: an UPDATE-else-INSERT races on PostgreSQL (two first writes).
	_, err := s.db.ExecContext(ctx, `INSERT INTO relay_settings (name, value, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, name, value, dbTime(now))
	if err != nil {
		return fmt.Errorf("set setting %s: %w", name, err)
	}
	return nil
}
