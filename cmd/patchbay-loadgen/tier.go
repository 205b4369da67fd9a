package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/patchbay/patchbay/agent/enroll"
	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/backoff"
)

// The tier part of the bench (issue 14, "Performance"), --only tier:
//
//  1. a PostgreSQL started for the run (initdb and pg_ctl of the Debian
//     package postgresql, in a temp dir, fsync off), a tier key;
//  2. relay A alone on it (--db, --tier-key-file, --nats embedded):
//     --tier-agents agents enrolled through it, held by --tier-relays agents
//     processes that all point at A; no-op jobs over them (a first and
//     --tier-warm warm ones): created -> every result stored, and the
//     relay's CPU (utime+stime from /proc/PID/stat) per agent round trip;
//  3. the agents processes stopped, relays B, C, ... started on the same
//     database (empty data directories: the CA comes from the database) and
//     NATS; the agents processes started again, process i giving its agents
//     every relay's address with relay i first, so the agents spread evenly;
//     the same jobs, created on B, with the CPU of all relays summed;
//  4. the tier idle: agents each relay holds, each relay's RSS at rest and
//     idle, its CPU over --tier-idle-window;
//  5. the last relay SIGKILLed: the time until the survivors' /healthz add
//     up to every agent, and until the tier's presence (X-Online-Count of
//     GET /v1/agents on a survivor) does.

// tierAgentHostnames is the host name prefix of the tier part's agents.
const tierAgentHostnames = "tier-"

// tierOptions are the options of the tier part.
type tierOptions struct {
	agents, relays, warm int
	settle, idleWindow   time.Duration
	failTimeout          time.Duration
}

func tierFlags(f *pflag.FlagSet, o *tierOptions) {
	f.IntVar(&o.agents, "tier-agents", 10000, "tier part: simulated agents (spread over the relays; one agents process per relay)")
	f.IntVar(&o.relays, "tier-relays", 3, "tier part: relays sharing one PostgreSQL (the first runs the embedded NATS)")
	f.IntVar(&o.warm, "tier-warm", 3, "tier part: warm no-op jobs after the first, on one relay and on the tier")
	f.DurationVar(&o.settle, "tier-settle", 15*time.Second, "tier part: idle time before reading the relays' memory")
	f.DurationVar(&o.idleWindow, "tier-idle-window", 20*time.Second, "tier part: idle window over which the relays' CPU is measured")
	f.DurationVar(&o.failTimeout, "tier-failover-timeout", 2*time.Minute, "tier part: limit for a killed relay's agents to be back on the others")
}

func (o tierOptions) check() error {
	if o.agents < 100 || o.relays < 2 || o.relays > 20 || o.warm < 1 || o.settle < 0 || o.idleWindow <= 0 || o.failTimeout <= 0 {
		return errors.New("--tier-agents at least 100, --tier-relays 2-20, --tier-warm at least 1, --tier-idle-window and --tier-failover-timeout positive")
	}
	if per := o.agents / o.relays; per > 18000 {
		return fmt.Errorf("--tier-agents %d over %d relays is %d links per agents process and relay; the open-file limit is 20,000: add relays", o.agents, o.relays, per)
	}
	return nil
}

// tierJobs is the jobs measured on one set-up.
type tierJobs struct {
	name   string
	relays int
	first  jobRun
	warm   []jobRun
	agents int
}

// tierRelayUse is one relay's figures while the tier is idle.
type tierRelayUse struct {
	name             string
	online           int
	restKiB, idleKiB int64
	idleCPU          time.Duration
	fds              int
}

// tierResults is everything the tier part measured.
type tierResults struct {
	started time.Time
	opts    benchOptions
	machine machineInfo
	cmd     string
	pg      string // PostgreSQL version
	// loadBefore and loadAfter are /proc/loadavg's first three fields.
	loadBefore, loadAfter string

	enroll     time.Duration
	connectOne time.Duration // all agents online on relay A alone
	connectAll time.Duration // all agents online on the tier, spread
	// failOne and failAll are the agents processes' failed attempts while
	// connecting to relay A alone and to the tier; failOver after the kill.
	failOne, failAll, failOver report
	single                     tierJobs
	tier                       tierJobs

	idle       []tierRelayUse
	idleWindow time.Duration
	loadgenKiB int64

	killed         string
	killedAgents   int
	backHealth     time.Duration // survivors' /healthz sum back to every agent
	backPresence   time.Duration // the tier's presence count at every agent once they are back
	presenceMin    int           // the presence count's lowest from the kill until they are back
	failoverSample []sample      // survivors' sum, from the kill
	failoverErr    string

	notes []string
	logs  []logSummary
}

