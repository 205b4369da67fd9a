package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The checks section's markers in the report.
const (
	checksBegin = "<!-- checks:begin (written by patchbay-loadgen bench --only checks; rewrites only this section) -->"
	checksEnd   = "<!-- checks:end -->"
)

// checksTarget is how many rows per unchanged result still meet the target
// "results that did not change cost no database write": the difference
// between the passing phase and the idle floor, per result, must stay
// below it (the floor itself moves a little between windows).
const checksTarget = 0.01

// extraRowsPerResult is the rows written per result received in phase p
// beyond the idle floor's rate.
func extraRowsPerResult(p, floor checksPhase) float64 {
	if p.sent == 0 {
		return 0
	}
	return (p.perSec(p.rows()) - floor.perSec(floor.rows())) / p.perSec(p.sent)
}

// checksMet reports whether the passing phase met the target.
func (r *checksResults) checksMet() (bool, bool) {
	if len(r.phases) < 2 || r.phases[1].sent == 0 {
		return false, false
	}
	return extraRowsPerResult(r.phases[1], r.phases[0]) < checksTarget, true
}

// renderChecks renders the checks section, markers included.
func renderChecks(r *checksResults) string {
	var w strings.Builder
	o := r.opts
	co := o.checks
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	row := func(cells ...string) { p("| %s |\n", strings.Join(cells, " | ")) }
	m := r.machine
	partCmd := fmt.Sprintf("`patchbay-loadgen bench --only checks --checks-agents %d --procs %d --checks-interval %v --checks-window %v --checks-flip %g`",
		co.agents, o.procs, co.interval, co.window, co.flip)

	p("%s\n\n## Checks on every agent (policies)\n\n", checksBegin)
	p("Issue 17: one policy (a built-in check) on %s simulated agents, each reporting its result every %v, spread over the interval; "+
		"the relay's CPU and the database's writes while every result passes as before, next to the same relay idle and to a run where a share of the results changes state. "+
		"Measured on %s UTC on %s (%d logical cores, %s, %s, %s), relay, PostgreSQL %s and agents processes on the same machine, by\n\n```\n%s\n```\n\n"+
		"(`BENCH_ONLY=checks make bench` runs the same with %s agents; `BENCH_CHECKS_AGENTS` scales it). `--only checks` rewrites only this section; "+
		"the full `make bench` does not run it.\n\n",
		thousands(co.agents), co.interval, r.started.Format("2006-01-02 15:04"), m.cpu, m.ncpu, m.mem, m.kernel, m.goVersion, orDash(r.pg), r.cmd, thousands(19000))
	if r.loadBefore != "" {
		p("Load average (1, 5, 15 min) at the start: %s; at the end: %s (the machine is shared: other work running shows here).\n\n", r.loadBefore, orDash(r.loadAfter))
	}
	met, _ := r.checksMet()
	row("Phase", "Results received / s (changed)", "Relay CPU", "Rows written / s", "Commits / s", "WAL / s", "Rows per result beyond the idle floor")
	row("---", "---", "---", "---", "---", "---", "---")
	for i, ph := range r.phases {
		extra := "—"
		if i > 0 && ph.sent > 0 {
			extra = fmt.Sprintf("%.4f", extraRowsPerResult(ph, r.phases[0]))
			if i == 1 {
				target := fmt.Sprintf(" (target < %g: %s)", checksTarget, status(met))
				extra = "**" + extra + "**" + target
			}
		}
		row(ph.name, fmt.Sprintf("%.1f (%.2f)", ph.perSec(ph.sent), ph.perSec(ph.changed)),
			fmt.Sprintf("%.1f %% of a core", 100*ph.relayCPU.Seconds()/max(ph.wall.Seconds(), 1e-9)),
			fmt.Sprintf("%.1f", ph.perSec(ph.rows())), fmt.Sprintf("%.1f", ph.perSec(ph.db.commits)),
			fmt.Sprintf("%.1f KiB", ph.perSec(ph.db.wal)/1024), extra)
	}
	p("\nCommand of every row: %s.\n\n### Details\n\n", partCmd)
	p("- Set-up: PostgreSQL %s started for the run (fsync off, as in the tier part), a fresh relay on it (`--db`, `--tier-key-file`, no NATS), "+
		"%s agents enrolled through it in %s, held by %d agents processes (source addresses 127.0.4.10 upwards), all online in %s.\n",
		orDash(r.pg), thousands(co.agents), secs(r.enroll), o.procs, secs(r.connect))
	p("- The database's writes are PostgreSQL's own counts for the relay's database, read before and after each window: rows written = " +
		"`tup_inserted + tup_updated + tup_deleted` of `pg_stat_database`, commits = `xact_commit` (read-only transactions included), WAL = the " +
		"difference of `pg_current_wal_lsn()` (the whole cluster's). They count every write, whichever path makes it (check events and states, " +
		"alerts, last-seen times, job leases), which a counter in the relay (the store's ObserveTx hook, /metrics `patchbay_store_tx_seconds`) " +
		"would not: some writes are single statements outside a transaction. PostgreSQL's statistics reach `pg_stat_database` up to 10 s late (an idle backend's): " +
		"each window starts 15 s after its phase's state was reached, so the writes of the phase before do not land in it.\n")
	p("- The relay's CPU is utime+stime of its process (/proc/PID/stat) over the window, as a share of one core.\n")
	p("- Each simulated agent (cmd/patchbay-loadgen/checksagent.go) asks for its policies on every welcome (`policies_request`), keeps the set the relay sends, " +
		"and reports one `check_results` message per policy interval at its own place in the interval (from a hash of its ID), as agent/checks would after its first run; " +
		"its first results go at once when the policy arrives. It runs no check: the figures are the relay's and the database's, not an endpoint's.\n")
	if len(r.phases) > 1 {
		ph := r.phases[1]
		p("- Warm-up of the passing phase: the policy created through the API, then until `check_states` held a row for every agent (each agent's first result is a change from nothing): %s. "+
			"The relay keeps each agent's last state in memory (server/checks.go) and stores a result only when the state changes; an unchanged result moves its last-checked time in memory only.\n",
			secs(ph.warmup))
		if ph.agentsWithPolicy > 0 {
			p("- In the passing window the agents held the policy on %s agents, sent %s results and the relay acknowledged %s.\n",
				thousands(int(ph.agentsWithPolicy)), thousands(int(ph.sent)), thousands(int(ph.acked)))
		}
	}
	if len(r.phases) > 2 {
		ph := r.phases[2]
		if ph.changed > 0 {
			p("- With %g %% of the results changing state: %.1f rows per changed result beyond the idle floor (the check event, the agent's check state, and the alert "+
				"a failure opens or a pass resolves, with its history).\n",
				ph.flip*100, (ph.perSec(ph.rows())-r.phases[0].perSec(r.phases[0].rows()))/ph.perSec(ph.changed))
		}
	}
	for _, s := range problems(r.notes, r.logs) {
		p("- %s\n", s)
	}
	p("\n%s\n", checksEnd)
	return w.String()
}

