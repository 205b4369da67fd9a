package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/backoff"
	"github.com/patchbay/patchbay/internal/release"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/plugins/signature"
)

// The upgrade part of the bench (issue 16, "Performance"), --only upgrade:
//
//  1. a release signed in the run: an ed25519 key made for it, the
//     allowed_signers line that trusts it for namespace patchbay-release,
//     and in --releases a directory V with a stand-in agent binary of
//     --upgrade-binary-kib random bytes for this platform, SHA256SUMS and
//     its SSHSIG (plugins/signature.SignNamespace);
//  2. a fresh relay (SQLite, serve --releases) and --upgrade-agents agents
//     enrolled through it, held by --procs agents processes that trust the
//     key (agents --upgrade-signers);
//  3. the floor: no-op jobs over the same agents (a first, then
//     --upgrade-warm warm ones): created -> every result stored, with the
//     relay's CPU and peak RSS;
//  4. patchbay agents upgrade's job (plugin patchbay-agent, version V) over
//     them with --upgrade-canary: created -> every result stored, the relay's
//     CPU (utime+stime from /proc/PID/stat) and peak RSS over the job, when
//     the canary's runs had succeeded, and the agents' downloads. Each
//     simulated agent fetches SHA256SUMS, its signature and the binary from
//     the relay over HTTPS with its own certificate, verifies them, closes
//     its link, reconnects with version V in its hello and reports the run
//     succeeded with the versions before and after (upgradeagent.go).

// upgradeAgentHostnames is the host name prefix of the upgrade part's agents.
const upgradeAgentHostnames = "upgrade-"

// upgradeShares are the shares of ended runs whose times the report shows.
var upgradeShares = [...]float64{0.5, 0.9, 0.99}

// upgradeVersion is the release the part rolls out.
const upgradeVersion = "v99.0.0-bench"

// upgradeOptions are the options of the upgrade part.
type upgradeOptions struct {
	agents, binaryKiB, warm int
	canary                  string
	timeout                 time.Duration
}

func upgradeFlags(f *pflag.FlagSet, o *upgradeOptions) {
	f.IntVar(&o.agents, "upgrade-agents", 10000, "upgrade part: simulated agents (spread over --procs agents processes)")
	f.IntVar(&o.binaryKiB, "upgrade-binary-kib", 1024, "upgrade part: size of the stand-in agent binary every agent downloads, KiB")
	f.IntVar(&o.warm, "upgrade-warm", 3, "upgrade part: warm no-op jobs (the floor) after the first")
	f.StringVar(&o.canary, "upgrade-canary", "1%", "upgrade part: the upgrade job's --canary (N or P%)")
	f.DurationVar(&o.timeout, "upgrade-timeout", 10*time.Minute, "upgrade part: limit for the upgrade job to end")
}

func (o upgradeOptions) check(procs int) error {
	if o.agents < 1 || o.binaryKiB < 1 || o.warm < 1 || o.timeout <= 0 || procs < 1 || procs > 200 {
		return errors.New("--upgrade-agents, --upgrade-binary-kib, --upgrade-warm and --upgrade-timeout must be positive, --procs 1-200")
	}
	if per := (o.agents + procs - 1) / procs; per > 15000 {
		return fmt.Errorf("--upgrade-agents %d over --procs %d is %d links per process; the open-file limit is 20,000 and each upgrading agent holds a second socket: raise --procs", o.agents, procs, per)
	}
	return nil
}

// upgradeResults is everything the upgrade part measured.
type upgradeResults struct {
	started time.Time
	opts    benchOptions
	machine machineInfo
	cmd     string
	// loadBefore and loadAfter are /proc/loadavg's first three fields.
	loadBefore, loadAfter string

	enroll, connect time.Duration
	floor           jobResult // the no-op jobs on the same agents

	upgrade  jobRun        // the upgrade job
	total    int           // its runs
	canary   int           // its canary's runs
	canaryAt time.Duration // from created until the canary's runs had all succeeded (0: never seen)
	// doneAt is, for each of upgradeShares, when the polls first saw that
	// share of the runs ended (0: never seen).
	doneAt    [len(upgradeShares)]time.Duration
	counts    map[string]int
	jobState  string
	agentsBy  report        // the agents processes' counters after the upgrade
	backAfter time.Duration // from the job's end until /healthz counted every agent again (0: at once)
	rssAgents int64         // the agents processes' RSS after the upgrade, KiB
	cpuAgents time.Duration // the agents processes' CPU over the upgrade job

	notes []string
	logs  []logSummary
}