func (r *tierResults) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// tierRelay is one relay of the tier.
type tierRelay struct {
	name, listen, server string
	dataDir, logPath     string
	args                 []string
	c                    *child
	h                    *health
	restKiB              int64
}

// tierBench is one run of the tier part.
type tierBench struct {
	o           benchOptions
	r           *tierResults
	dir, logDir string
	pgDir       string
	pgCtl       []string
	db, key, fp string
	relays      []*tierRelay
	agents      []*agentsProc
	ids         string
	token       string
}

// runTierOnly runs the tier part and rewrites its section of --out.
func runTierOnly(ctx context.Context, o benchOptions, logDir string) error {
	t := &tierBench{o: o, r: &tierResults{started: time.Now().UTC(), opts: o, machine: machine()},
		dir: filepath.Join(o.cacheDir, "tier"), logDir: filepath.Join(logDir, "tier")}
	defer t.cleanup()
	t.r.loadBefore = loadAvg()
	if err := t.run(ctx); err != nil {
		return fmt.Errorf("tier: %w", err)
	}
	t.r.loadAfter = loadAvg()
	t.cleanup()
	for _, name := range t.logNames() {
		warn, errs, emfile, sample := scanLog(filepath.Join(t.logDir, name))
		t.r.logs = append(t.r.logs, logSummary{name: "tier/" + name, warn: warn, errors: errs, emfile: emfile, sample: sample})
	}
	t.r.cmd = commandLine()
	if err := writeTierOnly(o.out, t.r); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	step("tier section written to %s", o.out)
	printTierSummary(t.r)
	return nil
}

func (t *tierBench) logNames() []string {
	var names []string
	for _, rl := range t.relays {
		names = append(names, filepath.Base(rl.logPath))
	}
	for i := range t.o.tier.relays {
		names = append(names, fmt.Sprintf("agents-%d.log", i))
	}
	return names
}

func (t *tierBench) run(ctx context.Context) error {
	to := t.o.tier
	for _, d := range []string{t.dir, t.logDir} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if err := t.startPostgres(ctx); err != nil {
		return err
	}
	if err := t.planRelays(ctx, to.relays); err != nil {
		return err
	}

	// 2. Relay A alone.
	a := t.relays[0]
	step("tier: relay A on %s, PostgreSQL %s", a.listen, t.r.pg)
	if err := t.startRelay(ctx, a); err != nil {
		return err
	}
	if err := t.enroll(ctx); err != nil {
		return err
	}
	servers := make([][]string, to.relays)
	for i := range servers {
		servers[i] = []string{a.server}
	}
	var err error
	if t.r.connectOne, err = t.startAgents(ctx, servers, "one relay"); err != nil {
		return err
	}
	t.r.failOne = fleet(t.agents).sum()
	cl, err := t.client(ctx, a)
	if err != nil {
		return err
	}
	if err := publishBenchPlugin(ctx, cl, filepath.Join(filepath.Dir(t.o.serverBin), "plugins", "sysinfo")); err != nil {
		cl.Close()
		return fmt.Errorf("publish the bench plugin: %w (run make build)", err)
	}
	t.r.single, err = t.jobs(ctx, cl, "one relay on PostgreSQL", t.relays[:1])
	cl.Close()
	if err != nil {
		return err
	}
	t.stopAgents()

	// 3. The tier.
	for _, rl := range t.relays[1:] {
		step("tier: relay %s on %s", rl.name, rl.listen)
		if err := t.startRelay(ctx, rl); err != nil {
			return err
		}
	}
	for i := range servers {
		servers[i] = nil
		for k := range to.relays {
			servers[i] = append(servers[i], t.relays[(i+k)%to.relays].server)
		}
	}
	if t.r.connectAll, err = t.startAgents(ctx, servers, "the tier"); err != nil {
		return err
	}
	t.r.failAll = fleet(t.agents).sum()
	cl, err = t.client(ctx, t.relays[1])
	if err != nil {
		return err
	}
	t.r.tier, err = t.jobs(ctx, cl, fmt.Sprintf("%d relays on one PostgreSQL", to.relays), t.relays)
	cl.Close()
	if err != nil {
		return err
	}

	// 4. Idle.
	t.measureIdle(ctx)
	if err := ctx.Err(); err != nil {
		return err
	}
	// 5. Failover.
	return t.failover(ctx)
}

