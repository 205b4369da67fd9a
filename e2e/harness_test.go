// Package e2e drives the real binaries (relay, agents, CLI) as a user would:
// processes on loopback, random ports, data in t.TempDir().
package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// binDir holds the binaries built once for the whole package.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "patchbay-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if os.Getenv("PATCHBAY_E2E_NORACE") == "" {
		args = append(args, "-race") // the processes under test run with the race detector too
	}
	args = append(args, "../cmd/patchbay-server", "../cmd/patchbay-agent", "../cmd/patchbay")
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build binaries: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	// Plugins: the testplugin at two versions (for downgrade and untrusted-key
	// tests), and the real sysinfo and script plugins.
	pdir := filepath.Join(dir, "plugins")
	builds := [][]string{
		{"build", "-o", pdir + string(filepath.Separator), "../plugins/sdk/testplugin", "../plugins/sysinfo", "../plugins/script"},
		{"build", "-ldflags", "-X main.version=1.1.0", "-o", filepath.Join(pdir, "testplugin-1.1.0"), "../plugins/sdk/testplugin"},
	}
	for _, b := range builds {
		if out, err := exec.Command("go", b...).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build plugins: %v\n%s", err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	sharedPG.Close() // the tier tests' PostgreSQL, if one started
	os.RemoveAll(dir)
	os.Exit(code)
}

func bin(name string) string { return filepath.Join(binDir, name) }

// logBuffer collects a process's output for failure reports.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Count counts lines containing s.
func (b *logBuffer) Count(s string) int {
	n := 0
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// proc is a started process that the test owns.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *logBuffer
	done chan struct{}
}

func startProc(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	announce(t)
	p := &proc{name: name, log: &logBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- %s output (last 4 KB) ---\n%s", name, tail(p.log.String(), 4096))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (p *proc) signal(sig syscall.Signal) { p.cmd.Process.Signal(sig) }

func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGCONT) // a stopped process cannot die
	p.cmd.Process.Kill()
	<-p.done
}

// stop sends SIGTERM and waits up to 10 s for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not stop within 10s of SIGTERM", p.name)
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Relay is a patchbay-server process.
type Relay struct {
	Dir, Addr, URL, FP string
	Heartbeat          string
	Args               []string // more serve flags, on every (re)start
	proc               *proc
	t                  *testing.T
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// StartRelay starts a relay on a random loopback port with a 1 s heartbeat.
func StartRelay(t *testing.T) *Relay {
	t.Helper()
	return StartRelayArgs(t)
}

// StartRelayArgs starts a relay like StartRelay, with more serve flags.
func StartRelayArgs(t *testing.T, args ...string) *Relay {
	t.Helper()
	r := &Relay{Dir: filepath.Join(t.TempDir(), "relay"), Addr: freePort(t), Heartbeat: "1s", Args: args, t: t}
	r.URL = "https://" + r.Addr
	r.Start()
	out := run(t, nil, bin("patchbay-server"), "fingerprint", "--data", r.Dir)
	r.FP = strings.TrimSpace(out)
	return r
}

// Start (re)starts the relay process on its address and data directory and
// waits until it answers.
func (r *Relay) Start() {
	t := r.t
	t.Helper()
	r.proc = startProc(t, "relay", nil, append([]string{bin("patchbay-server"), "serve", "--data", r.Dir, "--listen", r.Addr,
		"--heartbeat", r.Heartbeat, "--log-level", "debug", "--log-format", "json"}, r.Args...)...)
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	waitFor(t, 20*time.Second, "relay to answer /healthz", func() bool {
		if r.proc.exited() {
			t.Fatalf("relay exited:\n%s", r.proc.log.String())
		}
		resp, err := client.Get(r.URL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// Log returns the relay's output so far.
func (r *Relay) Log() *logBuffer { return r.proc.log }

// AdminToken mints an admin API token the way an operator does.
func (r *Relay) AdminToken() string {
	return strings.TrimSpace(run(r.t, nil, bin("patchbay-server"), "admin-token", "--data", r.Dir))
}

// CLI is the patchbay command with its own config file.
type CLI struct {
	t   *testing.T
	env []string
}

// Login logs a new CLI in with token.
func (r *Relay) Login(token string) *CLI {
	c := &CLI{t: r.t, env: []string{"PATCHBAY_CONFIG=" + filepath.Join(r.t.TempDir(), "cli.json")}}
	c.Run("login", "--server", r.URL, "--token", token, "--ca-fingerprint", r.FP)
	return c
}

// Run runs patchbay with args and returns stdout; it fails the test on error.
func (c *CLI) Run(args ...string) string {
	c.t.Helper()
	return run(c.t, c.env, bin("patchbay"), args...)
}

// Try runs patchbay and returns stdout, stderr and the error.
func (c *CLI) Try(args ...string) (string, string, error) {
	return try(c.env, bin("patchbay"), args...)
}

// Agents lists agents as JSON.
func (c *CLI) Agents(target string) []apiv1.Agent {
	c.t.Helper()
	args := []string{"agents", "list", "-o", "json"}
	if target != "" {
		args = append(args, "--target", target)
	}
	var out []apiv1.Agent
	if err := json.Unmarshal([]byte(c.Run(args...)), &out); err != nil {
		c.t.Fatalf("agents list -o json: %v", err)
	}
	return out
}

// Online reports whether the agent with id is online.
func (c *CLI) Online(id string) bool {
	for _, a := range c.Agents("id=" + id) {
		return a.Online
	}
	return false
}

// Token creates an enrollment token.
func (c *CLI) Token(args ...string) string {
	c.t.Helper()
	out := c.Run(append([]string{"tokens", "create"}, args...)...)
	return strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
}

// Agent is an enrolled patchbay-agent.
type Agent struct {
	Dir, ID string
	proc    *proc
	t       *testing.T
}

// Enroll enrolls a new agent with token; extra are more enroll flags.
func (r *Relay) Enroll(token string, extra ...string) *Agent {
	t := r.t
	t.Helper()
	a := &Agent{Dir: filepath.Join(t.TempDir(), "agent"), t: t}
	args := append([]string{"enroll", "--server", r.URL, "--token", token, "--ca-fingerprint", r.FP, "--data", a.Dir}, extra...)
	run(t, nil, bin("patchbay-agent"), args...)
	var cfg struct {
		AgentID string `json:"agent_id"`
	}
	raw, err := os.ReadFile(filepath.Join(a.Dir, "agent.json"))
	if err != nil {
		t.Fatalf("read enrolled identity: %v", err)
	}
	if err := json.Unmarshal(raw, &cfg); err != nil || cfg.AgentID == "" {
		t.Fatalf("agent.json has no agent_id: %v %s", err, raw)
	}
	a.ID = cfg.AgentID
	return a
}

// Start runs the agent.
func (a *Agent) Start() *Agent {
	a.proc = startProc(a.t, "agent "+a.ID, nil, bin("patchbay-agent"), "run", "--data", a.Dir, "--log-level", "debug", "--log-format", "json")
	return a
}

func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, errOut, err := try(env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", filepath.Base(name), strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func try(env []string, name string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// waitFor polls cond every 50 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", timeout, what)
	return 0
}
