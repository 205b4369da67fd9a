//go:build !windows

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/patchbay/patchbay/internal/lpstat"
	"github.com/patchbay/patchbay/plugins/sdk"
)

// Timeouts for waiting on the scheduler; the job's context bounds them too.
const (
	schedulerStartWait = 30 * time.Second
	settleWait         = 10 * time.Second
	pollInterval       = 500 * time.Millisecond
)

// check reads the CUPS state and reports it; it only runs lpstat.
func check(ctx context.Context, o options) (sdk.CheckResult, error) {
	c := newCUPSClient(o.server)
	st, err := c.state(ctx, o, time.Now())
	if err != nil {
		return sdk.CheckResult{}, fmt.Errorf("check: %w", err)
	}
	res, err := st.checkResult()
	if err != nil {
		return sdk.CheckResult{}, fmt.Errorf("check: %w", err)
	}
	if !st.Running {
		switch {
		case o.server != "":
			res.Summary += " (a scheduler chosen by cups_server is never restarted)"
		case !o.restart:
			res.Summary += " (restart_scheduler is false)"
		}
	}
	return res, nil
}

// fixReport is the Details JSON of a Fix: what it changed and the state it
// left behind.
type fixReport struct {
	Restarted bool      `json:"scheduler_restarted"`
	Cancelled []string  `json:"cancelled_jobs"`
	Enabled   []string  `json:"enabled_queues"`
	Accepting []string  `json:"accepting_queues"`
	After     cupsState `json:"after"`
}

func (r fixReport) changed() bool {
	return r.Restarted || len(r.Cancelled)+len(r.Enabled)+len(r.Accepting) > 0
}

func (r fixReport) summary() string {
	var p []string
	if r.Restarted {
		p = append(p, "restarted the CUPS scheduler")
	}
	if n := len(r.Cancelled); n > 0 {
		p = append(p, "cancelled "+plural(n, "stuck job", "stuck jobs"))
	}
	if len(r.Enabled) > 0 {
		p = append(p, "re-enabled "+queueList(r.Enabled))
	}
	if len(r.Accepting) > 0 {
		p = append(p, queueList(r.Accepting)+" accepting jobs again")
	}
	if len(p) == 0 {
		return "nothing to do"
	}
	return strings.Join(p, "; ")
}

func queueList(names []string) string {
	if len(names) == 1 {
		return "queue " + names[0]
	}
	return "queues " + strings.Join(names, ", ")
}