// planRelays makes the tier key and n relays' addresses, data directories
// and arguments (the first runs the embedded NATS); none is started.
func (t *tierBench) planRelays(ctx context.Context, n int) error {
	t.key = filepath.Join(t.dir, "tier.key")
	if out, err := exec.CommandContext(ctx, t.o.serverBin, "tier-key", "new", t.key).CombinedOutput(); err != nil {
		return fmt.Errorf("patchbay-server tier-key new: %w: %s", err, out)
	}
	natsPort, err := freePort()
	if err != nil {
		return err
	}
	natsAddr := "127.0.0.1:" + strconv.Itoa(natsPort)
	for i := range n {
		port, err := freePort()
		if err != nil {
			return err
		}
		name := string(rune('A' + i))
		rl := &tierRelay{name: name, listen: "127.0.0.1:" + strconv.Itoa(port),
			dataDir: filepath.Join(t.dir, "relay-"+name), logPath: filepath.Join(t.logDir, "relay-"+name+".log")}
		rl.server = "https://" + rl.listen
		rl.args = append(relayArgs(rl.dataDir, rl.listen, t.o.heartbeat), "--db", t.db, "--tier-key-file", t.key)
		if i == 0 {
			rl.args = append(rl.args, "--nats", "embedded", "--nats-listen", natsAddr)
		} else {
			rl.args = append(rl.args, "--nats", "nats://"+natsAddr, "--nats-creds", filepath.Join(t.relays[0].dataDir, "nats-user"))
		}
		t.relays = append(t.relays, rl)
	}
	return nil
}

// startPostgres runs initdb and pg_ctl start in a temp dir (as the postgres
// user when root, as initdb requires).
func (t *tierBench) startPostgres(ctx context.Context) error {
	initdb, err := exec.LookPath("initdb")
	if err != nil {
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
		sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
		if len(dirs) == 0 {
			return errors.New("initdb not found in PATH or /usr/lib/postgresql/*/bin: install the Debian package postgresql")
		}
		initdb = dirs[0]
	}
	if out, err := exec.CommandContext(ctx, initdb, "--version").Output(); err == nil {
		t.r.pg = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "initdb (PostgreSQL)"))
	}
	if t.pgDir, err = os.MkdirTemp("", "patchbay-bench-pg-"); err != nil {
		return err
	}
	var asUser []string
	if os.Geteuid() == 0 {
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			return errors.New("running as root needs runuser to start PostgreSQL as the postgres user: install the Debian package util-linux")
		}
		u, err := user.Lookup("postgres")
		if err != nil {
			return errors.New("running as root needs the postgres user: install the Debian package postgresql")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(t.pgDir, uid, gid); err != nil {
			return err
		}
		asUser = []string{runuser, "-u", "postgres", "--"}
	}
	data := filepath.Join(t.pgDir, "data")
	run := func(args ...string) error {
		argv := append(append([]string{}, asUser...), args...)
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Dir = "/"
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w\n%s", filepath.Base(args[0]), err, out)
		}
		return nil
	}
	step("tier: PostgreSQL in %s", t.pgDir)
	if err := run(initdb, "-D", data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	opts := fmt.Sprintf("-p %d -h 127.0.0.1 -k %s -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=300", port, t.pgDir)
	t.pgCtl = append(asUser, filepath.Join(filepath.Dir(initdb), "pg_ctl"), "-D", data) // cleanup's stop
	if err := run(filepath.Join(filepath.Dir(initdb), "pg_ctl"), "-D", data, "-w", "-t", "60", "-l", filepath.Join(t.pgDir, "postgres.log"), "-o", opts, "start"); err != nil {
		t.pgCtl = nil
		return err
	}
	t.db = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	return nil
}

