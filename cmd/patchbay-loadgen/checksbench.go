package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for pg_stat_database
	"github.com/spf13/pflag"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/backoff"
)

// The checks part of the bench (issue 17, "Performance"), --only checks:
//
//  1. a PostgreSQL started for the run (tier.go's startPostgres) and a
//     fresh relay on it (--db, --tier-key-file): PostgreSQL counts every
//     row the relay writes and every byte of WAL, whichever code path
//     writes them (pg_stat_database, pg_current_wal_lsn);
//  2. --checks-agents agents enrolled through it, held by --procs agents
//     processes with --checks-flip-file (checksagent.go): they ask for
//     their policies on every welcome, as agent/checks does;
//  3. idle, no policy: over --checks-window, the relay's CPU (utime+stime
//     from /proc/PID/stat) and the database's rows written, commits and
//     WAL per second (the floor: heartbeats, last-seen times);
//  4. one policy over every agent (builtin:disk-space, --checks-interval):
//     the warm-up lasts until every agent's first result is stored
//     (check_states has a row per agent); then over --checks-window, every
//     result passing as before: the same figures, and the results per
//     second the agents sent. Target: no write for unchanged results;
//  5. the same with --checks-flip of the results changing state (passed
//     <-> failed): the writes a change costs (its check event, its state,
//     the alert it opens or resolves), which shows the target's figure is
//     not a relay that writes nothing at all.

// checksOptions are the options of the checks part.
type checksOptions struct {
	agents           int
	interval, window time.Duration
	flip             float64
}

func checksFlags(f *pflag.FlagSet, o *checksOptions) {
	f.IntVar(&o.agents, "checks-agents", 19000, "checks part: simulated agents (spread over --procs agents processes)")
	f.DurationVar(&o.interval, "checks-interval", time.Minute, "checks part: the policy's check interval (10s to 1h)")
	f.DurationVar(&o.window, "checks-window", 2*time.Minute, "checks part: how long each phase is measured, after its warm-up")
	f.Float64Var(&o.flip, "checks-flip", 0.01, "checks part: share of results that change state in the last phase (0-1)")
}

func (o checksOptions) check(procs int) error {
	if o.agents < 1 || o.window <= 0 || procs < 1 || procs > 200 {
		return errors.New("--checks-agents and --checks-window must be positive, --procs 1-200")
	}
	if o.interval < 10*time.Second || o.interval > time.Hour {
		return fmt.Errorf("--checks-interval %v: want 10s to 1h (a policy's interval)", o.interval)
	}
	if o.flip <= 0 || o.flip > 1 {
		return fmt.Errorf("--checks-flip %v: want a share above 0 and at most 1", o.flip)
	}
	if per := (o.agents + procs - 1) / procs; per > 18000 {
		return fmt.Errorf("--checks-agents %d over --procs %d is %d links per process; the open-file limit is 20,000: raise --procs", o.agents, procs, per)
	}
	return nil
}

// pgCounters are the database's counters at one moment.
type pgCounters struct {
	commits, inserted, updated, deleted, wal int64
}

// checksPhase is what one phase measured.
type checksPhase struct {
	name                 string
	wall, relayCPU       time.Duration
	db                   pgCounters // deltas
	sent, changed, acked int64      // check results, from the agents' counters
	online               int        // agents online at the end
	agentsWithPolicy     int64
	warmup               time.Duration // before the window: until the phase's state was reached
	relayRSS             int64         // KiB, at the end
	flip                 float64
}

func (p checksPhase) perSec(n int64) float64 { return float64(n) / max(p.wall.Seconds(), 1e-9) }

// rows returns the rows written (inserted, updated, deleted).
func (p checksPhase) rows() int64 { return p.db.inserted + p.db.updated + p.db.deleted }

// checksResults is everything the checks part measured.
type checksResults struct {
	started               time.Time
	opts                  benchOptions
	machine               machineInfo
	cmd, pg               string
	loadBefore, loadAfter string
	enroll, connect       time.Duration
	phases                []checksPhase // idle, passing, changing
	notes                 []string
	logs                  []logSummary
}

