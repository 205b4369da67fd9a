package store

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/patchbay/patchbay/internal/manifest"
)

// Artifact kinds.
const (
	KindPlugin = "plugin"
	KindScript = "script"
)

// ErrArtifactConflict is wrapped (by a *ConflictError) when PutArtifact is asked to
// store other bytes under a name, version and platform that is already published, or
// the same bytes under another identity.
var ErrArtifactConflict = errors.New("artifact conflict")

// Artifact is one signed file of the catalog, named by the SHA-256 of its content.
//
// Identity: (Kind, Name, Version, OS, Arch) names at most one file. For plugins OS and
// Arch are the executable's GOOS and GOARCH. For scripts Arch is "" and OS is the
// comma-separated list of the manifest ("" = any OS); two scripts with the same name
// and version may only coexist when their OS lists do not overlap (a .sh for
// linux,darwin beside a .ps1 for windows), so that name@version resolves to one file
// on every agent.
type Artifact struct {
	SHA256      string // lower-case hex of the content
	Kind        string // KindPlugin or KindScript
	Name        string
	Version     string
	OS          string
	Arch        string
	Size        int64
	Manifest    manifest.Manifest
	HasManifest bool // false for a script published without a header manifest

	Signature         string // armored SSHSIG, as published
	SignerFingerprint string // SHA256:... of the signing key
	SignerKeyType     string // e.g. ssh-ed25519

	PublishedBy string
	PublishedAt time.Time

	// Sites are where the artifact may be seen and run: site IDs, or
	// AllSites (nil when publishing: every site). Publishing the same file
	// again keeps the first list.
	Sites []string
}

// AvailableIn reports whether scope reaches a site the artifact is
// published to.
func (a Artifact) AvailableIn(scope Scope) bool {
	if scope.All || len(a.Sites) == 0 || slices.Contains(a.Sites, AllSites) {
		return true
	}
	for _, s := range a.Sites {
		if scope.Has(s) {
			return true
		}
	}
	return false
}

// PublishedTo reports whether the artifact is published to site.
func (a Artifact) PublishedTo(site string) bool {
	return len(a.Sites) == 0 || slices.Contains(a.Sites, AllSites) || slices.Contains(a.Sites, site)
}

// Platform describes where the artifact runs: "linux/amd64" for plugins, the OS list
// (or "any") for scripts.
func (a Artifact) Platform() string {
	if a.Kind == KindScript {
		if a.OS == "" {
			return "any OS"
		}
		return a.OS
	}
	return a.OS + "/" + a.Arch
}

func (a Artifact) describe() string {
	return fmt.Sprintf("%s %s %s for %s", a.Kind, a.Name, a.Version, a.Platform())
}

// ConflictError explains an ErrArtifactConflict: Existing is what is already stored.
type ConflictError struct {
	New, Existing Artifact
}

func (e *ConflictError) Error() string {
	if e.New.SHA256 == e.Existing.SHA256 {
		return fmt.Sprintf("this file (sha256 %s) is already published as %s", e.Existing.SHA256, e.Existing.describe())
	}
	return fmt.Sprintf("%s is already published with other content (sha256 %s)", e.Existing.describe(), e.Existing.SHA256)
}

// Unwrap makes errors.Is(err, ErrArtifactConflict) true.
func (e *ConflictError) Unwrap() error { return ErrArtifactConflict }

const artifactCols = `sha256, kind, name, version, os, arch, size, manifest, has_manifest,
	signature, signer_fingerprint, signer_key_type, published_by, published_at, sites`

