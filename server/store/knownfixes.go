package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"time"

	"github.com/patchbay/patchbay/internal/audit"
)

// Known fixes (migration 00027): the team's knowledge base. A known fix
// links a symptom (a failing check's name, and/or a pattern over error
// text) to a catalog plugin or script with parameters. Alerts and
// incidents that match are offered the fix; nothing runs it by itself.

// Pattern kinds of a known fix.
const (
	PatternSubstring = "substring" // case-insensitive substring
	PatternRegexp    = "regexp"    // Go regexp (RE2), case-insensitive
)

// Limits on a known fix's pattern: its text, and the size of its compiled
// program (nested repetitions such as (a{100}){100} blow up to a large
// program: refused).
const (
	MaxPatternLen  = 512
	MaxPatternProg = 5000
)

// KnownFix is one knowledge base entry.
type KnownFix struct {
	ID, Name, Title string
	Check           string // a check name ("" for any)
	Pattern         string // over alert summaries and incident titles and notes ("" for none)
	PatternKind     string // PatternSubstring or PatternRegexp (when Pattern is set)
	Plugin          string
	Params          map[string]string
	Description     string // Markdown
	CreatedAt       time.Time
	CreatedBy       string
	re              *regexp.Regexp
}

// CompilePattern checks a known fix's pattern of kind and returns its
// matcher. The error says what is wrong and how to fix it.
func CompilePattern(kind, pattern string) (*regexp.Regexp, error) {
	if len(pattern) > MaxPatternLen {
		return nil, fmt.Errorf("pattern: %d bytes, at most %d: match on a shorter, distinctive part of the error text", len(pattern), MaxPatternLen)
	}
	switch kind {
	case PatternSubstring:
		return regexp.MustCompile(`(?i)` + regexp.QuoteMeta(pattern)), nil
	case PatternRegexp:
	default:
		return nil, fmt.Errorf("pattern kind %q: use substring or regexp", kind)
	}
	parsed, err := syntax.Parse(pattern, syntax.Perl)
	var serr *syntax.Error
	if errors.As(err, &serr) && (serr.Code == syntax.ErrInvalidRepeatSize || serr.Code == syntax.ErrLarge) {
		return nil, fmt.Errorf("pattern %q: too complex (%s %s): repetition counts, nested ones multiplied, must stay at most 1000", pattern, serr.Code, serr.Expr)
	}
	if err != nil {
		return nil, fmt.Errorf("pattern %q: not a Go regexp: %v", pattern, err)
	}
	prog, err := syntax.Compile(parsed.Simplify())
	if err != nil {
		return nil, fmt.Errorf("pattern %q: not a Go regexp: %v", pattern, err)
	}
	if len(prog.Inst) > MaxPatternProg {
		return nil, fmt.Errorf("pattern %q: too complex (%d instructions compiled, at most %d): avoid nested or large repetition counts", pattern, len(prog.Inst), MaxPatternProg)
	}
	re, err := regexp.Compile(`(?i)` + pattern)
	if err != nil {
		return nil, fmt.Errorf("pattern %q: not a Go regexp: %v", pattern, err)
	}
	return re, nil
}

// Matches reports whether the fix's symptom is there: check (when the fix
// names one) equals check, and the pattern (when it has one) matches one of
// texts. A fix with neither matches nothing.
func (k *KnownFix) Matches(check string, texts ...string) bool {
	if k.Check == "" && k.Pattern == "" {
		return false
	}
	if k.Check != "" && !strings.EqualFold(k.Check, check) {
		return false
	}
	if k.Pattern == "" {
		return true
	}
	if k.re == nil {
		re, err := CompilePattern(k.PatternKind, k.Pattern)
		if err != nil {
			return false
		}
		k.re = re
	}
	for _, t := range texts {
		if k.re.MatchString(t) {
			return true
		}
	}
	return false
}

// ErrKnownFixName is returned when a known fix's name is taken.
var ErrKnownFixName = errors.New("a known fix has this name")

const knownFixCols = `id, name, title, check_name, pattern, pattern_kind, plugin, params, description, created_at, created_by`

func scanKnownFix(sc scanner) (KnownFix, error) {
	var (
		k       KnownFix
		params  string
		created sql.NullTime
	)
	if err := sc.Scan(&k.ID, &k.Name, &k.Title, &k.Check, &k.Pattern, &k.PatternKind, &k.Plugin, &params, &k.Description, &created, &k.CreatedBy); err != nil {
		return KnownFix{}, err
	}
	var err error
	if k.Params, err = decodeMap(params); err != nil {
		return KnownFix{}, fmt.Errorf("known fix %s: params: %w", k.ID, err)
	}
	k.CreatedAt = fromNull(created)
	return k, nil
}