func (r *upgradeResults) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// upgradeBench is one run of the upgrade part.
type upgradeBench struct {
	o                    benchOptions
	r                    *upgradeResults
	dir, logDir, dataDir string
	relDir, signers      string
	listen, server, fp   string
	relay                *child
	health               *health
	agents               fleet
	ids                  string
}

// runUpgradeOnly runs the upgrade part and rewrites its section of --out.
func runUpgradeOnly(ctx context.Context, o benchOptions, logDir string) error {
	u := &upgradeBench{o: o, r: &upgradeResults{started: time.Now().UTC(), opts: o, machine: machine()},
		dir: filepath.Join(o.cacheDir, "upgrade"), logDir: filepath.Join(logDir, "upgrade")}
	defer u.cleanup()
	u.r.loadBefore = loadAvg()
	if err := u.run(ctx); err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	u.r.loadAfter = loadAvg()
	u.cleanup()
	names := []string{"relay.log"}
	for i := range u.o.procs {
		names = append(names, fmt.Sprintf("agents-%d.log", i))
	}
	for _, name := range names {
		warn, errs, emfile, sample := scanLog(filepath.Join(u.logDir, name))
		u.r.logs = append(u.r.logs, logSummary{name: "upgrade/" + name, warn: warn, errors: errs, emfile: emfile, sample: sample})
	}
	u.r.cmd = commandLine()
	if err := writeUpgradeOnly(o.out, u.r); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	step("upgrade section written to %s", o.out)
	printUpgradeSummary(u.r)
	return nil
}

