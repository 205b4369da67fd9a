package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/patchbay/patchbay/agent/identity"
	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/backoff"
)

// The interactive-session part of the bench (issue 5) runs against its own
// fresh relay process, real patchbay-agent processes and a technician
// driven from this process with the real client library. It is separate
// from the fleet part (which holds 19,000 simulated agents) so that it can
// run alone in a couple of minutes (--only sessions).

// technicianName is the technician API token's name: the key ID of the SSH
// certificate and the name every agent sees in its consent requests.
const technicianName = "bench-tech"

// sessionBench is one run of the session measurements: its processes and
// the technician.
type sessionBench struct {
	o      benchOptions
	r      *sessionResults
	dir    string // cache/sessions, recreated on every run
	logDir string

	listen, server, fp string
	relay              *child
	health             *health

	agents []*realAgent // patchbay-agent run processes
	echo   *echoAgent   // the in-process agent behind the relayed-stream figure
	tech   *technician
}

// realAgent is one patchbay-agent process.
type realAgent struct {
	*child
	id, hostname, dir string
}

// runSessions measures interactive sessions and returns what it measured.
// A measurement that fails is noted in the results; an error is returned
// only when the relay or the agents could not be set up at all.
func runSessions(ctx context.Context, o benchOptions, logDir string) (*sessionResults, error) {
	s := &sessionBench{
		o:      o,
		r:      &sessionResults{started: time.Now().UTC(), opts: o, machine: machine()},
		dir:    filepath.Join(o.cacheDir, "sessions"),
		logDir: logDir,
	}
	for _, bin := range []string{o.serverBin, o.agentBin, o.cliBin} {
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("sessions: %w (run make build)", err)
		}
	}
	defer s.cleanup()

	step("sessions: raw loopback TCP, one stream, %v (the baseline of this part)", o.baseline)
	gbps, err := tcpBaseline(o.baseline)
	if err != nil {
		return nil, fmt.Errorf("sessions: tcp baseline: %w", err)
	}
	s.r.tcpGbps = gbps
	step("  %.1f Gbit/s", gbps)

	if err := s.setUp(ctx); err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	s.measure(ctx)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.tearDown()
	return s.r, nil
}

// measure runs every session measurement in turn; a failed one is noted
// and the next one runs.
func (s *sessionBench) measure(ctx context.Context) {
	parts := []struct {
		name string
		run  func(context.Context) error
	}{
		{"session setup latency", s.measureSetup},
		{"stream throughput", s.measureStreams},
		{"scp", s.measureSCP},
		{"keystroke round trip", s.measureKeystrokes},
	}
	only := os.Getenv("PATCHBAY_BENCH_SESSION_PARTS") // while iterating: a comma-separated subset of the names above
	for _, p := range parts {
		if ctx.Err() != nil {
			return
		}
		if only != "" && !strings.Contains(","+only+",", ","+p.name+",") {
			continue
		}
		if err := p.run(ctx); err != nil {
			s.r.note("The %s measurement failed: %v.", p.name, err)
			step("  %s failed: %v", p.name, err)
		}
	}
}

