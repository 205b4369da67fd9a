package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/patchbay/patchbay/server/authlimit"
)

// Markers around the auth section of the report.
const (
	authBegin = "<!-- auth:begin (written by patchbay-loadgen bench; --only auth rewrites only this section) -->"
	authEnd   = "<!-- auth:end -->"
)

// Target of issue 15: one login costs 50-100 ms of one core.
const (
	targetHashMin = 50 * time.Millisecond
	targetHashMax = 100 * time.Millisecond
)

// hashPerCPU is the CPU one hash cost, 0 when not measured.
func (r *authResults) hashPerCPU() time.Duration {
	if len(r.hashWall) == 0 {
		return 0
	}
	return r.hashCPU / time.Duration(len(r.hashWall))
}

// hashMet reports whether the CPU of one hash is within the target.
func (r *authResults) hashMet() bool {
	c := r.hashPerCPU()
	return c >= targetHashMin && c <= targetHashMax
}

// dist is "p50 A, p99 B (n N)" or "none".
func dist(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	return fmt.Sprintf("p50 %s, p99 %s (%d)", ms(pct(ds, 50)), ms(pct(ds, 99)), len(ds))
}

// cpuPct is cpu over wall in % of one core.
func cpuPct(cpu, wall time.Duration) string {
	if wall <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f %%", float64(cpu)/float64(wall)*100)
}

// floodText summarises a flood's answers: sent (rate), then each status.
func floodText(f *floodReport) string {
	if f == nil {
		return "—"
	}
	rate := 0.0
	if f.Seconds > 0 {
		rate = float64(f.Sent) / f.Seconds
	}
	s := fmt.Sprintf("%s sent in %.1f s (%.0f/s) from %d address(es): ", thousands(f.Sent), f.Seconds, rate, f.Sources)
	var parts []string
	for _, k := range statusKeys(f.Status) {
		part := fmt.Sprintf("**%s × %s**", thousands(f.Status[k]), k)
		if l, ok := f.LatencyMS[k]; ok {
			part += fmt.Sprintf(" (answered in p50 %.1f ms, p99 %.1f ms)", l.P50, l.P99)
		}
		parts = append(parts, part)
	}
	if len(parts) == 0 {
		parts = append(parts, "no answers")
	}
	s += strings.Join(parts, ", ")
	if f.Errors > 0 {
		s += fmt.Sprintf(", %s with no answer (`%s`)", thousands(f.Errors), strings.ReplaceAll(f.LastError, "`", "'"))
	}
	if f.Skipped > 0 {
		s += fmt.Sprintf(", %s not sent (every worker busy)", thousands(f.Skipped))
	}
	if f.RetryAfter > 0 {
		s += fmt.Sprintf("; largest Retry-After %d s", f.RetryAfter)
	}
	return s
}

// limiterBudget is how many wrong passwords for one user name, from
// sources addresses none of which the user signed in from, the relay's
// default limits let through to a password check over seconds: each
// source's bucket and the user's, whichever is smaller (burst, then one
// per interval).
func limiterBudget(sources int, seconds float64) int {
	perSource := float64(authlimit.DefaultSourceBurst) + math.Floor(seconds/authlimit.DefaultSourceEvery.Seconds())
	perUser := float64(authlimit.DefaultUserBurst) + math.Floor(seconds/authlimit.DefaultUserEvery.Seconds())
	return int(math.Min(float64(sources)*perSource, perUser))
}

// statusKeys are the statuses of m in numeric order.
func statusKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if len(keys[i]) != len(keys[j]) {
			return len(keys[i]) < len(keys[j])
		}
		return keys[i] < keys[j]
	})
	return keys
}

// p99Ratio is the p99 of ds over the p99 of base, as "N.N×", or "—".
func p99Ratio(ds, base []time.Duration) string {
	if len(ds) == 0 || len(base) == 0 || pct(base, 99) <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f×", ratio(pct(ds, 99), pct(base, 99)))
}

// failText is "n failed: first" or "".
func failText(n int, first string) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("; **%d failed**: `%s`", n, strings.ReplaceAll(clipText(first, 160), "`", "'"))
}