// fix restarts the scheduler if needed and allowed, cancels stuck jobs (before
// re-enabling their queues, so they do not start printing), re-enables and
// re-accepts queues, then reads the state again. Anything still wrong
// afterwards makes the Fix fail, with what it did changed in the error.
func fix(ctx context.Context, o options, out *sdk.Output) (sdk.FixResult, error) {
	c := newCUPSClient(o.server)
	r := fixReport{Cancelled: []string{}, Enabled: []string{}, Accepting: []string{}}
	running, err := c.running(ctx)
	if err != nil {
		return sdk.FixResult{}, fmt.Errorf("fix: %w", err)
	}
	if !running {
		switch {
		case o.server != "":
			return sdk.FixResult{}, fmt.Errorf("fix: the CUPS scheduler at %s is not running; a scheduler chosen by cups_server is never restarted", o.server)
		case !o.restart:
			return sdk.FixResult{}, errors.New("fix: the CUPS scheduler is not running and restart_scheduler is false")
		}
		out.Println("the CUPS scheduler is not running: restarting it")
		if err := c.restartScheduler(ctx, out); err != nil {
			return sdk.FixResult{}, fmt.Errorf("fix: restart scheduler: %w", err)
		}
		r.Restarted = true
		out.Println("the CUPS scheduler is running again")
	}
	before, err := c.state(ctx, o, time.Now())
	if err != nil {
		return sdk.FixResult{}, fmt.Errorf("fix: %w", err)
	}
	var failed []string
	for _, j := range before.Stuck {
		if !validName(j.ID) {
			failed = append(failed, fmt.Sprintf("job %q: refusing an unusual job id", j.ID))
			continue
		}
		stderr, err := c.act(ctx, out, "cancel", j.ID)
		switch {
		case err == nil:
			r.Cancelled = append(r.Cancelled, j.ID)
		case ctx.Err() != nil:
			return sdk.FixResult{}, fmt.Errorf("fix: cancel %s: %w", j.ID, ctx.Err())
		case jobGone(stderr):
			out.Printf("job %s finished meanwhile", j.ID)
		default:
			failed = append(failed, fmt.Sprintf("cancel %s: %v", j.ID, err))
		}
	}
	for _, q := range before.Queues {
		if !q.Problem() {
			continue
		}
		if !validName(q.Name) {
			failed = append(failed, fmt.Sprintf("queue %q: refusing an unusual queue name", q.Name))
			continue
		}
		if !q.Enabled {
			if _, err := c.act(ctx, out, "cupsenable", q.Name); err != nil {
				failed = append(failed, fmt.Sprintf("cupsenable %s: %v", q.Name, err))
			} else {
				r.Enabled = append(r.Enabled, q.Name)
			}
		}
		if !q.Accepting {
			if _, err := c.act(ctx, out, "cupsaccept", q.Name); err != nil {
				failed = append(failed, fmt.Sprintf("cupsaccept %s: %v", q.Name, err))
			} else {
				r.Accepting = append(r.Accepting, q.Name)
			}
		}
		if ctx.Err() != nil {
			return sdk.FixResult{}, fmt.Errorf("fix: %w", ctx.Err())
		}
	}
	r.After, err = c.settle(ctx, o)
	if err != nil {
		return sdk.FixResult{}, fmt.Errorf("fix: %s; then: %w", r.summary(), err)
	}
	if left := append(failed, r.After.problems()...); len(left) > 0 {
		return sdk.FixResult{}, fmt.Errorf("fix: %s; but: %s", r.summary(), strings.Join(left, "; "))
	}
	details, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return sdk.FixResult{}, fmt.Errorf("fix: details: %w", err)
	}
	out.Println(r.summary())
	return sdk.FixResult{Changed: r.changed(), Summary: r.summary(), Details: string(details)}, nil
}

// jobGone reports whether cancel failed only because the job already ended.
func jobGone(stderr string) bool {
	s := strings.ToLower(stderr)
	return strings.Contains(s, "does not exist") || strings.Contains(s, "already canceled") ||
		strings.Contains(s, "already cancelled") || strings.Contains(s, "already completed") ||
		strings.Contains(s, "already aborted")
}

// cupsClient runs the CUPS command-line tools against one scheduler.
type cupsClient struct {
	server string
	env    []string
	loc    *time.Location
}

func newCUPSClient(server string) *cupsClient {
	return &cupsClient{server: server, env: toolEnv(os.Environ(), server), loc: time.Local}
}

// toolEnv is the plugin's environment with the locale forced to C (so
// output and dates parse) and CUPS_SERVER set to server, or removed.
func toolEnv(base []string, server string) []string { return lpstat.Env(base, server) }

// lookTool finds a CUPS or service tool: on PATH, else in the sbin
// directories a minimal PATH may leave out (cupsenable lives in /usr/sbin).
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found (are the CUPS command-line tools installed?)", name)
}

func (c *cupsClient) command(ctx context.Context, name string, args ...string) (*exec.Cmd, error) {
	path, err := lookTool(name)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = c.env
	cmd.WaitDelay = 5 * time.Second
	return cmd, nil
}

// run runs cmd. A command that succeeded but left a child holding its
// output open (an init script starting cupsd) ends with exec.ErrWaitDelay
// once WaitDelay passes; that counts as success.
func run(cmd *exec.Cmd) error {
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success() {
		return nil
	}
	return err
}

// query runs a read-only tool and returns its output.
func (c *cupsClient) query(ctx context.Context, name string, args ...string) (stdout, stderr string, err error) {
	cmd, err := c.command(ctx, name, args...)
	if err != nil {
		return "", "", err
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := run(cmd); err != nil {
		return o.String(), e.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, firstLine(e.String()))
	}
	return o.String(), e.String(), nil
}

