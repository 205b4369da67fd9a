package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for the database size
	"github.com/patchbay/patchbay/server/store"
	"github.com/spf13/pflag"
)

// The inventory part (issue 17), only with --only inventory: the relay's
// store (server/store, as the relay's software writer calls it: one agent
// after the other) on SQLite and on a PostgreSQL started for the run. For
// --inventory-agents agents with --inventory-packages packages each it
// measures the first full round (every list new), a round with every list
// unchanged (same hash: one read each, no write), a round where one package
// of every agent was upgraded (diff, one delete, one insert, one history
// row), the database size, the load average around each engine's run, and the selector
// software=openssl,software.version<3.0.14 as the relay resolves it
// (Store.InventoryMatch), against the 200 ms target.

const (
	inventoryBegin = "<!-- inventory:begin (written by patchbay-loadgen bench --only inventory; rewrites only this section) -->"
	inventoryEnd   = "<!-- inventory:end -->"
	// inventoryQueryTarget is issue 17's target for the selector.
	inventoryQueryTarget = 200 * time.Millisecond
	inventoryQueries     = 7
	// inventoryBatch is the relay's software writer's largest batch
	// (server.softwareBatch): a fleet reporting at once is stored so.
	inventoryBatch = 64
)

type inventoryOptions struct {
	agents, packages int
}

func inventoryFlags(f *pflag.FlagSet, o *inventoryOptions) {
	f.IntVar(&o.agents, "inventory-agents", 19000, "inventory part: simulated agents")
	f.IntVar(&o.packages, "inventory-packages", 1500, "inventory part: packages per agent")
}

func (o inventoryOptions) check() error {
	if o.agents < 10 || o.packages < 2 || o.packages > 20000 {
		return errors.New("--inventory-agents at least 10, --inventory-packages 2-20000")
	}
	return nil
}

type inventoryEngine struct {
	name                      string
	first, unchanged, upgrade time.Duration
	bytes                     int64
	rows                      int64
	queries                   []time.Duration
	matched, wantMatched      int
	loadBefore, loadAfter     string // /proc/loadavg around the engine's run
	err                       error
}

type inventoryResults struct {
	started time.Time
	opts    inventoryOptions
	machine machineInfo
	engines []inventoryEngine
	cmd     string
}

// opensslVersions cycle over the agents; the first two are before 3.0.14.
var opensslVersions = []string{"3.0.11-1~deb12u2", "3.0.13-1", "3.0.14-1", "3.0.15-1"}

// benchPackages is agent i's list: openssl and packages-1 others.
func benchPackages(i, n int, upgraded bool) []store.Package {
	p := make([]store.Package, 0, n)
	v := opensslVersions[i%len(opensslVersions)]
	if upgraded {
		v += "+fix1"
	}
	p = append(p, store.Package{Name: "openssl", Version: v, Source: "dpkg"})
	for j := 1; j < n; j++ {
		p = append(p, store.Package{Name: fmt.Sprintf("lib-bench-%05d", j), Version: fmt.Sprintf("%d.%d.%d-%d", j%7, (i+j)%40, j%13, i%3+1), Source: "dpkg"})
	}
	slices.SortFunc(p, func(a, b store.Package) int { return strings.Compare(a.Name, b.Name) })
	return p
}

func runInventoryOnly(ctx context.Context, o benchOptions) error {
	r := &inventoryResults{started: time.Now().UTC(), opts: o.inv, machine: machine(), cmd: commandLine()}
	dir := filepath.Join(o.cacheDir, "inventory")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sqlitePath := filepath.Join(dir, "inventory.db")
	r.engines = append(r.engines, inventoryOn(ctx, "SQLite", sqlitePath, o.inv, func() (int64, error) {
		var n int64
		for _, suffix := range []string{"", "-wal"} {
			if st, err := os.Stat(sqlitePath + suffix); err == nil {
				n += st.Size()
			}
		}
		return n, nil
	}))
	pg := &tierBench{o: o, r: &tierResults{}}
	defer pg.cleanup()
	if err := pg.startPostgres(ctx); err != nil {
		r.engines = append(r.engines, inventoryEngine{name: "PostgreSQL", err: err})
	} else {
		r.engines = append(r.engines, inventoryOn(ctx, "PostgreSQL "+pg.r.pg, pg.db, o.inv, func() (int64, error) {
			db, err := sql.Open("pgx", pg.db)
			if err != nil {
				return 0, err
			}
			defer db.Close()
			var n int64
			err = db.QueryRowContext(ctx, `SELECT pg_database_size(current_database())`).Scan(&n)
			return n, err
		}))
	}
	pg.cleanup()
	if err := writeInventoryOnly(o.out, r); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	step("inventory section written to %s", o.out)
	for _, e := range r.engines {
		fmt.Println(inventoryLine(e, r.opts))
	}
	return nil
}