// phaseLine is a phase's one-line summary for the console.
func phaseLine(p authPhase) string {
	s := fmt.Sprintf("whoami %s, agents %s, bob login %s, alice login %s, jobs %s, relay CPU %s, agents online %d/%d/%d",
		dist(p.whoami), dist(p.agentsList), dist(p.bobLogin), dist(p.aliceLogin), dist(p.jobs), cpuPct(p.relayCPU, p.wall),
		p.onlineBefore, p.onlineMin, p.onlineAfter)
	if p.flood != nil {
		s += "; flood: " + floodText(p.flood)
	}
	if p.apiFailed+p.loginFailed+p.jobsFailed > 0 {
		s += fmt.Sprintf("; failures: api %d (%s), login %d (%s), jobs %d (%s)", p.apiFailed, p.apiErr, p.loginFailed, p.loginErr, p.jobsFailed, p.jobsErr)
	}
	return s
}

// renderAuth renders the auth section, markers included.
func renderAuth(r *authResults) string {
	var w strings.Builder
	o := r.opts
	ao := o.auth
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	row := func(cells ...string) { p("| %s |\n", strings.Join(cells, " | ")) }
	m := r.machine
	partCmd := fmt.Sprintf("`patchbay-loadgen bench --only auth --auth-agents %d --auth-window %v --auth-rate %d --auth-flood-workers %d`", ao.agents, ao.window, ao.rate, ao.workers)

	p("%s\n\n## Sign-in cost and a flood of wrong passwords\n\n", authBegin)
	p("Issue 15: one password login should cost 50–100 ms of one core, and with %s wrong passwords a second from one source the relay "+
		"should keep serving agents and other users. Measured on %s UTC on %s (%d logical cores, %s, %s, %s) by\n\n```\n%s\n```\n\n"+
		"(`BENCH_ONLY=auth make bench` runs the same). `--only auth` rewrites only this section, so it may be newer than the figures above.\n",
		thousands(ao.rate), r.started.Format("2006-01-02 15:04"), m.cpu, m.ncpu, m.mem, m.kernel, m.goVersion, r.cmd)
	if r.loadBefore != "" {
		p("Load average (1, 5, 15 min) at the start: %s; at the end: %s (the machine is shared: other work running shows here).\n", r.loadBefore, orDash(r.loadAfter))
	}
	p("\n### One login's cost\n\n")
	row("Figure", "Result", "Target", "Status", "Floor / peer, same run")
	row("---", "---", "---", "---", "---")
	pr := r.params
	if len(r.hashWall) > 0 {
		row(fmt.Sprintf("argon2id hash of a password, the relay's parameters (m=%d MiB, t=%d, p=%d), in process, %d one after the other", pr.Memory/1024, pr.Time, pr.Threads, len(r.hashWall)),
			fmt.Sprintf("**%s of CPU per hash**; wall p50 %s, max %s", ms(r.hashPerCPU()), ms(pct(r.hashWall, 50)), ms(pct(r.hashWall, 100))),
			"50–100 ms of one core", status(r.hashMet()), "—")
	} else {
		row("argon2id hash", "not measured", "50–100 ms of one core", status(false), "—")
	}
	if len(r.phases) > 0 {
		idle := r.phases[0]
		row("Successful `POST /v1/login/password` (bob, no second factor, from 127.0.1.2, keep-alive HTTPS), relay otherwise idle but for the probes below",
			"**"+dist(idle.bobLogin)+"**", "—", "measured",
			fmt.Sprintf("`POST /v1/login` with bob's session token on the same kind of connection (the same round trip without the password): %s; the hash alone: p50 %s",
				dist(r.tokenLogin), ms(pct(r.hashWall, 50))))
	}

	if len(r.phases) > 0 {
		p("\n### Agents and other users while wrong passwords flood in\n\n")
		p("Each column is one %v window of the same run, the same probes in each; the idle column is the floor. The relay holds %d simulated agents (real agent links from 127.0.1.10).\n\n",
			ao.window, r.agents)
		hdr := []string{"Figure"}
		sep := []string{"---"}
		for _, ph := range r.phases {
			hdr, sep = append(hdr, phaseTitle(ph, ao)), append(sep, "---")
		}
		row(hdr...)
		row(sep...)
		cells := func(name string, f func(authPhase) string) {
			c := []string{name}
			for _, ph := range r.phases {
				c = append(c, f(ph))
			}
			row(c...)
		}
		idle := r.phases[0]
		withRatio := func(ph authPhase, ds, base []time.Duration, bold bool) string {
			s := dist(ds)
			if bold {
				s = "**" + s + "**"
			}
			if ph.floodCmd != "" && len(ds) > 0 && len(base) > 0 {
				s += ", p99 " + p99Ratio(ds, base) + " idle's"
			}
			return s
		}
		cells("Wrong passwords sent and the relay's answers (401 checked and refused, 429 throttled before any check)", func(ph authPhase) string {
			if ph.floodCmd == "" {
				return "none"
			}
			if ph.flood == nil {
				return "not measured: " + orDash(ph.floodErr)
			}
			return floodText(ph.flood) + fmt.Sprintf("; the limits' budget over %.0f s is %d checks (401s)", ph.flood.Seconds, limiterBudget(ph.flood.Sources, ph.flood.Seconds)) +
				"; the flood process used " + cpuPct(ph.floodCPU, time.Duration(ph.flood.Seconds*float64(time.Second))) + " of a core"
		})
		cells("Relay CPU over the window (probes and flood; % of one core)", func(ph authPhase) string { return "**" + cpuPct(ph.relayCPU, ph.wall) + "**" })
		cells("Another user's API: `GET /v1/whoami`, bob's session token, from 127.0.0.1", func(ph authPhase) string {
			return withRatio(ph, ph.whoami, idle.whoami, true)
		})
		cells("Another user's API: `GET /v1/agents?limit=100`, same", func(ph authPhase) string {
			return withRatio(ph, ph.agentsList, idle.agentsList, true) + failText(ph.apiFailed, ph.apiErr)
		})
		cells("Another user's password login: bob from 127.0.1.2", func(ph authPhase) string { return withRatio(ph, ph.bobLogin, idle.bobLogin, true) })
		cells("alice's password login from her known address 127.0.0.1 (she logged in from it before)", func(ph authPhase) string {
			return withRatio(ph, ph.aliceLogin, idle.aliceLogin, true) + failText(ph.loginFailed, ph.loginErr)
		})
		cells("alice's password login, right password, from a new address 127.0.1.3, once halfway", func(ph authPhase) string {
			if ph.newAddr == "" {
				return "—"
			}
			return ph.newAddr
		})
		cells(fmt.Sprintf("No-op job on all %d agents, created → every result stored, one after another", r.agents), func(ph authPhase) string {
			if len(ph.jobs) == 0 && ph.jobsFailed == 0 {
				return "not measured"
			}
			return withRatio(ph, ph.jobs, idle.jobs, false) + failText(ph.jobsFailed, ph.jobsErr)
		})
		cells("Agents online: before / lowest during (/healthz every 250 ms) / after; link drops and failed reconnects the agents counted", func(ph authPhase) string {
			return fmt.Sprintf("%d / %d / %d; %d drops, %d failed attempts", ph.onlineBefore, ph.onlineMin, ph.onlineAfter, ph.drops, ph.failures)
		})
		var floods []string
		for _, ph := range r.phases {
			if ph.floodCmd != "" {
				floods = append(floods, ph.floodCmd)
			}
		}
		p("\nThe floods (each a process of its own, started by the bench):\n\n```\n%s\n```\n", strings.Join(floods, "\n"))
		if f := authFindings(r); len(f) > 0 {
			p("\nWhat the figures show:\n\n")
			for _, s := range f {
				p("- %s\n", s)
			}
		}
	}

	if r.signinLogs > 0 {
		p("\nThe relay logged %d \"failed sign-in\" warnings (one per source and minute, by design; not counted below).\n", r.signinLogs)
	}
	if issues := problems(r.notes, r.logs); len(issues) > 0 {
		p("\n### Problems seen during the auth run\n\n")
		for _, s := range issues {
			p("- %s\n", s)
		}
	}

	p("\n### How the auth figures were measured\n\n")
	p(`- **argon2id**: `+"`account.Hash`"+` (server/account, the code the relay runs, golang.org/x/crypto/argon2) called
  %[1]d times one after the other in the bench process before it starts anything else, after one warm-up hash; CPU
  is the process's utime+stime over them (getrusage) divided by %[1]d, wall the time of each call. One lane
  (p=1): one core.
- **Relay**: a fresh `+"`patchbay-server serve --heartbeat %[2]v --log-level warn`"+` (data in `+"`%[3]s`"+`), the throttling
  defaults of server/authlimit (per source: 20 failures at once, then one per 3 s; per user name: 10, then one per
  10 s, except from addresses the user signed in from before). Users alice, bob and carol (technician) made with
  `+"`POST /v1/users`"+`, no second factor. %[4]d simulated agents (`+"`patchbay-loadgen agents`"+`, real agent links) from
  127.0.1.10.
- **Probes** (in the bench process, keep-alive HTTPS pinned to the relay's CA, one request in flight per probe):
  bob's `+"`GET /v1/whoami`"+` and `+"`GET /v1/agents?limit=100`"+` in turn, one every %[5]v, from 127.0.0.1 with the
  session token of his password login; a password login of bob from 127.0.1.2 and one of alice from 127.0.0.1 in
  turn, each every %[6]v (each a full login: argon2id, a session token stored, an audit record); no-op `+"`sysinfo`"+`
  jobs on every agent one after another (the simulated agents answer at once; time from the job's created_at to its
  ended_at; the bench polls its progress every 50 ms); /healthz every 250 ms. Percentiles are nearest-rank: with
  under 100 samples p99 is the largest.
- **Floods**: `+"`patchbay-loadgen auth-flood`"+`, a separate process, sends %[7]d wrong passwords a second (paced, up to
  %[9]d in flight, as an attacker's tool with that many connections; what falls due while all are busy is counted as
  not sent) to `+"`POST /v1/login/password`"+` over
  keep-alive connections. One source: user carol (so neither probe's user is the one attacked) from 127.0.0.2.
  Many sources: user alice from 127.0.0.2–127.0.0.255 in turn, so that no source reaches its own limit and only the
  per-user one stops the guesses; alice's own logins come from 127.0.0.1, where she logged in before the flood.
  Probes start once the flood process has its clients ready; the window ends a second before the flood does.
- **CPU**: utime+stime of the relay (/proc/PID/stat) over the window; of the flood process, from its rusage at exit
  over its run. The relay, the flood, the agents and the bench share the machine's %[8]d cores.
`, max(1, len(r.hashWall)), o.heartbeat, filepath.Join(o.cacheDir, "auth", "relay-data"), ao.agents, ao.apiEvery, ao.loginEvery,
		ao.rate, m.ncpu, ao.workers)
	p("\nCommand: %s.\n\n%s\n", partCmd, authEnd)
	return w.String()
}