func (u *upgradeBench) run(ctx context.Context) error {
	uo := u.o.upgrade
	for _, d := range []string{u.dir, u.logDir} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if err := u.makeRelease(); err != nil {
		return fmt.Errorf("make the signed release: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	u.listen = "127.0.0.1:" + strconv.Itoa(port)
	u.server = "https://" + u.listen
	u.dataDir = filepath.Join(u.dir, "relay-data")
	logPath := filepath.Join(u.logDir, "relay.log")
	args := append(relayArgs(u.dataDir, u.listen, u.o.heartbeat), "--releases", u.relDir)
	step("upgrade: relay on %s, release %s in %s (%d KiB stand-in agent binary)", u.listen, upgradeVersion, u.relDir, uo.binaryKiB)
	if u.relay, err = startChild("relay", u.o.serverBin, args, logPath, syscall.SIGKILL, nil); err != nil {
		return err
	}
	if err := waitRelay(ctx, u.relay, u.dataDir, u.server, logPath, &u.fp, &u.health); err != nil {
		return err
	}
	cl, err := adminClient(ctx, u.o.serverBin, u.dataDir, u.server, u.fp, "loadgen-upgrade", "2h")
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := u.enroll(ctx, cl); err != nil {
		return err
	}
	if err := u.startAgents(ctx); err != nil {
		return err
	}

	// The floor: no-op jobs over the same agents.
	if err := publishBenchPlugin(ctx, cl, filepath.Join(filepath.Dir(u.o.serverBin), "plugins", "sysinfo")); err != nil {
		return fmt.Errorf("publish the bench plugin: %w (run make build)", err)
	}
	u.r.floor.target = "hostname=" + upgradeAgentHostnames + "*"
	for i := 0; i <= uo.warm; i++ {
		run, n, err := u.job(ctx, cl, apiv1.JobCreate{Plugin: "sysinfo", Target: u.r.floor.target, Reason: "make bench", Expires: "3m"}, 2*time.Minute, nil)
		if err != nil {
			return fmt.Errorf("no-op job: %w", err)
		}
		u.r.floor.agents = n
		what := "first no-op job"
		if i == 0 {
			u.r.floor.first = run
		} else {
			u.r.floor.warm = append(u.r.floor.warm, run)
			what = fmt.Sprintf("warm no-op job %d", i)
		}
		step("  %s on %d agents: %v, relay CPU %.1f µs per agent", what, n, run.elapsed.Round(time.Millisecond),
			float64(run.relayCPU.Microseconds())/float64(max(n, 1)))
		if !backoff.Sleep(ctx, 2*time.Second) {
			return ctx.Err()
		}
	}

	// The upgrade.
	step("upgrade: patchbay agents upgrade --version %s --target %s --canary %s", upgradeVersion, u.r.floor.target, uo.canary)
	req := apiv1.JobCreate{Plugin: wire.UpgradePlugin, Version: upgradeVersion, Target: u.r.floor.target, Canary: uo.canary,
		Reason: "make bench", Expires: "1h"}
	var job apiv1.Job
	_, lgCPU0 := u.agents.usage()
	u.r.upgrade, u.r.total, err = u.job(ctx, cl, req, uo.timeout, func(j apiv1.Job, since time.Duration) {
		job = j
		if u.r.canaryAt == 0 && j.Canary > 0 && j.Counts[string(wire.StateSucceeded)] >= j.Canary {
			u.r.canaryAt = since
		}
		ended := 0
		for _, st := range []string{wire.StateSucceeded, wire.StateFailed, wire.StateSkipped, wire.StateCancelled, "expired"} {
			ended += j.Counts[st]
		}
		for i, share := range upgradeShares {
			if u.r.doneAt[i] == 0 && j.Total > 0 && float64(ended) >= share*float64(j.Total) {
				u.r.doneAt[i] = since
			}
		}
	})
	u.r.canary, u.r.counts, u.r.jobState = job.Canary, job.Counts, job.State
	_, lgCPU1 := u.agents.usage()
	u.r.cpuAgents = lgCPU1 - lgCPU0
	u.r.agentsBy = u.agents.sum()
	if err != nil {
		return fmt.Errorf("upgrade job: %w (agents: %d runs, %d upgraded, %d failed, last error %q)", err,
			u.r.agentsBy.UpgradeRuns, u.r.agentsBy.Upgraded, u.r.agentsBy.UpgradeFailed, u.r.agentsBy.UpgradeError)
	}
	step("  upgrade of %d agents (canary %d): %v, canary done after %v, relay CPU %.1f s, peak RSS %s; %s",
		u.r.total, u.r.canary, u.r.upgrade.elapsed.Round(time.Millisecond), u.r.canaryAt.Round(time.Millisecond),
		u.r.upgrade.relayCPU.Seconds(), kib(u.r.upgrade.peakRSS), countsText(u.r.counts))
	if !u.r.upgrade.ok {
		u.r.note("Not every upgrade run succeeded: %s; the agents' last error: %s.", countsText(u.r.counts), orDash(u.r.agentsBy.UpgradeError))
	}
	// Every agent online again (they reconnected before reporting; this
	// only confirms the relay counts them).
	samples, back, err := u.health.waitOnline(ctx, time.Now(), uo.agents, 100*time.Millisecond, time.Minute, u.agents.check)
	if err != nil {
		return err
	}
	if back == 0 {
		last := 0
		if len(samples) > 0 {
			last = samples[len(samples)-1].n
		}
		u.r.note("After the upgrade, /healthz counted %d of %d agents online within a minute.", last, uo.agents)
	}
	u.r.backAfter = back
	// The agents processes report every 100 ms: wait for the lines that
	// count the last results.
	for wait := time.Now(); time.Since(wait) < 5*time.Second; {
		if u.r.agentsBy = u.agents.sum(); u.r.agentsBy.Upgraded+u.r.agentsBy.UpgradeFailed >= int64(u.r.total) {
			break
		}
		if !backoff.Sleep(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
	u.r.rssAgents, _ = u.agents.usage()
	return nil
}

// makeRelease writes the key's allowed_signers and the signed release.
func (u *upgradeBench) makeRelease() error {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		return err
	}
	u.signers = filepath.Join(u.dir, "allowed_signers")
	line := `patchbay-bench-release namespaces="` + signature.ReleaseNamespace + `" ` + string(ssh.MarshalAuthorizedKey(signer.PublicKey()))
	if err := os.WriteFile(u.signers, []byte(line), 0o600); err != nil {
		return err
	}
	u.relDir = filepath.Join(u.dir, "releases")
	dir := filepath.Join(u.relDir, upgradeVersion)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	bin := make([]byte, u.o.upgrade.binaryKiB<<10)
	rand.Read(bin)
	name := release.AgentName(upgradeVersion, runtime.GOOS, runtime.GOARCH)
	if err := os.WriteFile(filepath.Join(dir, name), bin, 0o755); err != nil {
		return err
	}
	h, err := sha256Hex(bytes.NewReader(bin))
	if err != nil {
		return err
	}
	sums := (&release.Manifest{Files: []release.File{{Name: name, SHA256: h}}}).Marshal()
	sig, err := signature.SignNamespace(signer, bytes.NewReader(sums), signature.ReleaseNamespace)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, release.SumsName), sums, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, release.SigName), sig, 0o644)
}

