package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/spf13/pflag"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/backoff"
)

// The console part of the bench (issue 12): the web console in Chromium.
//
//  1. the Fleet screen against a small relay (--console-floor-agents
//     agents: real patchbay-agent processes and the in-process echo agent
//     of the sessions part), the floor; then the browser terminal's
//     keystroke round trip next to the technician library's (patchbay
//     ssh), on the same agent, a key on each in turn;
//  2. the Fleet screen against the fleet part's relay (its cached data and
//     identities) holding --agents simulated agents in --procs processes.
//  3. the remote desktop through the relay against x11vnc directly
//     (consoledesktop.go).

// consoleOptions are the options of the console part.
type consoleOptions struct {
	chromium    string
	floorAgents int           // agents of the small relay (the floor)
	loads       int           // Fleet screen loads measured per relay
	apiCalls    int           // GET /v1/agents?limit=100 from the page, per relay
	keys        int           // keystrokes measured on each side
	keyEvery    time.Duration // one key on each side every keyEvery
	settle      time.Duration // the page idle before its memory is read

	desktopWindow time.Duration // how long desktop frames are counted, per path
	desktopSkip   bool          // --console-no-desktop
}

// fleetPage is the Fleet screen measured against one relay.
type fleetPage struct {
	agents  int // agents online when measured (the relay's /healthz)
	loads   []pageLoad
	api     []time.Duration // GET /v1/agents?sort=hostname&limit=100&offset=0 from the page (fetch + JSON)
	apiSize int             // bytes of that answer
	mem     pageMemory
	err     string
}

// consoleResults is everything the console part measured.
type consoleResults struct {
	started  time.Time
	opts     benchOptions
	machine  machineInfo
	cmd      string
	chromium string // chromium --version

	small, large fleetPage
	keys         keyPair
	keyAgent     string // hostname of the agent typed on
	keyShell     string
	keysErr      string

	desktop *desktopResults

	notes []string
	logs  []logSummary
}

