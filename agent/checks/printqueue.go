package checks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/patchbay/patchbay/internal/lpstat"
)

// defaultMaxJobAge is how long a job may wait before builtin:stuck-print-queue
// calls it stuck.
const defaultMaxJobAge = 30 * time.Minute

// printQueue fails while a CUPS queue in scope (queue, or every queue) holds
// a job older than max_age, or is stopped (disabled, paused) with jobs
// waiting, or the scheduler does not answer. It only runs lpstat, in the C
// locale, against cups_server when set (else the local scheduler). On
// Windows it is not available (the print spooler is not CUPS).
func printQueue(ctx context.Context, p map[string]string) (bool, string, error) {
	if runtime.GOOS == "windows" {
		return false, "", errUnsupported
	}
	maxAge := defaultMaxJobAge
	if s := p["max_age"]; s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return false, "", fmt.Errorf("max_age %q: want a duration such as 30m or 2h", s)
		}
		maxAge = d
	}
	queue := p["queue"]
	if queue != "" && !lpstat.ValidName(queue) {
		return false, "", fmt.Errorf("queue %q: want a CUPS queue name", queue)
	}
	server := p["cups_server"]
	if strings.HasPrefix(server, "-") || strings.ContainsAny(server, " \t\n") {
		return false, "", fmt.Errorf("cups_server %q: want HOST:PORT or a socket path", server)
	}
	run := func(args ...string) (string, string, error) {
		cmd := exec.CommandContext(ctx, "lpstat", args...)
		cmd.Env = lpstat.Env(os.Environ(), server)
		cmd.WaitDelay = 5 * time.Second
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		if errors.Is(err, exec.ErrNotFound) {
			return "", "", errors.New("lpstat not found: install the CUPS client tools (Debian: cups-client)")
		}
		if err != nil {
			err = fmt.Errorf("lpstat %s: %w: %s", strings.Join(args, " "), err, lpstat.FirstLine(e.String()))
		}
		return o.String(), e.String(), err
	}
	out, _, err := run("-r")
	if err != nil && strings.TrimSpace(out) == "" {
		return false, "", err
	}
	running, err := lpstat.ParseScheduler(out)
	if err != nil {
		return false, "", err
	}
	if !running {
		return false, "the CUPS scheduler is not running: nothing prints", nil
	}
	out, stderr, err := run("-p")
	if err != nil && !lpstat.NoDestinations(stderr) {
		return false, "", err
	}
	queues, err := lpstat.ParsePrinters(out)
	if err != nil {
		return false, "", err
	}
	out, _, err = run("-o")
	if err != nil {
		return false, "", err
	}
	jobs, err := lpstat.ParseJobs(out, time.Local)
	if err != nil {
		return false, "", err
	}
	return judgeQueues(queues, jobs, queue, maxAge, time.Now())
}

// judgeQueues decides builtin:stuck-print-queue from what lpstat listed.
func judgeQueues(queues []lpstat.Queue, jobs []lpstat.Job, only string, maxAge time.Duration, now time.Time) (bool, string, error) {
	waiting := map[string]int{}
	var old []string
	inScope := 0
	for _, j := range jobs {
		if only != "" && j.Queue != only {
			continue
		}
		inScope++
		waiting[j.Queue]++
		if !j.Submitted.IsZero() && now.Sub(j.Submitted) > maxAge {
			old = append(old, fmt.Sprintf("job %s on %s waiting since %s (%s)", j.ID, j.Queue,
				j.Submitted.Format("2006-01-02 15:04"), now.Sub(j.Submitted).Truncate(time.Minute)))
		}
	}
	var problems []string
	found := false
	for _, q := range queues {
		if only != "" && q.Name != only {
			continue
		}
		found = true
		if !q.Enabled && waiting[q.Name] > 0 {
			s := fmt.Sprintf("queue %s is stopped with %d job(s) waiting", q.Name, waiting[q.Name])
			if q.Reason != "" {
				s += " (" + q.Reason + ")"
			}
			problems = append(problems, s)
		}
	}
	if only != "" && !found {
		return false, "", fmt.Errorf("queue %s: no such CUPS queue (lpstat -p lists the queues)", only)
	}
	problems = append(problems, old...)
	if len(problems) > 0 {
		return false, strings.Join(problems, "; "), nil
	}
	where := fmt.Sprintf("%d queue(s)", len(queues))
	if only != "" {
		where = "queue " + only
	}
	return true, fmt.Sprintf("%s: %d job(s) waiting, none older than %s, no stopped queue holding jobs", where, inScope, maxAge), nil
}
