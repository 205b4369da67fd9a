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
	"sync"
	"time"
)

// Software lists are stored as pairs of integers (migration 00028): each
// distinct package once in software_packages, an agent's list as
// (agent_hardware.inv_no, software_packages.id) rows in agent_packages.

// StoredSoftwareHash returns the hash of the software list stored for an
// agent, "" when none is.
func (s *Store) StoredSoftwareHash(ctx context.Context, agentID string) (string, error) {
	h, _, err := s.storedSoftware(ctx, agentID)
	return h, err
}

// storedSoftware returns the stored list's hash and whether the agent has
// its inventory number.
func (s *Store) storedSoftware(ctx context.Context, agentID string) (string, bool, error) {
	var (
		h  string
		no sql.NullInt64
	)
	err := s.reader(ctx).QueryRowContext(ctx, `SELECT software_hash, inv_no FROM agent_hardware WHERE agent_id = $1`, agentID).Scan(&h, &no)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("software hash of agent %s: %w", agentID, err)
	}
	return h, no.Valid, nil
}

type pkgKey struct{ name, source string }

// softwareChanges turns what a new list cur added and deleted into history
// entries. A name (and source) with exactly one version before and one
// other after is an upgrade; anything else is installed or removed per
// version. The old list is cur - add + del, so its counts per name are
// derived rather than read.
func softwareChanges(agentID string, cur, add, del []Package, at time.Time) []SoftwareChange {
	byNVS := func(a, b Package) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Version, b.Version), strings.Compare(a.Source, b.Source))
	}
	add, del = slices.Clone(add), slices.Clone(del)
	slices.SortFunc(add, byNVS)
	slices.SortFunc(del, byNVS)
	curN, oldN := map[pkgKey]int{}, map[pkgKey]int{}
	for _, p := range del {
		curN[pkgKey{p.Name, p.Source}] = 0
	}
	for _, p := range cur {
		k := pkgKey{p.Name, p.Source}
		if _, ok := curN[k]; ok {
			curN[k]++
		}
	}
	for k, n := range curN {
		oldN[k] = n
	}
	for _, p := range add {
		oldN[pkgKey{p.Name, p.Source}]--
	}
	for _, p := range del {
		oldN[pkgKey{p.Name, p.Source}]++
	}
	var changes []SoftwareChange
	removed := map[pkgKey]Package{}
	for _, p := range del {
		k := pkgKey{p.Name, p.Source}
		if oldN[k] == 1 && curN[k] == 1 {
			removed[k] = p
			continue
		}
		changes = append(changes, SoftwareChange{AgentID: agentID, At: at, Change: ChangeRemoved, Name: p.Name, OldVersion: p.Version, Source: p.Source})
	}
	for _, p := range add {
		k := pkgKey{p.Name, p.Source}
		if o, ok := removed[k]; ok {
			changes = append(changes, SoftwareChange{AgentID: agentID, At: at, Change: ChangeUpgraded, Name: p.Name, OldVersion: o.Version, NewVersion: p.Version, Source: p.Source})
			continue
		}
		changes = append(changes, SoftwareChange{AgentID: agentID, At: at, Change: ChangeInstalled, Name: p.Name, NewVersion: p.Version, Source: p.Source})
	}
	slices.SortStableFunc(changes, func(a, b SoftwareChange) int { return strings.Compare(a.Name, b.Name) })
	return changes
}

// SoftwareList is one agent's software list (sorted, distinct) and its
// hash, as PutSoftware takes it.
type SoftwareList struct {
	AgentID string
	Hash    string
	Pkgs    []Package
}

// PutSoftware stores an agent's software list (sorted, distinct) with its
// hash: in one transaction it diffs the list against the stored one,
// deletes and inserts only what differs and appends the changes to the
// history. When hash equals the stored hash it writes nothing and returns
// 0. It returns the number of changes recorded. An agent's first list is
// its baseline: stored, with no history (28 million "installed" rows for
// a fleet's first round would say nothing).
func (s *Store) PutSoftware(ctx context.Context, agentID, hash string, pkgs []Package, at time.Time) (int, error) {
	n, err := s.PutSoftwareBatch(ctx, []SoftwareList{{AgentID: agentID, Hash: hash, Pkgs: pkgs}}, at)
	if err != nil {
		return 0, err
	}
	return n[0], nil
}

