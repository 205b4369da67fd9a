package consent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"
)

// execBackend asks an organisation's own program. The program gets one JSON
// object (execMessage) on stdin; for a request, exit status 0 approves and
// anything else denies. If the first line of its stdout is "by=NAME", NAME is
// who decided. It runs in its own process group, killed as a whole at the
// deadline.
//
// A restart question (kind "reboot") is answered by a line
// "choice=now", "choice=1h" or "choice=tonight" on stdout with exit status
// 0; anything else is no choice (tonight). Event "reboot" tells the user
// (text) that the machine restarts now (policy force); its exit status is
// ignored.
//
// A session request for the screen (capability desktop) carries "desktop":
// "control" when the person may choose full control or view only: exit
// status 0 allows full control, and 0 with a stdout line "choice=view-only"
// allows view only; "view-only" when the policy allows view only: exit
// status 0 allows view only. Any other "choice=" value denies the request.
type execBackend struct {
	path string
	user string // the agent's OS user, By when the program names nobody
}

// newExecBackend checks that path is a program only its owner may change.
func newExecBackend(path, user string) (*execBackend, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("exec consent backend: %w", err)
	}
	if !st.Mode().IsRegular() || (runtime.GOOS != "windows" && st.Mode().Perm()&0o111 == 0) {
		return nil, fmt.Errorf("exec consent backend: %s is not an executable file", path)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("exec consent backend: %s is writable by group or others, who could make it approve anything; chmod go-w it", path)
	}
	return &execBackend{path: path, user: user}, nil
}

// execMessage is what the program reads on stdin.
type execMessage struct {
	Event          string            `json:"event"`             // "request", "started", "ended" or "reboot"
	Kind           string            `json:"kind,omitempty"`    // request: session, fix or reboot
	Desktop        string            `json:"desktop,omitempty"` // session request for the screen: control or view-only
	Fix            string            `json:"fix,omitempty"`     // request of kind fix or reboot: the fix
	Text           string            `json:"text,omitempty"`    // reboot: what the user is told
	SessionID      string            `json:"session_id"`
	AgentID        string            `json:"agent_id"`
	Hostname       string            `json:"hostname"`
	Technician     string            `json:"technician"`
	Reason         string            `json:"reason"`
	Capabilities   []string          `json:"capabilities"`
	CapabilityText map[string]string `json:"capability_text"`
	Expires        string            `json:"expires,omitempty"`    // request: the deadline, RFC 3339
	Started        string            `json:"started,omitempty"`    // started, ended: when it started
	EndReason      string            `json:"end_reason,omitempty"` // ended: why
}

func (e *execBackend) ask(ctx context.Context, req Request) answer {
	caps := append([]string{}, req.Capabilities...)
	in, err := json.Marshal(execMessage{
		Event: "request", Kind: req.kind(), Fix: req.Fix, SessionID: req.SessionID, AgentID: req.AgentID, Hostname: req.Hostname,
		Technician: req.Technician, Reason: req.Reason, Capabilities: caps, CapabilityText: capTexts(caps),
		Expires: req.Deadline.UTC().Format(time.RFC3339), Desktop: req.desktop,
	})
	if err != nil {
		return answer{failed: true, message: "encode consent request: " + err.Error()}
	}
	res := runProgram(ctx, e.path, nil, nil, in)
	if res.err != nil {
		return answer{failed: true, message: fmt.Sprintf("consent program %s could not run: %v", e.path, res.err)}
	}
	by := e.user
	if name, ok := strings.CutPrefix(firstLine(res.stdout), "by="); ok {
		if name = cleanText(name, 64); name != "" {
			by = name
		}
	}
	if req.kind() == KindReboot {
		if choice := stdoutChoice(res.stdout); res.exit == 0 && choice != "" {
			return answer{approved: true, choice: choice, by: by, message: "restart " + choice + " chosen through " + e.path}
		}
		return answer{by: by, message: fmt.Sprintf("no restart choice from %s (%s)", e.path, res.state)}
	}
	if res.exit == 0 {
		a := answer{approved: true, by: by, message: "approved by " + e.path}
		if req.kind() == KindSession {
			a.choice = stdoutValue(res.stdout, "choice=")
		}
		if a.choice == "" && req.desktop == DesktopViewOnly {
			a.choice = ChoiceViewOnly
		}
		if a.choice == ChoiceViewOnly && req.desktop != "" {
			a.message = "approved view only by " + e.path
		}
		return a // decide refuses a choice that does not fit the request
	}
	msg := truncate(cleanText(firstLine(res.stderr), maxReason), maxMessage)
	if msg == "" {
		msg = fmt.Sprintf("denied by %s (%s)", e.path, res.state)
	}
	return answer{by: by, message: msg}
}

