package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/patchbay/patchbay/client"
)

// measureRelay starts a relay and one agent whose desktop is display, runs
// `patchbay desktop AGENT --reason R --listen 127.0.0.1:PORT` as the
// technician, and counts frames through it.
func (d *desktopResults) measureRelay(ctx context.Context, o benchOptions, display, dir, logDir string) error {
	so := o
	so.cacheDir = filepath.Join(dir, "desktop")
	so.sessionAgents = 1
	s := &sessionBench{o: so, r: &sessionResults{started: time.Now().UTC(), opts: so, machine: machine()},
		dir: filepath.Join(so.cacheDir, "sessions"), logDir: filepath.Join(logDir, "desktop")}
	if err := os.MkdirAll(s.logDir, 0o700); err != nil {
		return err
	}
	// The agent's desktop is its $DISPLAY (agent/desktop: desktop_display
	// unset); the agent inherits this process's environment.
	old, had := os.LookupEnv("DISPLAY")
	os.Setenv("DISPLAY", display)
	err := s.setUp(ctx)
	if had {
		os.Setenv("DISPLAY", old)
	} else {
		os.Unsetenv("DISPLAY")
	}
	defer s.tearDown()
	if err != nil {
		return err
	}
	agent := s.agents[0]

	port, err := freePort()
	if err != nil {
		return err
	}
	listen := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"desktop", agent.hostname, "--reason", "make bench: desktop frames", "--listen", listen}
	d.desktopCmd = fmt.Sprintf("patchbay desktop %s --reason '%s' --listen %s", agent.hostname, args[3], listen)
	cmd := exec.Command(o.cliBin, args...)
	cmd.Env = append(os.Environ(), client.ConfigEnv+"="+s.tech.configPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var errOut strings.Builder
	cmd.Stderr = &errOut
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", d.desktopCmd, err)
	}
	defer killGroupWait(cmd)
	password, err := readDesktopPassword(ctx, out, 60*time.Second)
	if err != nil {
		return fmt.Errorf("%s: %w: %s", d.desktopCmd, err, lastLines(errOut.String(), 3))
	}
	go func() { _, _ = io.Copy(io.Discard, out) }() // ends when the CLI does
	conn, err := net.DialTimeout("tcp", listen, 10*time.Second)
	if err != nil {
		return err
	}
	rc, err := newViewer(conn, password)
	if err != nil {
		conn.Close()
		return fmt.Errorf("through the relay: %w; %s said: %s", err, d.desktopCmd, lastLines(errOut.String(), 3))
	}
	defer rc.Close()
	vnc := 0
	if pids := descendantsWhere(agent.pid(), func(pid int) bool {
		comm, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
		return err == nil && strings.TrimSpace(string(comm)) == "x11vnc"
	}); len(pids) > 0 {
		vnc = pids[0]
	}
	step("console: desktop through the relay: %s, %v", d.desktopCmd, d.window)
	type reading struct {
		use      cpuUse
		cli, vnc time.Duration
	}
	var rd []reading
	f, err := countFrames(ctx, rc, 2*time.Second, d.window, func() {
		x := reading{use: s.usage()}
		x.cli, _ = procCPU(cmd.Process.Pid)
		if vnc > 0 {
			x.vnc, _ = procCPU(vnc)
		}
		rd = append(rd, x)
	})
	if err != nil {
		return err
	}
	d.relay, d.relayUse = f, rd[1].use.sub(rd[0].use)
	d.cliCPU, d.relayVNCCPU = rd[1].cli-rd[0].cli, rd[1].vnc-rd[0].vnc
	step("  %.1f updates/s (%.1f screens/s), %.1f MB/s; relay %.0f%% of a core, %.1f ms CPU per MB",
		f.perSecond(), f.screensPerSecond(), f.mbps(), d.relayUse.pct(d.relayUse.relay), float64(d.relayCPUPerMB())/1e6)
	return nil
}

// desktopPasswordRE finds the one-time password in patchbay desktop's
// output.
var desktopPasswordRE = regexp.MustCompile(`(?i)password\b.*?\b([A-Za-z0-9]{8})\b`)