// PutSoftwareBatch is PutSoftware for several agents in one transaction
// (in agent ID order): the relay's writer takes what queued up while it
// was storing. Lists whose hash is the stored one are skipped before the
// transaction. It returns the changes recorded for each list, in order.
//
// Package ids come from the store's cache where it has them; the others
// are read, or inserted (the largest id plus one) under the inventory
// lock, which on PostgreSQL is taken first thing when the batch may need
// it (a package not cached, an agent without its number), so that relays
// writing at once neither collide on ids nor wait on each other's rows.
func (s *Store) PutSoftwareBatch(ctx context.Context, lists []SoftwareList, at time.Time) ([]int, error) {
	counts := make([]int, len(lists))
	if at.IsZero() {
		at = time.Now()
	}
	var todo []int
	ids := make([][]int64, len(lists))
	needLock := false
	for i, l := range lists {
		old, numbered, err := s.storedSoftware(ctx, l.AgentID)
		if err != nil {
			return nil, err
		}
		if old != l.Hash || l.Hash == "" {
			todo = append(todo, i)
			var missing bool
			ids[i], missing = s.pkgIDs.lookup(l.Pkgs)
			needLock = needLock || missing || !numbered
		}
	}
	if len(todo) == 0 {
		return counts, nil
	}
	slices.SortStableFunc(todo, func(a, b int) int { return strings.Compare(lists[a].AgentID, lists[b].AgentID) })
	var learned map[Package]int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		w := &softwareTx{s: s, ctx: ctx, tx: tx, learned: map[Package]int64{}, read: map[string]bool{}}
		if needLock {
			if err := w.lock(); err != nil {
				return err
			}
		}
		for _, i := range todo {
			n, err := w.put(lists[i], ids[i], at)
			if err != nil {
				return fmt.Errorf("agent %s: %w", lists[i].AgentID, err)
			}
			counts[i] = n
		}
		learned = w.learned
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store software: %w", err)
	}
	s.pkgIDs.addAll(learned) // only once committed: a rolled-back id may be given again
	return counts, nil
}

// softwareTx is one PutSoftwareBatch transaction.
type softwareTx struct {
	s       *Store
	ctx     context.Context
	tx      *sql.Tx
	learned map[Package]int64 // package ids read or given in this transaction
	read    map[string]bool   // names whose stored versions are all in learned
	locked  bool
	nextPkg int64 // the next package id to give, 0 until read
	nextNo  int64 // the next agent number to give, 0 until read
}

func (w *softwareTx) lock() error {
	if w.locked {
		return nil
	}
	w.locked = true
	return w.s.lockTx(w.ctx, w.tx, lockKeyInventory)
}

// Statement sizes: integers are written into the SQL (they are ours), so
// these statements have no parameters to parse and bind.
const (
	pairsPerInsert = 2000
	idsPerList     = 1000
	namesPerRead   = 400
	rowsPerInsert  = 300 // packages (6 parameters each) or history rows (7)
)

