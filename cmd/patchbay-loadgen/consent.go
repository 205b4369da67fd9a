//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/patchbay/patchbay/agent/identity"
	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/wire"
)

// The consent part of the bench (issue 13): a real agent running as root
// with the helper backend, its helper running as a local user in that
// user's X display (Xvfb), and the technician in this process. It measures
// how soon a technician's request shows as a window on the user's display,
// against zenity started directly, and what the helper costs at rest,
// against a minimal Go program.

// consentBench is one run of the consent part: its processes and results.
type consentBench struct {
	o      benchOptions
	r      *consentResults
	dir    string // cache/consent, recreated on every run
	tmp    string // world-readable: the helper binary, its socket, the floor program
	logDir string

	listen, server, fp string
	relay, agent       *child
	health             *health
	agentID            string
	tech               *technician

	user         *user.User
	uid, gid     uint32
	xvfb         *exec.Cmd
	display      string
	xev          *xevWatch
	helper       *exec.Cmd // runuser ... patchbay-agent helper
	helperExited chan struct{}
	helperOK     chan struct{}
	helperPID    int
	zenity       string // its path
}

func (r *consentResults) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// runConsent measures the consent prompt and the helper and returns what it
// measured; an error means the part could not be set up at all.
func runConsent(ctx context.Context, o benchOptions, logDir string) (*consentResults, error) {
	if err := checkTools(consentTools); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("consent: run as root: the bench creates a local user, and runs the agent as root and the helper as that user")
	}
	for _, bin := range []string{o.serverBin, o.agentBin} {
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("consent: %w (run make build)", err)
		}
	}
	c := &consentBench{
		o:      o,
		r:      &consentResults{started: time.Now().UTC(), opts: o, machine: machine()},
		dir:    filepath.Join(o.cacheDir, "consent"),
		logDir: logDir,
	}
	defer c.cleanup()
	if err := c.setUp(ctx); err != nil {
		return nil, fmt.Errorf("consent: %w", err)
	}
	c.r.alsoRan = otherWork()
	if err := c.measureIdle(ctx); err != nil {
		c.r.note("The helper footprint measurement failed: %v.", err)
		step("  helper footprint failed: %v", err)
	}
	if err := c.measurePrompts(ctx); err != nil {
		c.r.note("The prompt measurement failed: %v.", err)
		step("  prompt latency failed: %v", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.helperPID > 0 && ctx.Err() == nil {
		step("consent: the helper idle again for %v after the prompts", o.consentSettle)
		if sleepCtx(ctx, o.consentSettle) {
			c.r.helperAfter, _ = memFootprint(c.helperPID)
		}
	}
	if s := otherWork(); s != "" && c.r.alsoRan == "" {
		c.r.alsoRan = s
	}
	c.tearDown()
	return c.r, nil
}

// setUp starts the user's display, the relay, the agent and the helper.
func (c *consentBench) setUp(ctx context.Context) error {
	for _, d := range []string{c.dir} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	var err error
	if c.tmp, err = os.MkdirTemp("", "patchbay-bench-consent"); err != nil {
		return err
	}
	if err := os.Chmod(c.tmp, 0o755); err != nil { // the user runs the helper from here
		return err
	}
	if c.zenity, err = exec.LookPath("zenity"); err != nil {
		return err
	}
	if err := c.createUser(); err != nil {
		return err
	}
	if err := c.startDisplay(ctx); err != nil {
		return err
	}
	step("consent: user %s, display %s", c.user.Username, c.display)
	ver := exec.Command(c.zenity, "--version")
	ver.Env = append(os.Environ(), "DISPLAY="+c.display)
	if out, err := ver.Output(); err == nil {
		c.r.zenity = "zenity " + strings.TrimSpace(string(out))
	}
	if c.xev, err = startXev(c.display, filepath.Join(c.logDir, "consent-xev.log")); err != nil {
		return err
	}

	port, err := freePort()
	if err != nil {
		return err
	}
	c.listen = "127.0.0.1:" + strconv.Itoa(port)
	c.server = "https://" + c.listen
	dataDir := filepath.Join(c.dir, "relay-data")
	relayLog := filepath.Join(c.logDir, "consent-relay.log")
	if c.relay, err = startChild("relay (consent)", c.o.serverBin, relayArgs(dataDir, c.listen, c.o.heartbeat), relayLog, syscall.SIGKILL, nil); err != nil {
		return err
	}
	if err := waitRelay(ctx, c.relay, dataDir, c.server, relayLog, &c.fp, &c.health); err != nil {
		return err
	}
	admin, err := adminClient(ctx, c.o.serverBin, dataDir, c.server, c.fp, "loadgen-consent", "2h")
	if err != nil {
		return err
	}
	defer admin.Close()
	tok, err := admin.CreateAPIToken(ctx, apiv1.APITokenRequest{Role: apiv1.RoleTechnician, Name: technicianName, TTL: "2h"})
	if err != nil {
		return err
	}
	if c.tech, err = newTechnician(ctx, c.server, tok.Token, c.fp, filepath.Join(c.dir, "technician")); err != nil {
		return err
	}
	one := 1
	etok, err := admin.CreateEnrollToken(ctx, apiv1.EnrollTokenRequest{Uses: &one, TTL: "1h", Tags: map[string]string{"loadgen": "consent"}})
	if err != nil {
		return err
	}
	agentDir := filepath.Join(c.dir, "agent")
	if out, err := exec.CommandContext(ctx, c.o.agentBin, "enroll", "--server", c.server, "--token", etok.Token,
		"--ca-fingerprint", c.fp, "--data", agentDir, "--hostname", "bench-consent").CombinedOutput(); err != nil {
		return fmt.Errorf("patchbay-agent enroll: %w: %s", err, clipText(strings.TrimSpace(string(out)), 300))
	}
	id, err := identity.Load(agentDir)
	if err != nil {
		return err
	}
	c.agentID = id.AgentID
	socket := filepath.Join(c.tmp, "helper.sock")
	args := []string{"run", "--data", agentDir, "--log-level", "warn", "--log-format", "json",
		"--consent-mode", "prompt", "--consent-backend", "helper", "--consent-helper-socket", socket,
		"--consent-ask", "all", "--consent-timeout", "30s"}
	if c.agent, err = startChild("agent (consent)", c.o.agentBin, args, filepath.Join(c.logDir, "consent-agent.log"), syscall.SIGTERM, nil); err != nil {
		return err
	}
	if _, reached, err := c.health.waitOnline(ctx, time.Now(), 1, 100*time.Millisecond, 30*time.Second, c.check); err != nil {
		return err
	} else if reached == 0 {
		return fmt.Errorf("the agent was not online within 30 s; see %s", c.logDir)
	}
	return c.startHelper(ctx, socket)
}

// check reports a relay or agent process that exited.
func (c *consentBench) check() error {
	if !c.relay.alive() {
		return fmt.Errorf("relay exited (%v)", c.relay.err)
	}
	if c.agent != nil && !c.agent.alive() {
		return fmt.Errorf("agent exited early (%v); see its log", c.agent.err)
	}
	return nil
}

// createUser adds an unprivileged local account for the display and the helper.
func (c *consentBench) createUser() error {
	name := fmt.Sprintf("pbbench%06d", rand.IntN(1000000))
	if out, err := exec.Command("useradd", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		return fmt.Errorf("useradd: %w: %s", err, strings.TrimSpace(string(out)))
	}
	u, err := user.Lookup(name)
	if err != nil {
		exec.Command("userdel", name).Run()
		return err
	}
	c.user = u
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	c.uid, c.gid = uint32(uid), uint32(gid)
	return nil
}

// startDisplay runs Xvfb as the user (so the display is theirs) and waits
// for it to say which display it took.
func (c *consentBench) startDisplay(ctx context.Context) error {
	// X servers put their sockets here; one created by the user's Xvfb
	// would get the wrong owner and mode.
	if err := os.MkdirAll("/tmp/.X11-unix", 0o1777); err != nil {
		return err
	}
	os.Chmod("/tmp/.X11-unix", 0o1777)
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	logf, err := os.Create(filepath.Join(c.logDir, "consent-xvfb.log"))
	if err != nil {
		w.Close()
		return err
	}
	defer logf.Close()
	cmd := exec.Command("runuser", "-u", c.user.Username, "--", "Xvfb", "-displayfd", "3", "-screen", "0", "1280x800x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stdout, cmd.Stderr = logf, logf
	ownGroup(cmd)
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("start Xvfb: %w", err)
	}
	c.xvfb = cmd
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	var n string
	select {
	case n = <-line:
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	if _, err := strconv.Atoi(n); err != nil {
		return fmt.Errorf("the X server (Xvfb) did not report its display (%q); see %s", n, logf.Name())
	}
	c.display = ":" + n
	return nil
}

// startHelper copies the agent binary where the user can run it, starts
// `patchbay-agent helper` as the user in the display (as the e2e test and
// an XDG autostart entry do), waits until it is connected and finds its PID.
func (c *consentBench) startHelper(ctx context.Context, socket string) error {
	helperBin := filepath.Join(c.tmp, "patchbay-agent")
	if err := copyFile(c.o.agentBin, helperBin, 0o755); err != nil {
		return err
	}
	if st, err := os.Stat(helperBin); err == nil {
		c.r.helperBinMiB = float64(st.Size()) / (1 << 20)
	}
	logf, err := os.Create(filepath.Join(c.logDir, "consent-helper.log"))
	if err != nil {
		return err
	}
	c.helperOK = make(chan struct{})
	watch := &lineWatch{w: logf, want: "connected to the agent", seen: c.helperOK}
	cmd := exec.Command("runuser", "-u", c.user.Username, "--", "env", "-i", "PATH=/usr/bin:/bin", "DISPLAY="+c.display, "HOME=/tmp",
		helperBin, "helper", "--socket", socket, "--session", "x11:"+c.display, "--log-format", "json", "--log-level", "info")
	cmd.Stdout, cmd.Stderr = watch, watch
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start the helper: %w", err)
	}
	c.helper = cmd
	c.helperExited = make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(c.helperExited) }()
	select {
	case <-c.helperOK:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("the helper did not connect to the agent within 30 s; see %s", logf.Name())
	case <-ctx.Done():
		return ctx.Err()
	}
	pid, err := findDescendant(cmd.Process.Pid, helperBin)
	if err != nil {
		return fmt.Errorf("the helper's own process: %w", err)
	}
	c.helperPID = pid
	step("consent: helper connected (PID %d, under runuser %d)", pid, cmd.Process.Pid)
	return nil
}

