package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The tier section's markers in the report.
const (
	tierBegin = "<!-- tier:begin (written by patchbay-loadgen bench --only tier; rewrites only this section) -->"
	tierEnd   = "<!-- tier:end -->"
)

// Targets of issue 14.
const (
	tierJobRatioTarget = 1.5
	tierFailoverTarget = 30 * time.Second
)

// median is the warm jobs' median time and relay CPU per agent round trip
// (µs), and whether every run succeeded.
func (j tierJobs) median() (elapsed time.Duration, cpuPerAgent float64, ok bool) {
	res := jobResult{agents: j.agents, first: j.first, warm: j.warm}
	el, cpu, ok, _, _ := res.median()
	return el, float64(cpu.Nanoseconds()) / 1000 / float64(max(j.agents, 1)), ok
}

// jobRatio is the tier's median job time over the single relay's.
func (r *tierResults) jobRatio() float64 {
	t, _, _ := r.tier.median()
	s, _, _ := r.single.median()
	if s <= 0 {
		return 0
	}
	return float64(t) / float64(s)
}

func tierJobText(j tierJobs) string {
	el, cpu, ok := j.median()
	s := fmt.Sprintf("%d ms, median of %d warm jobs (%s); the first job: %d ms; relay CPU %.1f µs per agent round trip",
		el.Milliseconds(), len(j.warm), jobSpread(j.warm), j.first.elapsed.Milliseconds(), cpu)
	if j.relays > 1 {
		s += " (all relays together)"
	}
	if !ok || !j.first.ok {
		s += "; **some runs did not succeed**"
	}
	return s
}

// renderTier renders the tier section, markers included.
func renderTier(r *tierResults) string {
	var w strings.Builder
	o := r.opts
	to := o.tier
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	row := func(cells ...string) { p("| %s |\n", strings.Join(cells, " | ")) }
	m := r.machine
	n := thousands(to.agents)
	partCmd := fmt.Sprintf("`patchbay-loadgen bench --only tier --tier-agents %d --tier-relays %d`", to.agents, to.relays)

	p("%s\n\n## Relay tier (PostgreSQL, NATS)\n\n", tierBegin)
	p("Issue 14: relays sharing one PostgreSQL, their NATS embedded in the first. Measured on %s UTC on %s (%d logical cores, %s, %s, %s), "+
		"PostgreSQL %s started for the run (fsync off), every relay, agents process and PostgreSQL on the same machine, by\n\n```\n%s\n```\n\n"+
		"(`BENCH_ONLY=tier make bench` runs the same with %s agents; `BENCH_TIER_AGENTS` scales it). `--only tier` rewrites only this section.\n\n",
		r.started.Format("2006-01-02 15:04"), m.cpu, m.ncpu, m.mem, m.kernel, m.goVersion, r.pg, r.cmd, thousands(10000))
	if r.loadBefore != "" {
		p("Load average (1, 5, 15 min) at the start: %s; at the end: %s (the machine is shared: other work running shows here).\n\n", r.loadBefore, orDash(r.loadAfter))
	}
	row("Figure", "Result", "Target", "Status", "Peer, same run")
	row("---", "---", "---", "---", "---")
	_, sCPU, _ := r.single.median()
	_, tCPU, _ := r.tier.median()
	if r.tier.agents > 0 && r.single.agents > 0 {
		ratio := r.jobRatio()
		row(fmt.Sprintf("No-op job created -> every result stored, %s agents spread over %d relays (job created on B)", thousands(r.tier.agents), to.relays),
			tierJobText(r.tier), fmt.Sprintf("≤ %.1f× one relay", tierJobRatioTarget),
			status(ratio > 0 && ratio <= tierJobRatioTarget)+fmt.Sprintf(" (%.2f×)", ratio),
			"one relay on PostgreSQL: "+tierJobText(r.single))
		row("Relay CPU per agent round trip (utime+stime from /proc/PID/stat over the job)",
			fmt.Sprintf("%.1f µs over %d relays", tCPU, to.relays), "reported", "measured",
			fmt.Sprintf("one relay on PostgreSQL: %.1f µs (%.2f×)", sCPU, tCPU/max(sCPU, 0.001)))
	}
	held := 0
	for _, u := range r.idle {
		held += u.online
	}
	if len(r.idle) > 0 {
		var per, rss, cpu []string
		for _, u := range r.idle {
			per = append(per, fmt.Sprintf("%s %s", u.name, thousands(u.online)))
			perAgent := 0.0
			if u.online > 0 {
				perAgent = float64(u.idleKiB-u.restKiB) / float64(u.online)
			}
			rss = append(rss, fmt.Sprintf("%s %.1f KiB ((%s − %s at rest) / %s)", u.name, perAgent, kib(u.idleKiB), kib(u.restKiB), thousands(u.online)))
			cpu = append(cpu, fmt.Sprintf("%s %.2f %% of one core", u.name, pctOf(u.idleCPU, r.idleWindow)))
		}
		row(fmt.Sprintf("Agents held by %d relays", to.relays), fmt.Sprintf("%s online of %s started (%s)", thousands(held), n, strings.Join(per, ", ")),
			"100,000 on ≥ 6 relays", status(held >= 100000), "—")
		row("Relay RSS per idle agent, each relay", strings.Join(rss, "; "), "reported", "measured", "—")
		row(fmt.Sprintf("Idle relay CPU over %s (heartbeat %v)", secs(r.idleWindow), o.heartbeat), strings.Join(cpu, "; "), "reported", "measured", "—")
	}
	if r.killed != "" {
		res := "not all back: " + r.failoverErr
		ok := false
		if r.failoverErr == "" {
			res = fmt.Sprintf("**%s** until the survivors' /healthz count every agent (peak %s agents/s); the tier's presence (X-Online-Count on a survivor) "+
				"counted all %s by %s, its lowest meanwhile %s (the killed relay's keys stay until their TTL)",
				secs(r.backHealth), thousands(peakRate(r.movedSamples())), n, orDash(secsIf(r.backPresence)), thousands(r.presenceMin))
			ok = r.backHealth <= tierFailoverTarget && r.backPresence > 0 && r.backPresence <= tierFailoverTarget
		}
		row(fmt.Sprintf("SIGKILL of relay %s: its %s agents online on the others (from the kill)", r.killed, thousands(r.killedAgents)),
			res, fmt.Sprintf("≤ %s", secs(tierFailoverTarget)), status(ok), "—")
	}
	p("\nCommand of every row: %s.\n\n### Details\n\n", partCmd)
	p("- Set-up: %s agents enrolled through relay A in %s. One agents process per relay (source addresses 127.0.2.10 upwards), each with %s agents. "+
		"One relay: every agent given only A's address, all online in %s. The tier: relays B–%c started on empty data directories (CA from the database), "+
		"process i's agents given every relay's address with relay i first, all online in %s.\n",
		n, secs(r.enroll), thousands(to.agents/to.relays), secs(r.connectOne), 'A'+rune(to.relays-1), secs(r.connectAll))
	p("- Failed connection attempts of the agents (an attempt that fails goes to the next address of the agent's list, so failures on the first connection move agents off their first relay): "+
		"to relay A alone: %s; to the tier: %s; after the SIGKILL: %s.\n", errorSummary(r.failOne), errorSummary(r.failAll), errorSummary(r.failOver))
	if ex := errorExamples(r.failAll); ex != "" {
		p("- Latest failure of each kind connecting to the tier: %s.\n", ex)
	}
	p("- Jobs: the sysinfo plugin published with a throwaway key; the simulated agents answer each run at once without running it (the fleet part's no-op job). " +
		"Times are the job's created_at to ended_at as the relay stores them; the relay CPU is summed over every relay of the set-up, divided by the agents.\n")
	p("- The single-relay SQLite figures (a different run) are in the fleet section above: the same no-op job on one relay with SQLite.\n")
	if r.loadgenKiB > 0 {
		p("- Load generator: %d agents processes, %s RSS in total while the tier was idle.\n", to.relays, kib(r.loadgenKiB))
	}
	for _, u := range r.idle {
		p("- Relay %s: %d open file descriptors while idle.\n", u.name, u.fds)
	}
	p("- Scale: this run measured %s agents. One machine's tier is bounded by the open-file limit (20,000 per process: each relay and each agents "+
		"process holds one socket per agent), by memory (relay and load generator together about 100 KiB per agent, see the fleet part) and mostly by "+
		"CPU: every relay, every agents process and PostgreSQL share 2 cores, so the load generator's TLS and heartbeats compete with the relays; "+
		"the 100,000 agents of the issue need about 6 relays and 6 agents processes here and were not attempted.\n", n)
	for _, s := range problems(r.notes, r.logs) {
		p("- %s\n", s)
	}
	if len(r.failoverSample) > 0 {
		p("\nThe killed relay's agents back on the survivors (their /healthz less the %s they held before), at the end of each second from the SIGKILL:\n\n```\n%s```\n",
			thousands(to.agents-r.killedAgents), profile(r.movedSamples()))
	}
	p("\n%s\n", tierEnd)
	return w.String()
}

