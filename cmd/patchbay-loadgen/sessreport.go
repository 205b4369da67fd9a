package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Targets of issue 5.
const (
	targetSetupP99 = 25 * time.Millisecond // at 50 concurrent
	targetRelayX   = 0.4                   // relayed byte stream / raw loopback TCP
	targetSCPMBps  = 150.0                 // MB/s (10^6 bytes)
	targetKeyP99   = 5 * time.Millisecond  // 1,000 sessions at 10 keys/s
	targetSetupAt  = 50                    // the concurrency the setup target is for
)

// Markers around the sessions section of the report, so that a run of one
// part rewrites only its own part.
const (
	sessionsBegin = "<!-- sessions:begin (written by patchbay-loadgen bench; --only sessions rewrites only this section) -->"
	sessionsEnd   = "<!-- sessions:end -->"
)

// sessionResults is everything the session part measured.
type sessionResults struct {
	started    time.Time
	opts       benchOptions
	machine    machineInfo
	cmd        string // the command line that ran it
	tcpGbps    float64
	shell      string
	shellStart []time.Duration // the shell alone on a terminal, to its first byte

	setup                              []setupResult
	relayDown, relayUp, sshDown, sshUp transfer
	scpDown, scpUp, scpGCM             scpResult
	keys                               []keyResult // a lightly loaded run, then the one with the target

	notes []string
	logs  []logSummary
}

func (r *sessionResults) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// cpuUse is CPU time used by the relay, the agents processes and the load
// generator: readings at a time, or differences over wall.
type cpuUse struct {
	relay, agents, loadgen time.Duration
	peer                   time.Duration // a second relay (the tier session part: the relay the technician reaches)
	machine                time.Duration // every core busy, all processes and the kernel (/proc/stat)
	at                     time.Time
	wall                   time.Duration
}

// sub returns u − v, with wall the time between the readings.
func (u cpuUse) sub(v cpuUse) cpuUse {
	return cpuUse{relay: u.relay - v.relay, agents: u.agents - v.agents, loadgen: u.loadgen - v.loadgen, peer: u.peer - v.peer,
		machine: u.machine - v.machine, wall: u.at.Sub(v.at)}
}

// pct is d over the wall time, in % of one core.
func (u cpuUse) pct(d time.Duration) float64 {
	if u.wall <= 0 {
		return 0
	}
	return float64(d) / float64(u.wall) * 100
}

func (u cpuUse) String() string {
	other := u.machine - u.relay - u.agents - u.loadgen
	return fmt.Sprintf("relay %.0f %%, agents %.0f %%, load generator %.0f %%, everything else (shells and commands of the sessions, "+
		"consent program, OpenSSH, kernel threads, other users' processes) %.0f %% of one core; whole machine %.0f %% of %d00 %%",
		u.pct(u.relay), u.pct(u.agents), u.pct(u.loadgen), u.pct(max(other, 0)), u.pct(u.machine), runtime.NumCPU())
}

// machineBusy is the CPU time all cores spent busy since boot, from the
// first line of /proc/stat (user nice system idle iowait irq softirq steal).
func machineBusy() time.Duration {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	fs := strings.Fields(line)
	var busy int64
	for i, f := range fs {
		if i == 0 || i == 4 || i == 5 || i > 8 { // the label, idle, iowait; guest times are in user already
			continue
		}
		v, _ := strconv.ParseInt(f, 10, 64)
		busy += v
	}
	return time.Duration(busy) * time.Second / clockTicks
}

// setupResult is one setup-latency run.
type setupResult struct {
	conc, n, failed int
	firstErr        string
	wall            time.Duration
	use             cpuUse
	// Per successful session: request -> approved, approved -> SSH
	// authenticated, authenticated -> first shell byte, and in all.
	approved, handshake, shell, first []time.Duration
}

// scpResult is one scp run.
type scpResult struct {
	transfer
	cmd, cipher string
}

func (r scpResult) mbps() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.bytes) / r.elapsed.Seconds() / 1e6
}