// measureIdle reads the idle helper's memory after --consent-settle and its
// CPU over --consent-idle-window, with a minimal Go program on a unix socket
// measured over the same time as the floor.
func (c *consentBench) measureIdle(ctx context.Context) error {
	floor, stopFloor, err := c.startFloorProgram(ctx)
	if err != nil {
		c.r.note("The floor program could not run: %v.", err)
		step("  floor program: %v", err)
	}
	defer stopFloor()
	step("consent: helper idle for %v, then CPU over %v", c.o.consentSettle, c.o.consentIdle)
	if !sleepCtx(ctx, c.o.consentSettle) {
		return ctx.Err()
	}
	hf, err := memFootprint(c.helperPID)
	if err != nil {
		return err
	}
	// Where the memory is, for whoever reduces it.
	if raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", c.helperPID)); err == nil {
		os.WriteFile(filepath.Join(c.logDir, "consent-helper-smaps.txt"), raw, 0o600)
	}
	var ff footprint
	if floor > 0 {
		ff, _ = memFootprint(floor)
	}
	h0, err := procCPU(c.helperPID)
	if err != nil {
		return err
	}
	f0, _ := procCPU(floor)
	m0, t0 := machineBusy(), time.Now()
	if !sleepCtx(ctx, c.o.consentIdle) {
		return ctx.Err()
	}
	h1, err := procCPU(c.helperPID)
	if err != nil {
		return fmt.Errorf("the helper exited during the idle window: %w", err)
	}
	f1, _ := procCPU(floor)
	hf.cpu, hf.window = h1-h0, time.Since(t0)
	ff.cpu, ff.window = f1-f0, hf.window
	c.r.idleMachine = cpuUse{machine: machineBusy() - m0, wall: hf.window}
	c.r.helper, c.r.floorProc = hf, ff
	step("  helper RSS %s (anon %s, file %s), CPU %.2f s; floor RSS %s", mibOf(hf.rss), mibOf(hf.anon), mibOf(hf.file), hf.cpu.Seconds(), mibOf(ff.rss))
	return nil
}

