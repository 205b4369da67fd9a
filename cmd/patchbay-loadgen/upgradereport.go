package main

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// The upgrade section's markers in the report.
const (
	upgradeBegin = "<!-- upgrade:begin (written by patchbay-loadgen bench --only upgrade; rewrites only this section) -->"
	upgradeEnd   = "<!-- upgrade:end -->"
)

// countsText is a job's runs by state, e.g. "10000 succeeded".
func countsText(counts map[string]int) string {
	var keys []string
	for k, v := range counts {
		if v > 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %s", thousands(counts[k]), k))
	}
	if len(parts) == 0 {
		return "no runs"
	}
	return strings.Join(parts, ", ")
}

// renderUpgrade renders the upgrade section, markers included.
func renderUpgrade(r *upgradeResults) string {
	var w strings.Builder
	o := r.opts
	uo := o.upgrade
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	row := func(cells ...string) { p("| %s |\n", strings.Join(cells, " | ")) }
	m := r.machine
	n := thousands(r.total)
	partCmd := fmt.Sprintf("`patchbay-loadgen bench --only upgrade --upgrade-agents %d --procs %d --upgrade-canary %s`", uo.agents, o.procs, uo.canary)

	p("%s\n\n## Agent self-update (patchbay agents upgrade)\n\n", upgradeBegin)
	p("Issue 16: `patchbay agents upgrade --version %s --target hostname=%s* --canary %s` over simulated agents that answer as patchbay-agent does. "+
		"Measured on %s UTC on %s (%d logical cores, %s, %s, %s), relay (SQLite) and agents processes on the same machine, by\n\n```\n%s\n```\n\n"+
		"(`BENCH_ONLY=upgrade make bench` runs the same with %s agents; `BENCH_UPGRADE_AGENTS` scales it). `--only upgrade` rewrites only this section; "+
		"the full `make bench` does not run it.\n\n",
		upgradeVersion, upgradeAgentHostnames, uo.canary, r.started.Format("2006-01-02 15:04"), m.cpu, m.ncpu, m.mem, m.kernel, m.goVersion, r.cmd, thousands(10000))
	if r.loadBefore != "" {
		p("Load average (1, 5, 15 min) at the start: %s; at the end: %s (the machine is shared: other work running shows here).\n\n", r.loadBefore, orDash(r.loadAfter))
	}
	fel, fcpu, fok, _, fpeak := r.floor.median()
	fcpuPer := float64(fcpu.Nanoseconds()) / 1000 / float64(max(r.floor.agents, 1))
	up := r.upgrade
	cpuPer := float64(up.relayCPU.Nanoseconds()) / 1000 / float64(max(r.total, 1))
	floorText := fmt.Sprintf("no-op job on the same agents: %d ms, median of %d warm jobs (%s); the first: %d ms",
		fel.Milliseconds(), len(r.floor.warm), jobSpread(r.floor.warm), r.floor.first.elapsed.Milliseconds())
	if !fok || !r.floor.first.ok {
		floorText += "; **some no-op runs did not succeed**"
	}
	ratio := func(a, b float64) string {
		if b <= 0 {
			return "—"
		}
		return fmt.Sprintf("%.1f×", a/b)
	}
	row("Figure", "Result", "Target", "Status", "Floor, same run (ratio)")
	row("---", "---", "---", "---", "---")
	var shares []string
	for i, share := range upgradeShares {
		shares = append(shares, fmt.Sprintf("%.0f %% after %s", share*100, orDash(secsIf(r.doneAt[i]))))
	}
	res := fmt.Sprintf("**%s**; canary (%s agents) all succeeded after %s; runs ended: %s; %s", secs(up.elapsed), thousands(r.canary),
		orDash(secsIf(r.canaryAt)), strings.Join(shares, ", "), countsText(r.counts))
	row(fmt.Sprintf("Self-update of %s agents, canary %s: job created -> every result stored", n, uo.canary),
		res, "reported", status(up.ok)+" (every agent upgraded)", fmt.Sprintf("%s (%s)", floorText, ratio(float64(up.elapsed), float64(fel))))
	row("Relay CPU over the self-update (utime+stime from /proc/PID/stat)",
		fmt.Sprintf("%.1f s, %.0f µs per agent", up.relayCPU.Seconds(), cpuPer), "reported", "measured",
		fmt.Sprintf("no-op job: %.2f s, %.0f µs per agent (%s)", fcpu.Seconds(), fcpuPer, ratio(cpuPer, fcpuPer)))
	row("Relay peak RSS during the job", fmt.Sprintf("%s (%s before it)", kib(up.peakRSS), kib(up.idleRSS)), "reported", "measured",
		fmt.Sprintf("no-op jobs: %s", kib(fpeak)))
	perAgent := int64(0)
	if r.total > 0 {
		perAgent = r.agentsBy.UpgradeBytes / int64(r.total)
	}
	row("Downloaded from the relay's /releases/ (HTTPS, each agent its own mTLS connection)",
		fmt.Sprintf("%s MiB in total, %s bytes per agent (SHA256SUMS, SHA256SUMS.sig, %d KiB binary)",
			thousands(int(r.agentsBy.UpgradeBytes>>20)), thousands(int(perAgent)), uo.binaryKiB), "reported", "measured", "—")
	p("\nCommand of every row: %s.\n\n### Details\n\n", partCmd)
	p("- Set-up: a fresh relay (`serve --releases`), %s agents enrolled through it in %s, held by %d agents processes (source addresses 127.0.3.10 upwards), all online in %s.\n",
		thousands(uo.agents), secs(r.enroll), o.procs, secs(r.connect))
	p("- The release, made in the run: an ed25519 key generated for it, SHA256SUMS over a stand-in agent binary of %d KiB of random bytes for this platform, "+
		"signed with plugins/signature.SignNamespace (namespace patchbay-release); the agents processes trust the key through an allowed_signers file (`agents --upgrade-signers`). "+
		"The relay checks the release is signed when the job is created and gives each run the binary's hash.\n", uo.binaryKiB)
	p("- Each simulated agent, on its run (cmd/patchbay-loadgen/upgradeagent.go): run_started; SHA256SUMS and SHA256SUMS.sig from the relay over HTTPS "+
		"with its own client certificate, the signature verified; the binary streamed through SHA-256 and checked against the manifest (not written); "+
		"then its link closed (code 1001, as a stopping agent) and started again at once with %s in its hello; once welcomed, run_result succeeded "+
		"\"upgraded from loadgen-… to %s\" with the versions before and after in its details, as agent/upgrade's Connected sends it. "+
		"It does not write, swap or run a binary: the figures are the relay's and the wire's, not an endpoint's disk.\n", upgradeVersion, upgradeVersion)
	p("- The agents processes counted %s upgrade runs received (a run sent again counts again), %s upgraded, %s failed, %s not started "+
		"(a transport error downloading the release: run_not_started, and the relay sends the run again after its backoff, as to a real agent)%s; "+
		"after the job, /healthz counted every agent online %s.\n",
		thousands(int(r.agentsBy.UpgradeRuns)), thousands(int(r.agentsBy.Upgraded)), thousands(int(r.agentsBy.UpgradeFailed)), thousands(int(r.agentsBy.UpgradeRetry)),
		map[bool]string{true: " (latest error: " + r.agentsBy.UpgradeError + ")", false: ""}[r.agentsBy.UpgradeError != ""],
		map[bool]string{true: "at once", false: "after " + secs(r.backAfter)}[r.backAfter < 200*time.Millisecond])
	p("- Times are the job's created_at to ended_at as the relay stores them; the canary time is when the polls (every 50 ms) first saw the canary's runs all succeeded. " +
		"The floor is the fleet part's no-op job (the sysinfo plugin, answered at once without running it) over the same agents on the same relay, before the upgrade.\n")
	p("- A real agent binary is larger (see the release's sizes; issue 16 keeps the Linux agent under 25 MB): the relay's CPU for the downloads grows with the bytes served "+
		"(%d KiB per agent here; `--upgrade-binary-kib` sets it), the rest of the figure (job, TLS handshakes, reconnects, results) does not.\n", uo.binaryKiB)
	if r.rssAgents > 0 {
		p("- Load generator: %d agents processes, %s RSS in total after the upgrade; their CPU over the upgrade job %.1f s "+
			"(TLS, hashing the downloads, reconnecting): they share the machine's cores with the relay, so on this machine they bound the time as much as the relay does.\n",
			o.procs, kib(r.rssAgents), r.cpuAgents.Seconds())
	}
	for _, s := range problems(r.notes, r.logs) {
		p("- %s\n", s)
	}
	p("\n%s\n", upgradeEnd)
	return w.String()
}

// writeUpgradeOnly rewrites the upgrade section of the report at path and
// keeps the rest of it.
func writeUpgradeOnly(path string, r *upgradeResults) error {
	return writeSectionOnly(path, "upgrade", upgradeBegin, upgradeEnd, renderUpgrade(r))
}

// printUpgradeSummary prints the upgrade figures on stdout.
func printUpgradeSummary(r *upgradeResults) {
	fel, fcpu, _, _, _ := r.floor.median()
	fmt.Printf("self-update of %d agents (canary %d): %v, relay CPU %.1f s, peak RSS %s; %s\n", r.total, r.canary,
		r.upgrade.elapsed.Round(time.Millisecond), r.upgrade.relayCPU.Seconds(), kib(r.upgrade.peakRSS), countsText(r.counts))
	fmt.Printf("no-op job on the same agents (floor): %v, relay CPU %.2f s\n", fel.Round(time.Millisecond), fcpu.Seconds())
}