// keyResult is the keystroke measurement.
type keyResult struct {
	sessions, openFailed, typeFailed int
	firstErr                         string
	openTime, window                 time.Duration
	rtts                             []time.Duration
	use                              cpuUse
	// After every technician disconnected at once: how long until the relay
	// recorded every session as ended (or gave up waiting), how many were
	// still live then (-1: unknown), and why not known.
	endWait   time.Duration
	stillLive int
	endErr    string
}

// pct returns the p-th percentile (nearest rank) of ds, 0 when empty.
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// ms formats a duration in milliseconds.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func status(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**NOT met**"
}

// renderSessions renders the sessions section, markers included.
func renderSessions(r *sessionResults) string {
	var w strings.Builder
	o := r.opts
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	row := func(cells ...string) { p("| %s |\n", strings.Join(cells, " | ")) }
	m := r.machine
	// figure is the command behind one figure: the sessions part with the
	// options that shape it (defaults spelled out).
	figure := func(flags string) string {
		return fmt.Sprintf("`patchbay-loadgen bench --only sessions --session-agents %d %s`", o.sessionAgents, flags)
	}
	setupCmd := figure(fmt.Sprintf("--setup-concurrency %s --setup-sessions %d", joinInts(o.setupConcurrency), o.setupSessions))
	streamCmd := figure(fmt.Sprintf("--stream-mib %d", o.streamMiB))
	keyCmd := figure(fmt.Sprintf("--keystroke-light %d --keystroke-sessions %d --keystroke-rate %d --keystroke-window %v", o.keyLight, o.keySessions, o.keyRate, o.keyWindow))

	p("%s\n\n## Interactive sessions\n\n", sessionsBegin)
	p("Measured on %s UTC on %s (%d logical cores, %s, %s, %s) by\n\n```\n%s\n```\n\n"+
		"(`BENCH_ONLY=sessions make bench` runs the same). `--only sessions` rewrites only this section, so it may be newer "+
		"than the fleet figures above.\n\n",
		r.started.Format("2006-01-02 15:04"), m.cpu, m.ncpu, m.mem, m.kernel, m.goVersion, r.cmd)
	p("A real relay (`patchbay-server serve --log-level warn`, fresh data directory), %d real agents "+
		"(`patchbay-agent run --consent-mode prompt --consent-backend exec:approve.sh`, where approve.sh prints "+
		"`by=make-bench` and exits 0: every session below went through the exec consent backend), and the technician "+
		"side in the load generator with the real client library (`client.OpenSession`, `client.EnsureSSHIdentity`, "+
		"x/crypto/ssh, as `patchbay ssh` does) and an API token of role technician named `%s`. "+
		"Sessions run %s (`--session-shell`). Relay, agents, shells and technician side share the machine's cores.\n\n",
		o.sessionAgents, technicianName, r.shell)

	row("Figure", "Result", "Target", "Status", "Command")
	row("---", "---", "---", "---", "---")
	for _, s := range r.setup {
		target, verdict := "—", "measured"
		if s.conc == targetSetupAt {
			target = "p99 ≤ 25 ms"
			verdict = status(s.failed == 0 && len(s.first) > 0 && pct(s.first, 99) <= targetSetupP99)
		}
		row(fmt.Sprintf("Session setup, %d at a time: request → exec consent → SSH handshake → first shell byte", s.conc),
			fmt.Sprintf("p50 %s, p99 %s (%d sessions, %d failed; %.0f sessions/s)", ms(pct(s.first, 50)), ms(pct(s.first, 99)),
				s.n, s.failed, float64(len(s.first))/max(s.wall.Seconds(), 1e-9)),
			target, verdict, setupCmd)
	}
	ratio := func(x transfer) string {
		if x.bytes == 0 {
			return "not measured"
		}
		return fmt.Sprintf("%.2f Gbit/s (%.0f MB/s) = **%.2f×** raw TCP", x.gbps(), x.gbps()*1e3/8, x.gbps()/r.tcpGbps)
	}
	relayOK := func(x transfer) string { return status(x.bytes > 0 && x.gbps()/r.tcpGbps >= targetRelayX) }
	row("Relayed byte stream, agent → technician (no SSH: in-process echo agent on the real link code)", ratio(r.relayDown), "≥ 0.4× raw", relayOK(r.relayDown), streamCmd)
	row("Relayed byte stream, technician → agent", ratio(r.relayUp), "≥ 0.4× raw", relayOK(r.relayUp), streamCmd)
	row(fmt.Sprintf("SSH channel through the relay, agent → technician (`%s`, real agent)", r.sshDown.note), ratio(r.sshDown), "—", "measured", streamCmd)
	row(fmt.Sprintf("SSH channel through the relay, technician → agent (`%s`, real agent)", r.sshUp.note), ratio(r.sshUp), "—", "measured", streamCmd)
	for _, s := range []struct {
		what string
		r    scpResult
	}{{"from", r.scpDown}, {"to", r.scpUp}, {"from", r.scpGCM}} {
		res := "not measured"
		if s.r.bytes > 0 {
			res = fmt.Sprintf("%.0f MB/s (%s in %.2f s, cipher %s)", s.r.mbps(), mib(s.r.bytes), s.r.elapsed.Seconds(), s.r.cipher)
		}
		what := fmt.Sprintf("scp of a %d MiB file %s an agent (stock OpenSSH, `patchbay ssh-config`: ProxyCommand `patchbay proxy %%h`)", o.scpMiB, s.what)
		target, verdict := "≥ 150 MB/s", status(s.r.bytes > 0 && s.r.mbps() >= targetSCPMBps)
		if strings.Contains(s.r.cmd, gcmCipher) {
			what = fmt.Sprintf("For comparison: the same scp from an agent with `-c %s` (AES-GCM instead of OpenSSH's default ChaCha20-Poly1305)", gcmCipher)
			target, verdict = "—", "measured"
		}
		row(what, res, target, verdict, "`"+s.r.cmd+"`")
	}
	for _, k := range r.keys {
		keyRes := "not measured"
		if len(k.rtts) > 0 {
			keyRes = fmt.Sprintf("p50 %s, p99 %s, p99.9 %s, max %s (%s keys in %v, %.0f keys/s; %d sessions failed to open, %d while typing)",
				ms(pct(k.rtts, 50)), ms(pct(k.rtts, 99)), ms(pct(k.rtts, 99.9)), ms(pct(k.rtts, 100)),
				thousands(len(k.rtts)), k.window, float64(len(k.rtts))/k.window.Seconds(), k.openFailed, k.typeFailed)
		}
		target, verdict := "—", "measured"
		if k.sessions == o.keySessions {
			target = "p99 ≤ 5 ms"
			verdict = status(len(k.rtts) > 0 && k.openFailed == 0 && k.typeFailed == 0 && pct(k.rtts, 99) <= targetKeyP99)
		}
		row(fmt.Sprintf("Keystroke round trip (technician → agent → `cat` on a terminal → technician), %s sessions × %d keys/s", thousands(k.sessions), o.keyRate),
			keyRes, target, verdict, keyCmd)
	}
	row("Raw loopback TCP, one stream (baseline of this section, same run)", fmt.Sprintf("%.1f Gbit/s", r.tcpGbps), "baseline", "measured", figure(fmt.Sprintf("--baseline %v", o.baseline)))

	p("\n### Details\n\n")
	if len(r.shellStart) > 0 {
		p("- The shell alone: %s started as a login shell on a terminal without Patchbay (fork, exec, its profile scripts, "+
			"first byte of its prompt) takes p50 %s, p99 %s here (%d starts, same run); every session setup below includes one.\n",
			r.shell, ms(pct(r.shellStart, 50)), ms(pct(r.shellStart, 99)), len(r.shellStart))
	}
	for _, s := range r.setup {
		if len(s.first) == 0 {
			p("- Setup, %d at a time: no session succeeded (%s).\n", s.conc, s.firstErr)
			continue
		}
		p("- Setup, %d at a time, where the time goes (p50 / p99): request → approved %s / %s (TLS + websocket upgrade, "+
			"token check, the relay records and audits the request, the agent runs the exec consent program, the relay "+
			"records and audits the decision); → SSH authenticated %s / %s; → first shell byte %s / %s (session channel, "+
			"terminal, recording stream, shell start). CPU over the run: %s; relay %.2f ms of CPU per session.",
			s.conc, ms(pct(s.approved, 50)), ms(pct(s.approved, 99)), ms(pct(s.handshake, 50)), ms(pct(s.handshake, 99)),
			ms(pct(s.shell, 50)), ms(pct(s.shell, 99)), s.use, float64(s.use.relay)/float64(time.Millisecond)/float64(max(len(s.first), 1)))
		if s.failed > 0 {
			p(" First failure: %s.", s.firstErr)
		}
		p("\n")
	}
	for _, x := range []struct {
		name string
		t    transfer
	}{{"Relayed stream, agent → technician", r.relayDown}, {"Relayed stream, technician → agent", r.relayUp},
		{"SSH channel, agent → technician", r.sshDown}, {"SSH channel, technician → agent", r.sshUp},
		{"scp from the agent", r.scpDown.transfer}, {"scp to the agent", r.scpUp.transfer},
		{"scp from the agent with " + gcmCipher, r.scpGCM.transfer}} {
		if x.t.bytes > 0 {
			p("- %s: %s in %.2f s; CPU: %s.\n", x.name, mib(x.t.bytes), x.t.elapsed.Seconds(), x.t.use)
		}
	}
	for _, k := range r.keys {
		p("- Keystrokes: %s terminal sessions (`%s` on a PTY, recorded by the agent like any terminal session) "+
			"spread over %d agents, opened one at a time on each agent (all agents in parallel) in %.1f s; then each sent one key "+
			"every %v (random phase), the next key only after the previous echo; keys of the first 2 s were not counted. "+
			"CPU during the measured window: %s.",
			thousands(k.sessions), typistCommand, o.sessionAgents, k.openTime.Seconds(), time.Second/time.Duration(o.keyRate), k.use)
		if k.firstErr != "" {
			p(" First failure: %s.", k.firstErr)
		}
		p("\n")
		switch {
		case k.stillLive < 0:
			p("- Teardown: when the technicians disconnected at once, the relay's session list could not be read: %s.\n", k.endErr)
		case k.stillLive == 0:
			p("- Teardown: after all %s technicians disconnected at once, the relay recorded every session as ended %.1f s later.\n",
				thousands(k.sessions-k.openFailed), k.endWait.Seconds())
		default:
			p("- Teardown: after all %s technicians disconnected at once, the relay still recorded **%d sessions as live %.0f s later** "+
				"(see its log below).\n", thousands(k.sessions-k.openFailed), k.stillLive, k.endWait.Seconds())
		}
	}
	most := slices.Max(append([]int{1}, o.setupConcurrency...))
	p("- Why %d agents: each technician works on its own agent (%d technicians at once help %d machines), so no agent has "+
		"two sessions being set up at the same time; and one agent holds at most 128 terminal sessions: each takes two "+
		"streams on its agent's link (the SSH bytes, and the recording the agent streams back) and internal/mux allows 256 "+
		"streams per link (DefaultMaxStreams).\n", o.sessionAgents, most, most)

	if issues := problems(r.notes, r.logs); len(issues) > 0 {
		p("\n### Problems seen during the sessions run\n\n")
		for _, s := range issues {
			p("- %s\n", s)
		}
	}

	p("\n### How the sessions were measured\n\n")
	p(`- **Setup latency** runs, for each of --setup-concurrency %[1]s, that many technicians in a closed loop
  until %[2]d sessions in all have been set up; each technician works in turn on its own agents (with
  50 technicians: one agent each), so no agent has two sessions being set up at once. Each session:
  `+"`client.OpenSession`"+` (new TLS connection, websocket, capability shell) until the relay says
  approved; `+"`ssh.NewClientConn`"+` with the technician's certificate (host certificate checked
  against the relay's host CA); a session channel with a terminal and a shell; timed until the first
  byte of the shell's output reaches the technician. Then the connection is closed (its teardown
  overlaps the next setups). One warm-up session per agent runs first and is not counted.
- **Relayed byte stream**: %[3]d MiB over a session on an agent simulated in the load generator
  with the real agent link code (agent/link, WSS + mutual TLS, its default 16/32 KiB websocket
  buffers), which approves at once and sources or sinks bytes on the session stream instead of
  running SSH. Technician → agent is timed until the agent acknowledges the last byte; agent →
  technician until the last byte arrives (the simulated agent reports the session's end only after
  the technician has left: the relay drops stream bytes it still buffers when an agent's session_end
  arrives first).
  **SSH channel**: the same amount through a real agent's SSH server (x/crypto/ssh both ends, exec
  without a terminal, so not recorded). Each is the better of two runs; Gbit/s = 10⁹ bit/s.
- **scp**: stock OpenSSH scp (SFTP protocol) with the block `+"`patchbay ssh-config`"+` printed
  (ProxyCommand `+"`patchbay proxy %%h`"+`, the technician's certificate, strict host key checking)
  copying a sparse %[4]d MiB file from the agent to /dev/null and from the load generator to
  /dev/null on the agent; wall time of the scp process, session setup and proxy start included;
  better of two runs; MB/s = 10⁶ bytes/s.
- **Keystrokes**: see Details. A round trip is timed from the write of one byte into the SSH
  session to the read of its echo, in the load generator, which shares the cores with the relay
  and the agents.
- **CPU** is utime+stime of each process from /proc/PID/stat over the phase.
`, joinInts(o.setupConcurrency), o.setupSessions, o.streamMiB, o.scpMiB)
	p("\n%s\n", sessionsEnd)
	return w.String()
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

// mib formats a byte count in MiB.
func mib(n int64) string { return fmt.Sprintf("%d MiB", n>>20) }

// spliceSessions returns doc with its sessions section replaced by
// section, or with section appended when doc has none.
func spliceSessions(doc, section string) string {
	i := strings.Index(doc, sessionsBegin)
	j := strings.Index(doc, sessionsEnd)
	if i >= 0 && j > i {
		return doc[:i] + strings.TrimRight(section, "\n") + doc[j+len(sessionsEnd):]
	}
	return strings.TrimRight(doc, "\n") + "\n\n" + section
}

// existingSessions returns the sessions section of the report at path, or
// "" when it has none.
func existingSessions(path string) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	doc := string(raw)
	i := strings.Index(doc, sessionsBegin)
	j := strings.Index(doc, sessionsEnd)
	if i < 0 || j < i {
		return ""
	}
	return doc[i:j+len(sessionsEnd)] + "\n"
}