// authFindings states, for each flood, whether the relay checked more
// wrong passwords than its limits allow, and what the other users' logins
// waited.
func authFindings(r *authResults) []string {
	var out []string
	for _, ph := range r.phases {
		f := ph.flood
		if f == nil {
			continue
		}
		checked, budget := f.Status["401"], limiterBudget(f.Sources, f.Seconds)
		logins := append(append([]time.Duration(nil), ph.bobLogin...), ph.aliceLogin...)
		if checked > budget {
			out = append(out, fmt.Sprintf("%s: the relay checked **%d wrong passwords where its limits allow %d** over the flood. "+
				"A failure is counted only when its check ends (the argon2id hash, ~%s), so every guess already let in when the "+
				"limit filled was still checked (the flood keeps up to %d in flight). These checks queue for argon2id (at most as many at "+
				"once as the relay has cores, server/account), the queue every other login waits in: the other users' logins took up to "+
				"**%s** (idle: %s); their 401 answers came after p50 %.0f ms.",
				phaseTitle(ph, r.opts.auth), checked, budget, ms(pct(r.hashWall, 50)), r.opts.auth.workers,
				ms(pct(logins, 100)), ms(pct(append(append([]time.Duration(nil), r.phases[0].bobLogin...), r.phases[0].aliceLogin...), 100)),
				f.LatencyMS["401"].P50))
		} else {
			out = append(out, fmt.Sprintf("%s: the relay checked %d wrong passwords, within its limits' %d; the rest were refused with 429 before any check.",
				phaseTitle(ph, r.opts.auth), checked, budget))
		}
	}
	return out
}