func (w *softwareTx) put(l SoftwareList, ids []int64, at time.Time) (int, error) {
	ctx, tx := w.ctx, w.tx
	if _, err := tx.ExecContext(ctx, `INSERT INTO agent_hardware (agent_id) VALUES ($1) ON CONFLICT (agent_id) DO NOTHING`, l.AgentID); err != nil {
		return 0, err
	}
	lock := ""
	if w.s.dialect == dialectPostgres {
		lock = " FOR UPDATE" // one writer per agent at a time
	}
	var (
		stored string
		no     sql.NullInt64
	)
	if err := tx.QueryRowContext(ctx, `SELECT software_hash, inv_no FROM agent_hardware WHERE agent_id = $1`+lock, l.AgentID).Scan(&stored, &no); err != nil {
		return 0, err
	}
	if stored == l.Hash && l.Hash != "" {
		return 0, nil
	}
	if err := w.resolve(l.Pkgs, ids); err != nil {
		return 0, err
	}
	var oldIDs []int64
	if no.Valid {
		var err error
		if oldIDs, err = w.agentPackageIDs(no.Int64); err != nil {
			return 0, err
		}
	} else {
		var err error
		if no.Int64, err = w.newAgentNumber(); err != nil {
			return 0, err
		}
	}
	// Sorted merge of the old and the new ids.
	cur := make([]int, len(ids)) // indexes into l.Pkgs, by id
	for i := range cur {
		cur[i] = i
	}
	slices.SortFunc(cur, func(a, b int) int { return cmp.Compare(ids[a], ids[b]) })
	var addIDs, delIDs []int64
	var add []Package
	i, j := 0, 0
	for i < len(cur) || j < len(oldIDs) {
		switch {
		case j == len(oldIDs) || i < len(cur) && ids[cur[i]] < oldIDs[j]:
			addIDs, add = append(addIDs, ids[cur[i]]), append(add, l.Pkgs[cur[i]])
			i++
		case i == len(cur) || oldIDs[j] < ids[cur[i]]:
			delIDs = append(delIDs, oldIDs[j])
			j++
		default:
			i, j = i+1, j+1
		}
	}
	var changes []SoftwareChange
	if len(oldIDs) > 0 || stored != "" { // an agent's first list is its baseline, not a change
		del, err := w.packages(delIDs)
		if err != nil {
			return 0, err
		}
		changes = softwareChanges(l.AgentID, l.Pkgs, add, del, at)
	}
	agentNo := strconv.FormatInt(no.Int64, 10)
	for chunk := range slices.Chunk(delIDs, idsPerList) {
		if _, err := tx.ExecContext(ctx, `DELETE FROM agent_packages WHERE agent_no = `+agentNo+` AND package_id IN (`+intList(chunk)+`)`); err != nil {
			return 0, err
		}
	}
	for chunk := range slices.Chunk(addIDs, pairsPerInsert) {
		var b strings.Builder
		b.WriteString(`INSERT INTO agent_packages (agent_no, package_id) VALUES `)
		for k, id := range chunk {
			if k > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(" + agentNo + "," + strconv.FormatInt(id, 10) + ")")
		}
		if _, err := tx.ExecContext(ctx, b.String()); err != nil {
			return 0, err
		}
	}
	for chunk := range slices.Chunk(changes, rowsPerInsert) {
		l := w.s.bulkArgs()
		var b strings.Builder
		b.WriteString(`INSERT INTO agent_software_history (agent_id, at, change, name, old_version, new_version, source) VALUES `)
		for k, c := range chunk {
			if k > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "(%s,%s,%s,%s,%s,%s,%s)", l.add(c.AgentID), l.add(dbTime(c.At)), l.add(c.Change), l.add(c.Name),
				l.add(c.OldVersion), l.add(c.NewVersion), l.add(c.Source))
		}
		if _, err := tx.ExecContext(ctx, b.String(), l.args...); err != nil {
			return 0, err
		}
	}
	softwareAt := "software_at"
	args := []any{l.Hash, len(l.Pkgs), l.AgentID, no.Int64}
	if len(addIDs) > 0 || len(delIDs) > 0 || stored == "" {
		softwareAt = "$5"
		args = append(args, dbTime(at))
	}
	_, err := tx.ExecContext(ctx, `UPDATE agent_hardware SET software_hash = $1, software_count = $2, inv_no = $4, software_at = `+softwareAt+` WHERE agent_id = $3`, args...)
	return len(changes), err
}

func (w *softwareTx) agentPackageIDs(no int64) ([]int64, error) {
	rows, err := w.tx.QueryContext(w.ctx, `SELECT package_id FROM agent_packages WHERE agent_no = $1 ORDER BY package_id`, no)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// newAgentNumber gives the agent being stored the next inventory number.
func (w *softwareTx) newAgentNumber() (int64, error) {
	if err := w.lock(); err != nil {
		return 0, err
	}
	if w.nextNo == 0 {
		if err := w.tx.QueryRowContext(w.ctx, `SELECT COALESCE(MAX(inv_no), 0) + 1 FROM agent_hardware`).Scan(&w.nextNo); err != nil {
			return 0, err
		}
	}
	w.nextNo++
	return w.nextNo - 1, nil
}

// resolve fills the ids (0: not cached) of pkgs: from this transaction's,
// then from the table (every version of the missing names, which are
// likely wanted next), then by inserting the packages still missing.
func (w *softwareTx) resolve(pkgs []Package, ids []int64) error {
	missing := func() []string {
		seen := map[string]bool{}
		var names []string
		for i, p := range pkgs {
			if ids[i] != 0 {
				continue
			}
			if id, ok := w.learned[p]; ok {
				ids[i] = id
				continue
			}
			if !seen[p.Name] {
				seen[p.Name] = true
				names = append(names, p.Name)
			}
		}
		return names
	}
	names := missing()
	if len(names) == 0 {
		return nil
	}
	if err := w.readPackages(names, false); err != nil {
		return err
	}
	if names = missing(); len(names) == 0 {
		return nil
	}
	if !w.locked {
		// Another relay may have added them before the lock was ours.
		if err := w.lock(); err != nil {
			return err
		}
		if err := w.readPackages(names, true); err != nil {
			return err
		}
	}
	if w.nextPkg == 0 {
		if err := w.tx.QueryRowContext(w.ctx, `SELECT COALESCE(MAX(id), 0) + 1 FROM software_packages`).Scan(&w.nextPkg); err != nil {
			return err
		}
	}
	missing() // what the second read found
	var fresh []Package
	for i, p := range pkgs {
		if ids[i] == 0 {
			if _, ok := w.learned[p]; !ok {
				w.learned[p] = w.nextPkg
				w.nextPkg++
				fresh = append(fresh, p)
			}
			ids[i] = w.learned[p]
		}
	}
	for chunk := range slices.Chunk(fresh, rowsPerInsert) {
		l := w.s.bulkArgs()
		var b strings.Builder
		b.WriteString(`INSERT INTO software_packages (id, name, version, source, name_key, version_key) VALUES `)
		for k, p := range chunk {
			if k > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "(%d,%s,%s,%s,%s,%s)", w.learned[p], l.add(p.Name), l.add(p.Version), l.add(p.Source),
				l.add(strings.ToLower(p.Name)), l.add(VersionKey(p.Version)))
		}
		if _, err := w.tx.ExecContext(w.ctx, b.String(), l.args...); err != nil {
			return fmt.Errorf("new packages: %w", err)
		}
	}
	return nil
}