// setUp starts a relay on a fresh data directory, creates the technician's
// API token and SSH certificate, enrolls and starts the agents, and waits
// until every agent answers a session.
func (s *sessionBench) setUp(ctx context.Context) error {
	if err := os.RemoveAll(s.dir); err != nil {
		return err
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	s.listen = "127.0.0.1:" + strconv.Itoa(port)
	s.server = "https://" + s.listen
	step("sessions: relay on %s, fresh data in %s", s.listen, s.dir)
	if err := s.startRelay(ctx); err != nil {
		return err
	}

	admin, err := s.login(ctx, s.adminToken)
	if err != nil {
		return fmt.Errorf("admin login: %w", err)
	}
	defer admin.Close()
	tok, err := admin.CreateAPIToken(ctx, apiv1.APITokenRequest{Role: apiv1.RoleTechnician, Name: technicianName, TTL: "2h"})
	if err != nil {
		return err
	}
	if s.tech, err = newTechnician(ctx, s.server, tok.Token, s.fp, filepath.Join(s.dir, "technician")); err != nil {
		return err
	}

	n := s.o.sessionAgents + 1 // the last one is the in-process echo agent
	uses := n
	etok, err := admin.CreateEnrollToken(ctx, apiv1.EnrollTokenRequest{Uses: &uses, TTL: "1h", Tags: map[string]string{"loadgen": "sessions"}})
	if err != nil {
		return err
	}
	approve, err := writeApproveScript(s.dir)
	if err != nil {
		return err
	}
	step("sessions: enrolling and starting %d agents (consent: prompt, exec backend %s)", s.o.sessionAgents, approve)
	for i := range n {
		dir := filepath.Join(s.dir, fmt.Sprintf("agent-%d", i))
		host := fmt.Sprintf("bench-sess-%d", i)
		if i == n-1 {
			host = "bench-echo"
		}
		out, err := exec.CommandContext(ctx, s.o.agentBin, "enroll", "--server", s.server, "--token", etok.Token,
			"--ca-fingerprint", s.fp, "--data", dir, "--hostname", host).CombinedOutput()
		if err != nil {
			return fmt.Errorf("patchbay-agent enroll %s: %w: %s", host, err, clipText(strings.TrimSpace(string(out)), 300))
		}
		id, err := identity.Load(dir)
		if err != nil {
			return err
		}
		if i == n-1 {
			s.echo = startEchoAgent(id, host)
			continue
		}
		args := []string{"run", "--data", dir, "--log-level", "warn", "--log-format", "json",
			"--consent-mode", "prompt", "--consent-backend", "exec:" + approve, "--consent-timeout", "30s"}
		if s.o.sessionShell != "" {
			args = append(args, "--session-shell", s.o.sessionShell)
		}
		c, err := startChild("agent "+host, s.o.agentBin, args, filepath.Join(s.logDir, "sessions-"+host+".log"), syscall.SIGTERM, nil)
		if err != nil {
			return err
		}
		s.agents = append(s.agents, &realAgent{child: c, id: id.AgentID, hostname: host, dir: dir})
	}
	_, reached, err := s.health.waitOnline(ctx, time.Now(), n, 100*time.Millisecond, 30*time.Second, s.check)
	if err != nil {
		return err
	}
	if reached == 0 {
		return fmt.Errorf("not all %d agents online within 30 s; see %s", n, s.logDir)
	}
	s.r.shell = s.o.sessionShell
	if s.r.shell == "" {
		s.r.shell = loginShell() + ", the account's login shell"
	}
	step("sessions: %d agents online; warming up (one session per agent)", n)
	return s.warmUp(ctx)
}

// check reports a relay or agent process that exited.
func (s *sessionBench) check() error {
	if !s.relay.alive() {
		return fmt.Errorf("relay exited (%v)", s.relay.err)
	}
	for _, a := range s.agents {
		if !a.alive() {
			return fmt.Errorf("%s exited early (%v); see its log", a.name, a.err)
		}
	}
	return nil
}

// startRelay starts the relay and waits for its CA and /healthz.
func (s *sessionBench) startRelay(ctx context.Context) error {
	dataDir := filepath.Join(s.dir, "relay-data")
	logPath := filepath.Join(s.logDir, "sessions-relay.log")
	c, err := startChild("relay (sessions)", s.o.serverBin, relayArgs(dataDir, s.listen, s.o.heartbeat), logPath, syscall.SIGKILL, nil)
	if err != nil {
		return err
	}
	s.relay = c
	return waitRelay(ctx, c, dataDir, s.server, logPath, &s.fp, &s.health)
}

// adminToken prints a fresh admin token with patchbay-server admin-token.
func (s *sessionBench) adminToken(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, s.o.serverBin, "admin-token", "--data", filepath.Join(s.dir, "relay-data"),
		"--name", "loadgen-sessions", "--ttl", "2h").Output()
	if err != nil {
		return "", fmt.Errorf("patchbay-server admin-token: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// login returns an API client for the token that get returns.
func (s *sessionBench) login(ctx context.Context, get func(context.Context) (string, error)) (*client.Client, error) {
	tok, err := get(ctx)
	if err != nil {
		return nil, err
	}
	cfg, err := client.Login(ctx, s.server, tok, s.fp)
	if err != nil {
		return nil, err
	}
	return client.New(cfg)
}

// warmUp opens one shell session on every agent, retrying while an agent
// still fetches its SSH host certificate after connecting.
func (s *sessionBench) warmUp(ctx context.Context) error {
	for _, a := range s.agents {
		if err := warmSession(ctx, s.tech, a); err != nil {
			return err
		}
	}
	return nil
}

// warmSession opens one shell session on a as tech, retrying for 15 s while
// the agent still fetches its SSH host certificate after connecting.
func warmSession(ctx context.Context, tech *technician, a *realAgent) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := tech.shellSetup(ctx, a.id)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("warm-up session on %s: %w", a.hostname, err)
		}
		if !backoff.Sleep(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// usage returns the CPU time used so far by the relay, the agents processes
// and this process.
func (s *sessionBench) usage() cpuUse {
	var u cpuUse
	u.relay, _ = procCPU(s.relay.pid())
	for _, a := range s.agents {
		if c, err := procCPU(a.pid()); err == nil {
			u.agents += c
		}
	}
	u.loadgen, _ = procCPU(os.Getpid())
	u.machine = machineBusy()
	u.at = time.Now()
	return u
}

// tearDown stops the agents and the relay, then scans their logs.
func (s *sessionBench) tearDown() {
	s.cleanup()
	ents, err := os.ReadDir(s.logDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "sessions-") {
			continue
		}
		warn, errs, emfile, sample := scanLog(filepath.Join(s.logDir, e.Name()))
		s.r.logs = append(s.r.logs, logSummary{name: e.Name(), warn: warn, errors: errs, emfile: emfile, sample: sample})
	}
}

// cleanup ends whatever is still running; it may be called twice.
func (s *sessionBench) cleanup() {
	if s.tech != nil {
		s.tech.Close()
	}
	if s.echo != nil {
		s.echo.stop()
		s.echo = nil
	}
	var f fleet
	for _, a := range s.agents {
		f = append(f, &agentsProc{child: a.child})
	}
	if unclean := f.stop(10 * time.Second); len(unclean) > 0 {
		s.r.note("Agents killed after 10 s without exiting on SIGTERM: %s.", strings.Join(unclean, ", "))
	}
	s.agents = nil
	if s.relay != nil && s.relay.alive() && !s.relay.stop(10*time.Second) {
		s.r.note("The sessions relay did not stop within 10 s of SIGTERM and was killed.")
	}
}

// writeApproveScript writes the exec consent program: it approves every
// request (exit 0) and names who approved.
func writeApproveScript(dir string) (string, error) {
	path, err := filepath.Abs(filepath.Join(dir, "approve.sh"))
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\necho by=make-bench\n"), 0o755); err != nil {
		return "", fmt.Errorf("write consent script: %w", err)
	}
	return path, os.Chmod(path, 0o755) // the umask may have cleared bits; go-w is required
}

// loginShell is this account's login shell, which sessions run.
func loginShell() string {
	raw, err := os.ReadFile("/etc/passwd")
	if err == nil {
		uid := strconv.Itoa(os.Getuid())
		for _, line := range strings.Split(string(raw), "\n") {
			if fs := strings.Split(line, ":"); len(fs) >= 7 && fs[2] == uid && fs[6] != "" {
				return fs[6]
			}
		}
	}
	if sh := os.Getenv("SHELL"); sh != "" {
		return sh
	}
	return "/bin/sh"
}

// errNoAgents is returned by measurements that need agents when none run.
var errNoAgents = errors.New("no agents running")
