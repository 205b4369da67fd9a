// Package store is the relay's persistent state: enrollment tokens, agents, API tokens
// and the hash-chained audit log.
//
// One *Store serves both engines the relay supports: SQLite (through the pure-Go
// modernc.org/sqlite driver), the zero-config default, and PostgreSQL (pgx v5 through
// database/sql), for several relays sharing one database. Both run the same schema and
// the same query text, which is why every query uses $N placeholders, each placeholder
// number in ascending order of appearance, and avoids engine-specific syntax. The few
// engine differences are keyed off the dialect field.
//
// Conventions:
//   - IDs are TEXT (UUIDs; NewID gives a v7, which sorts by creation time).
//   - Timestamps are TIMESTAMP columns, always written as UTC time.Time truncated to
//     microseconds (PostgreSQL's precision), and read back as UTC time.Time. With SQLite
//     the driver writes them as text in SQLite's own format
//     ("2006-01-02 15:04:05.999999999-07:00", selected by _time_format=sqlite in the DSN)
//     and parses them back into time.Time because the column is declared TIMESTAMP. With
//     PostgreSQL, pgx binds the UTC wall-clock time to TIMESTAMP (without time zone) and
//     reads it back as UTC. The tests check the round trip on both engines. A zero
//     time.Time is stored as NULL and read back as the zero time ("never": not revoked,
//     no expiry, not seen yet). No query matches a timestamp for equality.
//   - Time comparisons (expiry, revocation) are done in Go, not in SQL, so they do not
//     depend on how an engine compares its stored timestamps.
//   - Several relays may share one PostgreSQL database, where transactions are READ
//     COMMITTED and run side by side (SQLite serialises writers): a rule that depends on
//     other rows is enforced by a conditional UPDATE ... WHERE (checking the rows
//     affected, or RETURNING), a unique index (a violation maps to the package's error,
//     see isUniqueViolation), or an advisory lock (lockTx).
//   - Maps and lists are JSON TEXT; empty ones read back as nil.
//   - Content is not validated here beyond what SQL needs; the API layer validates.
package store

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Sentinel errors; test with errors.Is.
var (
	ErrNotFound     = errors.New("not found")
	ErrTokenUnknown = errors.New("enrollment token unknown")
	ErrTokenExpired = errors.New("enrollment token expired")
	ErrTokenUsedUp  = errors.New("enrollment token has no uses left")
	ErrTokenRevoked = errors.New("enrollment token revoked")
	ErrAgentRevoked = errors.New("agent revoked")
	// ErrAgentExists is returned by EnrollAgent when an agent with the requested ID is
	// already enrolled (and not revoked).
	ErrAgentExists = errors.New("agent already enrolled")
)

// dialect names the SQL engine behind a Store.
type dialect string

const (
	dialectSQLite   dialect = "sqlite"
	dialectPostgres dialect = "postgres"
)

// maxOpenConns bounds the pool. SQLite serialises writers anyway (BEGIN IMMEDIATE with a
// busy timeout); a few connections let WAL readers proceed beside one writer.
const maxOpenConns = 4

// Store is the relay's persistent state over database/sql. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	dialect dialect
	// txObserver, when set, is told how long each transaction took (ObserveTx).
	txObserver atomic.Pointer[func(time.Duration)]
	// sealing encrypts the secrets kept in columns (sealed.go); nil: they
	// are written plain (tests, tools) until the relay gives a key.
	sealing atomic.Pointer[sealing]
	// pkgIDs caches software package ids (PutSoftwareBatch).
	pkgIDs pkgIDCache
}

// ObserveTx makes fn be called after every transaction of the store's own
// (begin to commit or rollback) with how long it took: the relay's metrics
// time the database through it. fn must be quick; nil stops it.
func (s *Store) ObserveTx(fn func(time.Duration)) {
	if fn == nil {
		s.txObserver.Store(nil)
		return
	}
	s.txObserver.Store(&fn)
}

// Option configures Open.
type Option func(*options)

type options struct {
	logger *slog.Logger
}

// WithLogger sends the migration tool's log lines (goose) to l. By default they are
// discarded; goose only logs when it applies migrations verbosely anyway.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// Open opens the database named by url and brings its schema up to date.
//
// url is a plain file path or "sqlite:PATH" (a "sqlite://" prefix is accepted too, so
// "sqlite:///var/lib/patchbay/relay.db" is an absolute path). The file is created if it
// does not exist. A "postgres://" or "postgresql://" URL (libpq's URL form, e.g.
// "postgres://patchbay:secret@db.example.com/patchbay?sslmode=verify-full") opens that
// PostgreSQL database, which must exist; relays that open it at the same time apply
// the migrations once (under a PostgreSQL advisory lock).
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	o := options{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	var (
		s   *Store
		err error
	)
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		s, err = openPostgres(url)
	case strings.HasPrefix(url, "sqlite://"):
		s, err = openSQLite(strings.TrimPrefix(url, "sqlite://"))
	case strings.HasPrefix(url, "sqlite:"):
		s, err = openSQLite(strings.TrimPrefix(url, "sqlite:"))
	default:
		s, err = openSQLite(url)
	}
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("open store: connect: %w", err)
	}
	if err := s.migrate(ctx, o.logger); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	return s, nil
}

