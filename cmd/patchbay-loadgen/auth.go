package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/backoff"
	"github.com/patchbay/patchbay/server/account"
)

// The auth part of the bench (issue 15, "Performance"): what one password
// login costs, and whether a relay flooded with wrong passwords keeps
// serving agents and other users.
//
//  1. argon2id: account.Hash timed in this process (nothing else running
//     in it yet), wall time and CPU per hash;
//  2. a fresh relay (data in --cache/auth) with --auth-agents simulated
//     agents in one agents process (source 127.0.1.10), users alice, bob
//     and carol (role technician) created through the API; bob and alice
//     log in once (alice from 127.0.0.1, which the relay then knows as
//     hers);
//  3. three phases of --auth-window each, the same probes in each: bob's
//     GET /v1/whoami and GET /v1/agents?limit=100 from 127.0.0.1 with his
//     session token, bob's password login from 127.0.1.2 and alice's from
//     127.0.0.1, no-op jobs on every agent, agents online; the relay's CPU.
//     Idle: nothing else. One source: an auth-flood process sends
//     --auth-rate wrong passwords a second for carol from 127.0.0.2. Many
//     sources: the same rate for alice from 127.0.0.2-127.0.0.255, and
//     halfway through alice tries once from a new address (127.0.1.3).

// Source addresses of the auth part.
const (
	authAPISource      = "127.0.0.1"  // bob's API calls, alice's known address
	authBobSource      = "127.0.1.2"  // bob's password logins
	authNewSource      = "127.0.1.3"  // alice from an address the relay does not know
	authAgentsSource   = "127.0.1.10" // the simulated agents
	authOneSource      = "127.0.0.2"
	authManySources    = "127.0.0.2-127.0.0.255"
	authPassword       = "bench-password-correct-horse"
	authAgentHostnames = "auth-"
)

// authOptions are the options of the auth part.
type authOptions struct {
	agents     int           // simulated agents on the relay
	window     time.Duration // each phase
	rate       int           // wrong passwords per second in the floods
	workers    int           // the flood's requests in flight at most
	hashes     int           // argon2id hashes timed in process
	apiEvery   time.Duration // one API probe (alternately whoami and agents) every
	loginEvery time.Duration // one password login of bob and one of alice every
}

func authFlags(f *pflag.FlagSet, o *authOptions) {
	f.IntVar(&o.agents, "auth-agents", 500, "auth part: simulated agents on its relay")
	f.DurationVar(&o.window, "auth-window", 30*time.Second, "auth part: length of each phase (idle, one flooding source, many)")
	f.IntVar(&o.rate, "auth-rate", 1000, "auth part: wrong passwords per second in the floods")
	f.IntVar(&o.workers, "auth-flood-workers", 64, "auth part: the flood's requests in flight at most (an attacker's connections)")
	f.IntVar(&o.hashes, "auth-hashes", 20, "auth part: argon2id hashes timed in process")
	f.DurationVar(&o.apiEvery, "auth-api-every", 50*time.Millisecond, "auth part: one API request (whoami and agents in turn) every")
	f.DurationVar(&o.loginEvery, "auth-login-every", 500*time.Millisecond, "auth part: one password login of each of the two users every")
}

func (o authOptions) check() error {
	if o.agents < 1 || o.window < 5*time.Second || o.rate < 1 || o.workers < 1 || o.hashes < 1 || o.apiEvery <= 0 || o.loginEvery <= 0 {
		return errors.New("--auth-agents, --auth-rate, --auth-hashes, --auth-api-every and --auth-login-every and --auth-flood-workers must be positive, --auth-window at least 5s")
	}
	return nil
}

// authPhase is what one phase measured.
type authPhase struct {
	name     string
	floodCmd string       // "" at idle
	flood    *floodReport // the flood's final report
	floodCPU time.Duration
	floodErr string

	wall     time.Duration
	relayCPU time.Duration

	whoami, agentsList []time.Duration
	apiFailed          int
	apiErr             string

	bobLogin, aliceLogin []time.Duration
	loginFailed          int
	loginErr             string
	newAddr              string // alice's attempt from a new address, when made

	jobs       []time.Duration
	jobsFailed int
	jobsErr    string

	onlineBefore, onlineMin, onlineAfter int
	drops, failures                      int64
}