// sha256Hex is the SHA-256 of r's bytes in lowercase hex, as SHA256SUMS has it.
func sha256Hex(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// enroll enrolls the part's agents.
func (u *upgradeBench) enroll(ctx context.Context, cl *client.Client) error {
	n := u.o.upgrade.agents
	tok, err := cl.CreateEnrollToken(ctx, apiv1.EnrollTokenRequest{Uses: &n, TTL: "1h"})
	if err != nil {
		return err
	}
	step("upgrade: enrolling %d agents", n)
	start := time.Now()
	recs, err := enrollMany(ctx, enrollOptions{server: u.server, fingerprint: u.fp, token: tok.Token, count: n,
		concurrency: 16, prefix: upgradeAgentHostnames}, io.Discard)
	if err != nil {
		return err
	}
	u.r.enroll = time.Since(start)
	u.ids = filepath.Join(u.dir, "identities.jsonl")
	return writeRecords(u.ids, recs)
}

// startAgents starts the agents processes (trusting the release key) and
// waits until /healthz counts every agent.
func (u *upgradeBench) startAgents(ctx context.Context) error {
	n, k := u.o.upgrade.agents, u.o.procs
	start := time.Now()
	for i := range k {
		from, count := share(n, k, i)
		p, err := startAgentsProc(u.o.loadgenBin, u.ids, u.server, fmt.Sprintf("127.0.3.%d", 10+i), from, count, 0,
			filepath.Join(u.logDir, fmt.Sprintf("agents-%d.log", i)), "--upgrade-signers", u.signers)
		if err != nil {
			return err
		}
		u.agents = append(u.agents, p)
	}
	_, d, err := u.health.waitOnline(ctx, start, n, 100*time.Millisecond, 3*time.Minute, u.agents.check)
	if err != nil {
		return err
	}
	if d == 0 {
		return fmt.Errorf("not every agent online within 3 minutes (%s); see %s", errorSummary(u.agents.sum()), u.logDir)
	}
	u.r.connect = d
	step("  %d agents online in %.1f s", n, d.Seconds())
	return nil
}

// job creates req and polls it until it ends (at most timeout), with the
// relay's CPU and RSS; seen, if set, gets every poll's progress.
func (u *upgradeBench) job(ctx context.Context, cl *client.Client, req apiv1.JobCreate, timeout time.Duration, seen func(apiv1.Job, time.Duration)) (jobRun, int, error) {
	pid := u.relay.pid()
	var res jobRun
	res.idleRSS, _ = procStatus(pid, "VmRSS")
	res.peakRSS = res.idleRSS
	cpu0, err := procCPU(pid)
	if err != nil {
		return res, 0, err
	}
	start := time.Now()
	j, err := cl.CreateJob(ctx, req)
	if err != nil {
		return res, 0, err
	}
	deadline := start.Add(timeout)
	for time.Now().Before(deadline) {
		if err := u.agents.check(); err != nil {
			return res, j.Total, err
		}
		if rss, err := procStatus(pid, "VmRSS"); err == nil && rss > res.peakRSS {
			res.peakRSS = rss
		}
		p, err := cl.JobProgress(ctx, j.ID)
		if err != nil {
			return res, j.Total, err
		}
		if seen != nil {
			seen(p, time.Since(start))
		}
		if p.EndedAt != nil {
			res.elapsed = p.EndedAt.Sub(p.CreatedAt)
			res.ok = p.Counts[string(wire.StateSucceeded)] == j.Total
			break
		}
		if !backoff.Sleep(ctx, 50*time.Millisecond) { // polling costs the relay CPU too: keep it light
			return res, j.Total, ctx.Err()
		}
	}
	cpu1, err := procCPU(pid)
	if err != nil {
		return res, j.Total, err
	}
	res.relayCPU = cpu1 - cpu0
	if res.elapsed == 0 {
		return res, j.Total, fmt.Errorf("the job did not end within %v", timeout)
	}
	return res, j.Total, nil
}

// cleanup stops the agents and the relay.
func (u *upgradeBench) cleanup() {
	if len(u.agents) > 0 {
		u.agents.stop(20 * time.Second)
		u.agents = nil
	}
	if u.relay != nil && u.relay.alive() {
		u.relay.stop(10 * time.Second)
	}
}
