// Package lpstat parses the output of the CUPS lpstat command run with
// LANG=C and LC_ALL=C: queues (lpstat -p, -a), unfinished jobs (lpstat -o)
// and whether the scheduler answers (lpstat -r). It runs nothing and is
// used by the printerreset plugin and the agent's stuck-print-queue check;
// the parsers are plain functions, tested on every OS and fuzzed.
package lpstat

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Queue is one CUPS destination as lpstat -p and lpstat -a describe it.
type Queue struct {
	Name      string `json:"name"`
	Enabled   bool   `json:"enabled"`          // lpstat -p: not "disabled" (stopped)
	Accepting bool   `json:"accepting"`        // lpstat -a: "accepting requests"
	Reason    string `json:"reason,omitempty"` // indented lines after a disabled or rejecting queue
}

// Problem reports whether the queue needs re-enabling or re-accepting.
func (q Queue) Problem() bool { return !q.Enabled || !q.Accepting }

// Job is one unfinished job as lpstat -o lists it.
type Job struct {
	ID    string `json:"id"` // "queue-N", what cancel takes
	Queue string `json:"queue"`
	User  string `json:"user"`
	Size  int64  `json:"size"`
	// Submitted is the date lpstat shows for an unfinished job (CUPS
	// prints the job's creation time); zero when it could not be parsed.
	Submitted time.Time `json:"submitted,omitzero"`
}

// lpstatTimeLayouts are the shapes of strftime("%c") that lpstat prints: the
// C locale first (what the plugin asks for), then common English locales in
// case a platform ignores LC_ALL.
var lpstatTimeLayouts = []string{
	"Mon Jan _2 15:04:05 2006",
	"Mon 02 Jan 2006 03:04:05 PM MST",
	"Mon 02 Jan 2006 15:04:05 MST",
	"Mon Jan _2 15:04:05 MST 2006",
}