// floorSource is the floor of the helper's footprint: a Go program that
// connects to a unix socket and blocks reading it.
const floorSource = `package main

import (
	"net"
	"os"
)

func main() {
	c, err := net.Dial("unix", os.Args[1])
	if err != nil {
		os.Exit(1)
	}
	var b [1]byte
	c.Read(b[:])
}
`

// startFloorProgram builds and starts the floor program as the user,
// connected to a socket of the bench, and returns its PID once connected.
func (c *consentBench) startFloorProgram(ctx context.Context) (int, func(), error) {
	nop := func() {}
	src := filepath.Join(c.tmp, "floor")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return 0, nop, err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(floorSource), 0o644); err != nil {
		return 0, nop, err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module floor\n\ngo 1.26\n"), 0o644); err != nil {
		return 0, nop, err
	}
	bin := filepath.Join(src, "floor")
	build := exec.CommandContext(ctx, c.o.goBin, "build", "-trimpath", "-o", bin, ".")
	build.Dir = src
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		return 0, nop, fmt.Errorf("go build: %w: %s", err, clipText(strings.TrimSpace(string(out)), 300))
	}
	sock := filepath.Join(c.tmp, "floor.sock")
	ln, err := listenUnix(sock)
	if err != nil {
		return 0, nop, err
	}
	os.Chmod(sock, 0o777)
	cmd := exec.Command(bin, sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: c.uid, Gid: c.gid, Groups: []uint32{}}, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		ln.Close()
		return 0, nop, err
	}
	stop := func() {
		cmd.Process.Kill()
		cmd.Wait()
		ln.Close()
	}
	accepted := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			go func() { <-ctx.Done(); conn.Close() }()
		}
		accepted <- err
	}()
	select {
	case err := <-accepted:
		if err != nil {
			stop()
			return 0, nop, err
		}
	case <-time.After(10 * time.Second):
		stop()
		return 0, nop, errors.New("the floor program did not connect within 10 s")
	}
	return cmd.Process.Pid, stop, nil
}