func (r *consoleResults) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// runConsole runs the console part. A measurement that fails is noted; an
// error is returned only when the browser cannot start.
func runConsole(ctx context.Context, o benchOptions, logDir string) (*consoleResults, error) {
	r := &consoleResults{started: time.Now().UTC(), opts: o, machine: machine()}
	co := o.console
	if out, err := exec.CommandContext(ctx, co.chromium, "--version").Output(); err == nil {
		r.chromium = strings.TrimSpace(string(out))
	}
	dir := filepath.Join(o.cacheDir, "console")
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	logDir = filepath.Join(logDir, "console")
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return nil, err
	}
	br, err := startBrowser(ctx, co.chromium, filepath.Join(dir, "chromium"))
	if err != nil {
		return nil, err
	}
	defer br.Close()

	if err := consoleSmall(ctx, o, r, br, dir, logDir); err != nil {
		r.small.err = err.Error()
		r.note("The console part against the small relay failed: %v.", err)
		step("console: small relay failed: %v", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := consoleLarge(ctx, o, r, br, logDir); err != nil {
		r.large.err = err.Error()
		r.note("The console part against %s agents failed: %v.", thousands(o.agents), err)
		step("console: %d agents failed: %v", o.agents, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !co.desktopSkip {
		d, err := runDesktop(ctx, o, dir, logDir)
		if err != nil {
			r.note("The remote desktop measurement failed: %v.", err)
			step("console: desktop failed: %v", err)
		}
		r.desktop = d
	}
	return r, ctx.Err()
}

// consoleSmall measures the Fleet screen against a relay with
// --console-floor-agents agents, then the keystroke round trips.
func consoleSmall(ctx context.Context, o benchOptions, r *consoleResults, br *browser, dir, logDir string) error {
	so := o
	so.cacheDir = dir // the sessions bench works in dir/sessions
	so.sessionAgents = max(1, o.console.floorAgents-1)
	s := &sessionBench{o: so, r: &sessionResults{started: time.Now().UTC(), opts: so, machine: machine()},
		dir: filepath.Join(dir, "sessions"), logDir: logDir}
	defer func() {
		s.tearDown()
		r.notes = append(r.notes, s.r.notes...)
		r.logs = append(r.logs, s.r.logs...)
	}()
	step("console: small relay, %d agents (%d patchbay-agent processes and an in-process one)", so.sessionAgents+1, so.sessionAgents)
	if err := s.setUp(ctx); err != nil {
		return err
	}
	admin, err := s.login(ctx, s.adminToken)
	if err != nil {
		return fmt.Errorf("admin login: %w", err)
	}
	defer admin.Close()
	n, err := s.health.online(ctx)
	if err != nil {
		return err
	}
	r.small, err = measureFleetPage(ctx, br, admin, o.console, n)
	if err != nil {
		return err
	}

	agent := s.agents[0]
	r.keyAgent, r.keyShell = agent.hostname, s.r.shell
	if err := consoleKeys(ctx, o.console, r, br, admin, s, agent.id); err != nil {
		r.keysErr = err.Error()
		r.note("The keystroke measurement failed: %v.", err)
		step("console: keystrokes failed: %v", err)
	}
	return nil
}

// consoleKeys opens the browser terminal and a typist on agent and types on
// both in turn.
func consoleKeys(ctx context.Context, co consoleOptions, r *consoleResults, br *browser, admin *client.Client, s *sessionBench, agent string) error {
	t, err := br.newTab()
	if err != nil {
		return err
	}
	defer t.Close()
	if err := loginTab(ctx, t, admin); err != nil {
		return err
	}
	step("console: browser terminal on %s", r.keyAgent)
	bt, err := openBrowserTerm(t, admin.Server(), agent)
	if err != nil {
		return fmt.Errorf("browser terminal: %w", err)
	}
	ty, err := s.tech.openTypist(ctx, agent)
	if err != nil {
		return fmt.Errorf("technician library typist: %w", err)
	}
	defer ty.Close()
	sh, err := s.tech.openShellTypist(ctx, agent)
	if err != nil {
		return fmt.Errorf("technician library shell typist: %w", err)
	}
	defer sh.Close()
	step("console: keystrokes, %d on each side (after 10 warm-up), one round every %v", co.keys, co.keyEvery)
	u0 := s.usage()
	r.keys = typeAll(ctx, bt, ty, sh, co.keys, 10, co.keyEvery)
	r.keys.use = s.usage().sub(u0)
	step("  browser p50 %s p99 %s; patchbay ssh exec p50 %s p99 %s, shell p50 %s p99 %s; %d failed",
		ms2(pct(r.keys.browser, 50)), ms2(pct(r.keys.browser, 99)), ms2(pct(r.keys.cli, 50)), ms2(pct(r.keys.cli, 99)),
		ms2(pct(r.keys.shell, 50)), ms2(pct(r.keys.shell, 99)), r.keys.failed)
	if r.keys.failed > 0 {
		return fmt.Errorf("%d keystrokes failed, first: %s", r.keys.failed, r.keys.firstErr)
	}
	return nil
}

// loginTab logs the tab into the console with a one-time link (as
// `patchbay console` prints) and waits for the Fleet screen's rows.
func loginTab(ctx context.Context, t *tab, admin *client.Client) error {
	link, _, err := admin.ConsoleLink(ctx)
	if err != nil {
		return err
	}
	if err := t.do(60*time.Second, chromedp.Navigate(link)); err != nil {
		return fmt.Errorf("open the console link: %w", err)
	}
	return t.waitJS("the Fleet screen after login", `document.querySelector('#agents tr[data-id]') !== null`, 60*time.Second)
}

// measureFleetPage logs a fresh tab in and loads the Fleet screen
// co.loads times, then times the API call behind it from the page and
// reads the page's memory.
func measureFleetPage(ctx context.Context, br *browser, admin *client.Client, co consoleOptions, online int) (fleetPage, error) {
	fp := fleetPage{agents: online}
	t, err := br.newTab()
	if err != nil {
		return fp, err
	}
	defer t.Close()
	if err := t.watchFirstRows(); err != nil {
		return fp, err
	}
	if err := loginTab(ctx, t, admin); err != nil {
		return fp, err
	}
	step("console: Fleet screen with %s agents online, %d loads", thousands(online), co.loads)
	for range co.loads {
		l, err := t.loadFleet(admin.Server() + "/#/fleet")
		if err != nil {
			return fp, err
		}
		fp.loads = append(fp.loads, l)
	}
	step("  first rows painted: p50 %s (first load %s)", ms(medianLoad(fp.loads)), ms(fp.loads[0].painted))
	js := fmt.Sprintf(`(async () => {
  const out = [];
  let size = 0;
  for (let i = 0; i < %d; i++) {
    const t0 = performance.now();
    const r = await fetch('/v1/agents?sort=hostname&limit=100&offset=0', {credentials: 'same-origin', headers: {Accept: 'application/json'}});
    const body = await r.text();
    JSON.parse(body);
    out.push(performance.now() - t0);
    size = body.length;
    if (!r.ok) throw new Error('GET /v1/agents: ' + r.status + ' ' + body);
  }
  return JSON.stringify({ms: out, size});
})()`, co.apiCalls)
	raw, err := evalJS[string](t, 2*time.Minute, js)
	if err != nil {
		return fp, fmt.Errorf("GET /v1/agents from the page: %w", err)
	}
	var api struct {
		MS   []float64 `json:"ms"`
		Size int       `json:"size"`
	}
	if err := json.Unmarshal([]byte(raw), &api); err != nil {
		return fp, fmt.Errorf("GET /v1/agents timings: %w", err)
	}
	for _, v := range api.MS {
		fp.api = append(fp.api, msDur(v))
	}
	fp.apiSize = api.Size
	step("  GET /v1/agents?limit=100 from the page: p50 %s (%d bytes)", ms(pct(fp.api, 50)), fp.apiSize)
	if err := t.waitJS("the live stream", `document.querySelector('#live').dataset.state === 'open'`, 30*time.Second); err != nil {
		return fp, err
	}
	backoff.Sleep(ctx, co.settle) // the page at rest before its memory is read
	if fp.mem, err = t.memory(br.pid()); err != nil {
		return fp, err
	}
	step("  JS heap %s used (%s after GC), %d DOM nodes, renderer RSS %s",
		mibOf(fp.mem.heapUsed>>10), mibOf(fp.mem.heapUsedGC>>10), fp.mem.nodes, mibOf(fp.mem.tab.rss))
	return fp, nil
}

// medianLoad is the median time to the first painted rows.
func medianLoad(ls []pageLoad) time.Duration {
	ds := make([]time.Duration, len(ls))
	for i, l := range ls {
		ds[i] = l.painted
	}
	return pct(ds, 50)
}

// consoleLarge starts the fleet part's relay (its cached data, enrolling
// what is missing) with --agents simulated agents in --procs processes and
// measures the Fleet screen.
func consoleLarge(ctx context.Context, o benchOptions, r *consoleResults, br *browser, logDir string) error {
	b := &bench{
		o:       o,
		r:       &results{started: time.Now().UTC(), opts: o, machine: machine()},
		dataDir: filepath.Join(o.cacheDir, "relay-data"),
		ids:     filepath.Join(o.cacheDir, "identities.jsonl"),
		logDir:  logDir,
	}
	defer func() {
		b.cleanup()
		r.notes = append(r.notes, b.r.notes...)
		ents, _ := os.ReadDir(logDir)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "relay-") || strings.HasPrefix(e.Name(), "agents-") {
				warn, errs, _, sample := scanLog(filepath.Join(logDir, e.Name()))
				r.logs = append(r.logs, logSummary{name: "console/" + e.Name(), warn: warn, errors: errs, sample: sample})
			}
		}
	}()
	if err := b.prepare(ctx); err != nil {
		return err
	}
	step("console: starting %d agents in %d processes", o.agents, o.procs)
	start := time.Now()
	if err := b.startFleet(0); err != nil {
		return err
	}
	samples, reached, err := b.health.waitOnline(ctx, start, o.agents, 200*time.Millisecond, o.connectTimeout, b.fleetCheck)
	if err != nil {
		return err
	}
	if reached == 0 {
		r.note("Only %d of %d agents were online %v after the start; the Fleet screen was measured with them.", maxOnline(samples), o.agents, o.connectTimeout)
	}
	step("  %d online after %.1f s", maxOnline(samples), time.Since(start).Seconds())
	admin, err := adminClient(ctx, o.serverBin, b.dataDir, b.server, b.fp, "loadgen-console", "1h")
	if err != nil {
		return err
	}
	defer admin.Close()
	n, err := b.health.online(ctx)
	if err != nil {
		return err
	}
	r.large, err = measureFleetPage(ctx, br, admin, o.console, n)
	return err
}

// consoleFlags registers the console part's options.
func consoleFlags(f *pflag.FlagSet, co *consoleOptions) {
	f.StringVar(&co.chromium, "chromium", "/usr/bin/chromium", "Chromium for the console part (Debian: apt-get install chromium)")
	f.IntVar(&co.floorAgents, "console-floor-agents", 10, "agents of the console part's small relay (the floor): one in-process, the others patchbay-agent processes")
	f.IntVar(&co.loads, "console-loads", 5, "Fleet screen loads measured on each relay")
	f.IntVar(&co.apiCalls, "console-api-calls", 20, "GET /v1/agents?limit=100 calls timed from the page on each relay")
	f.IntVar(&co.keys, "console-keys", 200, "keystrokes measured on each side (browser terminal, patchbay ssh), after 10 warm-up ones")
	f.DurationVar(&co.keyEvery, "console-key-every", 100*time.Millisecond, "one key on each side every this long")
	f.DurationVar(&co.settle, "console-settle", 3*time.Second, "the Fleet screen at rest before its memory is read")
	f.DurationVar(&co.desktopWindow, "desktop-window", 10*time.Second, "how long remote desktop frames are counted, on each path")
	f.BoolVar(&co.desktopSkip, "console-no-desktop", false, "skip the remote desktop measurement")
}

// check checks the console part's options.
func (co consoleOptions) check() error {
	if co.floorAgents < 2 || co.loads < 1 || co.apiCalls < 1 || co.keys < 1 || co.keyEvery <= 0 || co.settle < 0 || co.desktopWindow <= 0 {
		return errors.New("--console-floor-agents must be at least 2; --console-loads, --console-api-calls, --console-keys, --console-key-every and --desktop-window positive; --console-settle at least 0")
	}
	return nil
}
