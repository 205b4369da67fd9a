package main

import (
	"bufio"
	"context"
	"fmt"
	"github.com/patchbay/patchbay/internal/backoff"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// startFleet starts --agents simulated agents in --procs processes, each
// from its own source address and logging to agents-N.log in b.logDir;
// with startRate > 0 they start that many agents a second between them.
func (b *bench) startFleet(startRate int) error {
	o := b.o
	for i := range o.procs {
		from, count := share(o.agents, o.procs, i)
		source := fmt.Sprintf("127.0.0.%d", 2+i)
		logPath := filepath.Join(b.logDir, fmt.Sprintf("agents-%d.log", i))
		rate := 0
		if startRate > 0 {
			rate = max(1, startRate*count/o.agents) // this process's share
		}
		p, err := startAgentsProc(o.loadgenBin, b.ids, b.server, source, from, count, rate, logPath)
		if err != nil {
			return err
		}
		b.fleet = append(b.fleet, p)
	}
	return nil
}

// fleetCheck fails when the relay or an agents process has exited.
func (b *bench) fleetCheck() error {
	if !b.relay.alive() {
		return fmt.Errorf("relay exited (%v)", b.relay.err)
	}
	return b.fleet.check()
}

// measureFleet runs steps 3 to 5: cold connect, idle, restart; then stops
// the fleet and the relay.
func (b *bench) measureFleet(ctx context.Context) error {
	r, o := b.r, b.o
	if !backoff.Sleep(ctx, 2*time.Second) {
		return ctx.Err()
	}
	var err error
	if r.baseRSS, err = procStatus(b.relay.pid(), "VmRSS"); err != nil {
		return fmt.Errorf("relay RSS: %w", err)
	}
	r.relayMaxFiles = procMaxFiles(b.relay.pid())
	step("relay pid %d at %s: RSS %s at rest, open-files limit %s", b.relay.pid(), b.listen, kib(r.baseRSS), r.relayMaxFiles)

	// Cold connect.
	step("starting %d agents in %d processes", o.agents, o.procs)
	net0 := netCounters()
	relayCPU0, err := procCPU(b.relay.pid())
	if err != nil {
		return err
	}
	start := time.Now()
	if err := b.startFleet(o.startRate); err != nil {
		return err
	}
	samples, reached, err := b.health.waitOnline(ctx, start, o.agents, 100*time.Millisecond, o.connectTimeout, b.fleetCheck)
	if err != nil {
		return fmt.Errorf("cold connect: %w", err)
	}
	r.coldReached, r.coldMax, r.coldSamples = reached, maxOnline(samples), samples
	r.coldNet = netDelta(netCounters(), net0)
	r.coldCPU = b.phaseCPU(relayCPU0, 0, time.Since(start))
	backoff.Sleep(ctx, time.Second) // let the agents processes report
	r.coldFleet = b.fleet.sum()
	if first := b.fleet.started(); !first.IsZero() && reached > 0 {
		r.coldFromDial = start.Add(reached).Sub(first)
	}
	if reached == 0 {
		r.note("Only %d of %d agents were online %v after the start (agents report %d connected; failures: %s).",
			r.coldMax, o.agents, o.connectTimeout, r.coldFleet.Connected, errorSummary(r.coldFleet))
		step("  only %d/%d online after %v", r.coldMax, o.agents, o.connectTimeout)
	} else {
		step("  all %d online %.1f s after the first dial (%.1f s after starting the processes)", o.agents, r.coldFromDial.Seconds(), reached.Seconds())
	}

	// Idle.
	step("idle: settling %v, then CPU over %v", o.settle, o.cpuWindow)
	if !backoff.Sleep(ctx, o.settle) {
		return ctx.Err()
	}
	pid := b.relay.pid()
	if r.idleRSS, err = procStatus(pid, "VmRSS"); err != nil {
		return fmt.Errorf("relay RSS: %w", err)
	}
	r.idleFDs = procFDs(pid)
	cpu0, err := procCPU(pid)
	if err != nil {
		return err
	}
	_, lgCPU0 := b.fleet.usage()
	t0 := time.Now()
	if !backoff.Sleep(ctx, o.cpuWindow) {
		return ctx.Err()
	}
	cpu1, err := procCPU(pid)
	if err != nil {
		return err
	}
	lgRSS, lgCPU1 := b.fleet.usage()
	wall := time.Since(t0)
	r.idleCPU = float64(cpu1-cpu0) / float64(wall) * 100
	r.loadgenCPU = float64(lgCPU1-lgCPU0) / float64(wall) * 100
	r.loadgenRSS = lgRSS
	r.idleRSS2, _ = procStatus(pid, "VmRSS")
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	r.idleOnline, err = b.health.online(pctx)
	cancel()
	if err != nil {
		return fmt.Errorf("healthz after the idle window: %w", err)
	}
	step("  RSS %s (%.1f KiB/agent), %d fds, CPU %.2f%% of a core; load generator %.1f%%",
		kib(r.idleRSS), r.perAgentKiB(), r.idleFDs, r.idleCPU, r.loadgenCPU)

	// Jobs.
	step("jobs: a no-op run on 10,000 agents, then on all")
	if err := b.measureJobs(ctx); err != nil {
		r.note("The job measurement failed: %v.", err)
		step("  job measurement failed: %v", err)
	}

	// Restart.
	step("restart: SIGKILL the relay and start it again on %s", b.listen)
	before := b.fleet.sum()
	_, lgCPU0 = b.fleet.usage()
	net0 = netCounters()
	killed := time.Now()
	b.relay.kill()
	if err := b.startRelayNoWait(); err != nil {
		return err
	}
	restarted := time.Now()
	var atUp report // the agents' counts when the new relay first answered
	samples, reached, err = b.health.waitOnlineUp(ctx, restarted, o.agents, 100*time.Millisecond, o.reconnectTimeout, b.fleetCheck,
		func() { atUp = b.fleet.sum() })
	if err != nil {
		return fmt.Errorf("reconnect: %w", err)
	}
	r.restartSamples, r.restartReached, r.restartMax = samples, reached, maxOnline(samples)
	r.restartNet = netDelta(netCounters(), net0)
	r.restartCPU = b.phaseCPU(0, lgCPU0, time.Since(killed))
	r.restartGap = restarted.Sub(killed)
	r.rssAfterReconnect, _ = procStatus(b.relay.pid(), "VmRSS")
	backoff.Sleep(ctx, time.Second)
	end := b.fleet.sum()
	r.restartFleet = delta(end, before)
	r.restartFleetUp = delta(end, atUp)
	if reached == 0 {
		r.note("After the restart only %d of %d agents were back within %v.", r.restartMax, o.agents, o.reconnectTimeout)
		step("  only %d/%d back after %v", r.restartMax, o.agents, o.reconnectTimeout)
	} else {
		step("  all back %.1f s after the restart; peak %d agents/s", reached.Seconds(), peakRate(samples))
	}

	// Stop.
	step("stopping the agents processes and the relay")
	if unclean := b.fleet.stop(30 * time.Second); len(unclean) > 0 {
		r.note("Agents processes killed after 30 s without exiting on SIGTERM: %s.", strings.Join(unclean, ", "))
	}
	b.fleet = nil
	if !b.relay.stop(30 * time.Second) {
		r.note("The relay did not stop within 30 s of SIGTERM and was killed.")
	}
	b.scanLogs()
	return nil
}

// phaseCPU returns the CPU use of the relay and of the agents processes
// since the given readings, over wall, in % of one core.
func (b *bench) phaseCPU(relay0, agents0 time.Duration, wall time.Duration) phaseUse {
	relay1, _ := procCPU(b.relay.pid())
	_, agents1 := b.fleet.usage()
	return phaseUse{
		relay:  float64(relay1-relay0) / float64(wall) * 100,
		agents: float64(agents1-agents0) / float64(wall) * 100,
	}
}

// startRelayNoWait starts the relay again without waiting for it: the
// restart is timed from the exec.
func (b *bench) startRelayNoWait() error {
	b.relayStarts++
	logPath := filepath.Join(b.logDir, fmt.Sprintf("relay-%d.log", b.relayStarts))
	c, err := startChild("relay", b.o.serverBin, relayArgs(b.dataDir, b.listen, b.o.heartbeat), logPath, syscall.SIGKILL, nil)
	if err != nil {
		return err
	}
	b.relay = c
	return nil
}

// scanLogs notes limits hit and counts warnings in the logs of this run.
func (b *bench) scanLogs() {
	ents, err := os.ReadDir(b.logDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		path := filepath.Join(b.logDir, e.Name())
		warn, errs, emfile, sample := scanLog(path)
		b.r.logs = append(b.r.logs, logSummary{name: e.Name(), warn: warn, errors: errs, emfile: emfile, sample: sample})
		if emfile > 0 {
			b.r.note("%s: %d lines mention \"too many open files\".", e.Name(), emfile)
		}
	}
}

func scanLog(path string) (warn, errs, emfile int, sample string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.Contains(line, `"level":"warn"`):
			warn++
		case strings.Contains(line, `"level":"error"`), strings.Contains(line, `"level":"fatal"`), strings.Contains(line, "panic"):
			errs++
			if sample == "" {
				sample = clipText(line, 300)
			}
		}
		if strings.Contains(strings.ToLower(line), "too many open files") {
			emfile++
		}
	}
	return
}