// authResults is everything the auth part measured.
type authResults struct {
	started time.Time
	opts    benchOptions
	machine machineInfo
	cmd     string
	// loadBefore and loadAfter are /proc/loadavg's first three fields.
	loadBefore, loadAfter string
	signinLogs            int // the relay's "failed sign-in" warnings

	params   account.Params
	hashWall []time.Duration
	hashCPU  time.Duration // process CPU over all the hashes

	tokenLogin []time.Duration // POST /v1/login with bob's token, idle: the password login's peer
	agents     int             // agents online at the start
	phases     []authPhase

	notes []string
	logs  []logSummary
}

func (r *authResults) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// authBench is one run of the auth part.
type authBench struct {
	o           benchOptions
	r           *authResults
	dir, logDir string
	server, fp  string
	relay       *child
	health      *health
	agents      *agentsProc
	admin       *client.Client
	bobToken    string
	api, bob    *http.Client // from authAPISource, authBobSource
	alice, newA *http.Client // from authAPISource, authNewSource
	jobs        bool         // the bench plugin is published
}

// runAuth runs the auth part; an error means it could not be set up.
func runAuth(ctx context.Context, o benchOptions, logDir string) (*authResults, error) {
	a := &authBench{o: o, r: &authResults{started: time.Now().UTC(), opts: o, machine: machine(), params: account.DefaultParams},
		dir: filepath.Join(o.cacheDir, "auth"), logDir: filepath.Join(logDir, "auth")}
	defer a.cleanup()
	a.r.loadBefore = loadAvg()
	a.measureHash()
	if err := a.setUp(ctx); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	phases := []struct {
		name, user, sources string
		newAddr             bool
	}{
		{"idle", "", "", false},
		{"one source", "carol", authOneSource, false},
		{"many sources", "alice", authManySources, true},
	}
	for i, ph := range phases {
		if i > 0 && !backoff.Sleep(ctx, 3*time.Second) { // let the previous phase's requests drain
			return nil, ctx.Err()
		}
		p := a.phase(ctx, ph.name, ph.user, ph.sources, ph.newAddr)
		a.r.phases = append(a.r.phases, p)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := a.check(); err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
	}
	a.r.loadAfter = loadAvg()
	a.cleanup()
	for _, name := range []string{"relay.log", "agents.log", "flood-one-source.log", "flood-many-sources.log"} {
		warn, errs, emfile, sample := scanLog(filepath.Join(a.logDir, name))
		if name == "relay.log" {
			a.r.signinLogs = countLines(filepath.Join(a.logDir, name), `"message":"failed sign-in`)
			warn -= a.r.signinLogs
		}
		a.r.logs = append(a.r.logs, logSummary{name: "auth/" + name, warn: warn, errors: errs, emfile: emfile, sample: sample})
	}
	return a.r, nil
}

// measureHash times account.Hash with the relay's parameters, one at a
// time, in this process before anything else runs in it.
func (a *authBench) measureHash() {
	step("auth: %d argon2id hashes (m=%d KiB, t=%d, p=%d) in process", a.o.auth.hashes, a.r.params.Memory, a.r.params.Time, a.r.params.Threads)
	account.Hash("warm-up-password") // the first allocates the 64 MiB
	cpu0 := selfCPU()
	for range a.o.auth.hashes {
		t0 := time.Now()
		if _, err := account.Hash(authPassword); err != nil {
			a.r.note("argon2id hash failed: %v.", err)
			return
		}
		a.r.hashWall = append(a.r.hashWall, time.Since(t0))
	}
	a.r.hashCPU = selfCPU() - cpu0
	step("  p50 %s, CPU %s per hash", ms(pct(a.r.hashWall, 50)), ms(a.r.hashCPU/time.Duration(len(a.r.hashWall))))
}

// loadAvg is the first three fields of /proc/loadavg, or "".
func loadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], ", ")
}

