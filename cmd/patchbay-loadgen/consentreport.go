package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Targets of issue 13 (the consent helper).
const (
	targetPromptP99 = time.Second // technician's request -> prompt mapped on the user's display
	targetHelperRSS = 5 << 10     // KiB: 5 MB, read as 5 MiB
	// targetHelperCPU is "no CPU while idle": at most one clock tick (the
	// resolution of /proc/PID/stat) over the idle window.
	targetHelperCPU = time.Second / clockTicks
)

// Markers around the consent section of the report.
const (
	consentBegin = "<!-- consent:begin (written by patchbay-loadgen bench; --only consent rewrites only this section) -->"
	consentEnd   = "<!-- consent:end -->"
)

// promptTitle is the window title of the helper's prompt (zenity --title),
// which the bench waits for; the floor's dialog uses the same one.
const promptTitle = "Patchbay: remote session request"

// consentTools are the programs the consent part drives, and where they
// come from on Debian.
var consentTools = []string{"Xvfb", "zenity", "xdotool", "xev", "useradd", "userdel", "runuser"}

const consentToolsHint = "install xvfb, zenity, xdotool and x11-utils (xev); useradd, userdel and runuser come with passwd and util-linux"

// checkTools fails naming every tool of tools that is not on PATH.
func checkTools(tools []string) error {
	var missing []string
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("consent: %s not found: %s", strings.Join(missing, ", "), consentToolsHint)
	}
	return nil
}

// footprint is a process's memory and CPU at rest.
type footprint struct {
	rss, hwm, anon, file int64 // KiB: VmRSS, VmHWM, RssAnon, RssFile
	threads              int64
	cpu                  time.Duration // utime+stime over window
	window               time.Duration
}

func (f footprint) cpuPct() float64 {
	if f.window <= 0 {
		return 0
	}
	return float64(f.cpu) / float64(f.window) * 100
}

// consentResults is everything the consent part measured.
type consentResults struct {
	started time.Time
	opts    benchOptions
	machine machineInfo
	cmd     string // the command line that ran it
	zenity  string // zenity --version
	alsoRan string // other work seen on the machine (go test), "" if none

	// Technician's request -> prompt mapped; the floor: zenity started
	// directly -> mapped. The first of each (cold) is apart.
	prompts, floor            []time.Duration
	coldPrompt, coldFloor     time.Duration
	told                      []time.Duration // Deny clicked -> the technician's request returned denied
	promptFailed, floorFailed int
	firstErr                  string
	promptUse                 cpuUse // over the prompt runs (floor runs included)

	helper, floorProc footprint // idle: the helper and a minimal Go program on a unix socket
	helperAfter       footprint // the helper settled again after the prompts (RSS only)
	helperBinMiB      float64
	idleMachine       cpuUse // the whole machine during the idle window

	notes []string
	logs  []logSummary
}