// measurePrompts times --consent-prompts prompts and as many floor dialogs,
// interleaved (floor, prompt, floor, ...), after one cold run of each.
func (c *consentBench) measurePrompts(ctx context.Context) error {
	n := c.o.consentPrompts
	step("consent: %d prompts through the helper and %d zenity dialogs started directly, interleaved, after one cold run of each", n, n)
	fail := func(what string, err error) {
		if c.r.firstErr == "" {
			c.r.firstErr = what + ": " + err.Error()
		}
	}
	var err error
	if c.r.coldFloor, err = c.floorOnce(ctx); err != nil {
		return fmt.Errorf("first floor dialog: %w", err)
	}
	if c.r.coldPrompt, _, err = c.promptOnce(ctx, 0); err != nil {
		return fmt.Errorf("first prompt: %w", err)
	}
	step("  cold: floor %s, prompt %s", ms(c.r.coldFloor), ms(c.r.coldPrompt))
	u0 := c.usage()
	for i := 1; i <= n && ctx.Err() == nil; i++ {
		if d, err := c.floorOnce(ctx); err != nil {
			c.r.floorFailed++
			fail("floor dialog", err)
		} else {
			c.r.floor = append(c.r.floor, d)
		}
		d, told, err := c.promptOnce(ctx, i)
		if err != nil {
			c.r.promptFailed++
			fail("prompt", err)
			step("  prompt %d: %v", i, err)
			continue
		}
		c.r.prompts = append(c.r.prompts, d)
		c.r.told = append(c.r.told, told)
		if i%10 == 0 {
			step("  %d/%d: prompt p50 %s p99 %s; floor p50 %s", i, n, ms(pct(c.r.prompts, 50)), ms(pct(c.r.prompts, 99)), ms(pct(c.r.floor, 50)))
		}
	}
	c.r.promptUse = c.usage().sub(u0)
	if c.r.promptFailed+c.r.floorFailed > 0 {
		c.r.note("%d prompts and %d floor dialogs failed; the first: %s.", c.r.promptFailed, c.r.floorFailed, c.r.firstErr)
	}
	return ctx.Err()
}

// usage is the CPU used so far by the relay, the agent and this process.
func (c *consentBench) usage() cpuUse {
	var u cpuUse
	u.relay, _ = procCPU(c.relay.pid())
	u.agents, _ = procCPU(c.agent.pid())
	u.loadgen, _ = procCPU(os.Getpid())
	u.machine = machineBusy()
	u.at = time.Now()
	return u
}