// countLines counts the lines of the file at path that contain s.
func countLines(path, s string) int {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n := 0
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// setUp starts the relay and the agents, creates the users and logs bob
// and alice in once.
func (a *authBench) setUp(ctx context.Context) error {
	for _, d := range []string{a.dir, a.logDir} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	listen := "127.0.0.1:" + strconv.Itoa(port)
	a.server = "https://" + listen
	dataDir := filepath.Join(a.dir, "relay-data")
	logPath := filepath.Join(a.logDir, "relay.log")
	step("auth: relay on %s, data in %s", listen, dataDir)
	if a.relay, err = startChild("relay", a.o.serverBin, relayArgs(dataDir, listen, a.o.heartbeat), logPath, syscall.SIGKILL, nil); err != nil {
		return err
	}
	if err := waitRelay(ctx, a.relay, dataDir, a.server, logPath, &a.fp, &a.health); err != nil {
		return err
	}
	if a.admin, err = adminClient(ctx, a.o.serverBin, dataDir, a.server, a.fp, "loadgen-auth", "1h"); err != nil {
		return err
	}
	for _, name := range []string{"alice", "bob", "carol"} {
		if _, err := a.admin.CreateUser(ctx, apiv1.UserRequest{Name: name, Role: "technician", Password: authPassword}); err != nil {
			return err
		}
	}

	n := a.o.auth.agents
	step("auth: enrolling %d agents", n)
	count := n
	tok, err := a.admin.CreateEnrollToken(ctx, apiv1.EnrollTokenRequest{Uses: &count, TTL: "1h"})
	if err != nil {
		return err
	}
	recs, err := enrollMany(ctx, enrollOptions{server: a.server, fingerprint: a.fp, token: tok.Token, count: n,
		concurrency: 8, prefix: authAgentHostnames}, io.Discard)
	if err != nil {
		return err
	}
	ids := filepath.Join(a.dir, "identities.jsonl")
	if err := writeRecords(ids, recs); err != nil {
		return err
	}
	start := time.Now()
	if a.agents, err = startAgentsProc(a.o.loadgenBin, ids, a.server, authAgentsSource, 0, n, 0, filepath.Join(a.logDir, "agents.log")); err != nil {
		return err
	}
	_, reached, err := a.health.waitOnline(ctx, start, n, 100*time.Millisecond, time.Minute, a.check)
	if err != nil {
		return err
	}
	if reached == 0 {
		return fmt.Errorf("not all %d agents online within a minute; see %s", n, a.logDir)
	}
	a.r.agents = n
	step("  %d agents online in %.1f s", n, reached.Seconds())
	if err := publishBenchPlugin(ctx, a.admin, filepath.Join(filepath.Dir(a.o.serverBin), "plugins", "sysinfo")); err != nil {
		a.r.note("No jobs measured: publishing the bench plugin failed: %v (run make build).", err)
	} else {
		a.jobs = true
	}

	for _, c := range []struct {
		hc  **http.Client
		src string
	}{{&a.api, authAPISource}, {&a.bob, authBobSource}, {&a.alice, authAPISource}, {&a.newA, authNewSource}} {
		if *c.hc, err = sourceClient(a.server, a.fp, c.src, 2); err != nil {
			return err
		}
	}
	if a.bobToken, _, err = passwordLogin(ctx, a.bob, a.server, "bob"); err != nil {
		return err
	}
	if _, _, err = passwordLogin(ctx, a.alice, a.server, "alice"); err != nil { // 127.0.0.1 becomes alice's known address
		return err
	}
	for range 20 { // the peer of a password login: the same round trip with a token
		t0 := time.Now()
		if err := a.call(ctx, http.MethodPost, "/v1/login"); err != nil {
			return err
		}
		a.r.tokenLogin = append(a.r.tokenLogin, time.Since(t0))
	}
	return nil
}

// check fails when the relay or the agents process has exited.
func (a *authBench) check() error {
	if a.relay != nil && !a.relay.alive() {
		return fmt.Errorf("relay exited (%v); see %s", a.relay.err, filepath.Join(a.logDir, "relay.log"))
	}
	if a.agents != nil && !a.agents.alive() {
		return fmt.Errorf("agents process exited (%v); see %s", a.agents.err, filepath.Join(a.logDir, "agents.log"))
	}
	return nil
}

// cleanup stops what is still running.
func (a *authBench) cleanup() {
	if a.admin != nil {
		a.admin.Close()
		a.admin = nil
	}
	for _, hc := range []*http.Client{a.api, a.bob, a.alice, a.newA} {
		if hc != nil {
			hc.CloseIdleConnections()
		}
	}
	if a.agents != nil && a.agents.alive() {
		a.agents.stop(10 * time.Second)
	}
	if a.relay != nil && a.relay.alive() {
		a.relay.stop(10 * time.Second)
	}
}

// httpError is an answer other than 2xx.
type httpError struct {
	code       int
	retryAfter string
	msg        string
}

func (e *httpError) Error() string {
	s := fmt.Sprintf("%d %s", e.code, strings.TrimSpace(e.msg))
	if e.retryAfter != "" {
		s += " (Retry-After " + e.retryAfter + ")"
	}
	return s
}

// do sends a request and reads the whole answer; a non-2xx is an *httpError.
func do(ctx context.Context, hc *http.Client, method, url, token string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(raw)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode/100 != 2 {
		var e apiv1.Error
		msg := string(out)
		if json.Unmarshal(out, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return nil, &httpError{code: res.StatusCode, retryAfter: res.Header.Get("Retry-After"), msg: clipText(msg, 200)}
	}
	return out, nil
}

// passwordLogin logs user in with the bench's password over hc and returns
// the session token and the round trip.
func passwordLogin(ctx context.Context, hc *http.Client, server, user string) (string, time.Duration, error) {
	t0 := time.Now()
	raw, err := do(ctx, hc, http.MethodPost, server+"/v1/login/password", "", apiv1.PasswordLoginRequest{User: user, Password: authPassword})
	el := time.Since(t0)
	if err != nil {
		return "", el, fmt.Errorf("password login of %s: %w", user, err)
	}
	var out apiv1.PasswordLogin
	if err := json.Unmarshal(raw, &out); err != nil || out.Token == "" {
		return "", el, fmt.Errorf("password login of %s: no token in the answer", user)
	}
	return out.Token, el, nil
}

// call is one API request of bob's from authAPISource.
func (a *authBench) call(ctx context.Context, method, path string) error {
	_, err := do(ctx, a.api, method, a.server+path, a.bobToken, nil)
	return err
}

// phase runs the probes for --auth-window, with a flood of wrong passwords
// for user from sources unless user is "".
func (a *authBench) phase(ctx context.Context, name, user, sources string, newAddr bool) authPhase {
	p := authPhase{name: name}
	ao := a.o.auth
	p.onlineBefore, _ = a.health.online(ctx)
	rep0 := a.agents.report()
	var fl *child
	var floodOut chan floodReport
	if user != "" {
		logPath := filepath.Join(a.logDir, "flood-"+strings.ReplaceAll(name, " ", "-")+".log")
		args := []string{"auth-flood", "--server", a.server, "--ca-fingerprint", a.fp, "--user", user,
			"--rate", strconv.Itoa(ao.rate), "--workers", strconv.Itoa(ao.workers), "--duration", (ao.window + time.Second).String(), "--sources", sources}
		p.floodCmd = fmt.Sprintf("patchbay-loadgen auth-flood --server URL --ca-fingerprint FP --user %s --rate %d --workers %d --duration %v --sources %s",
			user, ao.rate, ao.workers, ao.window+time.Second, sources)
		var err error
		fl, floodOut, err = startFlood(a.o.loadgenBin, args, logPath)
		if err != nil {
			p.floodErr = err.Error()
			a.r.note("Phase %s: the flood did not start: %v.", name, err)
			return p
		}
		select {
		case r, ok := <-floodOut:
			if !ok || !r.Ready {
				fl.kill()
				p.floodErr = "the flood process ended before it was ready; see " + logPath
				a.r.note("Phase %s: %s.", name, p.floodErr)
				return p
			}
		case <-time.After(30 * time.Second):
			fl.kill()
			p.floodErr = "the flood process not ready within 30 s"
			a.r.note("Phase %s: %s.", name, p.floodErr)
			return p
		}
	}
	step("auth: phase %s, %v", name, ao.window)
	cpu0, _ := procCPU(a.relay.pid())
	t0 := time.Now()
	pctx, cancel := context.WithDeadline(ctx, t0.Add(ao.window))
	var wg sync.WaitGroup
	var mu sync.Mutex
	p.onlineMin = p.onlineBefore
	run := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	// The window (pctx) stops the probes from starting requests; a request
	// under way when it ends runs to its end (ctx), so a slow one counts.
	run(func() { a.probeAPI(pctx, ctx, &p, &mu) })
	run(func() { a.probeLogins(pctx, ctx, &p, &mu, newAddr, t0.Add(ao.window/2)) })
	if a.jobs {
		run(func() { a.probeJobs(pctx, ctx, &p, &mu) })
	}
	run(func() {
		every(pctx, 250*time.Millisecond, func() {
			if n, err := a.health.online(pctx); err == nil {
				mu.Lock()
				p.onlineMin = min(p.onlineMin, n)
				mu.Unlock()
			}
		})
	})
	wg.Wait()
	cancel()
	p.wall = time.Since(t0)
	cpu1, _ := procCPU(a.relay.pid())
	p.relayCPU = cpu1 - cpu0
	if fl != nil {
		select {
		case <-fl.exited:
		case <-time.After(time.Minute):
			fl.kill()
			a.r.note("Phase %s: the flood process did not end within a minute of its duration and was killed.", name)
		}
		for r := range floodOut {
			if !r.Ready {
				p.flood = &r
			}
		}
		if ps := fl.cmd.ProcessState; ps != nil {
			p.floodCPU = ps.UserTime() + ps.SystemTime()
		}
		if p.flood == nil {
			p.floodErr = "no final report from the flood process"
			a.r.note("Phase %s: %s.", name, p.floodErr)
		}
	}
	p.onlineAfter, _ = a.health.online(ctx)
	rep1 := a.agents.report()
	p.drops, p.failures = rep1.Drops-rep0.Drops, rep1.Failures-rep0.Failures
	step("  %s", phaseLine(p))
	return p
}

// startFlood starts an auth-flood process and passes its JSON lines on
// until it exits (then closes the channel).
func startFlood(bin string, args []string, logPath string) (*child, chan floodReport, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	c, err := startChild("auth-flood", bin, args, logPath, syscall.SIGKILL, pw)
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, nil, err
	}
	out := make(chan floodReport, 4)
	go func() {
		defer close(out)
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var r floodReport
			if json.Unmarshal(sc.Bytes(), &r) == nil {
				out <- r
			}
		}
	}()
	return c, out, nil
}

