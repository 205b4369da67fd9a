package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/patchbay/patchbay/internal/backoff"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/spf13/cobra"
)

func benchCmd() *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench [--out docs/benchmarks.md] [--agents 19000] [--procs 4] [--only fleet|sessions|consent|console|auth|tier|tiersession|sizes|inventory|upgrade|checks]",
		Short: "Measure a relay holding a fleet of simulated agents, interactive sessions and the consent helper; write the report",
		Long: `Run the relay benchmark and rewrite --out (Markdown). In one run, the fleet part:

 1. raw loopback TCP throughput, one stream, in process (the baseline for
    relayed streams), and the fan-out floor for jobs: one 300-byte message
    out and back on each of 10,000 loopback connections (peers in --procs
    "fanout-peers" processes), over TCP and TLS, with no Patchbay code;
 2. a relay (--server-bin serve, --heartbeat, log level warn) on a free
    loopback port, with its data directory and the agents' identities cached
    in --cache and reused when they match (the first run enrolls --agents
    agents through the API, a few hundred per second);
 3. the relay's RSS at rest, then --procs "agents" processes (this binary),
    each with its share of the identities and its own source address
    127.0.0.2, 127.0.0.3, ...; the time until /healthz reports every agent
    online;
 4. after --settle idle, the relay's RSS per agent and, over --cpu-window,
    its CPU use;
 5. no-op jobs on 10,000 agents and on all of them: a first job, then the
    median of 5 (3 on all) warm ones, job creation to every result stored,
    with the relay's CPU and peak RSS;
 6. SIGKILL of the relay and a restart on the same port and data: the time
    until every agent is back and how the reconnects spread over time;
 7. the Go micro-benchmarks of internal/mux and internal/wire.

Then the interactive-session part (issue 5), on its own fresh relay (data in
--cache/sessions) with --session-agents real agents (--agent-bin run, consent
mode prompt through the exec backend: a script that approves; sessions run
--session-shell) and the technician side in this process (the client library
and x/crypto/ssh). Each technician works on its own agent, at most one
session being set up per agent at a time:

 7. session setup latency (request -> consent -> SSH handshake -> first shell
    byte), --setup-sessions sessions at each --setup-concurrency;
 8. throughput of the relayed byte stream (an in-process agent on the real
    link code, without SSH) and of an SSH channel, each way, --stream-mib MiB,
    as a ratio to raw loopback TCP measured in the same part;
 9. stock OpenSSH scp of a --scp-mib MiB file from and to an agent, through
    the config "patchbay ssh-config" prints (--cli-bin);
10. keystroke round trip on --keystroke-light (at most 10 s), then
    --keystroke-sessions terminal sessions running cat, --keystroke-rate
    keys per second each, over --keystroke-window.

Then the consent part (issue 13), on its own fresh relay (data in
--cache/consent) with one real agent running as root with the helper
backend (--consent-backend helper --consent-ask all) and its helper
(patchbay-agent helper) running as a local user that the bench creates
(and removes), in that user's X display (Xvfb started by the user):

11. the helper's idle footprint: after --consent-settle connected and
    showing nothing, its VmRSS and, over --consent-idle-window, its CPU
    (utime+stime); the floor, over the same window: a minimal Go program
    the bench builds (--go) that blocks reading a unix socket;
12. the consent prompt: --consent-prompts session requests (client library,
    as patchbay ssh does), each timed from the request to the MapNotify of
    the prompt window on the user's display (xev -root -event
    substructure), then denied with an xdotool click; interleaved with as
    many zenity dialogs started directly by the bench (the floor).
It needs root, Xvfb, zenity, xdotool and xev (Debian: xvfb, zenity,
xdotool, x11-utils) and takes about 2 minutes.

Then the console part (issue 12), with Debian's Chromium headless
(--chromium) driven through chromedp:

13. the Fleet screen against a relay with --console-floor-agents agents
    (the floor) and against the fleet part's relay (cached data) with
    --agents simulated agents in --procs processes: navigation to the first
    rows painted (--console-loads loads), GET /v1/agents?limit=100 from the
    page, and the page's JS heap, DOM nodes and renderer RSS;
14. the browser terminal's keystroke round trip (key pressed in the page
    to the echo in xterm.js's buffer) next to patchbay ssh's technician
    side on the same agent, --console-keys keys each, interleaved;
15. the remote desktop: frames per second of a changing 1280x800 screen
    (Xvfb) through the relay (patchbay desktop --listen) against x11vnc
    directly on loopback, and the relay's CPU per MB relayed.

Then the auth part (issue 15), on its own fresh relay (data in --cache/auth)
with --auth-agents simulated agents and three users:

16. one password login's cost: argon2id hashes (server/account, the
    relay's parameters) timed in this process, and a successful
    POST /v1/login/password next to POST /v1/login with a token;
17. --auth-window idle, then with --auth-rate wrong passwords a second from
    an auth-flood process (this binary) for one user from 127.0.0.2, then
    for another user from 127.0.0.2-127.0.0.255: another user's API calls
    and password logins, the attacked user's login from her known address,
    no-op jobs on every agent, agents online, the relay's CPU, and the
    flood's 401 and 429 answers (about 3 minutes).

The inventory part (issue 17) runs only with --only inventory (see
inventory.go): --inventory-agents agents with --inventory-packages packages
each stored on SQLite and on a PostgreSQL started for the run (rounds: first,
unchanged, one upgrade per agent; database size), and the selector
software=openssl,software.version<3.0.14 against its 200 ms target.

The tier part (issue 14) runs only with --only tier (see tier.go): a
no-op job over --tier-agents agents on one PostgreSQL relay and then on
--tier-relays relays sharing that database (embedded NATS), the agents the
tier holds, and a SIGKILLed relay's agents back online on the others.
The tier session part (issue 14) runs only with --only tiersession (see
tiersession.go): relays A and B on a PostgreSQL started for the run, one
real agent on A, scp of --scp-mib MiB from and to it with the technician's
CLI on A and then on B (the session forwarded B -> A); MB/s, B / A against
the 0.8x target, and the CPU of both relays.

The upgrade part (issue 16) runs only with --only upgrade (see
upgradebench.go): a release signed in the run with a stand-in agent binary,
a fresh relay serving it (--releases), --upgrade-agents simulated agents in
--procs processes, no-op jobs over them (the floor), then patchbay agents
upgrade's job with --upgrade-canary: created -> every result stored, the
relay's CPU and peak RSS; each agent downloads and verifies the release,
reconnects with the new version and reports the run.

The checks part (issue 17) runs only with --only checks (see
checksbench.go): a relay on a PostgreSQL started for the run,
--checks-agents simulated agents in --procs processes, one policy whose
result every agent reports every --checks-interval (spread); over
--checks-window each: the relay's CPU and the database's rows written,
commits and WAL per second idle, with every result passing, and with
--checks-flip of them changing state.

--only fleet runs steps 1-6, --only sessions steps 7-10, --only consent
steps 11-12, --only console steps 13-15, --only auth steps 16-17; each rewrites only its own part of --out and keeps the other
parts' figures from the previous report. The sessions part takes 1-3
minutes.

Logs of the last run (relays, agents processes) are kept in --cache/last-run.
Every wait is bounded; the fleet part takes about 3 minutes plus first
enrollment.`,
		Example: `  make bench
  bench/run.sh --only sessions
  BENCH_ONLY=consent make bench
  BENCH_ONLY=console make bench
  BENCH_ONLY=auth make bench
  bin/patchbay-loadgen bench --agents 2000 --procs 2 --out /tmp/bench.md
  bin/patchbay-loadgen bench --only sessions --keystroke-sessions 200 --out /tmp/bench.md`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.checkSessions(); err != nil {
				return err
			}
			if (o.only == "all" || o.only == "fleet") && (o.agents <= 0 || o.procs <= 0 || o.procs > 200) {
				return fmt.Errorf("--agents %d --procs %d: want at least one agent and 1-200 processes", o.agents, o.procs)
			}
			if o.loadgenBin == "" {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("find this executable: %w", err)
				}
				o.loadgenBin = exe
			}
			return runBench(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.out, "out", "docs/benchmarks.md", "report to write (Markdown)")
	f.IntVar(&o.agents, "agents", 19000, "simulated agents")
	f.IntVar(&o.procs, "procs", 4, "agents processes (each below its open-file limit)")
	f.StringVar(&o.serverBin, "server-bin", "bin/patchbay-server", "relay binary")
	f.StringVar(&o.loadgenBin, "loadgen-bin", "", "load generator binary for the agents processes (default: this one)")
	f.StringVar(&o.goBin, "go", "go", "go command for the micro-benchmarks")
	f.StringVar(&o.cacheDir, "cache", "bench/.cache", "directory for the cached relay data, identities and logs")
	f.DurationVar(&o.heartbeat, "heartbeat", 25*time.Second, "relay heartbeat (agent ping interval)")
	f.DurationVar(&o.settle, "settle", 20*time.Second, "idle time before measuring memory")
	f.DurationVar(&o.cpuWindow, "cpu-window", 30*time.Second, "idle window over which CPU is measured")
	f.DurationVar(&o.connectTimeout, "connect-timeout", 3*time.Minute, "limit for all agents to connect from cold")
	f.DurationVar(&o.reconnectTimeout, "reconnect-timeout", 2*time.Minute, "limit for all agents to reconnect after the restart")
	f.DurationVar(&o.baseline, "baseline", 2*time.Second, "duration of the raw TCP baseline")
	f.BoolVar(&o.noGoBench, "no-go-bench", false, "skip the Go micro-benchmarks")
	f.IntVar(&o.startRate, "start-rate", 0, "cold start: links started per second over all processes (0: all at once)")
	f.StringVar(&o.only, "only", "all", "run only one part: fleet, sessions, consent, console, auth, tier, tiersession, sizes, inventory, upgrade or checks (the report keeps the other parts' figures)")
	f.StringVar(&o.releaseDir, "release-dir", "", "with --only sizes: the make release directory (dist/VERSION) whose binary sizes are reported")
	f.StringVar(&o.agentBin, "agent-bin", "bin/patchbay-agent", "agent binary for the sessions part")
	f.StringVar(&o.cliBin, "cli-bin", "bin/patchbay", "CLI binary for the sessions part (patchbay ssh-config and proxy, for scp)")
	f.IntVar(&o.sessionAgents, "session-agents", 50, "real agents in the sessions part: at least the largest --setup-concurrency (each technician works on its own agent); each holds at most 128 terminal sessions")
	f.StringVar(&o.sessionShell, "session-shell", "/bin/sh", `shell the agents run for sessions (--session-shell of patchbay-agent run; "" for the account's login shell)`)
	f.IntVar(&o.setupSessions, "setup-sessions", 200, "sessions set up at each --setup-concurrency")
	f.IntSliceVar(&o.setupConcurrency, "setup-concurrency", []int{1, 50}, "technicians setting up sessions at once")
	f.IntVar(&o.streamMiB, "stream-mib", 512, "MiB per throughput run (relayed stream and SSH channel)")
	f.IntVar(&o.scpMiB, "scp-mib", 512, "size of the file scp copies, MiB")
	f.IntVar(&o.keySessions, "keystroke-sessions", 1000, "terminal sessions in the keystroke measurement")
	f.IntVar(&o.keyLight, "keystroke-light", 100, "terminal sessions of a first, lightly loaded keystroke run (0: skip it)")
	f.IntVar(&o.keyRate, "keystroke-rate", 10, "keys per second per session")
	f.DurationVar(&o.keyWindow, "keystroke-window", 20*time.Second, "how long keystrokes are measured (after 2 s of warm-up)")
	f.IntVar(&o.consentPrompts, "consent-prompts", 50, "consent prompts timed (and as many zenity dialogs for the floor), after one cold one of each")
	f.DurationVar(&o.consentSettle, "consent-settle", 10*time.Second, "how long the helper is connected and idle before its memory is read")
	f.DurationVar(&o.consentIdle, "consent-idle-window", 30*time.Second, "idle window over which the helper's CPU is measured")
	consoleFlags(f, &o.console)
	authFlags(f, &o.auth)
	tierFlags(f, &o.tier)
	inventoryFlags(f, &o.inv)
	upgradeFlags(f, &o.upgrade)
	checksFlags(f, &o.checks)
	return cmd
}