func (e *execBackend) notify(ctx context.Context, ev event) error {
	caps := append([]string{}, ev.live.Capabilities...)
	msg := execMessage{
		Event: ev.kind, SessionID: ev.live.ID, AgentID: ev.live.agentID, Hostname: ev.live.hostname,
		Technician: ev.live.Technician, Reason: ev.live.Reason, Capabilities: caps, CapabilityText: capTexts(caps),
		Started: ev.live.Started.UTC().Format(time.RFC3339), EndReason: ev.endReason, Text: ev.text,
	}
	if ev.kind == "reboot" {
		msg.Started = ""
	}
	in, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	res := runProgram(ctx, e.path, nil, nil, in)
	if res.err != nil {
		return fmt.Errorf("consent program %s: %w", e.path, res.err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("consent program %s: killed after %s on a %q event", e.path, notifyTimeout, ev.kind)
	}
	return nil // the exit status of an event is ignored
}

// stdoutChoice returns the restart choice of a "choice=..." line of out, ""
// if there is none.
func stdoutChoice(out []byte) string {
	for line := range strings.Lines(string(out)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "choice="); ok && ValidChoice(v) {
			return v
		}
	}
	return ""
}

// stdoutValue returns the value of the first line of out that starts with
// prefix (e.g. "choice="), cleaned; "" if there is none.
func stdoutValue(out []byte, prefix string) string {
	for line := range strings.Lines(string(out)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			return cleanText(v, 32)
		}
	}
	return ""
}

// progResult is how a program ended.
type progResult struct {
	exit           int    // exit code; -1 if a signal ended it
	state          string // "exit 1", "signal: killed"
	stdout, stderr []byte
	err            error // it could not be started
}

// maxProgramOutput bounds what is kept of a program's stdout and stderr.
const maxProgramOutput = 64 << 10

// runProgram runs path (no shell) with stdin, in its own process group, and
// waits for it. When ctx ends the whole group is killed. Once the program
// has exited, whatever it left running in its group is killed too, and its
// output pipes are given up after two seconds.
func runProgram(ctx context.Context, path string, args, env []string, stdin []byte) progResult {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	cmd.Stdin = bytes.NewReader(stdin)
	stdout, stderr := &capBuffer{max: maxProgramOutput}, &capBuffer{max: maxProgramOutput}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	setProcessGroup(cmd)
	cmd.Cancel = func() error {
		killProcessGroup(cmd.Process.Pid)
		return nil
	}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return progResult{exit: -1, err: err}
	}
	err := cmd.Wait()
	killProcessGroup(cmd.Process.Pid) // children it left behind
	res := progResult{exit: cmd.ProcessState.ExitCode(), stdout: stdout.bytes(), stderr: stderr.bytes()}
	if res.exit >= 0 {
		res.state = fmt.Sprintf("exit %d", res.exit)
	} else {
		res.state = cmd.ProcessState.String()
	}
	// Wait may also report exec.ErrWaitDelay (a child held the output pipes
	// open after the program exited): the exit status is still its answer.
	_ = err
	if ctx.Err() != nil && res.exit == 0 {
		res.exit, res.state = -1, "killed at the deadline"
	}
	return res
}

// capBuffer keeps the first max bytes written to it and discards the rest
// (without failing the writer).
type capBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (c *capBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (c *capBuffer) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.b...)
}