// movedSamples is the failover samples less the agents the survivors held
// before the kill: the killed relay's agents back on them.
func (r *tierResults) movedSamples() []sample {
	base := r.opts.tier.agents - r.killedAgents
	out := make([]sample, len(r.failoverSample))
	for i, s := range r.failoverSample {
		out[i] = sample{t: s.t, n: max(s.n-base, 0)}
	}
	return out
}

func secsIf(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return secs(d)
}

// writeTierOnly rewrites the tier section of the report at path and keeps
// the rest of it.
func writeTierOnly(path string, r *tierResults) error {
	raw, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc := string(raw)
	if doc == "" {
		doc = "# Benchmarks\n\nOnly the tier part has been run (`patchbay-loadgen bench --only tier`); `make bench` adds the other figures.\n"
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(path, []byte(spliceSection(doc, tierBegin, tierEnd, renderTier(r))), 0o644)
}

// printTierSummary prints the tier figures on stdout.
func printTierSummary(r *tierResults) {
	el1, cpu1, _ := r.single.median()
	el3, cpu3, _ := r.tier.median()
	fmt.Printf("no-op job, one relay (PostgreSQL): %v, %.1f µs CPU per agent\n", el1.Round(time.Millisecond), cpu1)
	fmt.Printf("no-op job, %d relays:              %v, %.1f µs CPU per agent (%.2f× one relay)\n", r.tier.relays, el3.Round(time.Millisecond), cpu3, r.jobRatio())
	if r.killed != "" {
		fmt.Printf("relay %s killed: %d agents back in %s (/healthz), %s (presence) %s\n", r.killed, r.killedAgents, secs(r.backHealth), secs(r.backPresence), r.failoverErr)
	}
}