// readPackages learns the ids of every stored version of names, but of
// those read before in this transaction unless again (what the
// transaction inserts it learns as it does).
func (w *softwareTx) readPackages(names []string, again bool) error {
	if !again {
		names = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return w.read[n] })
	}
	for _, n := range names {
		w.read[n] = true
	}
	for chunk := range slices.Chunk(names, namesPerRead) {
		l := w.s.bulkArgs()
		ph := make([]string, len(chunk))
		for i, n := range chunk {
			ph[i] = l.add(n)
		}
		rows, err := w.tx.QueryContext(w.ctx, `SELECT id, name, version, source FROM software_packages WHERE name IN (`+strings.Join(ph, ",")+`)`, l.args...)
		if err != nil {
			return fmt.Errorf("read packages: %w", err)
		}
		for rows.Next() {
			var (
				p  Package
				id int64
			)
			if err := rows.Scan(&id, &p.Name, &p.Version, &p.Source); err != nil {
				rows.Close()
				return fmt.Errorf("read packages: %w", err)
			}
			w.learned[p] = id
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read packages: %w", err)
		}
	}
	return nil
}

// packages returns the packages of ids (those removed from a list).
func (w *softwareTx) packages(ids []int64) ([]Package, error) {
	var out []Package
	for chunk := range slices.Chunk(ids, idsPerList) {
		rows, err := w.tx.QueryContext(w.ctx, `SELECT name, version, source FROM software_packages WHERE id IN (`+intList(chunk)+`)`)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var p Package
			if err := rows.Scan(&p.Name, &p.Version, &p.Source); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func intList(ids []int64) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	return b.String()
}

// bulkArgList numbers the parameters of a many-row statement: "?" on
// SQLite, where "$N" is a named parameter that SQLite looks up in a list
// once per use when parsing and the driver once per argument when binding
// (quadratic: most of the time of a 3,000-parameter INSERT), "$N" on
// PostgreSQL.
type bulkArgList struct {
	args []any
	pg   bool
}

func (s *Store) bulkArgs() *bulkArgList { return &bulkArgList{pg: s.dialect == dialectPostgres} }

func (l *bulkArgList) add(v any) string {
	l.args = append(l.args, v)
	if l.pg {
		return "$" + strconv.Itoa(len(l.args))
	}
	return "?"
}

// pkgIDCacheMax bounds the relay's cache of package ids (about 100 bytes
// each); when full it starts again.
const pkgIDCacheMax = 1 << 20

// pkgIDCache maps packages to their software_packages ids. Ids are never
// reused, so an entry stays true; only committed ids are added.
type pkgIDCache struct {
	mu sync.Mutex
	m  map[Package]int64
}

// lookup returns the cached ids of pkgs (0 when not cached) and whether
// any was not.
func (c *pkgIDCache) lookup(pkgs []Package) ([]int64, bool) {
	ids := make([]int64, len(pkgs))
	missing := false
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range pkgs {
		ids[i] = c.m[p]
		missing = missing || ids[i] == 0
	}
	return ids, missing
}

func (c *pkgIDCache) addAll(m map[Package]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m)+len(m) > pkgIDCacheMax {
		c.m = make(map[Package]int64, len(m))
	}
	for p, id := range m {
		c.m[p] = id
	}
}

func listSoftware(ctx context.Context, q readQuerier, agentID string) ([]Package, error) {
	rows, err := q.QueryContext(ctx, `SELECT p.name, p.version, p.source FROM agent_hardware h
		JOIN agent_packages ap ON ap.agent_no = h.inv_no
		JOIN software_packages p ON p.id = ap.package_id
		WHERE h.agent_id = $1 ORDER BY p.name, p.version, p.source`, agentID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Package
	for rows.Next() {
		var p Package
		if err := rows.Scan(&p.Name, &p.Version, &p.Source); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// ListSoftware returns an agent's stored software, sorted by name.
func (s *Store) ListSoftware(ctx context.Context, agentID string) ([]Package, error) {
	p, err := listSoftware(ctx, s.reader(ctx), agentID)
	if err != nil {
		return nil, fmt.Errorf("list software of agent %s: %w", agentID, err)
	}
	return p, nil
}