// share returns the slice [from, from+count) of n items for part i of k.
func share(n, k, i int) (from, count int) {
	base, extra := n/k, n%k
	from = i*base + min(i, extra)
	count = base
	if i < extra {
		count++
	}
	return from, count
}

func maxOnline(s []sample) int {
	m := 0
	for _, x := range s {
		m = max(m, x.n)
	}
	return m
}

// peakRate is the largest increase of agents_online over any one-second
// window of the samples.
func peakRate(s []sample) int {
	peak := 0
	for i := range s {
		for j := i; j >= 0 && s[i].t-s[j].t <= time.Second; j-- {
			peak = max(peak, s[i].n-s[j].n)
		}
		if i == 0 {
			peak = max(peak, s[0].n) // the relay started from zero at t=0
		}
	}
	return peak
}

// perSecond returns agents_online at the end of each whole second.
func perSecond(s []sample) []int {
	if len(s) == 0 {
		return nil
	}
	last := int(s[len(s)-1].t / time.Second)
	out := make([]int, last+1)
	j := 0
	cur := 0
	for sec := 0; sec <= last; sec++ {
		for j < len(s) && s[j].t <= time.Duration(sec+1)*time.Second {
			cur = s[j].n
			j++
		}
		out[sec] = cur
	}
	return out
}

// timeTo returns when agents_online first reached want (0: never).
func timeTo(s []sample, want int) time.Duration {
	for _, x := range s {
		if x.n >= want {
			return x.t
		}
	}
	return 0
}

func delta(after, before report) report {
	d := report{
		Connected: after.Connected, Total: after.Total,
		Connects: after.Connects - before.Connects,
		Drops:    after.Drops - before.Drops,
		Failures: after.Failures - before.Failures,
		Errors:   map[string]int{}, LastError: after.LastError, Examples: map[string]string{},
	}
	for k, v := range after.Errors {
		if n := v - before.Errors[k]; n != 0 {
			d.Errors[k] = n
			d.Examples[k] = after.Examples[k]
		}
	}
	return d
}

// errorSummary formats a report's failures by class.
func errorSummary(r report) string {
	if r.Failures == 0 {
		return "none"
	}
	var parts []string
	for _, k := range sortedKeys(r.Errors) {
		parts = append(parts, fmt.Sprintf("%s %d", k, r.Errors[k]))
	}
	return strings.Join(parts, ", ")
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
