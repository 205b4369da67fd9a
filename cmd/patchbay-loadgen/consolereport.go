package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Target of issue 12: the browser terminal's keystroke round trip at most
// this many times the one of patchbay ssh measured in the same run.
const targetKeyRatio = 1.5

// Markers around the console section of the report.
const (
	consoleBegin = "<!-- console:begin (written by patchbay-loadgen bench; --only console rewrites only this section) -->"
	consoleEnd   = "<!-- console:end -->"
)

// ms2 formats a duration in milliseconds with two decimals.
func ms2(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// ratio is a/b, 0 when b is 0.
func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// ratios are the browser terminal's p50 and p99 over peer's.
func (k keyPair) ratios(peer []time.Duration) (p50, p99 float64) {
	return ratio(pct(k.browser, 50), pct(peer, 50)), ratio(pct(k.browser, 99), pct(peer, 99))
}

// keysMet reports whether the keystroke target is met: every side
// measured, nothing failed, p50 and p99 within targetKeyRatio of both
// patchbay ssh figures (exec and shell).
func (k keyPair) keysMet() bool {
	if len(k.browser) == 0 || len(k.cli) == 0 || len(k.shell) == 0 || k.failed > 0 {
		return false
	}
	for _, peer := range [][]time.Duration{k.cli, k.shell} {
		if p50, p99 := k.ratios(peer); p50 > targetKeyRatio || p99 > targetKeyRatio {
			return false
		}
	}
	return true
}

// loadsText summarises the Fleet screen loads.
func loadsText(fp fleetPage) string {
	if len(fp.loads) == 0 {
		if fp.err != "" {
			return "not measured: " + fp.err
		}
		return "not measured"
	}
	med := func(f func(pageLoad) time.Duration) time.Duration {
		ds := make([]time.Duration, len(fp.loads))
		for i, l := range fp.loads {
			ds[i] = f(l)
		}
		return pct(ds, 50)
	}
	painted := func(l pageLoad) time.Duration { return l.painted }
	lo, hi := fp.loads[0].painted, fp.loads[0].painted
	for _, l := range fp.loads {
		lo, hi = min(lo, l.painted), max(hi, l.painted)
	}
	return fmt.Sprintf("**%s** median of %d loads (min %s, max %s); %d rows. Medians from the navigation: HTML in %s, DOMContentLoaded %s, "+
		"GET /v1/agents sent %s and answered %s, rows in the DOM %s; the bench's own clock, Page.navigate sent → rows reported: %s",
		ms(med(painted)), len(fp.loads), ms(lo), ms(hi), fp.loads[0].rows,
		ms(med(func(l pageLoad) time.Duration { return l.html })), ms(med(func(l pageLoad) time.Duration { return l.dcl })),
		ms(med(func(l pageLoad) time.Duration { return l.apiStart })), ms(med(func(l pageLoad) time.Duration { return l.apiEnd })),
		ms(med(func(l pageLoad) time.Duration { return l.seen })), ms(med(func(l pageLoad) time.Duration { return l.wall })))
}

// memText summarises the page's memory.
func memText(m pageMemory) string {
	if m.heapUsed == 0 {
		return "not measured"
	}
	s := fmt.Sprintf("JS heap **%s** used after a full GC (%s before it, %s allocated by V8); %d DOM nodes",
		mibOf(m.heapUsedGC>>10), mibOf(m.heapUsed>>10), mibOf(m.heapTotal>>10), m.nodes)
	if r := m.tab; r.pid > 0 {
		s += fmt.Sprintf("; the tab's renderer process: RSS **%s**, of it %s anonymous (private heap; the rest is shared code and data mapped from files)", mibOf(r.rss), mibOf(r.anon))
	} else {
		s += "; the tab's renderer process not identified"
	}
	return s
}

// renderConsole renders the console section, markers included.
func renderConsole(r *consoleResults) string {
	var w strings.Builder
	o := r.opts
	co := o.console
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	row := func(cells ...string) { p("| %s |\n", strings.Join(cells, " | ")) }
	m := r.machine
	pageCmd := fmt.Sprintf("`patchbay-loadgen bench --only console --agents %d --procs %d --console-loads %d`", o.agents, o.procs, co.loads)
	floorCmd := fmt.Sprintf("`patchbay-loadgen bench --only console --console-floor-agents %d`", co.floorAgents)
	keyCmd := fmt.Sprintf("`patchbay-loadgen bench --only console --console-keys %d --console-key-every %v`", co.keys, co.keyEvery)

	p("%s\n\n## Web console\n\n", consoleBegin)
	p("Measured on %s UTC on %s (%d logical cores, %s, %s, %s) by\n\n```\n%s\n```\n\n"+
		"(`BENCH_ONLY=console make bench` runs the same). `--only console` rewrites only this section, so it may be newer "+
		"than the figures above. Browser: %s, headless, driven through the DevTools protocol (chromedp), flags `--%s`.\n\n",
		r.started.Format("2006-01-02 15:04"), m.cpu, m.ncpu, m.mem, m.kernel, m.goVersion, r.cmd,
		orDash(r.chromium), strings.Join(chromiumFlags, "` `--"))

	row("Figure", "Result", "Target", "Status", "Command")
	row("---", "---", "---", "---", "---")
	row(fmt.Sprintf("Fleet screen with %s agents online: navigation → first rows painted", thousands(r.large.agents)),
		loadsText(r.large), "— (issue 12: measure)", "measured", pageCmd)
	row(fmt.Sprintf("Floor, same run: the same screen against a relay with %d agents", r.small.agents),
		loadsText(r.small), "floor", "measured", floorCmd)
	apiText := func(fp fleetPage) string {
		if len(fp.api) == 0 {
			return "not measured"
		}
		return fmt.Sprintf("p50 %s, p99 %s (%d calls, %s bytes)", ms(pct(fp.api, 50)), ms(pct(fp.api, 99)), len(fp.api), thousands(fp.apiSize))
	}
	row(fmt.Sprintf("GET /v1/agents?sort=hostname&limit=100&offset=0 from the page (fetch + JSON.parse), the call behind the screen, %s agents", thousands(r.large.agents)),
		apiText(r.large), "—", "measured", pageCmd)
	row(fmt.Sprintf("The same call, %d agents", r.small.agents), apiText(r.small), "floor", "measured", floorCmd)
	row(fmt.Sprintf("Fleet screen's memory with %s agents online (after %v at rest, live event stream open)", thousands(r.large.agents), co.settle),
		memText(r.large.mem), "— (issue 12: measure)", "measured", pageCmd)
	row(fmt.Sprintf("Floor, same run: the same page with %d agents", r.small.agents), memText(r.small.mem), "floor", "measured", floorCmd)

	k := r.keys
	if len(k.browser) > 0 {
		dist := func(ds []time.Duration) string {
			return fmt.Sprintf("p50 %s, p99 %s, max %s", ms2(pct(ds, 50)), ms2(pct(ds, 99)), ms2(pct(ds, 100)))
		}
		row(fmt.Sprintf("Browser terminal keystroke round trip (%d keys): key pressed in the page → echo in xterm.js's buffer", len(k.browser)),
			"**"+dist(k.browser)+"**", fmt.Sprintf("≤ %.1f× patchbay ssh's", targetKeyRatio), status(k.keysMet()), keyCmd)
		row(fmt.Sprintf("patchbay ssh on a shell session, typed into as the browser terminal is, same agent, same run (%d keys): key written → echo read", len(k.shell)),
			dist(k.shell), "peer", "measured", keyCmd)
		row(fmt.Sprintf("patchbay ssh on an exec session (the sessions part's typist), same agent, same run (%d keys)", len(k.cli)),
			dist(k.cli), "peer", "measured", keyCmd)
		s50, s99 := k.ratios(k.shell)
		e50, e99 := k.ratios(k.cli)
		row("Browser terminal / patchbay ssh",
			fmt.Sprintf("shell: p50 **%.1f×**, p99 **%.1f×**; exec: p50 %.1f×, p99 %.1f× (%d keys failed)", s50, s99, e50, e99, k.failed),
			fmt.Sprintf("≤ %.1f×", targetKeyRatio), status(k.keysMet()), keyCmd)
	} else {
		row("Browser terminal keystroke round trip", "not measured: "+orDash(r.keysErr), fmt.Sprintf("≤ %.1f× patchbay ssh's", targetKeyRatio), status(false), keyCmd)
	}
	if r.desktop != nil {
		renderDesktopRows(&w, r.desktop, o)
	}

	p("\n### Details\n\n")
	for _, fp := range []fleetPage{r.large, r.small} {
		if len(fp.mem.renderers) > 1 {
			var rs []string
			for _, x := range fp.mem.renderers {
				rs = append(rs, fmt.Sprintf("%s (%s anonymous)", mibOf(x.rss), mibOf(x.anon)))
			}
			p("- %s agents: the browser had %d renderer processes, RSS %s; the table gives the tab's, found by making its page allocate %d MiB (the others: Chromium's spare renderer, pages kept in its back-forward cache, the other measurements' tabs).\n",
				thousands(fp.agents), len(fp.mem.renderers), strings.Join(rs, ", "), ballastMiB)
		}
	}
	if len(k.in) > 0 {
		p("- Where the browser terminal's round trip goes (p50 of %d keys; the parts' medians need not add up; Chromium coarsens page clocks to 0.1 ms): "+
			"in the page, keydown → the key's SSH packet handed to the websocket (xterm.js onData, the wasm SSH client) %s; → the echo's websocket "+
			"message event created (its timeStamp; Blink makes the event when the page's main thread takes the message, so this includes Chromium's "+
			"network service, relay, agent and cat, and any wait for that thread) %s; → its listener run %s; → the echo parsed into xterm.js's buffer "+
			"(the wasm client decrypting, Terminal.write) %s. A task the keydown listener posts (MessageChannel) ran %s after the keydown: the main "+
			"thread stays busy that long after a key (input events, xterm.js and a rendering frame, software-rendered in headless Chromium), and "+
			"the echo waits for it. patchbay ssh's whole round trip on the shell session: %s.\n", len(k.in), ms2(pct(k.in, 50)), ms2(pct(k.net, 50)),
			ms2(pct(k.queued, 50)), ms2(pct(k.out, 50)), ms2(pct(k.free, 50)), ms2(pct(k.shell, 50)))
	}
	if k.use.wall > 0 {
		p("- CPU while typing: %s.\n", k.use)
	}
	if k.firstErr != "" {
		p("- First keystroke failure: %s.\n", k.firstErr)
	}
	if r.desktop != nil {
		renderDesktopDetails(&w, r.desktop)
	}
	if issues := problems(r.notes, r.logs); len(issues) > 0 {
		p("\n### Problems seen during the console run\n\n")
		for _, s := range issues {
			p("- %s\n", s)
		}
	}

	p("\n### How the console figures were measured\n\n")
	p(`- **Relays**: the floor relay is a fresh `+"`patchbay-server serve`"+` with %[1]d real agents
  (`+"`patchbay-agent run`"+`, consent through an exec program that approves, sessions run %[2]s) and
  the in-process echo agent of the sessions part: %[3]d agents. The large one is the fleet part's relay
  (data and identities cached in `+"`%[4]s`"+`) with %[5]s simulated agents (real agent links) in %[6]d
  `+"`patchbay-loadgen agents`"+` processes. Each Fleet screen is measured in a fresh browser context logged in
  with a one-time link from `+"`POST /v1/console/links`"+` (what `+"`patchbay console`"+` opens), as an admin.
- **First rows**: a script added with Page.addScriptToEvaluateOnNewDocument looks for the first
  `+"`#agents tr[data-id]`"+` on every animation frame; the frame that first has one paints it, and the
  time reported is the start of the next frame (after that paint), in ms since the navigation
  started (performance.timeOrigin). Each load navigates to about:blank, then to `+"`/#/fleet`"+` as a
  new document (HTML, modules and the session check from the HTTP cache or the relay, then
  `+"`GET /v1/agents?limit=100`"+`: the screen shows a page of 100 rows, sorted by the relay), %[7]d loads
  after the login's.
- **Memory**: after the loads, the live event stream open and %[8]v at rest: JSHeapUsedSize,
  JSHeapTotalSize and Nodes of Performance.getMetrics, then JSHeapUsedSize again after
  HeapProfiler.collectGarbage; the renderer's VmRSS and RssAnon from /proc/PID/status. The tab's
  renderer is told from Chromium's other --type=renderer processes by making the page allocate and
  write %[12]d MiB afterwards and seeing whose RssAnon grows (then dropped).
- **Keystrokes**: the browser terminal screen (`+"`#/terminal?agent=ID`"+`, the wasm SSH client and xterm.js)
  connects with a reason; the agent's consent program approves. The bench types
  `+"`%[9]s`"+` into the shell, as it runs in the sessions part's typist (`+"`stty raw -echo`"+`
  then `+"`cat`"+`, so the echo comes from cat through the whole path). It then presses a key
  (Input.dispatchKeyEvent keyDown with its text, keyUp) and measures inside the page, from the
  keydown event reaching the document (a capturing listener) to the callback of xterm.js's
  Terminal.write that carries the echo (the data parsed into the terminal's buffer; drawing it
  is up to the next animation frame, not counted). The path: xterm.js onData → the wasm SSH
  client → websocket → relay → agent → cat and back. The peers are the technician side of
  `+"`patchbay ssh`"+` (the client library's session websocket and x/crypto/ssh, in the bench
  process) on the same agent: a shell session with a terminal into which the same command is
  typed (what `+"`patchbay ssh AGENT`"+` and the browser terminal open), and the sessions part's typist
  (an exec session with a terminal running the command); each the time from writing the key to
  reading its echo. One key on each of the three in turn (which goes first rotates), one round
  every %[10]v, %[11]d keys each after 10 warm-up ones. The target is checked against both peers.
  The CDP calls that press the key and read the result are outside the browser's figure.
`, o.console.floorAgents-1, orDash(r.keyShell), r.small.agents, o.cacheDir, thousands(o.agents), o.procs, co.loads, co.settle,
		strings.TrimSuffix(browserTermCommand, "\r"), co.keyEvery, co.keys, ballastMiB)
	if r.desktop != nil {
		renderDesktopHow(&w, r.desktop)
	}
	p("\n%s\n", consoleEnd)
	return w.String()
}

// writeConsoleOnly rewrites the console section of the report at path and
// keeps the rest of it.
func writeConsoleOnly(path string, r *consoleResults) error {
	raw, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc := string(raw)
	if doc == "" {
		doc = "# Benchmarks\n\nOnly the console part has been run (`patchbay-loadgen bench --only console`); `make bench` adds the other figures.\n"
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(path, []byte(spliceSection(doc, consoleBegin, consoleEnd, renderConsole(r))), 0o644)
}

// printConsoleSummary prints the console figures on stdout.
func printConsoleSummary(r *consoleResults) {
	for _, fp := range []fleetPage{r.large, r.small} {
		if len(fp.loads) > 0 {
			fmt.Printf("fleet screen, %6s agents: first rows %s (median of %d), JS heap %s after GC, renderer RSS %s\n",
				thousands(fp.agents), ms(medianLoad(fp.loads)), len(fp.loads), mibOf(fp.mem.heapUsedGC>>10), mibOf(fp.mem.tab.rss))
		}
	}
	if k := r.keys; len(k.browser) > 0 {
		p50, p99 := k.ratios(k.shell)
		fmt.Printf("keystrokes, browser terminal: p50 %s, p99 %s; patchbay ssh shell: p50 %s, p99 %s (%.1f×, %.1f×); exec: p50 %s, p99 %s\n",
			ms2(pct(k.browser, 50)), ms2(pct(k.browser, 99)), ms2(pct(k.shell, 50)), ms2(pct(k.shell, 99)), p50, p99,
			ms2(pct(k.cli, 50)), ms2(pct(k.cli, 99)))
	}
	if r.desktop != nil {
		printDesktopSummary(r.desktop)
	}
}