func (r *checksResults) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// checksBench is one run of the checks part.
type checksBench struct {
	o                    benchOptions
	r                    *checksResults
	pg                   *tierBench // its PostgreSQL (startPostgres, cleanup)
	dir, logDir, dataDir string
	listen, server, fp   string
	flipFile, ids        string
	relay                *child
	health               *health
	agents               fleet
	db                   *sql.DB
}

// runChecksOnly runs the checks part and rewrites its section of --out.
func runChecksOnly(ctx context.Context, o benchOptions, logDir string) error {
	r, err := runChecks(ctx, o, logDir)
	if err != nil {
		return err
	}
	if err := writeChecksOnly(o.out, r); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	step("checks section written to %s", o.out)
	printChecksSummary(r)
	return nil
}

// runChecks runs the checks part.
func runChecks(ctx context.Context, o benchOptions, logDir string) (*checksResults, error) {
	c := &checksBench{o: o, r: &checksResults{started: time.Now().UTC(), opts: o, machine: machine()},
		dir: filepath.Join(o.cacheDir, "checks"), logDir: filepath.Join(logDir, "checks")}
	c.pg = &tierBench{o: o, r: &tierResults{}}
	defer c.cleanup()
	c.r.loadBefore = loadAvg()
	if err := c.run(ctx); err != nil {
		return nil, fmt.Errorf("checks: %w", err)
	}
	if _, ok := c.r.checksMet(); !ok {
		c.r.note("The passing phase received no results: the target could not be measured.")
	}
	c.r.loadAfter = loadAvg()
	c.cleanup()
	names := []string{"relay.log"}
	for i := range o.procs {
		names = append(names, fmt.Sprintf("agents-%d.log", i))
	}
	for _, name := range names {
		warn, errs, emfile, sample := scanLog(filepath.Join(c.logDir, name))
		c.r.logs = append(c.r.logs, logSummary{name: "checks/" + name, warn: warn, errors: errs, emfile: emfile, sample: sample})
	}
	c.r.cmd = commandLine()
	return c.r, nil
}