// checkSessions checks the options of the sessions part.
func (o *benchOptions) checkSessions() error {
	switch o.only {
	case "all", "fleet", "sessions", "consent", "console", "auth":
	case "tier":
		return o.tier.check()
	case "tiersession":
		if o.scpMiB < 1 {
			return errors.New("--scp-mib must be positive")
		}
		return nil
	case "sizes":
		if o.releaseDir == "" {
			return errors.New("--only sizes needs --release-dir dist/VERSION (a make release directory)")
		}
		return nil
	case "inventory":
		return o.inv.check()
	case "upgrade":
		return o.upgrade.check(o.procs)
	case "checks":
		return o.checks.check(o.procs)
	default:
		return fmt.Errorf("--only %q: want fleet, sessions, consent, console, auth, tier, tiersession, sizes, inventory, upgrade or checks", o.only)
	}
	if o.only == "all" || o.only == "auth" {
		if err := o.auth.check(); err != nil {
			return err
		}
	}
	if o.only == "all" || o.only == "console" {
		if err := o.console.check(); err != nil {
			return err
		}
		if o.agents <= 0 || o.procs <= 0 || o.procs > 200 {
			return fmt.Errorf("--agents %d --procs %d: want at least one agent and 1-200 processes", o.agents, o.procs)
		}
	}
	if (o.only == "all" || o.only == "consent") && (o.consentPrompts < 1 || o.consentSettle < 0 || o.consentIdle <= 0) {
		return errors.New("--consent-prompts and --consent-idle-window must be positive, --consent-settle at least 0")
	}
	if o.only == "fleet" || o.only == "consent" || o.only == "console" || o.only == "auth" {
		return nil
	}
	if o.sessionAgents < 1 || o.setupSessions < 1 || o.streamMiB < 1 || o.scpMiB < 1 || o.keySessions < 1 || o.keyRate < 1 || o.keyWindow <= 0 || o.keyLight < 0 {
		return errors.New("--session-agents, --setup-sessions, --stream-mib, --scp-mib, --keystroke-sessions, --keystroke-rate and --keystroke-window must be positive, --keystroke-light at least 0")
	}
	for _, c := range o.setupConcurrency {
		if c < 1 || c > o.sessionAgents {
			return fmt.Errorf("--setup-concurrency %d: want 1 to --session-agents (%d): each technician works on its own agent", c, o.sessionAgents)
		}
	}
	if per := (o.keySessions + o.sessionAgents - 1) / o.sessionAgents; per > 120 {
		return fmt.Errorf("--keystroke-sessions %d over --session-agents %d is %d terminal sessions per agent; an agent's link holds at most 128 (two streams each, 256 streams per link): raise --session-agents",
			o.keySessions, o.sessionAgents, per)
	}
	return nil
}