// parseDesktopPassword returns the VNC password in a line of patchbay
// desktop's output.
func parseDesktopPassword(line string) (string, bool) {
	m := desktopPasswordRE.FindStringSubmatch(line)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// readDesktopPassword reads patchbay desktop's stdout until it prints the
// password (after it listens).
func readDesktopPassword(ctx context.Context, r io.Reader, limit time.Duration) (string, error) {
	type res struct {
		pw  string
		err error
	}
	ch := make(chan res, 1)
	go func() { // ends at the password or when the CLI's stdout closes
		sc := bufio.NewScanner(r)
		var seen []string
		for sc.Scan() {
			seen = append(seen, sc.Text())
			if pw, ok := parseDesktopPassword(sc.Text()); ok {
				ch <- res{pw: pw}
				return
			}
		}
		ch <- res{err: fmt.Errorf("exited without printing a password (output: %q)", strings.Join(seen, " / "))}
	}()
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case x := <-ch:
		return x.pw, x.err
	case <-t.C:
		return "", fmt.Errorf("no password printed within %v", limit)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// renderDesktopRows adds the desktop rows to the console table.
func renderDesktopRows(w *strings.Builder, d *desktopResults, o benchOptions) {
	row := func(cells ...string) { fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | ")) }
	cmd := fmt.Sprintf("`patchbay-loadgen bench --only console --desktop-window %v`", d.window)
	frames := func(f frameCount, errText string) string {
		if f.window == 0 {
			return "not measured: " + orDash(errText)
		}
		return fmt.Sprintf("**%.1f updates/s** (%.1f whole screens of pixels/s, %.1f MB/s of raw pixels, %d updates in %.1f s)",
			f.perSecond(), f.screensPerSecond(), f.mbps(), f.updates, f.window.Seconds())
	}
	row("Remote desktop through the relay: a 1280×800 screen changing continuously, raw encoding, updates received by an RFB viewer via `patchbay desktop --listen`",
		frames(d.relay, d.relayErr), "— (issue 12: measure)", "measured", cmd)
	row("Floor, same run, same display: the same viewer on x11vnc directly (loopback, the agent's flags)",
		frames(d.floor, d.floorErr), "floor", "measured", cmd)
	if d.relay.window > 0 && d.floor.window > 0 {
		row("Through the relay / directly", fmt.Sprintf("%.2f× the updates per second, %.2f× the bytes per second",
			d.relay.perSecond()/max(d.floor.perSecond(), 1e-9), d.relay.mbps()/max(d.floor.mbps(), 1e-9)), "—", "measured", cmd)
	}
	if d.relay.window > 0 {
		row("Relay CPU per MB relayed (utime+stime of patchbay-server / MB the viewer sent and received)",
			fmt.Sprintf("**%.1f ms per MB** (%.0f %% of one core at %.1f MB/s)", float64(d.relayCPUPerMB())/1e6,
				d.relayUse.pct(d.relayUse.relay), d.relay.mbps()), "—", "measured", cmd)
	}
}

// renderDesktopDetails adds the desktop details.
func renderDesktopDetails(w *strings.Builder, d *desktopResults) {
	if d.relay.window > 0 {
		fmt.Fprintf(w, "- Desktop through the relay, CPU in %% of one core: relay %.0f, agent %.0f, its x11vnc %.0f, `patchbay desktop` %.0f, "+
			"load generator (the viewer) %.0f; whole machine %.0f %% of %d00 %%. x11vnc alone for the floor: %.0f %%.\n",
			d.relayUse.pct(d.relayUse.relay), d.relayUse.pct(d.relayUse.agents), d.relayUse.pct(d.relayVNCCPU), d.relayUse.pct(d.cliCPU),
			d.relayUse.pct(d.relayUse.loadgen), d.relayUse.pct(d.relayUse.machine), runtime.NumCPU(), pctOf(d.floorVNCCPU, d.floor.window))
	}
	if d.changes > 0 {
		fmt.Fprintf(w, "- The screen changed %d times (xsetroot runs) over both measurements.\n", d.changes)
	}
}

// renderDesktopHow explains the desktop figures.
func renderDesktopHow(w *strings.Builder, d *desktopResults) {
	fmt.Fprintf(w, `- **Remote desktop**: Xvfb with one %[1]s screen, no window manager; a shell loop runs
  `+"`xsetroot -solid`"+` with the next of four colours as fast as it can, so the whole screen
  changes continuously. The viewer is the bench's RFB 3.8 client (agent/desktop/rfbclient):
  VNC authentication with the one-time password, 32-bit pixels, the raw encoding only; after a
  full-screen request it keeps one incremental FramebufferUpdateRequest for the whole screen
  outstanding, asking again as soon as an update is read, and counts the updates (and the pixels
  and bytes in them) over %[2]v after 2 s of warm-up. Through the relay: a fresh relay, one
  `+"`patchbay-agent`"+` (consent approved by an exec program) whose desktop is that display, and
  `+"`%[3]s`"+` run as a technician (the relay, agent and x11vnc as a session uses them); the
  viewer connects to the CLI's listener. The floor: x11vnc (%[4]s) started by the bench with the
  agent's flags on the same display, the viewer on loopback, no relay. The relay's CPU is
  utime+stime from /proc/PID/stat over the window, divided by the bytes the viewer received and
  sent (RFB payload; TLS, websocket and SSH framing on top are not counted as MB).
`, desktopGeometry, d.window, orDash(d.desktopCmd), orDash(d.x11vnc))
}

// printDesktopSummary prints the desktop figures on stdout.
func printDesktopSummary(d *desktopResults) {
	fmt.Printf("desktop, through the relay:   %.1f updates/s, %.1f MB/s, relay %.1f ms CPU per MB\n",
		d.relay.perSecond(), d.relay.mbps(), float64(d.relayCPUPerMB())/1e6)
	fmt.Printf("desktop, x11vnc directly:     %.1f updates/s, %.1f MB/s\n", d.floor.perSecond(), d.floor.mbps())
}

// pctOf is d over window in % of one core.
func pctOf(d, window time.Duration) float64 {
	if window <= 0 {
		return 0
	}
	return float64(d) / float64(window) * 100
}
