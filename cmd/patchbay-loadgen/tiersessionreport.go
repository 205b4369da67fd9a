package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The tier session section's markers in the report.
const (
	tierSessionBegin = "<!-- tiersession:begin (written by patchbay-loadgen bench --only tiersession; rewrites only this section) -->"
	tierSessionEnd   = "<!-- tiersession:end -->"
)

// tierSessionTarget is issue 14's least scp throughput technician-on-B to
// agent-on-A over same-relay.
const tierSessionTarget = 0.8

// scpRatio is forwarded over same-relay throughput, 0 when either is
// missing.
func scpRatio(fwd, same scpResult) float64 {
	if fwd.mbps() <= 0 || same.mbps() <= 0 {
		return 0
	}
	return fwd.mbps() / same.mbps()
}

// scpCPU is the relays' and the agent's CPU over one copy.
func scpCPU(x scpResult) string {
	u := x.use
	return fmt.Sprintf("relay A %.0f %%, relay B %.0f %%, agent %.0f %% of one core", u.pct(u.relay), u.pct(u.peer), u.pct(u.agents))
}

// cpuPerGiB is both relays' CPU over a copy per GiB copied.
func cpuPerGiB(x scpResult) string {
	if x.bytes == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f s", (x.use.relay+x.use.peer).Seconds()/(float64(x.bytes)/(1<<30)))
}

// renderTierSession renders the tier session section, markers included.
func renderTierSession(r *tierSessionResults) string {
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	row := func(cells ...string) { p("| %s |\n", strings.Join(cells, " | ")) }
	m := r.machine
	p("%s\n\n### Sessions across the tier (scp, technician on B, agent on A)\n\n", tierSessionBegin)
	p("Issue 14: session throughput with the technician on relay B and the agent on relay A (B forwards the session to A over the tier's direct TLS "+
		"connection), next to the same copy with the technician on A, in the same run. Measured on %s UTC on %s (%d logical cores, %s, %s, %s), "+
		"PostgreSQL %s started for the run (fsync off), relays A (embedded NATS) and B on it, one real patchbay-agent, all on the same machine, by\n\n```\n%s\n```\n\n"+
		"(`BENCH_ONLY=tiersession make bench`). `--only tiersession` rewrites only this section.\n\n",
		r.started.Format("2006-01-02 15:04"), m.cpu, m.ncpu, m.mem, m.kernel, m.goVersion, r.pg, r.cmd)
	if r.loadBefore != "" {
		p("Load average (1, 5, 15 min) at the start: %s; at the end: %s (the machine is shared: other work running shows here; "+
			"both sides ran in alternating rounds under the same load).\n\n", r.loadBefore, orDash(r.loadAfter))
	}
	row("Figure", "Technician on B (forwarded to A)", "Same relay (technician on A)", "B / A", "Target", "Status")
	row("---", "---", "---", "---", "---", "---")
	for _, d := range []struct {
		what      string
		fwd, same scpResult
	}{{"from", r.fwdDown, r.sameDown}, {"to", r.fwdUp, r.sameUp}} {
		ratio := scpRatio(d.fwd, d.same)
		cell := func(x scpResult) string {
			if x.bytes == 0 {
				return "failed (see below)"
			}
			return fmt.Sprintf("**%.0f MB/s** (%s in %s); %s", x.mbps(), mibOf(x.bytes>>10), secs(x.elapsed), scpCPU(x))
		}
		row(fmt.Sprintf("scp of a %d MiB file %s the agent (stock OpenSSH, `patchbay ssh-config` against the technician's relay)", r.opts.scpMiB, d.what),
			cell(d.fwd), cell(d.same), fmt.Sprintf("%.2f×", ratio), fmt.Sprintf("≥ %.1f×", tierSessionTarget), status(ratio >= tierSessionTarget))
	}
	p("\n### Details\n\n")
	p("- Each figure is the fastest of four copies (two rounds, each round two copies with the technician on A, then two on B); wall time of the scp process, session setup, consent (an exec program that approves) and " +
		"`patchbay proxy` start included; the source is a sparse file, the destination /dev/null. CPU: utime+stime from /proc/PID/stat over the copy, " +
		"in %% of one core.\n")
	p("- Relay CPU per GiB copied (both relays together, independent of how much of the machine other work took): from the agent %s with the technician on B, "+
		"%s on A; to the agent %s on B, %s on A. Forwarding adds a second relay's TLS and websocket work to every byte, so when the 2 cores are busy "+
		"the forwarded copy waits for CPU more often than the same-relay one.\n",
		cpuPerGiB(r.fwdDown), cpuPerGiB(r.sameDown), cpuPerGiB(r.fwdUp), cpuPerGiB(r.sameUp))
	if c := r.fwdDown.cipher; c != "" {
		p("- Cipher negotiated: %s.\n", c)
	}
	for _, x := range []struct {
		name string
		r    scpResult
	}{{"from the agent, technician on A", r.sameDown}, {"to the agent, technician on A", r.sameUp},
		{"from the agent, technician on B", r.fwdDown}, {"to the agent, technician on B", r.fwdUp}} {
		if x.r.cmd != "" {
			p("- scp %s: `%s`.\n", x.name, x.r.cmd)
		}
	}
	for _, s := range problems(r.notes, r.logs) {
		p("- %s\n", s)
	}
	p("\n%s\n", tierSessionEnd)
	return w.String()
}

// writeTierSessionOnly rewrites the tier session section of the report at
// path, placed after the tier section when it is new, and keeps the rest.
func writeTierSessionOnly(path string, r *tierSessionResults) error {
	raw, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc := string(raw)
	if doc == "" {
		doc = "# Benchmarks\n\nOnly the tier session part has been run (`patchbay-loadgen bench --only tiersession`); `make bench` adds the other figures.\n"
	}
	section := renderTierSession(r)
	if !strings.Contains(doc, tierSessionBegin) {
		if i := strings.Index(doc, tierEnd); i >= 0 {
			i += len(tierEnd)
			doc = doc[:i] + "\n\n" + strings.TrimRight(section, "\n") + doc[i:]
			section = ""
		}
	}
	if section != "" {
		doc = spliceSection(doc, tierSessionBegin, tierSessionEnd, section)
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}

// printTierSessionSummary prints the tier session figures on stdout.
func printTierSessionSummary(r *tierSessionResults) {
	fmt.Printf("scp from the agent: technician on A %.0f MB/s, on B %.0f MB/s (%.2f×)\n", r.sameDown.mbps(), r.fwdDown.mbps(), scpRatio(r.fwdDown, r.sameDown))
	fmt.Printf("scp to the agent:   technician on A %.0f MB/s, on B %.0f MB/s (%.2f×)\n", r.sameUp.mbps(), r.fwdUp.mbps(), scpRatio(r.fwdUp, r.sameUp))
}