// act runs a tool that changes something: the command line and its output
// go to the Fix output; stderr is also returned for the caller to inspect.
func (c *cupsClient) act(ctx context.Context, out *sdk.Output, name string, args ...string) (string, error) {
	cmd, err := c.command(ctx, name, args...)
	if err != nil {
		return "", err
	}
	out.Printf("run: %s %s", name, strings.Join(args, " "))
	w := out.Writer()
	defer w.Close()
	var e bytes.Buffer
	cmd.Stdout, cmd.Stderr = w, io.MultiWriter(w, &e)
	if err := run(cmd); err != nil {
		return e.String(), fmt.Errorf("%w: %s", err, firstLine(e.String()))
	}
	return e.String(), nil
}

// running asks lpstat -r whether the scheduler answers.
func (c *cupsClient) running(ctx context.Context) (bool, error) {
	stdout, _, err := c.query(ctx, "lpstat", "-r")
	if err != nil && strings.TrimSpace(stdout) == "" {
		return false, err
	}
	return parseScheduler(stdout)
}

// state reads the scheduler's queues and unfinished jobs.
func (c *cupsClient) state(ctx context.Context, o options, now time.Time) (cupsState, error) {
	running, err := c.running(ctx)
	if err != nil {
		return cupsState{}, err
	}
	if !running {
		return cupsState{Server: o.server, OlderThan: o.olderThan.String(), Queue: o.queue,
			Queues: []queue{}, Stuck: []job{}}, nil
	}
	var qs []queue
	printers, stderr, err := c.query(ctx, "lpstat", "-p")
	switch {
	case err != nil && !lpstat.NoDestinations(stderr):
		return cupsState{}, err
	case err == nil:
		if qs, err = parsePrinters(printers); err != nil {
			return cupsState{}, err
		}
	}
	if len(qs) > 0 {
		acc, stderr, err := c.query(ctx, "lpstat", "-a")
		if err != nil && !lpstat.NoDestinations(stderr) {
			return cupsState{}, err
		}
		accepting, reasons, err := parseAccepting(acc)
		if err != nil {
			return cupsState{}, err
		}
		mergeAccepting(qs, accepting, reasons)
	}
	jobsOut, _, err := c.query(ctx, "lpstat", "-o")
	if err != nil {
		return cupsState{}, err
	}
	jobs, err := parseJobs(jobsOut, c.loc)
	if err != nil {
		return cupsState{}, err
	}
	return newCUPSState(o, qs, jobs, now)
}

// settle re-reads the state until nothing is wrong or settleWait passes: a
// cancelled job that was printing takes a moment to leave the list.
func (c *cupsClient) settle(ctx context.Context, o options) (cupsState, error) {
	deadline := time.Now().Add(settleWait)
	for {
		st, err := c.state(ctx, o, time.Now())
		if err != nil || len(st.problems()) == 0 || time.Now().After(deadline) {
			return st, err
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return st, err
		}
	}
}

// restartScheduler restarts cupsd the way the OS manages it and waits until
// it answers.
func (c *cupsClient) restartScheduler(ctx context.Context, out *sdk.Output) error {
	var tries [][]string
	switch runtime.GOOS {
	case "darwin":
		tries = [][]string{{"launchctl", "kickstart", "-k", "system/org.cups.cupsd"}}
	default:
		if _, err := os.Stat("/run/systemd/system"); err == nil {
			tries = append(tries, []string{"systemctl", "restart", "cups"})
		}
		tries = append(tries, []string{"service", "cups", "restart"})
	}
	var errs []error
	restarted := false
	for _, t := range tries {
		if _, err := c.act(ctx, out, t[0], t[1:]...); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", strings.Join(t, " "), err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		restarted = true
		break
	}
	if !restarted {
		return errors.Join(errs...)
	}
	deadline := time.Now().Add(schedulerStartWait)
	for {
		running, err := c.running(ctx)
		if err == nil && running {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still not answering %s after the restart", schedulerStartWait)
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return err
		}
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