// writeChecksOnly rewrites the checks section of the report at path and
// keeps the rest of it.
func writeChecksOnly(path string, r *checksResults) error {
	return writeSectionOnly(path, "checks", checksBegin, checksEnd, renderChecks(r))
}

// writeSectionOnly rewrites one part's section (between begin and end) of
// the report at path and keeps the rest of it; a report that does not exist
// yet gets a title and a line saying only --only part ran.
func writeSectionOnly(path, part, begin, end, section string) error {
	raw, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc := string(raw)
	if doc == "" {
		doc = fmt.Sprintf("# Benchmarks\n\nOnly the %s part has been run (`patchbay-loadgen bench --only %s`); `make bench` adds the other figures.\n", part, part)
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(path, []byte(spliceSection(doc, begin, end, section)), 0o644)
}

// printChecksSummary prints the checks figures on stdout.
func printChecksSummary(r *checksResults) {
	for _, ph := range r.phases {
		fmt.Printf("checks, %s: relay CPU %.1f %% of a core, %.1f rows written/s, results %.0f/s (%.1f changed/s)\n",
			ph.name, 100*ph.relayCPU.Seconds()/max(ph.wall.Seconds(), 1e-9), ph.perSec(ph.rows()), ph.perSec(ph.sent), ph.perSec(ph.changed))
	}
	if met, ok := r.checksMet(); ok {
		fmt.Printf("checks: unchanged results cost no database write: %s\n", status(met))
	}
}