// mibOf formats KiB as MiB.
func mibOf(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

// renderConsent renders the consent section, markers included.
func renderConsent(r *consentResults) string {
	var w strings.Builder
	o := r.opts
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	row := func(cells ...string) { p("| %s |\n", strings.Join(cells, " | ")) }
	m := r.machine
	promptCmd := fmt.Sprintf("`patchbay-loadgen bench --only consent --consent-prompts %d`", o.consentPrompts)
	idleCmd := fmt.Sprintf("`patchbay-loadgen bench --only consent --consent-settle %v --consent-idle-window %v`", o.consentSettle, o.consentIdle)

	p("%s\n\n## Consent prompt and helper\n\n", consentBegin)
	p("Measured on %s UTC on %s (%d logical cores, %s, %s, %s) by\n\n```\n%s\n```\n\n"+
		"(`BENCH_ONLY=consent make bench` runs the same). `--only consent` rewrites only this section, so it may be newer "+
		"than the figures above.\n\n",
		r.started.Format("2006-01-02 15:04"), m.cpu, m.ncpu, m.mem, m.kernel, m.goVersion, r.cmd)
	if r.alsoRan != "" {
		p("**The machine was not quiet:** %s ran at the same time (whole machine busy %.0f %% of %d00 %% during the prompts, "+
			"%.0f %% during the idle window).\n\n", r.alsoRan, r.promptUse.pct(r.promptUse.machine), m.ncpu, r.idleMachine.pct(r.idleMachine.machine))
	}
	p("A real relay, one real agent as root (`patchbay-agent run --consent-mode prompt --consent-backend helper "+
		"--consent-ask all`) and its helper (`patchbay-agent helper`) started with runuser as a local user the bench creates, "+
		"in that user's X display (Xvfb run by the user, 1280x800x24, no window manager); prompts are %s dialogs. "+
		"The technician side is the load generator with the real client library (`client.OpenSession`, as `patchbay ssh` "+
		"does), an API token of role technician named `%s`.\n\n", orDash(r.zenity), technicianName)

	row("Figure", "Result", "Target", "Status", "Command")
	row("---", "---", "---", "---", "---")
	dist := func(ds []time.Duration) string {
		if len(ds) == 0 {
			return "not measured"
		}
		return fmt.Sprintf("p50 %s, p99 %s, max %s", ms(pct(ds, 50)), ms(pct(ds, 99)), ms(pct(ds, 100)))
	}
	row("Consent prompt visible in the user's session: technician's request → prompt window mapped (X MapNotify)",
		fmt.Sprintf("%s (%d prompts, %d failed)", dist(r.prompts), len(r.prompts), r.promptFailed),
		"p99 ≤ 1 s", status(len(r.prompts) > 0 && r.promptFailed == 0 && pct(r.prompts, 99) <= targetPromptP99), promptCmd)
	row("Floor, same run: the same zenity dialog started directly by the bench as the same user on the same display → mapped (no Patchbay)",
		fmt.Sprintf("%s (%d runs, %d failed)", dist(r.floor), len(r.floor), r.floorFailed), "floor", "measured", promptCmd)
	if len(r.prompts) > 0 && len(r.floor) > 0 {
		row("Patchbay's share of the prompt time (prompt − floor)",
			fmt.Sprintf("p50 %s, p99 %s", ms(pct(r.prompts, 50)-pct(r.floor, 50)), ms(pct(r.prompts, 99)-pct(r.floor, 99))),
			"—", "measured", promptCmd)
	}
	row("Deny clicked (xdotool): prompt window unmapped → the technician's request returns denied", dist(r.told), "—", "measured", promptCmd)
	hf := r.helper
	rssRes := "not measured"
	if hf.rss > 0 {
		rssRes = fmt.Sprintf("**%s** (%s anonymous, %s file-backed: the %.0f MiB binary's pages in use; %d threads)",
			mibOf(hf.rss), mibOf(hf.anon), mibOf(hf.file), r.helperBinMiB, hf.threads)
	}
	row(fmt.Sprintf("Helper RSS, idle (connected, nothing shown for %v)", o.consentSettle), rssRes,
		"≤ 5 MB (5 MiB)", status(hf.rss > 0 && hf.rss <= targetHelperRSS), idleCmd)
	if r.floorProc.rss > 0 {
		ratio := "—"
		if hf.rss > 0 {
			ratio = fmt.Sprintf("helper = **%.1f×** floor", float64(hf.rss)/float64(r.floorProc.rss))
		}
		row("Floor, same run: a minimal Go program (same Go) blocked reading a unix socket",
			fmt.Sprintf("%s (%s anonymous, %s file-backed); %s", mibOf(r.floorProc.rss), mibOf(r.floorProc.anon), mibOf(r.floorProc.file), ratio),
			"floor", "measured", idleCmd)
	}
	cpuRes := "not measured"
	if hf.window > 0 {
		cpuRes = fmt.Sprintf("%.3f %% of one core: %.2f s of CPU over %.1f s (floor program: %.2f s)", hf.cpuPct(), hf.cpu.Seconds(), hf.window.Seconds(), r.floorProc.cpu.Seconds())
	}
	row("Helper CPU while idle (utime+stime, /proc/PID/stat, 10 ms resolution)", cpuRes,
		"none (≤ one 10 ms tick over the window)", status(hf.window > 0 && hf.cpu <= targetHelperCPU), idleCmd)
	if r.helperAfter.rss > 0 {
		row(fmt.Sprintf("Helper RSS after the prompts and floor runs above, idle again for %v", o.consentSettle),
			fmt.Sprintf("%s (peak VmHWM %s)", mibOf(r.helperAfter.rss), mibOf(r.helperAfter.hwm)), "—", "measured", idleCmd)
	}

	p("\n### Details\n\n")
	if r.coldPrompt > 0 || r.coldFloor > 0 {
		p("- The first dialog of each kind (cold: fonts, icon theme and GTK modules not yet in the page cache) is not counted above: "+
			"prompt %s, floor %s.\n", ms(r.coldPrompt), ms(r.coldFloor))
	}
	if r.firstErr != "" {
		p("- First failure: %s.\n", r.firstErr)
	}
	if r.promptUse.wall > 0 {
		p("- CPU during the prompt runs (prompts and floor runs interleaved): relay %.0f %%, agent %.0f %%, load generator %.0f %% of one core; "+
			"whole machine %.0f %% of %d00 %%.\n", r.promptUse.pct(r.promptUse.relay), r.promptUse.pct(r.promptUse.agents),
			r.promptUse.pct(r.promptUse.loadgen), r.promptUse.pct(r.promptUse.machine), m.ncpu)
	}
	if hf.rss > 0 {
		p("- Helper idle: VmHWM (peak since start) %s. The helper is a subcommand of the whole patchbay-agent binary (%.0f MiB): "+
			"its package initialisation touches megabytes of code and read-only data. The helper gives those clean pages back "+
			"(cmd/patchbay-agent/helpermem_linux.go: MADV_DONTNEED on the binary's read-only mappings, at start, 5 s later and whenever the last prompt or indicator goes, with the heap returned too; "+
			"they stay in the page cache); before that change this bench read 18.0 MiB idle, 14.6 MiB of it file-backed. "+
			"What is left is the Go heap of the agent's package-level state (anonymous) and the pages of the binary and of libc "+
			"that the runtime keeps using; the floor shows what any Go program costs here. "+
			"The whole /proc/PID/smaps of the idle helper is kept in --cache/last-run/consent-helper-smaps.txt.\n", mibOf(hf.hwm), r.helperBinMiB)
	}

	if issues := problems(r.notes, r.logs); len(issues) > 0 {
		p("\n### Problems seen during the consent run\n\n")
		for _, s := range issues {
			p("- %s\n", s)
		}
	}

	p("\n### How the consent figures were measured\n\n")
	p(`- **Prompt latency**: one `+"`xev -root -event substructure`"+` on the user's display prints every
  window mapped on it as the X server reports it (MapNotify); the bench reads xev's output as it comes
  and timestamps the MapNotify line. A prompt is timed from the call of `+"`client.OpenSession`"+` (new
  TLS connection and websocket to the relay, which records the request and forwards it to the agent;
  the agent asks its helper over the helper socket; the helper starts zenity) to the MapNotify of a
  window titled "%[1]s" (checked with `+"`xdotool getwindowname`"+`). The bench then clicks Deny
  (xdotool, at the window's bottom right minus 140,25), waits for the window to be unmapped and for
  the technician's request to return denied, and starts the next one: one prompt at a time, %[2]d of
  them after one cold one.
- **Floor**: before each prompt, the bench starts zenity itself with the helper's arguments
  (`+"`--question --no-markup --ok-label=Allow --cancel-label=Deny --default-cancel --width=480 --timeout=30`"+`,
  same title, a text of the same length) as the same user with the helper's environment
  (`+"`PATH=/usr/bin:/bin`, `HOME=/tmp`"+`, DISPLAY), timed from the fork to the MapNotify the same way,
  then clicks Deny. What is left between the two is Patchbay's path.
- **Helper footprint**: the helper's own process (the descendant of runuser whose executable is the
  helper binary; runuser and env are not counted), after it logged "connected to the agent" and
  showed nothing for %[3]v: VmRSS, VmHWM and RssAnon from /proc/PID/status (file-backed is the
  rest: mapped pages of the binary and libraries); then its utime+stime from /proc/PID/stat over %[4]v of idle. The floor is
  a Go program the bench writes and builds (same go command) that connects to a unix socket and
  blocks reading it, measured over the same window.
- The bench needs root (it creates and removes a local user, runs the agent as root and the user's
  programs with runuser) and Xvfb, zenity, xdotool, xev (Debian: xvfb, zenity, xdotool, x11-utils).
`, promptTitle, o.consentPrompts, o.consentSettle, o.consentIdle)
	p("\n%s\n", consentEnd)
	return w.String()
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// spliceSection returns doc with the section between begin and end
// replaced by section, or with section appended when doc has none.
func spliceSection(doc, begin, end, section string) string {
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	if i >= 0 && j > i {
		return doc[:i] + strings.TrimRight(section, "\n") + doc[j+len(end):]
	}
	return strings.TrimRight(doc, "\n") + "\n\n" + section
}

// existingSection returns the section between begin and end of the report
// at path, or "" when it has none.
func existingSection(path, begin, end string) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	doc := string(raw)
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	if i < 0 || j < i {
		return ""
	}
	return doc[i:j+len(end)] + "\n"
}

// writeConsentOnly rewrites the consent section of the report at path and
// keeps the rest of it.
func writeConsentOnly(path string, r *consentResults) error {
	raw, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc := string(raw)
	if doc == "" {
		doc = "# Benchmarks\n\nOnly the consent part has been run (`patchbay-loadgen bench --only consent`); `make bench` adds the other figures.\n"
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(path, []byte(spliceSection(doc, consentBegin, consentEnd, renderConsent(r))), 0o644)
}

// printConsentSummary prints the consent figures on stdout.
func printConsentSummary(r *consentResults) {
	fmt.Printf("consent prompt visible:     p50 %s, p99 %s, max %s (%d prompts, %d failed)\n",
		ms(pct(r.prompts, 50)), ms(pct(r.prompts, 99)), ms(pct(r.prompts, 100)), len(r.prompts), r.promptFailed)
	fmt.Printf("zenity alone (floor):       p50 %s, p99 %s, max %s\n", ms(pct(r.floor, 50)), ms(pct(r.floor, 99)), ms(pct(r.floor, 100)))
	fmt.Printf("helper idle:                RSS %s (floor %s), CPU %.2f s over %v\n",
		mibOf(r.helper.rss), mibOf(r.floorProc.rss), r.helper.cpu.Seconds(), r.helper.window)
}