// sqliteCacheKiB is each SQLite connection's page cache (SQLite's default is
// 2 MiB). A relay's database outgrows 2 MiB at a few thousand agents; the
// cache is filled only as pages are read, so a small relay pays nothing,
// and a 19,000-agent job reads its pages from memory instead of with one
// pread per page (measured on 10,000-agent no-op jobs against 19,000
// simulated agents: median relay CPU per job 1.28 -> 1.11 s, 16 jobs each).
// At most maxOpenConns caches: 128 MiB.
const sqliteCacheKiB = 32 << 10

// sqliteBusyMS is how long a transaction waits for SQLite's write lock
// before it fails with SQLITE_BUSY. Writers are serialised (BEGIN
// IMMEDIATE), so this is the longest wait behind other writers: 5 s was
// exceeded on a loaded 2-core machine while a fleet's inventories were
// being written, and an enrollment failed where it only had to wait.
const sqliteBusyMS = 15000

// sqliteDSN builds the modernc.org/sqlite DSN for a file path. The path goes into a
// SQLite URI, so the characters that URI syntax gives meaning to are percent-escaped.
func sqliteDSN(path string) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + esc +
		"?_pragma=busy_timeout(" + strconv.Itoa(sqliteBusyMS) + ")" +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=foreign_keys(1)" +
		"&_pragma=synchronous(NORMAL)" +
		"&_pragma=cache_size(-" + strconv.Itoa(sqliteCacheKiB) + ")" +
		"&_txlock=immediate" +
		"&_time_format=sqlite"
}

func openSQLite(path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("empty sqlite path")
	}
	db, err := sql.Open("sqlite", sqliteDSN(path))
	if err != nil {
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(maxOpenConns)
	db.SetMaxIdleConns(maxOpenConns)
	return &Store{db: db, dialect: dialectSQLite}, nil
}

// pgMaxOpenConns bounds the pool on PostgreSQL, where writers do not serialise on one
// file: enough for the relay's concurrent requests, few enough that several relays
// stay well under the server's max_connections (100 by default).
const pgMaxOpenConns = 16

func openPostgres(url string) (*Store, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx's parse errors quote the URL, password included: name only the problem.
		return nil, errors.New("postgres: the URL does not parse: want postgres://USER@HOST:PORT/DATABASE?sslmode=verify-full (or another sslmode)")
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(pgMaxOpenConns)
	db.SetMaxIdleConns(pgMaxOpenConns)
	return &Store{db: db, dialect: dialectPostgres}, nil
}