func pgMajor(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

// startRelay starts rl and waits for its /healthz; the first relay's CA
// fingerprint is the tier's.
func (t *tierBench) startRelay(ctx context.Context, rl *tierRelay) error {
	if err := os.MkdirAll(rl.dataDir, 0o700); err != nil {
		return err
	}
	c, err := startChild("relay "+rl.name, t.o.serverBin, rl.args, rl.logPath, syscall.SIGKILL, nil)
	if err != nil {
		return err
	}
	rl.c = c
	if t.fp == "" {
		if err := waitRelay(ctx, c, rl.dataDir, rl.server, rl.logPath, &t.fp, &rl.h); err != nil {
			return err
		}
	} else {
		if rl.h, err = newHealth(rl.server, t.fp); err != nil {
			return err
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			if !c.alive() {
				return fmt.Errorf("relay %s exited at start (%v); see %s", rl.name, c.err, rl.logPath)
			}
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := rl.h.online(pctx)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("relay %s not answering /healthz within 60 s (%v); see %s", rl.name, err, rl.logPath)
			}
			if !backoff.Sleep(ctx, 100*time.Millisecond) {
				return ctx.Err()
			}
		}
	}
	rl.restKiB, _ = procStatus(c.pid(), "VmRSS")
	return nil
}

// client is an admin API client on rl.
func (t *tierBench) client(ctx context.Context, rl *tierRelay) (*client.Client, error) {
	if t.token == "" {
		out, err := exec.CommandContext(ctx, t.o.serverBin, "admin-token", "--data", t.relays[0].dataDir, "--db", t.db,
			"--name", "loadgen-tier", "--ttl", "2h").Output()
		if err != nil {
			return nil, fmt.Errorf("patchbay-server admin-token: %w", err)
		}
		t.token = strings.TrimSpace(string(out))
	}
	cfg, err := client.Login(ctx, rl.server, t.token, t.fp)
	if err != nil {
		return nil, err
	}
	return client.New(cfg)
}

// enroll enrolls the part's agents through relay A.
func (t *tierBench) enroll(ctx context.Context) error {
	cl, err := t.client(ctx, t.relays[0])
	if err != nil {
		return err
	}
	defer cl.Close()
	n := t.o.tier.agents
	tok, err := cl.CreateEnrollToken(ctx, apiv1.EnrollTokenRequest{Uses: &n, TTL: "1h"})
	if err != nil {
		return err
	}
	step("tier: enrolling %d agents", n)
	start := time.Now()
	recs, err := enrollMany(ctx, enrollOptions{server: t.relays[0].server, fingerprint: t.fp, token: tok.Token, count: n,
		concurrency: 16, prefix: tierAgentHostnames}, io.Discard)
	if err != nil {
		return err
	}
	t.r.enroll = time.Since(start)
	t.ids = filepath.Join(t.dir, "identities.jsonl")
	return writeRecords(t.ids, recs)
}

// startAgents starts one agents process per relay (process i gives its
// agents servers[i]) and waits until the relays' /healthz add up to every
// agent.
func (t *tierBench) startAgents(ctx context.Context, servers [][]string, what string) (time.Duration, error) {
	n, k := t.o.tier.agents, len(servers)
	for i := range k {
		from, count := share(n, k, i)
		p, err := startAgentsProc(t.o.loadgenBin, t.ids, strings.Join(servers[i], ","), fmt.Sprintf("127.0.2.%d", 10+i),
			from, count, 0, filepath.Join(t.logDir, fmt.Sprintf("agents-%d.log", i)))
		if err != nil {
			return 0, err
		}
		t.agents = append(t.agents, p)
	}
	d, err := t.waitSum(ctx, t.live(), n, 3*time.Minute, nil)
	if err != nil {
		return 0, fmt.Errorf("agents on %s: %w", what, err)
	}
	step("  %d agents online on %s in %.1f s", n, what, d.Seconds())
	return d, nil
}

// live is the relays running now.
func (t *tierBench) live() []*tierRelay {
	var out []*tierRelay
	for _, rl := range t.relays {
		if rl.c != nil && rl.c.alive() {
			out = append(out, rl)
		}
	}
	return out
}

// check fails when a relay or an agents process has exited.
func (t *tierBench) check(relays []*tierRelay) error {
	for _, rl := range relays {
		if !rl.c.alive() {
			return fmt.Errorf("relay %s exited (%v); see %s", rl.name, rl.c.err, rl.logPath)
		}
	}
	for _, p := range t.agents {
		if !p.alive() {
			return fmt.Errorf("agents process %s exited (%v); see %s", p.source, p.err, t.logDir)
		}
	}
	return nil
}