// phaseTitle is a phase's column heading.
func phaseTitle(p authPhase, ao authOptions) string {
	switch {
	case p.floodCmd == "":
		return "Idle (no flood)"
	case p.flood != nil && p.flood.Sources > 1:
		return fmt.Sprintf("%s wrong passwords/s for alice from %d sources", thousands(ao.rate), p.flood.Sources)
	default:
		return fmt.Sprintf("%s wrong passwords/s for carol from one source", thousands(ao.rate))
	}
}

// writeAuthOnly rewrites the auth section of the report at path and keeps
// the rest of it.
func writeAuthOnly(path string, r *authResults) error {
	raw, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc := string(raw)
	if doc == "" {
		doc = "# Benchmarks\n\nOnly the auth part has been run (`patchbay-loadgen bench --only auth`); `make bench` adds the other figures.\n"
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(path, []byte(spliceSection(doc, authBegin, authEnd, renderAuth(r))), 0o644)
}

// printAuthSummary prints the auth figures on stdout.
func printAuthSummary(r *authResults) {
	fmt.Printf("argon2id hash:              %s CPU per hash, wall p50 %s\n", ms(r.hashPerCPU()), ms(pct(r.hashWall, 50)))
	for _, p := range r.phases {
		fmt.Printf("auth, %-13s %s\n", p.name+":", phaseLine(p))
	}
}