// promptOnce asks for a session, times until the prompt is mapped, clicks
// Deny and waits until the technician is told. It returns the time to the
// prompt and from the click to the technician's answer.
func (c *consentBench) promptOnce(ctx context.Context, i int) (shown, told time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	rctx, withdraw := context.WithCancel(ctx)
	defer withdraw()
	ended := make(chan struct{})
	var reqErr error
	var endedAt time.Time
	start := time.Now()
	go func() {
		defer close(ended)
		ws, _, err := c.tech.cl.OpenSession(rctx, client.SessionRequest{Agent: c.agentID,
			Reason: fmt.Sprintf("make bench: consent prompt %d", i), Capabilities: []string{wire.CapShell}})
		endedAt = time.Now()
		if ws != nil {
			ws.Close()
		}
		reqErr = err
	}()
	win, at, err := c.xev.waitMap(ctx, start, promptTitle, ended)
	if err != nil {
		<-ended
		if reqErr != nil {
			return 0, 0, fmt.Errorf("%w (the request: %v)", err, reqErr)
		}
		return 0, 0, err
	}
	shown = at.Sub(start)
	gone, err := c.deny(ctx, win)
	if err != nil {
		withdraw()                               // the technician leaves; the agent takes the prompt down
		c.xev.waitGone(ctx, win, 10*time.Second) // best effort: the prompt failed anyway
		<-ended
		return 0, 0, err
	}
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		return 0, 0, errors.New("the technician's request did not end within 10 s of Deny")
	}
	var refused *client.RefusedError
	if !errors.As(reqErr, &refused) || refused.Status.State != "denied" {
		return 0, 0, fmt.Errorf("after Deny the request returned %v, want denied", reqErr)
	}
	return shown, endedAt.Sub(gone), nil
}

// floorOnce starts zenity with the helper's arguments, as the user with the
// helper's environment, times until it is mapped and clicks Deny.
func (c *consentBench) floorOnce(ctx context.Context) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	text := "Technician " + technicianName + " asks for a remote session on bench-consent.\n\nReason: make bench: consent floor 0\n\n" +
		"They will be able to:\n  - open a shell\n\nSession 01234567-89ab-cdef-0123-456789abcdef.\n" +
		"If you do not answer within 30 s (by 12:00:00), the request is denied."
	cmd := exec.Command(c.zenity, "--question", "--title="+promptTitle, "--text="+text, "--no-markup",
		"--ok-label=Allow", "--cancel-label=Deny", "--default-cancel", "--width=480", "--timeout=30")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "DISPLAY=" + c.display, "HOME=/tmp"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: c.uid, Gid: c.gid, Groups: []uint32{}}, Pdeathsig: syscall.SIGKILL}
	ended := make(chan struct{})
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	go func() { cmd.Wait(); close(ended) }()
	defer func() {
		cmd.Process.Kill()
		<-ended
	}()
	win, at, err := c.xev.waitMap(ctx, start, promptTitle, ended)
	if err != nil {
		return 0, err
	}
	if _, err := c.deny(ctx, win); err != nil {
		return 0, err
	}
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		return 0, errors.New("zenity did not exit within 10 s of Deny")
	}
	return at.Sub(start), nil
}

// deny clicks Deny on the prompt window win (left of Allow, as the e2e
// test does) until the window goes away, and returns when it was unmapped.
func (c *consentBench) deny(ctx context.Context, win string) (time.Time, error) {
	var clicked time.Time
	for attempt := 0; attempt < 3; attempt++ {
		x, y, w, h, err := c.geometry(win)
		if err != nil {
			return clicked, err
		}
		// No --sync: when the pointer is already there (every dialog is
		// centred alike) xdotool waits for a move that never comes. The X
		// server handles the move and the click in order anyway.
		if _, err := c.xdo("mousemove", strconv.Itoa(x+w-140), strconv.Itoa(y+h-25), "click", "1"); err != nil {
			return clicked, fmt.Errorf("xdotool click: %w", err)
		}
		if at, ok := c.xev.waitGone(ctx, win, 3*time.Second); ok {
			return at, nil
		}
	}
	return clicked, errors.New("three clicks on Deny did not close the dialog")
}

// geometry returns a window's position and size.
func (c *consentBench) geometry(win string) (x, y, w, h int, err error) {
	out, err := c.xdo("getwindowgeometry", "--shell", win)
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("xdotool getwindowgeometry: %w", err)
	}
	vals := map[string]int{}
	for _, l := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(l, "=")
		vals[k], _ = strconv.Atoi(v)
	}
	return vals["X"], vals["Y"], vals["WIDTH"], vals["HEIGHT"], nil
}

// xdo runs xdotool on the display.
func (c *consentBench) xdo(args ...string) (string, error) {
	return xdo(c.display, args...)
}