// every calls f at once and then every d until ctx ends (a paced probe,
// not a wait).
func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		f()
		if ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// failed records a probe's failure (ctx's end is not one).
func failed(ctx context.Context, mu *sync.Mutex, n *int, first *string, err error) {
	if ctx.Err() != nil {
		return
	}
	mu.Lock()
	*n++
	if *first == "" {
		*first = err.Error()
	}
	mu.Unlock()
}

// probeAPI calls GET /v1/whoami and GET /v1/agents?limit=100 in turn
// until win ends.
func (a *authBench) probeAPI(win, ctx context.Context, p *authPhase, mu *sync.Mutex) {
	i := 0
	every(win, a.o.auth.apiEvery, func() {
		path, into := "/v1/whoami", &p.whoami
		if i%2 == 1 {
			path, into = "/v1/agents?limit=100", &p.agentsList
		}
		i++
		t0 := time.Now()
		if err := a.call(ctx, http.MethodGet, path); err != nil {
			failed(ctx, mu, &p.apiFailed, &p.apiErr, fmt.Errorf("GET %s: %w", path, err))
			return
		}
		el := time.Since(t0)
		mu.Lock()
		*into = append(*into, el)
		mu.Unlock()
	})
}

// probeLogins logs bob in from authBobSource and alice from her known
// address, in turn; with newAddr, alice also tries once from a new
// address after half; until win ends.
func (a *authBench) probeLogins(win, ctx context.Context, p *authPhase, mu *sync.Mutex, newAddr bool, half time.Time) {
	i := 0
	every(win, a.o.auth.loginEvery/2, func() {
		hc, user, into := a.bob, "bob", &p.bobLogin
		if i%2 == 1 {
			hc, user, into = a.alice, "alice", &p.aliceLogin
		}
		i++
		if _, el, err := passwordLogin(ctx, hc, a.server, user); err != nil {
			failed(ctx, mu, &p.loginFailed, &p.loginErr, err)
		} else {
			mu.Lock()
			*into = append(*into, el)
			mu.Unlock()
		}
		if newAddr && p.newAddr == "" && time.Now().After(half) {
			_, el, err := passwordLogin(ctx, a.newA, a.server, "alice")
			s := fmt.Sprintf("answered in %s: ", ms(el))
			if err != nil {
				s += err.Error()
			} else {
				s += "200, logged in (the user's limit did not apply)"
			}
			mu.Lock()
			p.newAddr = s
			mu.Unlock()
		}
	})
}

// probeJobs runs no-op jobs on every agent, one after the other, until
// win ends.
func (a *authBench) probeJobs(win, ctx context.Context, p *authPhase, mu *sync.Mutex) {
	b := &bench{relay: a.relay}
	every(win, 500*time.Millisecond, func() {
		if win.Err() != nil {
			return
		}
		run, n, err := b.measureJob(ctx, a.admin, "hostname="+authAgentHostnames+"*")
		switch {
		case err != nil:
			failed(ctx, mu, &p.jobsFailed, &p.jobsErr, err)
		case !run.ok:
			failed(ctx, mu, &p.jobsFailed, &p.jobsErr, fmt.Errorf("a job on %d agents did not succeed on all of them", n))
		default:
			mu.Lock()
			p.jobs = append(p.jobs, run.elapsed)
			mu.Unlock()
		}
	})
}
