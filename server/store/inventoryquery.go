package store

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// VersionKey encodes a version so that comparing two keys as strings
// orders the versions the Debian way (dpkg's verrevcmp, applied to the
// upstream version, then the revision after the last "-"): an optional numeric epoch ("2:"), then alternating
// non-digit and digit runs; non-digit runs compare character by character
// with "~" before the end of the run, the end before letters and letters
// before other characters; digit runs compare as numbers. So 1.0~rc1 <
// 1.0 < 1.0a < 1.0.1 < 1.0.10 and 3.0.13-1 < 3.0.14.
//
// The key is lower-case hex digits only: text comparison agrees on it in
// every collation (SQLite BINARY, PostgreSQL C or a language locale).
func VersionKey(v string) string {
	const hexd = "0123456789abcdef"
	var b strings.Builder
	sym := func(c byte) {
		b.WriteByte(hexd[c>>4])
		b.WriteByte(hexd[c&15])
	}
	digits := func(d string) {
		d = strings.TrimLeft(d, "0")
		if len(d) > 255 {
			d = d[:255]
		}
		sym(byte(len(d)))
		b.WriteString(d)
	}
	// Epoch.
	epoch := ""
	if i := strings.IndexByte(v, ':'); i > 0 && isDigits(v[:i]) {
		epoch, v = v[:i], v[i+1:]
	}
	digits(epoch)
	// Upstream version, then the Debian revision (after the last "-"),
	// compared separately as dpkg does.
	upstream, revision := v, ""
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		upstream, revision = v[:i], v[i+1:]
	}
	for _, part := range []string{upstream, revision} {
		for i := 0; i < len(part); {
			j := i
			for j < len(part) && !isDigit(part[j]) {
				c := part[j]
				switch {
				case c == '~':
					sym(0x01)
				case c >= 'A' && c <= 'Z':
					sym(0x03 + c - 'A')
				case c >= 'a' && c <= 'z':
					sym(0x03 + 26 + c - 'a')
				case c < 0x80:
					sym(0x40 + c)
				default:
					sym(0xc0)
				}
				j++
			}
			sym(0x02) // end of the non-digit run
			k := j
			for k < len(part) && isDigit(part[k]) {
				k++
			}
			digits(part[j:k])
			i = k
		}
		sym(0x02) // end of the part: after "~", before anything else
	}
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

// Inventory condition kinds.
const (
	CondSoftware = "software"
	CondMemory   = "memory"
	CondDiskFree = "disk.free"
)

// VersionCmp compares a package's version: Op is <, <=, >, >=, = or !=.
type VersionCmp struct {
	Op      string
	Version string
}

// InvCond is one inventory condition of a selector.
//
//   - CondSoftware: the agent has a package whose name (case-insensitive)
//     is one of Names (any name when empty) and whose version satisfies
//     every Versions comparison; Negate: the agent has no such package.
//   - CondMemory: memory_bytes Op Value.
//   - CondDiskFree: the smallest free space of the agent's disks Op Value,
//     in bytes, or in parts per million of the disk's size when PPM.
//
// Agents that reported no hardware match no memory or disk condition.
type InvCond struct {
	Kind     string
	Names    []string
	Versions []VersionCmp
	Negate   bool
	Op       string
	Value    int64
	PPM      bool
}

var sqlOps = map[string]string{"<": "<", "<=": "<=", ">": ">", ">=": ">=", "=": "=", "!=": "<>"}

// InventoryMatch returns the IDs of the agents that meet every condition
// (negated software conditions: of the agents with an inventory, those
// without the package). Callers apply the site scope and revocation as for
// any other selection.
func (s *Store) InventoryMatch(ctx context.Context, conds []InvCond) (map[string]bool, error) {
	var result map[string]bool
	for _, c := range conds {
		set, err := s.invCondSet(ctx, c)
		if err != nil {
			return nil, err
		}
		if c.Negate {
			all, err := s.idSet(ctx, `SELECT agent_id FROM agent_hardware`)
			if err != nil {
				return nil, err
			}
			for id := range set {
				delete(all, id)
			}
			set = all
		}
		if result == nil {
			result = set
			continue
		}
		for id := range result {
			if !set[id] {
				delete(result, id)
			}
		}
	}
	if result == nil {
		result = map[string]bool{}
	}
	return result, nil
}