type benchOptions struct {
	out                              string
	agents, procs                    int
	serverBin, loadgenBin, goBin     string
	cacheDir                         string
	heartbeat, settle, cpuWindow     time.Duration
	connectTimeout, reconnectTimeout time.Duration
	baseline                         time.Duration
	noGoBench                        bool
	startRate                        int

	only                         string // "all", "fleet", "sessions", "consent", "console" or "auth"
	agentBin, cliBin             string
	sessionShell                 string
	sessionAgents, setupSessions int
	setupConcurrency             []int
	streamMiB, scpMiB            int
	keySessions, keyRate         int
	keyLight                     int
	keyWindow                    time.Duration

	consentPrompts             int
	consentSettle, consentIdle time.Duration

	console consoleOptions
	auth    authOptions
	tier    tierOptions
	inv     inventoryOptions // --only inventory (inventory.go)
	upgrade upgradeOptions
	checks  checksOptions // --only checks (checksbench.go)

	releaseDir string // --only sizes
}

// goBenchPkgs are the packages whose Go benchmarks the report includes.
var goBenchPkgs = []string{"./internal/mux/", "./internal/wire/", "./agent/runner/"}

func step(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// bench is one run: its options, paths, processes and results.
type bench struct {
	o                    benchOptions
	r                    *results
	dataDir, ids, logDir string
	listen, server, fp   string
	relay                *child
	relayStarts          int
	health               *health
	fleet                fleet
}

func runBench(ctx context.Context, o benchOptions) error {
	b := &bench{
		o:       o,
		r:       &results{started: time.Now().UTC(), opts: o, machine: machine()},
		dataDir: filepath.Join(o.cacheDir, "relay-data"),
		ids:     filepath.Join(o.cacheDir, "identities.jsonl"),
		logDir:  filepath.Join(o.cacheDir, "last-run"),
	}
	if o.only == "sizes" { // reads a make release directory, runs nothing
		return runSizesOnly(o)
	}
	if _, err := os.Stat(o.serverBin); err != nil {
		return fmt.Errorf("relay binary: %w (run make build)", err)
	}
	if err := os.RemoveAll(b.logDir); err != nil {
		return err
	}
	if err := os.MkdirAll(b.logDir, 0o700); err != nil {
		return err
	}
	defer b.cleanup()

	if o.only == "consent" {
		cr, err := runConsent(ctx, o, b.logDir)
		if err != nil {
			return err
		}
		cr.cmd = commandLine()
		if err := writeConsentOnly(o.out, cr); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		step("consent section written to %s", o.out)
		printConsentSummary(cr)
		return nil
	}
	if o.only == "console" {
		cr, err := runConsole(ctx, o, b.logDir)
		if err != nil {
			return err
		}
		cr.cmd = commandLine()
		if err := writeConsoleOnly(o.out, cr); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		step("console section written to %s", o.out)
		printConsoleSummary(cr)
		return nil
	}
	if o.only == "tier" {
		return runTierOnly(ctx, o, b.logDir)
	}
	if o.only == "tiersession" {
		return runTierSessionOnly(ctx, o, b.logDir)
	}
	if o.only == "inventory" {
		return runInventoryOnly(ctx, o)
	}
	if o.only == "upgrade" {
		return runUpgradeOnly(ctx, o, b.logDir)
	}
	if o.only == "checks" {
		return runChecksOnly(ctx, o, b.logDir)
	}
	if o.only == "auth" {
		ar, err := runAuth(ctx, o, b.logDir)
		if err != nil {
			return err
		}
		ar.cmd = commandLine()
		if err := writeAuthOnly(o.out, ar); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		step("auth section written to %s", o.out)
		printAuthSummary(ar)
		return nil
	}
	if o.only == "sessions" {
		sr, err := runSessions(ctx, o, b.logDir)
		if err != nil {
			return err
		}
		sr.cmd = commandLine()
		if err := writeSessionsOnly(o.out, sr); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		step("sessions section written to %s", o.out)
		printSessionSummary(sr)
		return nil
	}

	step("raw loopback TCP, one stream, %v", o.baseline)
	gbps, err := tcpBaseline(o.baseline)
	if err != nil {
		return fmt.Errorf("tcp baseline: %w", err)
	}
	b.r.tcpGbps = gbps
	step("  %.1f Gbit/s", gbps)
	if n := fanoutConns(o.agents); n > 0 {
		for _, useTLS := range []bool{false, true} {
			f, err := measureFanout(ctx, o.loadgenBin, b.logDir, n, o.procs, useTLS)
			if err != nil {
				b.r.note("The fan-out floor over %s failed: %v.", f.transport, err)
				step("  fan-out floor over %s failed: %v", f.transport, err)
				continue
			}
			el, cpu := f.perTrip()
			step("fan-out floor, %s: one %d-byte message to each of %d connections and its answer: %v, %.1f µs CPU per round trip (median of %d)",
				f.transport, fanoutMsg, n, el.Round(time.Millisecond), cpu, len(f.elapsed))
			b.r.fanout = append(b.r.fanout, f)
		}
	}

	if err := b.prepare(ctx); err != nil {
		return err
	}
	if err := b.measureFleet(ctx); err != nil {
		return err
	}
	if !o.noGoBench {
		step("go micro-benchmarks: %s", goBenchCmd(goBenchPkgs))
		b.r.goBench, b.r.goBenchRaw, err = runGoBench(ctx, o.goBin, goBenchPkgs)
		if err != nil {
			b.r.note("The Go micro-benchmarks failed: %v.", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if o.only == "all" {
		sr, err := runSessions(ctx, o, b.logDir)
		if err != nil {
			b.r.note("The interactive-session part failed: %v.", err)
			step("sessions part failed: %v", err)
		} else {
			sr.cmd = commandLine()
			b.r.sessions = sr
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		cr, err := runConsent(ctx, o, b.logDir)
		if err != nil {
			b.r.note("The consent part failed: %v.", err)
			step("consent part failed: %v", err)
		} else {
			cr.cmd = commandLine()
			b.r.consent = cr
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		wr, err := runConsole(ctx, o, b.logDir)
		if err != nil {
			b.r.note("The console part failed: %v.", err)
			step("console part failed: %v", err)
		} else {
			wr.cmd = commandLine()
			b.r.console = wr
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		ar, err := runAuth(ctx, o, b.logDir)
		if err != nil {
			b.r.note("The auth part failed: %v.", err)
			step("auth part failed: %v", err)
		} else {
			ar.cmd = commandLine()
			b.r.auth = ar
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if err := writeReport(o.out, b.r); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	step("report written to %s", o.out)
	printSummary(b.r)
	if b.r.sessions != nil {
		printSessionSummary(b.r.sessions)
	}
	if b.r.consent != nil {
		printConsentSummary(b.r.consent)
	}
	if b.r.console != nil {
		printConsoleSummary(b.r.console)
	}
	if b.r.auth != nil {
		printAuthSummary(b.r.auth)
	}
	return nil
}

// commandLine is this process's command line, quoted for a shell.
func commandLine() string {
	args := make([]string, len(os.Args))
	for i, a := range os.Args {
		if a == "" || strings.ContainsAny(a, " \t'\"$`*?[]{}()<>|&;#~!\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		args[i] = a
	}
	return strings.Join(args, " ")
}

// cleanup ends whatever is still running.
func (b *bench) cleanup() {
	if len(b.fleet) > 0 {
		b.fleet.stop(10 * time.Second)
	}
	if b.relay != nil && b.relay.alive() {
		b.relay.stop(10 * time.Second)
	}
}

// prepare starts the relay on a free port, reusing the cached data directory
// and identities when they belong together and enrolling the missing agents
// otherwise. The relay used for measurements is always a fresh process.
func (b *bench) prepare(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	b.listen = "127.0.0.1:" + strconv.Itoa(port)
	b.server = "https://" + b.listen
	have, err := checkCache(b.dataDir, b.ids)
	if err != nil {
		return err
	}
	b.r.reused = min(have, b.o.agents)
	if have >= b.o.agents {
		step("reusing %d cached identities and the relay data in %s", have, b.o.cacheDir)
		return b.startRelay(ctx)
	}
	if err := b.startRelay(ctx); err != nil {
		return err
	}
	missing := b.o.agents - have
	step("enrolling %d agents (%d cached)", missing, have)
	start := time.Now()
	if err := b.enroll(ctx, have, missing); err != nil {
		return err
	}
	b.r.enrolled, b.r.enrollTime = missing, time.Since(start)
	step("  %d agents in %.1f s", missing, b.r.enrollTime.Seconds())
	step("restarting the relay so measurements start from a fresh process")
	if !b.relay.stop(30 * time.Second) {
		b.r.note("The relay did not stop within 30 s of SIGTERM after enrollment and was killed.")
	}
	return b.startRelay(ctx)
}

// checkCache returns how many cached identities match the cached relay data,
// removing both when they do not belong together.
func checkCache(dataDir, ids string) (int, error) {
	caPEM, caErr := os.ReadFile(filepath.Join(dataDir, certs.CACertFile))
	recs, idsErr := readRecords(ids, 0, 1)
	if caErr == nil && idsErr == nil {
		ca, err := certs.ParseCertPEM(caPEM)
		fp, err2 := recs[0].caFingerprint()
		if err == nil && err2 == nil && certs.Fingerprint(ca) == fp {
			all, err := readRecords(ids, 0, -1)
			if err == nil {
				return len(all), nil
			}
		}
		step("cached identities do not match the cached relay; starting over")
	}
	if err := os.RemoveAll(dataDir); err != nil {
		return 0, err
	}
	if err := os.Remove(ids); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	return 0, os.MkdirAll(filepath.Dir(ids), 0o700)
}

// startRelay starts a relay process on b.listen and waits until /healthz
// answers (and, on the first start, for its CA).
func (b *bench) startRelay(ctx context.Context) error {
	if err := b.startRelayNoWait(); err != nil {
		return err
	}
	logPath := filepath.Join(b.logDir, fmt.Sprintf("relay-%d.log", b.relayStarts))
	return waitRelay(ctx, b.relay, b.dataDir, b.server, logPath, &b.fp, &b.health)
}

// waitRelay waits up to 30 s for the relay c (data in dataDir) to write its
// CA and answer /healthz; it fills *fp and *health the first time.
func waitRelay(ctx context.Context, c *child, dataDir, server, logPath string, fp *string, hc **health) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if !c.alive() {
			return fmt.Errorf("relay exited at start (%v); see %s", c.err, logPath)
		}
		if *hc == nil {
			if pemBytes, err := os.ReadFile(filepath.Join(dataDir, certs.CACertFile)); err == nil {
				if ca, err := certs.ParseCertPEM(pemBytes); err == nil {
					*fp = certs.Fingerprint(ca)
					if *hc, err = newHealth(server, *fp); err != nil {
						return err
					}
				}
			}
		}
		if *hc != nil {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := (*hc).online(pctx)
			cancel()
			if err == nil {
				return nil
			}
		}
		if !backoff.Sleep(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
	return fmt.Errorf("relay not answering /healthz within 30 s; see %s", logPath)
}

// adminClient is an API client, named name, with a fresh admin token valid
// for ttl from patchbay-server admin-token, for the relay whose data is in
// dataDir and that answers at server with the CA of fingerprint fp.
func adminClient(ctx context.Context, serverBin, dataDir, server, fp, name, ttl string) (*client.Client, error) {
	out, err := exec.CommandContext(ctx, serverBin, "admin-token", "--data", dataDir, "--name", name, "--ttl", ttl).Output()
	if err != nil {
		return nil, fmt.Errorf("patchbay-server admin-token: %w", err)
	}
	cfg, err := client.Login(ctx, server, strings.TrimSpace(string(out)), fp)
	if err != nil {
		return nil, err
	}
	return client.New(cfg)
}

// enroll enrolls count agents after the first have cached ones, through an
// admin token, the API client and one enrollment token, and rewrites the
// identities file.
func (b *bench) enroll(ctx context.Context, have, count int) error {
	cl, err := adminClient(ctx, b.o.serverBin, b.dataDir, b.server, b.fp, "loadgen-bench", "1h")
	if err != nil {
		return err
	}
	defer cl.Close()
	tok, err := cl.CreateEnrollToken(ctx, apiv1.EnrollTokenRequest{
		Uses: &count, TTL: "1h", Tags: map[string]string{"loadgen": "bench"},
	})
	if err != nil {
		return err
	}
	recs, err := enrollMany(ctx, enrollOptions{
		server: b.server, fingerprint: b.fp, token: tok.Token,
		count: count, first: have, concurrency: 16,
	}, os.Stderr)
	if err != nil {
		return err
	}
	if have > 0 {
		old, err := readRecords(b.ids, 0, have)
		if err != nil {
			return err
		}
		recs = append(old, recs...)
	}
	return writeRecords(b.ids, recs)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
