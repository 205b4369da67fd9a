package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Secrets kept in columns (migration 00030): alert routes' webhook HMAC keys
// and SMTP passwords (alert_routes.secret), users' TOTP secrets
// (users.totp_secret, users.totp_pending). The store's API takes and
// returns them in plain text; in the database each is one of
//
//	""                   none
//	"plain:" + value     not sealed yet: written by a store without a
//	                     Sealer (tests, tools), or before migration 00030
//	"v1:" + keyID + ":" + sealed
//	                     encrypted by the Sealer whose ID is keyID, bound to
//	                     the column and the row (see secretName)
//
// Anything else is refused, never used as a secret. The relay gives the
// store its key at start (UseSealer), which also seals the plain values
// left and checks that every sealed one opens with that key.

// Sealer encrypts secrets at rest: *tiersecrets.Key (AES-256-GCM). Seal
// binds the ciphertext to name; Open refuses a value sealed under another
// name or key.
type Sealer interface {
	ID() string
	Seal(name string, plain []byte) (string, error)
	Open(name, keyID, value string) ([]byte, error)
}

// Prefixes of the stored forms of a secret.
const (
	sealedPrefix = "v1:"
	plainPrefix  = "plain:"
)

// ErrSecretKey: a sealed secret does not open with the store's key (or
// the store has none).
var ErrSecretKey = errors.New("secret sealed with another key")

// sealing is the store's key and where the relay keeps it, for errors.
type sealing struct {
	sealer Sealer
	file   string // names the key file: "DATA/secrets.key", "--tier-key-file /etc/..."
	fix    string // what the operator does when a secret does not open
}

// secretCol is one column of secrets: table, its ID column, the column.
type secretCol struct{ table, col string }

// The columns of secrets.
var (
	routeSecret = secretCol{"alert_routes", "secret"}
	totpSecret  = secretCol{"users", "totp_secret"}
	totpPending = secretCol{"users", "totp_pending"}
	secretCols  = []secretCol{routeSecret, totpSecret, totpPending}
)

// secretName binds a sealed value to its column and row: a value copied
// onto another row or column does not open.
func secretName(c secretCol, id string) string { return c.table + "." + c.col + "/" + id }

// seal returns the stored form of plain for column c of row id.
func (s *Store) seal(c secretCol, id, plain string) (string, error) {
	if plain == "" {
		return "", nil
	}
	sg := s.sealing.Load()
	if sg == nil {
		return plainPrefix + plain, nil
	}
	v, err := sg.sealer.Seal(secretName(c, id), []byte(plain))
	if err != nil {
		return "", fmt.Errorf("seal %s of %s: %w", c.col, id, err)
	}
	return sealedPrefix + sg.sealer.ID() + ":" + v, nil
}

// open returns the plain text of stored, column c of row id.
func (s *Store) open(c secretCol, id, stored string) (string, error) {
	switch {
	case stored == "":
		return "", nil
	case strings.HasPrefix(stored, plainPrefix):
		return strings.TrimPrefix(stored, plainPrefix), nil
	case !strings.HasPrefix(stored, sealedPrefix):
		return "", fmt.Errorf("%s.%s of %s is in no known form (want %q or %q): restore the table from a backup, or set the secret again",
			c.table, c.col, id, sealedPrefix, plainPrefix)
	}
	keyID, v, _ := strings.Cut(strings.TrimPrefix(stored, sealedPrefix), ":")
	sg := s.sealing.Load()
	if sg == nil {
		return "", fmt.Errorf("%s.%s of %s: %w: it is sealed with key %s and this store was given no key (the relay gives it its secrets key at start)",
			c.table, c.col, id, ErrSecretKey, keyID)
	}
	if keyID != sg.sealer.ID() {
		return "", fmt.Errorf("%s.%s of %s: %w: sealed with key %s, but %s holds key %s: %s",
			c.table, c.col, id, ErrSecretKey, keyID, sg.file, sg.sealer.ID(), sg.fix)
	}
	b, err := sg.sealer.Open(secretName(c, id), keyID, v)
	if err != nil {
		// Not the sealer's own text: it speaks of the tier_secrets table.
		return "", fmt.Errorf("%s.%s of %s does not open with key %s (%s), the key it names: it was altered, or copied "+
			"from another row; restore the database from a backup, or set this secret again", c.table, c.col, id, keyID, sg.file)
	}
	return string(b), nil
}

// UseSealer makes the store seal the secrets it writes with sealer from now
// on; file names where the relay keeps the key and fix says what to do
// when a secret does not open with it (both for errors). It then seals every
// secret still plain and checks that every sealed one opens: a wrong key
// is refused here, at start, with an error naming file and fix (errors.Is
// ErrSecretKey when a secret names another key). It returns how many
// secrets it sealed. Relays sharing a database may run it together: each
// value is replaced only if it is still the plain one read.
func (s *Store) UseSealer(ctx context.Context, sealer Sealer, file, fix string) (sealed int, err error) {
	s.sealing.Store(&sealing{sealer: sealer, file: file, fix: fix})
	for _, c := range secretCols {
		n, err := s.sealColumn(ctx, c)
		sealed += n
		if err != nil {
			return sealed, fmt.Errorf("seal the database's secrets: %w", err)
		}
	}
	return sealed, nil
}

// sealColumn seals the plain values of column c and opens the sealed ones.
func (s *Store) sealColumn(ctx context.Context, c secretCol) (int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, `+c.col+` FROM `+c.table+` WHERE `+c.col+` <> '' ORDER BY id`)
	if err != nil {
		return 0, err
	}
	type row struct{ id, stored string }
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.stored); err != nil {
			rows.Close()
			return 0, err
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, r := range all {
		plain, err := s.open(c, r.id, r.stored)
		if err != nil {
			return n, err
		}
		if !strings.HasPrefix(r.stored, plainPrefix) {
			continue
		}
		v, err := s.seal(c, r.id, plain)
		if err != nil {
			return n, err
		}
		res, err := s.db.ExecContext(ctx, `UPDATE `+c.table+` SET `+c.col+` = $1 WHERE id = $2 AND `+c.col+` = $3`, v, r.id, r.stored)
		if err != nil {
			return n, fmt.Errorf("%s.%s of %s: %w", c.table, c.col, r.id, err)
		}
		if k, _ := res.RowsAffected(); k == 1 {
			n++
		}
	}
	return n, nil
}

// SealedSecretKeys returns the IDs of the keys the database's sealed
// secrets name (none when nothing is sealed yet): a relay that lost its key
// file refuses to make a new one while they exist.
func (s *Store) SealedSecretKeys(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, c := range secretCols {
		rows, err := s.db.QueryContext(ctx, `SELECT `+c.col+` FROM `+c.table+` WHERE `+c.col+` LIKE $1`, sealedPrefix+"%")
		if err != nil {
			return nil, fmt.Errorf("sealed secrets: %w", err)
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return nil, fmt.Errorf("sealed secrets: %w", err)
			}
			id, _, _ := strings.Cut(strings.TrimPrefix(v, sealedPrefix), ":")
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("sealed secrets: %w", err)
		}
	}
	return out, nil
}

// rawSecret reads the stored form of column c of row id inside q.
func rawSecret(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, c secretCol, id string) (string, error) {
	var v string
	err := q.QueryRowContext(ctx, `SELECT `+c.col+` FROM `+c.table+` WHERE id = $1`, id).Scan(&v)
	return v, err
}
