package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/patchbay/patchbay/internal/backoff"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/patchbay/patchbay/agent/enroll"
)

// child is a process started by the bench, with its exit observed.
type child struct {
	name   string
	cmd    *exec.Cmd
	log    *os.File
	exited chan struct{}
	err    error // Wait's result, valid once exited is closed
}

// startChild starts bin with args, stderr (and stdout unless stdout is set)
// going to logPath. deathSig is sent to the child if the bench dies first.
func startChild(name, bin string, args []string, logPath string, deathSig syscall.Signal, stdout *os.File) (*child, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logf
	cmd.Stdout = logf
	if stdout != nil {
		cmd.Stdout = stdout
	}
	setDeathSignal(cmd, deathSig)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, log: logf, exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		logf.Close()
		close(c.exited)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) alive() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be reaped.
func (c *child) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

// stop sends SIGTERM and waits up to grace, then kills. It reports whether
// the process ended by itself.
func (c *child) stop(grace time.Duration) bool {
	if !c.alive() {
		return true
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		return true
	case <-time.After(grace):
		c.kill()
		return false
	}
}

// relayArgs are the arguments of `patchbay-server serve` for the bench.
func relayArgs(dataDir, listen string, heartbeat time.Duration) []string {
	return []string{"serve", "--data", dataDir, "--listen", listen,
		"--heartbeat", heartbeat.String(), "--log-level", "warn", "--log-format", "json"}
}

// health polls a relay's /healthz over a client pinned to its CA.
type health struct {
	url string
	hc  *http.Client
}

func newHealth(server, fp string) (*health, error) {
	hc, err := enroll.NewHTTPClient(server, fp)
	if err != nil {
		return nil, err
	}
	hc.Timeout = 5 * time.Second
	return &health{url: server + "/healthz", hc: hc}, nil
}