func (s *Store) invCondSet(ctx context.Context, c InvCond) (map[string]bool, error) {
	var l argList
	var where []string
	var from string
	switch c.Kind {
	case CondSoftware:
		var pw []string
		if len(c.Names) > 0 {
			ph := make([]string, len(c.Names))
			for i, n := range c.Names {
				ph[i] = l.add(strings.ToLower(n))
			}
			pw = append(pw, "name_key IN ("+strings.Join(ph, ",")+")")
		}
		for _, v := range c.Versions {
			op, ok := sqlOps[v.Op]
			if !ok {
				return nil, fmt.Errorf("inventory condition: unknown operator %q", v.Op)
			}
			pw = append(pw, "version_key "+op+" "+l.add(VersionKey(v.Version)))
		}
		return s.holdersOf(ctx, pw, l.args)
	case CondMemory, CondDiskFree:
		from = "agent_hardware"
		op, ok := sqlOps[c.Op]
		if !ok {
			return nil, fmt.Errorf("inventory condition: unknown operator %q", c.Op)
		}
		col := "memory_bytes"
		switch {
		case c.Kind == CondDiskFree && c.PPM:
			col = "disk_min_free_ppm"
		case c.Kind == CondDiskFree:
			col = "disk_min_free"
		default:
			where = append(where, "memory_bytes > 0")
		}
		where = append(where, col+" IS NOT NULL", col+" "+op+" "+l.add(c.Value))
	default:
		return nil, fmt.Errorf("inventory condition: unknown kind %q", c.Kind)
	}
	q := "SELECT agent_id FROM " + from
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	return s.idSet(ctx, q, l.args...)
}

// packageIDs returns the ids of the packages that meet where (conditions
// on software_packages, ANDed).
func (s *Store) packageIDs(ctx context.Context, where []string, args []any) ([]int64, error) {
	q := "SELECT id FROM software_packages"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := s.reader(ctx).QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("inventory selection: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("inventory selection: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// holdersOf returns the agents holding a package that meets where. The
// package ids are found first, then the agents by agent_packages_package
// for those ids, written out: a plan a planner without statistics on a
// new table cannot turn into a scan of every pair.
func (s *Store) holdersOf(ctx context.Context, where []string, args []any) (map[string]bool, error) {
	ids, err := s.packageIDs(ctx, where, args)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for chunk := range slices.Chunk(ids, idsPerList) {
		part, err := s.idSet(ctx, `SELECT DISTINCT h.agent_id FROM agent_packages ap JOIN agent_hardware h ON h.inv_no = ap.agent_no
			WHERE ap.package_id IN (`+intList(chunk)+`)`)
		if err != nil {
			return nil, err
		}
		maps.Copy(set, part)
	}
	return set, nil
}

func (s *Store) idSet(ctx context.Context, q string, args ...any) (map[string]bool, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("inventory selection: %w", err)
	}
	defer rows.Close()
	set := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("inventory selection: %w", err)
		}
		set[id] = true
	}
	return set, rows.Err()
}

// Holding is one agent's installed version of a package.
type Holding struct {
	AgentID  string
	Hostname string
	SiteID   string
	Name     string
	Version  string
	Source   string
}

// SoftwareHolders lists who has a package (name compared case-insensitively)
// and which version, among the non-revoked agents in scope; with
// versionLT, only versions before it (VersionKey order). Sorted by host
// name, then version.
func (s *Store) SoftwareHolders(ctx context.Context, scope Scope, name, versionLT string) ([]Holding, error) {
	var pl argList
	pw := []string{"name_key = " + pl.add(strings.ToLower(name))}
	if versionLT != "" {
		pw = append(pw, "version_key < "+pl.add(VersionKey(versionLT)))
	}
	ids, err := s.packageIDs(ctx, pw, pl.args)
	if err != nil || len(ids) == 0 {
		return []Holding{}, err
	}
	// The ids written out, as in holdersOf (a name has a few versions).
	var l argList
	q := `SELECT a.id, a.hostname, a.site_id, sw.name, sw.version, sw.source FROM agent_packages ap
		JOIN software_packages sw ON sw.id = ap.package_id
		JOIN agent_hardware h ON h.inv_no = ap.agent_no
		JOIN agents a ON a.id = h.agent_id
		WHERE ap.package_id IN (` + intList(ids) + `) AND a.revoked_at IS NULL AND ` + scope.where("a.site_id", l.add) + `
		ORDER BY a.hostname, a.id, sw.version_key`
	rows, err := s.reader(ctx).QueryContext(ctx, q, l.args...)
	if err != nil {
		return nil, fmt.Errorf("software holders of %s: %w", name, err)
	}
	defer rows.Close()
	out := []Holding{}
	for rows.Next() {
		var h Holding
		var site sql.NullString
		if err := rows.Scan(&h.AgentID, &h.Hostname, &site, &h.Name, &h.Version, &h.Source); err != nil {
			return nil, fmt.Errorf("software holders of %s: %w", name, err)
		}
		h.SiteID = site.String
		out = append(out, h)
	}
	return out, rows.Err()
}