func (s *Store) queryKnownFixes(ctx context.Context, query string, args ...any) ([]KnownFix, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []KnownFix
	for rows.Next() {
		k, err := scanKnownFix(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// CreateKnownFix stores k (its pattern checked), audited as
// known-fix.create by actor in the same transaction. ErrKnownFixName when
// the name is taken.
func (s *Store) CreateKnownFix(ctx context.Context, k KnownFix, actor string, now time.Time) (KnownFix, error) {
	if k.Pattern != "" {
		if _, err := CompilePattern(k.PatternKind, k.Pattern); err != nil {
			return KnownFix{}, fmt.Errorf("create known fix %s: %w", k.Name, err)
		}
	} else {
		k.PatternKind = ""
	}
	params, err := encodeMap(k.Params)
	if err != nil {
		return KnownFix{}, fmt.Errorf("create known fix %s: %w", k.Name, err)
	}
	k.ID, k.CreatedAt, k.CreatedBy = NewID(), now.UTC().Truncate(time.Microsecond), actor
	rec := &audit.Record{Time: now, Actor: actor, Action: "known-fix.create", Target: k.ID,
		Detail: map[string]string{"name": k.Name, "plugin": k.Plugin, "check": k.Check, "pattern": k.Pattern}}
	_, err = s.withAudit(ctx, "", rec, func(tx *sql.Tx) (bool, error) {
		_, err := tx.ExecContext(ctx, `INSERT INTO known_fixes (`+knownFixCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			k.ID, k.Name, k.Title, k.Check, k.Pattern, k.PatternKind, k.Plugin, params, k.Description, dbTime(now), actor)
		return true, err
	})
	if isUniqueViolation(err) {
		return KnownFix{}, ErrKnownFixName
	}
	if err != nil {
		return KnownFix{}, fmt.Errorf("create known fix %s: %w", k.Name, err)
	}
	return k, nil
}

// ListKnownFixes returns every known fix, by name.
func (s *Store) ListKnownFixes(ctx context.Context) ([]KnownFix, error) {
	out, err := s.queryKnownFixes(ctx, `SELECT `+knownFixCols+` FROM known_fixes ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list known fixes: %w", err)
	}
	return out, nil
}

// SearchKnownFixes returns the known fixes whose name, title, description,
// check or pattern contains text (case-insensitive), by name.
func (s *Store) SearchKnownFixes(ctx context.Context, text string) ([]KnownFix, error) {
	like := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.ToLower(text)) + "%"
	var conds []string
	for _, col := range []string{"name", "title", "description", "check_name", "pattern"} {
		conds = append(conds, `LOWER(`+col+`) LIKE $1 ESCAPE '\'`)
	}
	out, err := s.queryKnownFixes(ctx, `SELECT `+knownFixCols+` FROM known_fixes WHERE `+strings.Join(conds, " OR ")+` ORDER BY name`, like)
	if err != nil {
		return nil, fmt.Errorf("search known fixes: %w", err)
	}
	return out, nil
}

// FindKnownFix returns the known fix named ref, or with ID ref, or whose
// ID starts with ref (at most limit).
func (s *Store) FindKnownFix(ctx context.Context, ref string, limit int) ([]KnownFix, error) {
	out, err := s.queryKnownFixes(ctx, `SELECT `+knownFixCols+` FROM known_fixes WHERE name = $1 OR id = $1`, ref)
	if err != nil || len(out) > 0 {
		return out, err
	}
	where, args, ok := prefixWhere(ref, 1)
	if !ok {
		return nil, nil
	}
	out, err = s.queryKnownFixes(ctx, `SELECT `+knownFixCols+` FROM known_fixes WHERE `+where+fmt.Sprintf(` ORDER BY id LIMIT %d`, limit), args...)
	if err != nil {
		return nil, fmt.Errorf("find known fix %q: %w", ref, err)
	}
	return out, nil
}

// DeleteKnownFix deletes the known fix id, audited as known-fix.delete.
func (s *Store) DeleteKnownFix(ctx context.Context, id, name, actor string, now time.Time) error {
	rec := &audit.Record{Time: now, Actor: actor, Action: "known-fix.delete", Target: id, Detail: map[string]string{"name": name}}
	changed, err := s.withAudit(ctx, "", rec, func(tx *sql.Tx) (bool, error) {
		res, err := tx.ExecContext(ctx, `DELETE FROM known_fixes WHERE id = $1`, id)
		if err != nil {
			return false, err
		}
		n, err := res.RowsAffected()
		return n > 0, err
	})
	if err != nil {
		return fmt.Errorf("delete known fix %s: %w", id, err)
	}
	if !changed {
		return ErrNotFound
	}
	return nil
}

// MatchKnownFixes returns those of fixes whose symptom check and texts
// show.
func MatchKnownFixes(fixes []KnownFix, check string, texts ...string) []KnownFix {
	var out []KnownFix
	for i := range fixes {
		if fixes[i].Matches(check, texts...) {
			out = append(out, fixes[i])
		}
	}
	return out
}