// tearDown stops everything, then scans the logs.
func (c *consentBench) tearDown() {
	c.cleanup()
	for _, name := range []string{"consent-relay.log", "consent-agent.log", "consent-helper.log"} {
		warn, errs, emfile, sample := scanLog(filepath.Join(c.logDir, name))
		c.r.logs = append(c.r.logs, logSummary{name: name, warn: warn, errors: errs, emfile: emfile, sample: sample})
	}
}

// cleanup ends whatever is still running and removes the user; it may be
// called twice.
func (c *consentBench) cleanup() {
	if c.helper != nil {
		killGroup(c.helper)
		<-c.helperExited // userdel refuses a user with processes
		c.helper = nil
	}
	if c.tech != nil {
		c.tech.Close()
		c.tech = nil
	}
	if c.agent != nil && c.agent.alive() && !c.agent.stop(10*time.Second) {
		c.r.note("The consent agent did not stop within 10 s of SIGTERM and was killed.")
	}
	if c.relay != nil && c.relay.alive() && !c.relay.stop(10*time.Second) {
		c.r.note("The consent relay did not stop within 10 s of SIGTERM and was killed.")
	}
	if c.xev != nil {
		c.xev.stop()
		c.xev = nil
	}
	if c.xvfb != nil {
		killGroup(c.xvfb)
		c.xvfb.Wait()
		c.xvfb = nil
	}
	if c.user != nil {
		if out, err := exec.Command("userdel", c.user.Username).CombinedOutput(); err != nil {
			c.r.note("userdel %s: %v: %s.", c.user.Username, err, strings.TrimSpace(string(out)))
		}
		c.user = nil
	}
	if c.tmp != "" {
		os.RemoveAll(c.tmp)
		c.tmp = ""
	}
}

// ownGroup starts cmd in a process group of its own (runuser leaves its
// child behind when killed), ended with the bench.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
}

// killGroup kills cmd's whole process group.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// lineWatch copies output to w and closes seen the first time want appears.
type lineWatch struct {
	mu   sync.Mutex
	w    io.Writer
	want string
	seen chan struct{}
	tail string
	done bool
}

func (l *lineWatch) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		s := l.tail + string(p)
		if strings.Contains(s, l.want) {
			l.done = true
			close(l.seen)
		}
		l.tail = s[max(0, len(s)-len(l.want)):]
	}
	return l.w.Write(p)
}

// findDescendant returns the PID of the process under root whose executable
// is exe (waiting up to 5 s for it to exec).
func findDescendant(root int, exe string) (int, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		parent := map[int]int{}
		ents, err := os.ReadDir("/proc")
		if err != nil {
			return 0, err
		}
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if pp, err := procPPID(pid); err == nil {
				parent[pid] = pp
			}
		}
		for pid := range parent {
			under := false
			for p, n := pid, 0; p > 1 && n < 16; p, n = parent[p], n+1 {
				if parent[p] == root {
					under = true
					break
				}
			}
			if !under {
				continue
			}
			if got, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && got == exe {
				return pid, nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no process running %s under PID %d", exe, root)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// procPPID returns a process's parent PID from /proc/PID/stat.
func procPPID(pid int) (int, error) {
	fs, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	if len(fs) < 2 {
		return 0, errors.New("unexpected /proc/PID/stat format")
	}
	return strconv.Atoi(fs[1])
}

// memFootprint reads a process's memory from /proc/PID/status: VmRSS,
// VmHWM, RssAnon, RssFile (with RssShmem) and Threads.
func memFootprint(pid int) (footprint, error) {
	var f footprint
	var err error
	if f.rss, err = procStatus(pid, "VmRSS"); err != nil {
		return f, err
	}
	f.hwm, _ = procStatus(pid, "VmHWM")
	f.threads, _ = procStatus(pid, "Threads")
	f.anon, _ = procStatus(pid, "RssAnon")
	f.file = f.rss - f.anon
	return f, nil
}

// otherWork names other heavy work running on the machine now (another
// engineer's `go test`), "" when there is none.
func otherWork() string {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return ""
	}
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		raw, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if len(args) >= 2 && filepath.Base(args[0]) == "go" && args[1] == "test" {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("`go test` (%d process(es), e.g. another engineer's `make test`)", n)
}

// sleepCtx waits d (a deliberate idle window) or until ctx ends; it
// reports whether the whole of d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// copyFile copies src to dst with mode.
func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}