// inventoryOn runs the rounds and the queries on one engine.
func inventoryOn(ctx context.Context, name, url string, o inventoryOptions, size func() (int64, error)) (e inventoryEngine) {
	e = inventoryEngine{name: name, loadBefore: loadAvg()}
	defer func() { e.loadAfter = loadAvg() }()
	st, err := store.Open(ctx, url)
	if err != nil {
		e.err = err
		return e
	}
	defer st.Close()
	ids := make([]string, o.agents)
	for i := range ids {
		ids[i] = store.NewID()
	}
	round := func(label string, upgraded bool, hash func(i int) string) (time.Duration, error) {
		step("inventory: %s, %s round over %d agents", name, label, o.agents)
		start := time.Now()
		for lo := 0; lo < len(ids); lo += inventoryBatch {
			var lists []store.SoftwareList
			for i := lo; i < min(lo+inventoryBatch, len(ids)); i++ {
				lists = append(lists, store.SoftwareList{AgentID: ids[i], Hash: hash(i), Pkgs: benchPackages(i, o.packages, upgraded)})
			}
			if _, err := st.PutSoftwareBatch(ctx, lists, time.Now()); err != nil {
				return 0, err
			}
		}
		return time.Since(start), nil
	}
	if e.first, err = round("first", false, func(i int) string { return fmt.Sprintf("v1-%d", i) }); err != nil {
		e.err = err
		return e
	}
	if e.unchanged, err = round("unchanged", false, func(i int) string { return fmt.Sprintf("v1-%d", i) }); err != nil {
		e.err = err
		return e
	}
	if e.upgrade, err = round("upgrade", true, func(i int) string { return fmt.Sprintf("v2-%d", i) }); err != nil {
		e.err = err
		return e
	}
	if e.bytes, err = size(); err != nil {
		e.err = err
		return e
	}
	e.rows = int64(o.agents) * int64(o.packages)
	cond := []store.InvCond{{Kind: store.CondSoftware, Names: []string{"openssl"}, Versions: []store.VersionCmp{{Op: "<", Version: "3.0.14"}}}}
	for i := range o.agents {
		if i%len(opensslVersions) < 2 {
			e.wantMatched++
		}
	}
	for range inventoryQueries {
		start := time.Now()
		set, err := st.InventoryMatch(ctx, cond)
		if err != nil {
			e.err = err
			return e
		}
		e.queries = append(e.queries, time.Since(start))
		e.matched = len(set)
	}
	return e
}

func (e inventoryEngine) median() time.Duration {
	if len(e.queries) == 0 {
		return 0
	}
	q := slices.Clone(e.queries)
	slices.Sort(q)
	return q[len(q)/2]
}

func inventoryLine(e inventoryEngine, o inventoryOptions) string {
	if e.err != nil {
		return fmt.Sprintf("%s: **failed**: %v", e.name, e.err)
	}
	verdict := "meets"
	if e.median() > inventoryQueryTarget || e.matched != e.wantMatched {
		verdict = "**misses**"
	}
	return fmt.Sprintf("%s: first round %s (%.0f packages/s), unchanged round %s, one upgrade per agent %s; database %.1f MiB (%d package rows); software=openssl,software.version<3.0.14: median %d ms of %d (max %d ms), %d agents (want %d): %s the %d ms target; load average %s before, %s after",
		e.name, secs(e.first), float64(e.rows)/max(e.first.Seconds(), 1e-9), secs(e.unchanged), secs(e.upgrade),
		float64(e.bytes)/(1<<20), e.rows, e.median().Milliseconds(), len(e.queries), slices.Max(e.queries).Milliseconds(),
		e.matched, e.wantMatched, verdict, inventoryQueryTarget.Milliseconds(), e.loadBefore, e.loadAfter)
}

func renderInventory(r *inventoryResults) string {
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	p("%s\n## Inventory (issue 17)\n\n", inventoryBegin)
	m := r.machine
	p("Run %s on %s (%d CPUs, %s RAM, %s, %s): `%s`.\n\n", r.started.Format(time.RFC3339), m.cpu, m.ncpu, m.mem, m.kernel, m.goVersion, r.cmd)
	p("%d simulated agents with %d packages each, stored through `server/store` the way the relay's software writer does when a fleet reports at once (`PutSoftwareBatch`, %d lists per transaction, each diffed against the stored one). Rounds: the first (every list new: inserts only, no history, the first list being the baseline); one with every list unchanged (same hash: one read, no write); one where one package of every agent was upgraded (one delete, one insert, one history row each). Lists are stored as pairs of integers (agent number, package id) in `agent_packages` over one row per distinct package in `software_packages` (migration 00028); the simulated agents hold 120 versions of each package name (180,000 distinct packages at 1,500 names), which the first agents of the first round add. The query is `software=openssl,software.version<3.0.14` as the relay resolves it (`Store.InventoryMatch`: the package ids from `software_packages (name_key, version_key)`, then the agents from `agent_packages (package_id, agent_no)`), %d times.\n\n",
		r.opts.agents, r.opts.packages, inventoryBatch, inventoryQueries)
	for _, e := range r.engines {
		p("- %s\n", inventoryLine(e, r.opts))
	}
	p("\n%s\n", inventoryEnd)
	return w.String()
}

// writeInventoryOnly rewrites the inventory section of the report at path
// and keeps the rest of it.
func writeInventoryOnly(path string, r *inventoryResults) error {
	raw, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc := string(raw)
	if doc == "" {
		doc = "# Benchmarks\n\nOnly the inventory part has been run (`patchbay-loadgen bench --only inventory`); `make bench` adds the other figures.\n"
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(path, []byte(spliceSection(doc, inventoryBegin, inventoryEnd, renderInventory(r))), 0o644)
}