// ParseTime parses a date as lpstat prints it, in loc.
func ParseTime(s string, loc *time.Location) (time.Time, bool) {
	s = strings.Join(strings.Fields(s), " ")
	for _, layout := range lpstatTimeLayouts {
		l := strings.Join(strings.Fields(layout), " ")
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// ParseScheduler parses `lpstat -r`: whether the scheduler answers.
func ParseScheduler(out string) (bool, error) {
	switch strings.TrimSpace(out) {
	case "scheduler is running":
		return true, nil
	case "scheduler is not running":
		return false, nil
	}
	return false, fmt.Errorf("lpstat -r: unexpected output %q", FirstLine(out))
}

// ParsePrinters parses `lpstat -p`:
//
//	printer testq is idle.  enabled since Mon Nov 23 12:04:05 2026
//	printer big now printing big-7.  enabled since Mon Nov 23 12:04:05 2026
//	printer stopped disabled since Mon Nov 23 12:04:05 2026 -
//		Paused
//
// Indented lines are the reason of the queue above them. It returns the
// queues in the order listed with Accepting left false (see MergeAccepting).
func ParsePrinters(out string) ([]Queue, error) {
	var qs []Queue
	sc := bufio.NewScanner(strings.NewReader(out))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \r")
		switch {
		case strings.TrimSpace(line) == "":
			continue
		case line[0] == ' ' || line[0] == '\t':
			if len(qs) == 0 {
				return nil, fmt.Errorf("lpstat -p: line %d: indented line before any printer: %q", n, line)
			}
			qs[len(qs)-1].Reason = joinReason(qs[len(qs)-1].Reason, line)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "printer" {
			return nil, fmt.Errorf("lpstat -p: line %d: want \"printer NAME ...\", got %q", n, line)
		}
		rest := strings.Join(f[2:], " ")
		q := Queue{Name: f[1]}
		switch {
		case strings.HasPrefix(rest, "disabled"):
			q.Enabled = false
		case strings.Contains(rest, "enabled since"), strings.HasPrefix(rest, "is idle"),
			strings.HasPrefix(rest, "now printing"):
			q.Enabled = true
		default:
			return nil, fmt.Errorf("lpstat -p: line %d: printer %s: unknown state %q", n, q.Name, rest)
		}
		qs = append(qs, q)
	}
	return qs, sc.Err()
}

// ParseAccepting parses `lpstat -a` into queue name → accepting:
//
//	testq accepting requests since Mon Nov 23 12:04:05 2026
//	other not accepting requests since Mon Nov 23 12:04:05 2026 -
//		Rejecting Jobs
//
// The reasons of rejecting queues are returned too.
func ParseAccepting(out string) (accepting map[string]bool, reasons map[string]string, err error) {
	accepting, reasons = map[string]bool{}, map[string]string{}
	last := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \r")
		switch {
		case strings.TrimSpace(line) == "":
			continue
		case line[0] == ' ' || line[0] == '\t':
			if last == "" {
				return nil, nil, fmt.Errorf("lpstat -a: line %d: indented line before any queue: %q", n, line)
			}
			reasons[last] = joinReason(reasons[last], line)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			return nil, nil, fmt.Errorf("lpstat -a: line %d: want \"NAME accepting requests ...\", got %q", n, line)
		}
		rest := strings.Join(f[1:], " ")
		switch {
		case strings.HasPrefix(rest, "accepting requests"):
			accepting[f[0]] = true
		case strings.HasPrefix(rest, "not accepting requests"):
			accepting[f[0]] = false
		default:
			return nil, nil, fmt.Errorf("lpstat -a: line %d: queue %s: unknown state %q", n, f[0], rest)
		}
		last = f[0]
	}
	return accepting, reasons, sc.Err()
}

// MergeAccepting fills in Accepting (and a rejecting queue's reason) from
// lpstat -a. A queue lpstat -a does not mention is taken to be accepting:
// the two commands run one after the other and a queue may come and go.
func MergeAccepting(qs []Queue, accepting map[string]bool, reasons map[string]string) {
	for i := range qs {
		a, ok := accepting[qs[i].Name]
		qs[i].Accepting = a || !ok
		if !qs[i].Accepting && qs[i].Enabled {
			qs[i].Reason = reasons[qs[i].Name]
		}
	}
}

// ParseJobs parses `lpstat -o` (unfinished jobs), one per line:
//
//	testq-1                 root              1024   Mon Nov 23 12:04:05 2026
//
// With -l, indented detail lines follow each job; they are skipped. Dates
// are read in loc; a date that does not parse leaves Submitted zero.
func ParseJobs(out string, loc *time.Location) ([]Job, error) {
	var jobs []Job
	sc := bufio.NewScanner(strings.NewReader(out))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \r")
		if strings.TrimSpace(line) == "" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			return nil, fmt.Errorf("lpstat -o: line %d: want \"QUEUE-ID USER SIZE DATE\", got %q", n, line)
		}
		q, ok := JobQueue(f[0])
		if !ok {
			return nil, fmt.Errorf("lpstat -o: line %d: job id %q is not QUEUE-NUMBER", n, f[0])
		}
		size, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("lpstat -o: line %d: job %s: size %q is not a number", n, f[0], f[2])
		}
		j := Job{ID: f[0], Queue: q, User: f[1], Size: size}
		if t, ok := ParseTime(strings.Join(f[3:], " "), loc); ok {
			j.Submitted = t
		}
		jobs = append(jobs, j)
	}
	return jobs, sc.Err()
}

// JobQueue splits a CUPS job id "queue-N" (queue names may contain dashes,
// job numbers never do) and returns the queue.
func JobQueue(id string) (string, bool) {
	i := strings.LastIndexByte(id, '-')
	if i <= 0 || i == len(id)-1 {
		return "", false
	}
	if _, err := strconv.ParseUint(id[i+1:], 10, 32); err != nil {
		return "", false
	}
	return id[:i], true
}

// ValidName reports whether s is safe to hand a CUPS command as a queue or
// job name: what CUPS allows in a printer name (printable, no space, slash,
// backslash, '#' or quotes, at most 127 bytes), and no leading dash so it
// can never be read as an option.
func ValidName(s string) bool {
	if s == "" || len(s) > 127 || s[0] == '-' {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || strings.ContainsRune(`/\#'"`, r) {
			return false
		}
	}
	return true
}

func joinReason(have, line string) string {
	line = strings.TrimSpace(line)
	if have == "" {
		return line
	}
	return have + "; " + line
}

func FirstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// Env returns base without locale settings and CUPS_SERVER, with LANG=C and
// LC_ALL=C (so output and dates parse) and CUPS_SERVER=server when server
// is set: the environment to run lpstat and the other CUPS tools in.
func Env(base []string, server string) []string {
	var env []string
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if k == "LANG" || k == "LANGUAGE" || strings.HasPrefix(k, "LC_") || k == "CUPS_SERVER" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "LANG=C", "LC_ALL=C")
	if server != "" {
		env = append(env, "CUPS_SERVER="+server)
	}
	return env
}

// NoDestinations reports whether lpstat failed (its stderr) only because
// there are no queues at all.
func NoDestinations(stderr string) bool {
	return strings.Contains(stderr, "No destinations added")
}