func scanArtifact(sc scanner) (Artifact, error) {
	var (
		a         Artifact
		manifest  string
		published sql.NullTime
		sites     string
	)
	err := sc.Scan(&a.SHA256, &a.Kind, &a.Name, &a.Version, &a.OS, &a.Arch, &a.Size, &manifest, &a.HasManifest,
		&a.Signature, &a.SignerFingerprint, &a.SignerKeyType, &a.PublishedBy, &published, &sites)
	if err != nil {
		return Artifact{}, err
	}
	if a.Sites, err = decodeList(sites); err != nil {
		return Artifact{}, fmt.Errorf("artifact %s: sites: %w", a.SHA256, err)
	}
	if err := json.Unmarshal([]byte(manifest), &a.Manifest); err != nil {
		return Artifact{}, fmt.Errorf("artifact %s: manifest: %w", a.SHA256, err)
	}
	a.PublishedAt = fromNull(published)
	return a, nil
}

// PutArtifact stores a and its content in one transaction. a.SHA256 must be the hex
// SHA-256 of content and a.Size its length (0 is taken as len(content)); a zero
// PublishedAt is set to now.
//
// Storing a file that is already stored under the same identity changes nothing and
// returns created == false (publishing is idempotent; the first signature and
// publisher are kept). It returns a *ConflictError wrapping ErrArtifactConflict when
// the identity already names other bytes (versions are immutable), or when the same
// bytes are stored under another identity.
//
// Concurrent publishes are serialised: with SQLite by BEGIN IMMEDIATE, on PostgreSQL by
// an advisory lock (lockTx), so the checks below (the script OS-overlap rule has no
// index to back it) see every publish that committed before.
func (s *Store) PutArtifact(ctx context.Context, a Artifact, content []byte) (created bool, err error) {
	sum := sha256.Sum256(content)
	if got := hex.EncodeToString(sum[:]); a.SHA256 != got {
		return false, fmt.Errorf("put artifact: sha256 %q does not match the content (%s)", a.SHA256, got)
	}
	if a.Size == 0 {
		a.Size = int64(len(content))
	}
	if a.Size != int64(len(content)) {
		return false, fmt.Errorf("put artifact: size %d does not match the content (%d bytes)", a.Size, len(content))
	}
	if a.Kind != KindPlugin && a.Kind != KindScript {
		return false, fmt.Errorf("put artifact: kind %q: want plugin or script", a.Kind)
	}
	if a.Name == "" || a.Version == "" {
		return false, errors.New("put artifact: empty name or version")
	}
	if a.PublishedAt.IsZero() {
		a.PublishedAt = time.Now()
	}
	manifest, err := json.Marshal(a.Manifest)
	if err != nil {
		return false, fmt.Errorf("put artifact: encode manifest: %w", err)
	}
	if len(a.Sites) == 0 {
		a.Sites = []string{AllSites}
	}
	sites, err := encodeList(dedupe(a.Sites))
	if err != nil {
		return false, fmt.Errorf("put artifact: %w", err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.lockTx(ctx, tx, lockKeyCatalog); err != nil {
			return err
		}
		old, err := scanArtifact(tx.QueryRowContext(ctx,
			`SELECT `+artifactCols+` FROM artifacts WHERE sha256 = $1`, a.SHA256))
		switch {
		case err == nil && sameIdentity(old, a):
			return nil // already published: idempotent
		case err == nil:
			return &ConflictError{New: a, Existing: old}
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("find by sha256: %w", err)
		}
		same, err := queryArtifacts(ctx, tx,
			`SELECT `+artifactCols+` FROM artifacts WHERE kind = $1 AND name = $2 AND version = $3`,
			a.Kind, a.Name, a.Version)
		if err != nil {
			return fmt.Errorf("find by version: %w", err)
		}
		for _, o := range same {
			if platformsOverlap(o, a) {
				return &ConflictError{New: a, Existing: o}
			}
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO artifacts (`+artifactCols+`)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
			a.SHA256, a.Kind, a.Name, a.Version, a.OS, a.Arch, a.Size, string(manifest), a.HasManifest,
			a.Signature, a.SignerFingerprint, a.SignerKeyType, a.PublishedBy, dbTime(a.PublishedAt), sites)
		if err != nil {
			return fmt.Errorf("insert artifact: %w", err)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO artifact_blobs (sha256, content) VALUES ($1, $2)`, a.SHA256, content); err != nil {
			return fmt.Errorf("insert content: %w", err)
		}
		created = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("put artifact: %w", err)
	}
	return created, nil
}

func sameIdentity(x, y Artifact) bool {
	return x.Kind == y.Kind && x.Name == y.Name && x.Version == y.Version && x.OS == y.OS && x.Arch == y.Arch
}

// platformsOverlap reports whether x and y (same kind, name and version) could both
// be the answer for one agent.
func platformsOverlap(x, y Artifact) bool {
	if x.Kind == KindPlugin {
		return x.OS == y.OS && x.Arch == y.Arch
	}
	xs, ys := splitOS(x.OS), splitOS(y.OS)
	if len(xs) == 0 || len(ys) == 0 {
		return true // one of them runs anywhere
	}
	for _, o := range xs {
		if slices.Contains(ys, o) {
			return true
		}
	}
	return false
}

func splitOS(s string) []string {
	var out []string
	for _, o := range strings.Split(s, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

// runsOn reports whether a matches an agent's goos and goarch; empty goos or goarch
// match any.
func runsOn(a Artifact, goos, goarch string) bool {
	if a.Kind == KindScript {
		oses := splitOS(a.OS)
		return goos == "" || len(oses) == 0 || slices.Contains(oses, goos)
	}
	return (goos == "" || a.OS == goos) && (goarch == "" || a.Arch == goarch)
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// txKey is the context key of the transaction CreateJobStream runs its
// producer in.
type txKey struct{}

// readQuerier is a *sql.DB or *sql.Tx.
type readQuerier interface {
	querier
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// reader returns what a read joins: the transaction of CreateJobStream
// when ctx is its producer's, else the pool. A producer's reads must not
// wait for a second pooled connection while its transaction holds SQLite's
// write lock: with the pool taken by other writers waiting for that lock,
// both sides would wait until the busy timeout ("database is locked").
func (s *Store) reader(ctx context.Context) readQuerier {
	if tx, ok := ctx.Value(txKey{}).(*sql.Tx); ok {
		return tx
	}
	return s.db
}

func queryArtifacts(ctx context.Context, q querier, query string, args ...any) ([]Artifact, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Artifact
	for rows.Next() {
		a, err := scanArtifact(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// GetArtifact returns the artifact with that SHA-256 (metadata only), or ErrNotFound.
func (s *Store) GetArtifact(ctx context.Context, sha string) (Artifact, error) {
	a, err := scanArtifact(s.reader(ctx).QueryRowContext(ctx, `SELECT `+artifactCols+` FROM artifacts WHERE sha256 = $1`, sha))
	if errors.Is(err, sql.ErrNoRows) {
		return Artifact{}, fmt.Errorf("get artifact %s: %w", sha, ErrNotFound)
	}
	if err != nil {
		return Artifact{}, fmt.Errorf("get artifact %s: %w", sha, err)
	}
	return a, nil
}

// ArtifactContent returns the bytes of the artifact with that SHA-256, or ErrNotFound.
func (s *Store) ArtifactContent(ctx context.Context, sha string) ([]byte, error) {
	var b []byte
	err := s.db.QueryRowContext(ctx, `SELECT content FROM artifact_blobs WHERE sha256 = $1`, sha).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("artifact content %s: %w", sha, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("artifact content %s: %w", sha, err)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// ListArtifacts returns the artifacts of kind ("" = both kinds) called name ("" = all),
// ordered by kind, name, then version from newest to oldest (semantic versions, see
// CompareArtifactVersions), then OS and arch.
func (s *Store) ListArtifacts(ctx context.Context, kind, name string) ([]Artifact, error) {
	q := `SELECT ` + artifactCols + ` FROM artifacts`
	var (
		where []string
		args  []any
	)
	if kind != "" {
		args = append(args, kind)
		where = append(where, fmt.Sprintf("kind = $%d", len(args)))
	}
	if name != "" {
		args = append(args, name)
		where = append(where, fmt.Sprintf("name = $%d", len(args)))
	}
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	out, err := queryArtifacts(ctx, s.reader(ctx), q, args...)
	if err != nil {
		return nil, fmt.Errorf("list artifacts: %w", err)
	}
	slices.SortFunc(out, func(x, y Artifact) int {
		return cmp.Or(
			cmp.Compare(x.Kind, y.Kind),
			cmp.Compare(x.Name, y.Name),
			-CompareArtifactVersions(x, y),
			cmp.Compare(x.OS, y.OS),
			cmp.Compare(x.Arch, y.Arch),
			cmp.Compare(x.SHA256, y.SHA256),
		)
	})
	return out, nil
}

// CompareArtifactVersions orders two artifacts of one name by version: semantic
// version first (manifest.ParseVersion: major.minor.patch); for equal cores a pre-release
// ("1.2.0-rc1") is older than the release, and otherwise the one published later is
// newer. That last rule orders the "0.0.0+<sha>" versions of scripts published
// without a version by publication time. An unparsable version is older than any
// valid one.
func CompareArtifactVersions(x, y Artifact) int {
	vx, errx := manifest.ParseVersion(x.Version)
	vy, erry := manifest.ParseVersion(y.Version)
	switch {
	case errx != nil && erry != nil:
	case errx != nil:
		return -1
	case erry != nil:
		return 1
	default:
		if c := vx.Compare(vy); c != 0 {
			return c
		}
	}
	if px, py := isPrerelease(x.Version), isPrerelease(y.Version); px != py {
		if px {
			return -1
		}
		return 1
	}
	return cmp.Or(x.PublishedAt.Compare(y.PublishedAt), cmp.Compare(x.Version, y.Version))
}

// isPrerelease reports whether a version has a "-suffix" before any "+build".
func isPrerelease(v string) bool {
	core, _, _ := strings.Cut(v, "+")
	return strings.Contains(core, "-")
}

// ResolveArtifact returns what an agent with goos and goarch should run for kind and
// name: the newest version (ordered as by ListArtifacts) whose platform matches, or
// exactly version when it is not "". Plugins match on OS and arch; scripts when their
// OS list is empty or contains goos. An empty goos or goarch matches any (to ask
// whether a version exists at all). It returns an error wrapping ErrNotFound that
// names what is missing and what is published instead.
func (s *Store) ResolveArtifact(ctx context.Context, kind, name, version, goos, goarch string) (Artifact, error) {
	all, err := s.ListArtifacts(ctx, kind, name)
	if err != nil {
		return Artifact{}, fmt.Errorf("resolve %s %s: %w", kind, name, err)
	}
	var (
		versionFound bool
		platforms    []string
	)
	for _, a := range all { // newest first
		if version != "" && a.Version != version {
			continue
		}
		versionFound = true
		if runsOn(a, goos, goarch) {
			return a, nil
		}
		if p := a.Platform(); !slices.Contains(platforms, p) {
			platforms = append(platforms, p)
		}
	}
	what := kind + " " + name
	if version != "" {
		what += " " + version
	}
	target := goos
	if kind == KindPlugin && goarch != "" {
		target = cmp.Or(goos, "any OS") + "/" + goarch
	}
	switch {
	case len(all) == 0:
		return Artifact{}, fmt.Errorf("no %s %q in the catalog: %w", kind, name, ErrNotFound)
	case !versionFound:
		return Artifact{}, fmt.Errorf("no %s in the catalog (newest is %s): %w", what, all[0].Version, ErrNotFound)
	default:
		return Artifact{}, fmt.Errorf("no %s for %s in the catalog (published for %s): %w",
			what, target, strings.Join(platforms, ", "), ErrNotFound)
	}
}