// online returns the relay's agents_online.
func (h *health) online(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url, nil)
	if err != nil {
		return 0, err
	}
	res, err := h.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("healthz: %s", res.Status)
	}
	var body struct {
		Status       string `json:"status"`
		AgentsOnline int    `json:"agents_online"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return 0, fmt.Errorf("healthz: %w", err)
	}
	return body.AgentsOnline, nil
}

// sample is agents_online at t after the start of a wait.
type sample struct {
	t time.Duration
	n int
}

// waitOnline polls every interval until agents_online reaches want, the
// timeout passes, ctx ends, or check reports a problem (a process died).
// It returns the samples and when want was reached (0 if never); polling
// errors (the relay still starting) are retried.
func (h *health) waitOnline(ctx context.Context, start time.Time, want int, interval, timeout time.Duration, check func() error) ([]sample, time.Duration, error) {
	return h.waitOnlineUp(ctx, start, want, interval, timeout, check, nil)
}

// waitOnlineUp is waitOnline that also calls up (if not nil) once, at the
// first answer of /healthz.
func (h *health) waitOnlineUp(ctx context.Context, start time.Time, want int, interval, timeout time.Duration, check func() error, up func()) ([]sample, time.Duration, error) {
	deadline := start.Add(timeout)
	var samples []sample
	for {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		n, err := h.online(pctx)
		cancel()
		if err == nil {
			if up != nil && len(samples) == 0 {
				up()
			}
			t := time.Since(start)
			samples = append(samples, sample{t, n})
			if n >= want {
				return samples, t, nil
			}
		}
		if ctx.Err() != nil {
			return samples, 0, ctx.Err()
		}
		if check != nil {
			if err := check(); err != nil {
				return samples, 0, err
			}
		}
		if time.Now().After(deadline) {
			return samples, 0, nil
		}
		backoff.Sleep(ctx, interval)
	}
}

// procStatus returns a field of /proc/PID/status in KiB (VmRSS, VmHWM).
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			fs := strings.Fields(v)
			if len(fs) == 0 {
				break
			}
			return strconv.ParseInt(fs[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// procStat returns the fields of /proc/PID/stat after the command (whose
// name may hold spaces and parentheses): state, ppid, pgrp, ...
func procStat(pid int) ([]string, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, errors.New("unexpected /proc/PID/stat format")
	}
	return strings.Fields(s[i+1:]), nil
}

// procCPU returns the user+system CPU time a process has used.
func procCPU(pid int) (time.Duration, error) {
	fs, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	// After the command: state(3) ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime(14) stime(15).
	if len(fs) < 13 {
		return 0, errors.New("unexpected /proc/PID/stat format")
	}
	ut, err1 := strconv.ParseInt(fs[11], 10, 64)
	st, err2 := strconv.ParseInt(fs[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// procFDs counts a process's open file descriptors.
func procFDs(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

// procMaxFiles returns the soft open-files limit of a process.
func procMaxFiles(pid int) string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "Max open files"); ok {
			if fs := strings.Fields(v); len(fs) > 0 {
				return fs[0]
			}
		}
	}
	return "?"
}

// agentsProc is one `patchbay-loadgen agents` child and its latest report.
type agentsProc struct {
	*child
	source      string
	from, count int

	mu   sync.Mutex
	last report
}

func startAgentsProc(bin, ids, server, source string, from, count, startRate int, logPath string, extra ...string) (*agentsProc, error) {
	p := &agentsProc{source: source, from: from, count: count}
	args := []string{"agents", "--identities", ids, "--server", server, "--source", source,
		"--from", strconv.Itoa(from), "--count", strconv.Itoa(count), "--report", "100ms",
		"--start-rate", strconv.Itoa(startRate), "--max-duration", "30m"}
	args = append(args, extra...)
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c, err := startChild("agents "+source, bin, args, logPath, syscall.SIGTERM, pw)
	pw.Close() // the child holds its own copy
	if err != nil {
		pr.Close()
		return nil, err
	}
	p.child = c
	go p.read(pr)
	return p, nil
}

// read keeps the latest report line of the child's stdout, until EOF.
func (p *agentsProc) read(r *os.File) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r report
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			p.mu.Lock()
			p.last = r
			p.mu.Unlock()
		}
	}
}

func (p *agentsProc) report() report {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// fleet is all agents processes of a bench run.
type fleet []*agentsProc

// sum adds up the latest reports of every process.
func (f fleet) sum() report {
	s := report{Errors: map[string]int{}, Examples: map[string]string{}}
	for _, p := range f {
		r := p.report()
		s.Connected += r.Connected
		s.Total += r.Total
		s.Connects += r.Connects
		s.Drops += r.Drops
		s.Failures += r.Failures
		s.UpgradeRuns += r.UpgradeRuns
		s.Upgraded += r.Upgraded
		s.UpgradeFailed += r.UpgradeFailed
		s.UpgradeBytes += r.UpgradeBytes
		s.UpgradeRetry += r.UpgradeRetry
		s.Checks = s.Checks.add(r.Checks)
		if r.UpgradeError != "" {
			s.UpgradeError = r.UpgradeError
		}
		for k, v := range r.Errors {
			s.Errors[k] += v
		}
		for k, v := range r.Examples {
			s.Examples[k] = v
		}
		if r.LastError != "" {
			s.LastError = r.LastError
		}
	}
	return s
}

// started returns when the first process started its links (zero until
// every process has reported).
func (f fleet) started() time.Time {
	var first float64
	for _, p := range f {
		s := p.report().Started
		if s == 0 {
			return time.Time{}
		}
		if first == 0 || s < first {
			first = s
		}
	}
	return time.UnixMilli(int64(first * 1000))
}

// check reports an agents process that exited.
func (f fleet) check() error {
	for _, p := range f {
		if !p.alive() {
			return fmt.Errorf("%s exited early (%v); see its log", p.name, p.err)
		}
	}
	return nil
}

// usage returns the processes' total RSS (KiB) and CPU time.
func (f fleet) usage() (rssKiB int64, cpu time.Duration) {
	for _, p := range f {
		if r, err := procStatus(p.pid(), "VmRSS"); err == nil {
			rssKiB += r
		}
		if c, err := procCPU(p.pid()); err == nil {
			cpu += c
		}
	}
	return rssKiB, cpu
}

// stop ends every process in parallel.
func (f fleet) stop(grace time.Duration) (unclean []string) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range f {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !p.stop(grace) {
				mu.Lock()
				unclean = append(unclean, p.name)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return unclean
}

// netCounterNames are the kernel TCP counters the report shows per phase.
var netCounterNames = []string{"ListenOverflows", "TCPSynRetrans", "AttemptFails", "EstabResets", "OutRsts"}

// netCounters reads the network namespace's TCP counters from
// /proc/net/netstat (TcpExt) and /proc/net/snmp (Tcp).
func netCounters() map[string]int64 {
	out := map[string]int64{}
	for _, file := range []string{"/proc/net/netstat", "/proc/net/snmp"} {
		raw, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		lines := strings.Split(string(raw), "\n")
		for i := 0; i+1 < len(lines); i += 2 {
			names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
			if len(names) == 0 || (names[0] != "TcpExt:" && names[0] != "Tcp:") || len(names) != len(values) {
				continue
			}
			for j := 1; j < len(names); j++ {
				if v, err := strconv.ParseInt(values[j], 10, 64); err == nil {
					out[names[j]] = v
				}
			}
		}
	}
	return out
}

// netDelta is after − before for the counters the report shows.
func netDelta(after, before map[string]int64) map[string]int64 {
	d := map[string]int64{}
	for _, k := range netCounterNames {
		d[k] = after[k] - before[k]
	}
	return d
}