// migrate applies the embedded migrations with goose. Re-running is a no-op.
func (s *Store) migrate(ctx context.Context, logger *slog.Logger) error {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	gd := goose.DialectSQLite3
	popts := []goose.ProviderOption{
		goose.WithSlog(logger),
		goose.WithDisableGlobalRegistry(true),
	}
	if s.dialect == dialectPostgres {
		gd = goose.DialectPostgres
		// Several relays may start at once: goose holds a session-level advisory lock
		// while it migrates, so one applies the migrations and the others wait (polling
		// every second, for up to 5 minutes) and then find nothing left to do.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return fmt.Errorf("migrations: %w", err)
		}
		popts = append(popts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(gd, s.db, sub, popts...)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if err := checkNotNewer(ctx, p); err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// ErrSchemaTooNew is returned by Open for a database that a newer relay has
// migrated past the newest migration this binary embeds.
var ErrSchemaTooNew = errors.New("database schema is newer than this relay")

// checkNotNewer refuses a database whose schema version is higher than the
// newest migration embedded here: a newer relay migrated it, and this one
// would read and write tables it does not know (a downgrade). A fresh
// database reads as version 0.
func checkNotNewer(ctx context.Context, p *goose.Provider) error {
	srcs := p.ListSources()
	if len(srcs) == 0 {
		return nil
	}
	newest := srcs[len(srcs)-1].Version
	cur, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("migrations: read the schema version: %w", err)
	}
	if cur > newest {
		return fmt.Errorf("%w: the database is at schema version %d, this patchbay-server knows versions up to %d: "+
			"a newer patchbay-server migrated it; run that version (or a newer one) again, or restore a backup taken "+
			"before the upgrade (patchbay-server restore)", ErrSchemaTooNew, cur, newest)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// NewID returns a new UUID v7 as text: the ID format for tokens (v7 sorts by creation time).
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// inTx runs fn in one transaction, committing when fn returns nil and rolling back
// otherwise. On SQLite it is BEGIN IMMEDIATE: transactions are serialised. On PostgreSQL
// it is READ COMMITTED: fn must not rely on a row it read staying as it was (lock it
// with SELECT ... FOR UPDATE, or write with a conditional UPDATE ... WHERE and check
// the rows affected).
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if obs := s.txObserver.Load(); obs != nil {
		defer func(start time.Time) { (*obs)(time.Since(start)) }(time.Now())
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Keys of the PostgreSQL advisory locks that lockTx takes (goose's migration lock is
// another key, lock.DefaultLockID).
// Every key is listed here, so that no two uses share one by accident (a
// transaction lock on the relays' session lock key would wait for as long as
// any tier relay runs): TestAdvisoryLockKeysDistinct.
const (
	lockKeyCatalog     int64 = 0x7062_0001 // PutArtifact's checks across rows
	lockKeyTierSecrets int64 = 0x7062_0002 // TierSecrets: one relay seeds them
	// lockKeyRelays is not a lockTx key: every relay on PostgreSQL holds it
	// for as long as it runs, at session level, shared in a tier and
	// exclusive alone (relaylock.go).
	lockKeyRelays      int64 = 0x7062_0003
	lockKeyInventory   int64 = 0x7062_0004 // package ids and agent inventory numbers (PutSoftwareBatch)
	lockKeyPolicyFixes int64 = 0x7062_0033 // self-heal limits per site and hour (ReservePolicyFix)
)

// advisoryLockKeys lists the keys above, for TestAdvisoryLockKeysDistinct.
var advisoryLockKeys = []int64{lockKeyCatalog, lockKeyTierSecrets, lockKeyRelays, lockKeyInventory, lockKeyPolicyFixes}

// lockTx makes tx wait for, and then exclude, the other transactions that take
// the same key, until it ends: for the few transactions whose checks read rows that
// a concurrent transaction could insert (no row to lock, no unique index to enforce
// the rule). On SQLite it does nothing: BEGIN IMMEDIATE already serialises writers.
// On PostgreSQL it is a transaction-level advisory lock.
func (s *Store) lockTx(ctx context.Context, tx *sql.Tx, key int64) error {
	if s.dialect != dialectPostgres {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, key); err != nil {
		return fmt.Errorf("advisory lock %#x: %w", key, err)
	}
	return nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// dbTime converts t for a TIMESTAMP column: NULL for the zero time, else UTC truncated
// to microseconds.
func dbTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Truncate(time.Microsecond)
}

// fromNull converts a scanned TIMESTAMP back: zero for NULL, else UTC.
func fromNull(t sql.NullTime) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

// encodeMap returns m as JSON TEXT ("{}" for nil).
func encodeMap(m map[string]string) (string, error) {
	if m == nil {
		m = map[string]string{}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encode map: %w", err)
	}
	return string(b), nil
}

// decodeMap parses JSON TEXT into a map; empty gives nil.
func decodeMap(s string) (map[string]string, error) {
	var m map[string]string
	if s != "" {
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			return nil, fmt.Errorf("decode map: %w", err)
		}
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// encodeList returns l as JSON TEXT ("[]" for nil).
func encodeList(l []string) (string, error) {
	if l == nil {
		l = []string{}
	}
	b, err := json.Marshal(l)
	if err != nil {
		return "", fmt.Errorf("encode list: %w", err)
	}
	return string(b), nil
}

// decodeList parses JSON TEXT into a list; empty gives nil.
func decodeList(s string) ([]string, error) {
	var l []string
	if s != "" {
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			return nil, fmt.Errorf("decode list: %w", err)
		}
	}
	if len(l) == 0 {
		return nil, nil
	}
	return l, nil
}

// mergeTags returns the effective tags: base overlaid by over (over wins). Nil when empty.
func mergeTags(base, over map[string]string) map[string]string {
	if len(base)+len(over) == 0 {
		return nil
	}
	m := make(map[string]string, len(base)+len(over))
	maps.Copy(m, base)
	maps.Copy(m, over)
	return m
}

// isUniqueViolation tells whether err is a unique (or primary key) constraint
// violation, on either engine.
func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505" // unique_violation
	}
	// modernc.org/sqlite: "constraint failed: UNIQUE constraint failed: t.c (2067)",
	// or (1555) for a primary key.
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "PRIMARY KEY constraint failed")
}

// mustAffect turns "no row matched" into ErrNotFound.
func mustAffect(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("rows affected: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}
