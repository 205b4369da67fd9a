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

// keyRatios are the browser terminal's p50 and p99 over the library's.
func (k keyPair) ratios() (p50, p99 float64) {
	return ratio(pct(k.browser, 50), pct(k.cli, 50)), ratio(pct(k.browser, 99), pct(k.cli, 99))
}

// keysMet reports whether the keystroke target is met: both sides
// measured, nothing failed, p50 and p99 within targetKeyRatio.
func (k keyPair) keysMet() bool {
	p50, p99 := k.ratios()
	return len(k.browser) > 0 && len(k.cli) > 0 && k.failed == 0 && p50 <= targetKeyRatio && p99 <= targetKeyRatio
}

// loadsText summarises the Fleet screen loads.
func loadsText(fp fleetPage) string {
	if len(fp.loads) == 0 {
		if fp.err != "" {
			return "not measured: " + fp.err
		}
		return "not measured"
	}
	ds, seen, wall := make([]time.Duration, len(fp.loads)), make([]time.Duration, len(fp.loads)), make([]time.Duration, len(fp.loads))
	for i, l := range fp.loads {
		ds[i], seen[i], wall[i] = l.painted, l.seen, l.wall
	}
	return fmt.Sprintf("**%s** median of %d loads (min %s, max %s; first load %s); rows in the DOM at %s; %d rows; the bench's own clock, Page.navigate sent → rows reported: %s",
		ms(pct(ds, 50)), len(ds), ms(pct(ds, 0)), ms(pct(ds, 100)), ms(fp.loads[0].painted), ms(pct(seen, 50)), fp.loads[0].rows, ms(pct(wall, 50)))
}

// memText summarises the page's memory.
func memText(m pageMemory) string {
	if m.heapUsed == 0 {
		return "not measured"
	}
	s := fmt.Sprintf("JS heap **%s** used after a full GC (%s before it, %s allocated by V8); %d DOM nodes",
		mibOf(m.heapUsedGC>>10), mibOf(m.heapUsed>>10), mibOf(m.heapTotal>>10), m.nodes)
	if r := m.largest(); r.rss > 0 {
		s += fmt.Sprintf("; renderer process RSS **%s**", mibOf(r.rss))
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
	if len(k.browser) > 0 || len(k.cli) > 0 {
		p50, p99 := k.ratios()
		row(fmt.Sprintf("Browser terminal keystroke round trip (%d keys): key pressed in the page → echo in xterm.js's buffer", len(k.browser)),
			fmt.Sprintf("p50 **%s**, p99 **%s**, max %s", ms2(pct(k.browser, 50)), ms2(pct(k.browser, 99)), ms2(pct(k.browser, 100))),
			fmt.Sprintf("≤ %.1f× patchbay ssh's", targetKeyRatio), status(k.keysMet()), keyCmd)
		row(fmt.Sprintf("patchbay ssh, same agent, same run, keys interleaved (%d keys): key written → echo read", len(k.cli)),
			fmt.Sprintf("p50 %s, p99 %s, max %s", ms2(pct(k.cli, 50)), ms2(pct(k.cli, 99)), ms2(pct(k.cli, 100))), "peer", "measured", keyCmd)
		row("Browser terminal / patchbay ssh", fmt.Sprintf("p50 **%.2f×**, p99 **%.2f×** (%d keys failed)", p50, p99, k.failed),
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
				rs = append(rs, mibOf(x.rss))
			}
			p("- %s agents: the browser had %d renderer processes (%s); the table gives the largest, the tab's (the others are Chromium's spare renderers and the tab of the other measurements).\n",
				thousands(fp.agents), len(fp.mem.renderers), strings.Join(rs, ", "))
		}
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
  HeapProfiler.collectGarbage; the renderer's VmRSS from /proc/PID/status (Chromium's --type=renderer
  processes under the browser process).
- **Keystrokes**: the browser terminal screen (`+"`#/terminal?agent=ID`"+`, the wasm SSH client and xterm.js)
  connects with a reason; the agent's consent program approves. The bench types
  `+"`%[9]s`"+` into the shell, as it runs in the sessions part's typist (`+"`stty raw -echo`"+`
  then `+"`cat`"+`, so the echo comes from cat through the whole path). It then presses a key
  (Input.dispatchKeyEvent keyDown with its text, keyUp) and measures inside the page, from the
  keydown event reaching the document (a capturing listener) to the callback of xterm.js's
  Terminal.write that carries the echo (the data parsed into the terminal's buffer; drawing it
  is up to the next animation frame, not counted). The path: xterm.js onData → the wasm SSH
  client → websocket → relay → agent → cat and back. The peer is the technician side of
  `+"`patchbay ssh`"+` (the client library's session websocket and x/crypto/ssh, the sessions
  part's typist running the same command on a terminal on the same agent): the time from writing
  the key to reading its echo. One key on each side in turn (which side first alternates), one pair
  every %[10]v, %[11]d keys each after 10 warm-up ones. The CDP calls that press the key and read the
  result are outside both figures.
`, o.console.floorAgents-1, orDash(r.keyShell), r.small.agents, o.cacheDir, thousands(o.agents), o.procs, co.loads, co.settle,
		strings.TrimSuffix(browserTermCommand, "\r"), co.keyEvery, co.keys)
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
				thousands(fp.agents), ms(medianLoad(fp.loads)), len(fp.loads), mibOf(fp.mem.heapUsedGC>>10), mibOf(fp.mem.largest().rss))
		}
	}
	if len(r.keys.browser) > 0 {
		p50, p99 := r.keys.ratios()
		fmt.Printf("keystrokes, browser terminal: p50 %s, p99 %s; patchbay ssh: p50 %s, p99 %s (%.2f×, %.2f×)\n",
			ms2(pct(r.keys.browser, 50)), ms2(pct(r.keys.browser, 99)), ms2(pct(r.keys.cli, 50)), ms2(pct(r.keys.cli, 99)), p50, p99)
	}
	if r.desktop != nil {
		printDesktopSummary(r.desktop)
	}
}