// writeSessionsOnly rewrites the sessions section of the report at path and
// keeps the rest of it.
func writeSessionsOnly(path string, r *sessionResults) error {
	raw, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc := string(raw)
	if doc == "" {
		doc = "# Benchmarks\n\nOnly the interactive-session part has been run (`patchbay-loadgen bench --only sessions`); `make bench` adds the fleet figures.\n"
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(path, []byte(spliceSessions(doc, renderSessions(r))), 0o644)
}

// printSessionSummary prints the session figures on stdout.
func printSessionSummary(r *sessionResults) {
	for _, s := range r.setup {
		fmt.Printf("session setup, %2d at a time: p50 %s, p99 %s (%d failed)\n", s.conc, ms(pct(s.first, 50)), ms(pct(s.first, 99)), s.failed)
	}
	for _, x := range []struct {
		name string
		t    transfer
	}{{"relayed stream, down", r.relayDown}, {"relayed stream, up", r.relayUp}, {"SSH channel, down", r.sshDown}, {"SSH channel, up", r.sshUp}} {
		fmt.Printf("%-27s %.2f Gbit/s (%.2f× raw %.1f Gbit/s)\n", x.name+":", x.t.gbps(), x.t.gbps()/r.tcpGbps, r.tcpGbps)
	}
	fmt.Printf("scp from / to an agent:     %.0f / %.0f MB/s (from, %s: %.0f MB/s)\n", r.scpDown.mbps(), r.scpUp.mbps(), gcmCipher, r.scpGCM.mbps())
	for _, k := range r.keys {
		fmt.Printf("keystrokes, %4d sessions:   p50 %s, p99 %s (%d keys)\n", k.sessions, ms(pct(k.rtts, 50)), ms(pct(k.rtts, 99)), len(k.rtts))
	}
}