// waitSum polls the relays' /healthz every 100 ms until they add up to
// want, and returns the time since the call (or an error after timeout).
// Each poll's sum goes to samples when it is not nil.
func (t *tierBench) waitSum(ctx context.Context, relays []*tierRelay, want int, timeout time.Duration, samples *[]sample) (time.Duration, error) {
	start := time.Now()
	last := 0
	for time.Since(start) < timeout {
		if err := t.check(relays); err != nil {
			return 0, err
		}
		sum := 0
		for _, rl := range relays {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			n, err := rl.h.online(pctx)
			cancel()
			if err == nil {
				sum += n
			}
		}
		last = sum
		if samples != nil {
			*samples = append(*samples, sample{t: time.Since(start), n: sum})
		}
		if sum >= want {
			return time.Since(start), nil
		}
		if !backoff.Sleep(ctx, 100*time.Millisecond) {
			return 0, ctx.Err()
		}
	}
	return 0, fmt.Errorf("%d of %d agents online after %v; see %s", last, want, timeout, t.logDir)
}

// stopAgents stops the agents processes.
func (t *tierBench) stopAgents() {
	for _, p := range t.agents {
		if p.alive() {
			p.stop(20 * time.Second)
		}
	}
	t.agents = nil
}

// jobs runs a first and warm no-op jobs over every agent through cl, with
// the CPU of relays.
func (t *tierBench) jobs(ctx context.Context, cl *client.Client, name string, relays []*tierRelay) (tierJobs, error) {
	res := tierJobs{name: name, relays: len(relays)}
	for i := 0; i <= t.o.tier.warm; i++ {
		run, n, err := tierJob(ctx, cl, relays)
		if err != nil {
			return res, fmt.Errorf("job on %s: %w", name, err)
		}
		res.agents = n
		what := "first job"
		if i == 0 {
			res.first = run
		} else {
			res.warm = append(res.warm, run)
			what = fmt.Sprintf("warm job %d", i)
		}
		step("  %s, %s on %d agents: %v, relay CPU %.1f µs per agent", name, what, n, run.elapsed.Round(time.Millisecond),
			float64(run.relayCPU.Microseconds())/float64(max(n, 1)))
		if !backoff.Sleep(ctx, 2*time.Second) {
			return res, ctx.Err()
		}
	}
	return res, nil
}

// tierJob runs one no-op job on every tier agent and returns its figures
// (relayCPU summed over relays, peakRSS the highest of one relay).
func tierJob(ctx context.Context, cl *client.Client, relays []*tierRelay) (jobRun, int, error) {
	var res jobRun
	cpu := func() (time.Duration, error) {
		var sum time.Duration
		for _, rl := range relays {
			c, err := procCPU(rl.c.pid())
			if err != nil {
				return 0, err
			}
			sum += c
		}
		return sum, nil
	}
	cpu0, err := cpu()
	if err != nil {
		return res, 0, err
	}
	j, err := cl.CreateJob(ctx, apiv1.JobCreate{Plugin: "sysinfo", Target: "hostname=" + tierAgentHostnames + "*", Reason: "make bench", Expires: "3m"})
	if err != nil {
		return res, 0, err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		for _, rl := range relays {
			if rss, err := procStatus(rl.c.pid(), "VmRSS"); err == nil && rss > res.peakRSS {
				res.peakRSS = rss
			}
		}
		p, err := cl.JobProgress(ctx, j.ID)
		if err != nil {
			return res, j.Total, err
		}
		if p.EndedAt != nil {
			res.elapsed = p.EndedAt.Sub(p.CreatedAt)
			res.ok = p.Counts["succeeded"] == j.Total
			break
		}
		if !backoff.Sleep(ctx, 50*time.Millisecond) { // polling costs the relay CPU too: keep it light
			return res, j.Total, ctx.Err()
		}
	}
	cpu1, err := cpu()
	if err != nil {
		return res, j.Total, err
	}
	res.relayCPU = cpu1 - cpu0
	if res.elapsed == 0 {
		return res, j.Total, errors.New("the job did not end within 2 minutes")
	}
	return res, j.Total, nil
}

// measureIdle lets the tier settle and reads each relay's agents, memory
// and CPU over the idle window.
func (t *tierBench) measureIdle(ctx context.Context) {
	to := t.o.tier
	step("tier: idle %v, then CPU over %v", to.settle, to.idleWindow)
	if !backoff.Sleep(ctx, to.settle) {
		return
	}
	cpu0 := make([]time.Duration, len(t.relays))
	for i, rl := range t.relays {
		cpu0[i], _ = procCPU(rl.c.pid())
	}
	start := time.Now()
	if !backoff.Sleep(ctx, to.idleWindow) {
		return
	}
	t.r.idleWindow = time.Since(start)
	for i, rl := range t.relays {
		u := tierRelayUse{name: rl.name, restKiB: rl.restKiB, fds: procFDs(rl.c.pid())}
		c1, _ := procCPU(rl.c.pid())
		u.idleCPU = c1 - cpu0[i]
		u.idleKiB, _ = procStatus(rl.c.pid(), "VmRSS")
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		u.online, _ = rl.h.online(pctx)
		cancel()
		t.r.idle = append(t.r.idle, u)
	}
	for _, p := range t.agents {
		if rss, err := procStatus(p.pid(), "VmRSS"); err == nil {
			t.r.loadgenKiB += rss
		}
	}
}