func (c *checksBench) run(ctx context.Context) error {
	co := c.o.checks
	for _, d := range []string{c.dir, c.logDir} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if err := c.pg.startPostgres(ctx); err != nil {
		return err
	}
	c.r.pg = c.pg.r.pg
	var err error
	if c.db, err = sql.Open("pgx", c.pg.db); err != nil {
		return err
	}
	c.db.SetMaxOpenConns(1)
	key := filepath.Join(c.dir, "tier.key")
	if out, err := exec.CommandContext(ctx, c.o.serverBin, "tier-key", "new", key).CombinedOutput(); err != nil {
		return fmt.Errorf("patchbay-server tier-key new: %w: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	c.listen = "127.0.0.1:" + strconv.Itoa(port)
	c.server = "https://" + c.listen
	c.dataDir = filepath.Join(c.dir, "relay-data")
	logPath := filepath.Join(c.logDir, "relay.log")
	args := append(relayArgs(c.dataDir, c.listen, c.o.heartbeat), "--db", c.pg.db, "--tier-key-file", key)
	step("checks: relay on %s, PostgreSQL %s", c.listen, c.r.pg)
	if c.relay, err = startChild("relay", c.o.serverBin, args, logPath, syscall.SIGKILL, nil); err != nil {
		return err
	}
	if err := waitRelay(ctx, c.relay, c.dataDir, c.server, logPath, &c.fp, &c.health); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, c.o.serverBin, "admin-token", "--data", c.dataDir, "--db", c.pg.db,
		"--name", "loadgen-checks", "--ttl", "2h").Output()
	if err != nil {
		return fmt.Errorf("patchbay-server admin-token: %w", err)
	}
	cfg, err := client.Login(ctx, c.server, strings.TrimSpace(string(out)), c.fp)
	if err != nil {
		return err
	}
	cl, err := client.New(cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := c.enroll(ctx, cl); err != nil {
		return err
	}
	c.flipFile = filepath.Join(c.dir, "flip")
	if err := os.WriteFile(c.flipFile, []byte("0\n"), 0o600); err != nil {
		return err
	}
	if err := c.startAgents(ctx); err != nil {
		return err
	}

	// 3. Idle: the agents asked for their policies and got none. Each
	// window starts statsLag after its phase's state was reached.
	settle := statsLag
	step("checks: idle, no policy: %v settle, then %v", settle, co.window)
	if !backoff.Sleep(ctx, settle) {
		return ctx.Err()
	}
	idle, err := c.measure(ctx, "idle, no policy")
	if err != nil {
		return err
	}
	idle.warmup = settle
	c.r.phases = append(c.r.phases, idle)

	// 4. One policy; every result passes.
	step("checks: policy %q over every agent, interval %v", checksPolicy, co.interval)
	start := time.Now()
	if _, err := cl.CreatePolicy(ctx, apiv1.PolicyCreate{Name: checksPolicy, Target: "hostname=" + checksAgentHostnames + "*",
		Check: "builtin:disk-space", Params: map[string]string{"path": "/", "min_free_pct": "1"}, Interval: co.interval.String()}); err != nil {
		return fmt.Errorf("create the policy: %w", err)
	}
	if err := c.waitStates(ctx, co.agents, co.interval+3*time.Minute); err != nil {
		return err
	}
	warm := time.Since(start)
	step("  every agent's first result stored after %v", warm.Round(100*time.Millisecond))
	if !backoff.Sleep(ctx, statsLag) {
		return ctx.Err()
	}
	pass, err := c.measure(ctx, "one policy, every result passing as before")
	if err != nil {
		return err
	}
	pass.warmup = warm
	c.r.phases = append(c.r.phases, pass)

	// 5. A share of results changing.
	step("checks: %.2f %% of results changing state", co.flip*100)
	if err := os.WriteFile(c.flipFile, []byte(strconv.FormatFloat(co.flip, 'f', -1, 64)+"\n"), 0o600); err != nil {
		return err
	}
	// The processes read the file every second; the first changed
	// results reach the relay right after.
	if !backoff.Sleep(ctx, 3*time.Second) {
		return ctx.Err()
	}
	chg, err := c.measure(ctx, fmt.Sprintf("one policy, %s %% of results changing state", strconv.FormatFloat(co.flip*100, 'f', -1, 64)))
	if err != nil {
		return err
	}
	chg.flip, chg.warmup = co.flip, 3*time.Second
	c.r.phases = append(c.r.phases, chg)
	return nil
}

// statsLag is how long PostgreSQL may take to count a write in
// pg_stat_database: a busy backend reports its counts at most every
// second, an idle one within 10 s (PGSTAT_IDLE_INTERVAL). Each window
// starts this long after its phase began, so that the writes of the
// phase before it (enrolment, the first results) are not counted in it.
const statsLag = 15 * time.Second

// checksPolicy is the part's policy; checksAgentHostnames its agents'
// host name prefix.
const (
	checksPolicy         = "bench-disk"
	checksAgentHostnames = "checks-"
)

// enroll enrolls the part's agents.
func (c *checksBench) enroll(ctx context.Context, cl *client.Client) error {
	n := c.o.checks.agents
	tok, err := cl.CreateEnrollToken(ctx, apiv1.EnrollTokenRequest{Uses: &n, TTL: "1h"})
	if err != nil {
		return err
	}
	step("checks: enrolling %d agents", n)
	start := time.Now()
	recs, err := enrollMany(ctx, enrollOptions{server: c.server, fingerprint: c.fp, token: tok.Token, count: n,
		concurrency: 16, prefix: checksAgentHostnames}, io.Discard)
	if err != nil {
		return err
	}
	c.r.enroll = time.Since(start)
	c.ids = filepath.Join(c.dir, "identities.jsonl")
	return writeRecords(c.ids, recs)
}

// startAgents starts the agents processes and waits until /healthz counts
// every agent.
func (c *checksBench) startAgents(ctx context.Context) error {
	n, k := c.o.checks.agents, c.o.procs
	start := time.Now()
	for i := range k {
		from, count := share(n, k, i)
		p, err := startAgentsProc(c.o.loadgenBin, c.ids, c.server, fmt.Sprintf("127.0.4.%d", 10+i), from, count, 0,
			filepath.Join(c.logDir, fmt.Sprintf("agents-%d.log", i)), "--checks-flip-file", c.flipFile)
		if err != nil {
			return err
		}
		c.agents = append(c.agents, p)
	}
	_, d, err := c.health.waitOnline(ctx, start, n, 100*time.Millisecond, 3*time.Minute, c.agents.check)
	if err != nil {
		return err
	}
	if d == 0 {
		return fmt.Errorf("not every agent online within 3 minutes (%s); see %s", errorSummary(c.agents.sum()), c.logDir)
	}
	c.r.connect = d
	step("  %d agents online in %.1f s", n, d.Seconds())
	return nil
}

// waitStates waits until the store holds a check state for n agents.
func (c *checksBench) waitStates(ctx context.Context, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	have := 0
	for time.Now().Before(deadline) {
		if err := c.agents.check(); err != nil {
			return err
		}
		if err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM check_states`).Scan(&have); err != nil {
			return fmt.Errorf("count check states: %w", err)
		}
		if have >= n {
			return nil
		}
		if !backoff.Sleep(ctx, time.Second) {
			return ctx.Err()
		}
	}
	return fmt.Errorf("%d of %d agents' first check results stored within %v", have, n, timeout)
}

// counters reads the database's counters (a fresh statistics snapshot).
func (c *checksBench) counters(ctx context.Context) (pgCounters, error) {
	var p pgCounters
	if _, err := c.db.ExecContext(ctx, `SELECT pg_stat_clear_snapshot()`); err != nil {
		return p, err
	}
	err := c.db.QueryRowContext(ctx, `SELECT xact_commit, tup_inserted, tup_updated, tup_deleted,
		pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint FROM pg_stat_database WHERE datname = current_database()`).
		Scan(&p.commits, &p.inserted, &p.updated, &p.deleted, &p.wal)
	if err != nil {
		return p, fmt.Errorf("read pg_stat_database: %w", err)
	}
	return p, nil
}

// measure measures one phase over --checks-window.
func (c *checksBench) measure(ctx context.Context, name string) (checksPhase, error) {
	ph := checksPhase{name: name}
	pid := c.relay.pid()
	db0, err := c.counters(ctx)
	if err != nil {
		return ph, err
	}
	cpu0, err := procCPU(pid)
	if err != nil {
		return ph, err
	}
	a0 := c.agents.sum().Checks.add(nil)
	t0 := time.Now()
	for end := t0.Add(c.o.checks.window); time.Now().Before(end); {
		if err := c.agents.check(); err != nil {
			return ph, err
		}
		if !c.relay.alive() {
			return ph, fmt.Errorf("the relay exited (%v); see %s", c.relay.err, c.logDir)
		}
		if !backoff.Sleep(ctx, min(time.Second, time.Until(end))) {
			return ph, ctx.Err()
		}
	}
	cpu1, err := procCPU(pid)
	if err != nil {
		return ph, err
	}
	ph.wall = time.Since(t0)
	db1, err := c.counters(ctx)
	if err != nil {
		return ph, err
	}
	sum := c.agents.sum()
	a1 := sum.Checks.add(nil)
	ph.relayCPU = cpu1 - cpu0
	ph.db = pgCounters{commits: db1.commits - db0.commits, inserted: db1.inserted - db0.inserted,
		updated: db1.updated - db0.updated, deleted: db1.deleted - db0.deleted, wal: db1.wal - db0.wal}
	if a0 != nil && a1 != nil {
		ph.sent, ph.changed, ph.acked = a1.Sent-a0.Sent, a1.Changed-a0.Changed, a1.Acked-a0.Acked
		ph.agentsWithPolicy = a1.Agents
	}
	ph.online = int(sum.Connected)
	ph.relayRSS, _ = procStatus(pid, "VmRSS")
	step("  %s: relay CPU %.1f %% of a core, %.1f rows written/s, %.1f commits/s, WAL %.1f KiB/s; results %.0f/s, changed %.1f/s",
		name, 100*ph.relayCPU.Seconds()/ph.wall.Seconds(), ph.perSec(ph.rows()), ph.perSec(ph.db.commits), ph.perSec(ph.db.wal)/1024,
		ph.perSec(ph.sent), ph.perSec(ph.changed))
	return ph, nil
}

// cleanup stops the agents, the relay and PostgreSQL.
func (c *checksBench) cleanup() {
	if len(c.agents) > 0 {
		c.agents.stop(20 * time.Second)
		c.agents = nil
	}
	if c.relay != nil && c.relay.alive() {
		c.relay.stop(10 * time.Second)
	}
	if c.db != nil {
		c.db.Close()
		c.db = nil
	}
	c.pg.cleanup()
}