// failover SIGKILLs the last relay and times its agents' return on the
// others: the survivors' /healthz and the tier's presence.
func (t *tierBench) failover(ctx context.Context) error {
	victim := t.relays[len(t.relays)-1]
	survivors := t.relays[:len(t.relays)-1]
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	t.r.killedAgents, _ = victim.h.online(pctx)
	cancel()
	t.r.killed = victim.name
	hc, err := enroll.NewHTTPClient(survivors[len(survivors)-1].server, t.fp)
	if err != nil {
		return err
	}
	hc.Timeout = 5 * time.Second
	presence := survivors[len(survivors)-1].server + "/v1/agents?limit=1&target=" + "hostname%3D" + tierAgentHostnames + "%2A"
	step("tier: SIGKILL of relay %s (%d agents)", victim.name, t.r.killedAgents)
	n := t.o.tier.agents
	before := fleet(t.agents).sum()
	defer func() { t.r.failOver = delta(fleet(t.agents).sum(), before) }()
	killed := time.Now()
	victim.c.kill()
	var samples []sample
	presMin := make(chan int, 1)
	pctx, cancel = context.WithCancel(ctx)
	defer cancel()
	go func() { // owned by failover: ends when it cancels pctx
		low := n
		for pctx.Err() == nil {
			// ctx, not pctx: a request cut off by the end of the wait
			// would only leave an error line in the relay's log.
			if v := online(ctx, hc, presence, t.token); v >= 0 {
				low = min(low, v)
			}
			backoff.Sleep(pctx, 100*time.Millisecond)
		}
		presMin <- low
	}()
	d, err := t.waitSum(ctx, survivors, n, t.o.tier.failTimeout, &samples)
	back := time.Since(killed) // waitSum started right after the kill
	t.r.failoverSample = samples
	if err != nil {
		t.r.failoverErr = err.Error()
		cancel()
		t.r.presenceMin = <-presMin
		return nil
	}
	t.r.backHealth = back
	// The tier's presence: the killed relay's keys stay until their TTL, so
	// the count may not dip; it must count every agent once they are back.
	for time.Since(killed) < t.o.tier.failTimeout {
		if online(ctx, hc, presence, t.token) >= n {
			t.r.backPresence = time.Since(killed)
			break
		}
		if !backoff.Sleep(ctx, 100*time.Millisecond) {
			break
		}
	}
	cancel()
	t.r.presenceMin = <-presMin
	if t.r.backPresence == 0 {
		t.r.note("The tier's presence did not count every agent online within %v of the kill (the survivors' /healthz did after %s).", t.o.tier.failTimeout, secs(d))
	}
	step("  back on the survivors in %s (/healthz), %s (presence)", secs(t.r.backHealth), secs(t.r.backPresence))
	return nil
}

// online is X-Online-Count of a GET /v1/agents, or -1.
func online(ctx context.Context, hc *http.Client, url, token string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return -1
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := hc.Do(req)
	if err != nil {
		return -1
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return -1
	}
	v, err := strconv.Atoi(res.Header.Get(apiv1.HeaderOnlineCount))
	if err != nil {
		return -1
	}
	return v
}

// cleanup stops the agents, the relays and PostgreSQL.
func (t *tierBench) cleanup() {
	t.stopAgents()
	for _, rl := range t.relays {
		if rl.c != nil && rl.c.alive() {
			rl.c.stop(10 * time.Second)
		}
	}
	if t.pgCtl != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		argv := append(append([]string{}, t.pgCtl...), "-w", "-m", "immediate", "stop")
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Dir = "/"
		if out, err := cmd.CombinedOutput(); err != nil {
			step("tier: pg_ctl stop: %v: %s", err, out)
		}
		cancel()
		t.pgCtl = nil
	}
	if t.pgDir != "" {
		os.RemoveAll(t.pgDir)
		t.pgDir = ""
	}
}
