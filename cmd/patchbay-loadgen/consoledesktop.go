package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The remote desktop measurement: frames per second of a continuously
// changing 1280x800 screen (Xvfb, xsetroot -solid in a loop) seen by the
// bench's RFB viewer through the relay (patchbay desktop --listen, the
// agent's x11vnc) and, the floor, from x11vnc started by the bench with the
// agent's flags on the same display, on loopback.

const desktopGeometry = "1280x800x24"

// desktopTools are the programs the desktop measurement needs, with their
// Debian packages.
var desktopTools = map[string]string{"Xvfb": "xvfb", "x11vnc": "x11vnc", "xsetroot": "x11-xserver-utils"}

// desktopResults is the remote desktop measured through the relay and
// against x11vnc directly.
type desktopResults struct {
	window      time.Duration
	x11vnc      string // x11vnc -version
	floor       frameCount
	relay       frameCount
	relayUse    cpuUse        // relay, agent (agents) and bench (loadgen) CPU over the relay window
	cliCPU      time.Duration // patchbay desktop --listen over the relay window
	floorVNCCPU time.Duration // x11vnc over the floor window
	relayVNCCPU time.Duration // the agent's x11vnc over the relay window
	changes     int64         // xsetroot runs over both windows
	desktopCmd  string        // the patchbay desktop command line
	floorErr    string
	relayErr    string
}

// relayCPUPerMB is the relay's CPU time per MB (10^6 bytes) the viewer
// received through it.
func (d *desktopResults) relayCPUPerMB() time.Duration {
	mb := float64(d.relay.bytesIn+d.relay.bytesOut) / 1e6
	if mb <= 0 {
		return 0
	}
	return time.Duration(float64(d.relayUse.relay) / mb)
}

// checkDesktopTools fails naming every missing tool and its package.
func checkDesktopTools() error {
	var missing []string
	for tool, pkg := range desktopTools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, fmt.Sprintf("%s (apt-get install %s)", tool, pkg))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("desktop: not installed: %s", strings.Join(missing, ", "))
	}
	return nil
}

// runDesktop measures the remote desktop: the floor, then through the relay.
func runDesktop(ctx context.Context, o benchOptions, dir, logDir string) (*desktopResults, error) {
	d := &desktopResults{window: o.console.desktopWindow}
	if err := checkDesktopTools(); err != nil {
		return d, err
	}
	if out, err := exec.CommandContext(ctx, "x11vnc", "-version").CombinedOutput(); err == nil {
		d.x11vnc = strings.TrimSpace(lastLines(string(out), 1))
	}
	xvfb, display, err := startXvfb(ctx, filepath.Join(logDir, "desktop-xvfb.log"))
	if err != nil {
		return d, err
	}
	defer killGroupWait(xvfb)
	changer, changes, err := startChanger(display, filepath.Join(dir, "changes"))
	if err != nil {
		return d, err
	}
	defer killGroupWait(changer)
	step("console: desktop: Xvfb %s %s, xsetroot -solid in a loop", display, desktopGeometry)

	c0 := changes()
	if err := d.measureFloor(ctx, display, dir, logDir); err != nil {
		d.floorErr = err.Error()
		step("  floor failed: %v", err)
	}
	if err := d.measureRelay(ctx, o, display, dir, logDir); err != nil {
		d.relayErr = err.Error()
		step("  through the relay failed: %v", err)
	}
	d.changes = changes() - c0
	if d.floorErr != "" || d.relayErr != "" {
		return d, fmt.Errorf("desktop: %s", strings.Join(nonEmpty(d.floorErr, d.relayErr), "; "))
	}
	return d, nil
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// startXvfb starts Xvfb on a free display (it picks one: -displayfd) with
// one desktopGeometry screen, and returns it and the display.
func startXvfb(ctx context.Context, logPath string) (*exec.Cmd, string, error) {
	if err := os.MkdirAll("/tmp/.X11-unix", 0o1777); err != nil {
		return nil, "", err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, "", err
	}
	defer r.Close()
	logf, err := os.Create(logPath)
	if err != nil {
		w.Close()
		return nil, "", err
	}
	defer logf.Close()
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-noreset", "-screen", "0", desktopGeometry, "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, "", fmt.Errorf("start Xvfb: %w", err)
	}
	w.Close()
	stop := context.AfterFunc(ctx, func() { r.Close() })
	defer stop()
	_ = r.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(r).ReadString('\n')
	n := strings.TrimSpace(line)
	if _, aerr := strconv.Atoi(n); aerr != nil {
		killGroupWait(cmd)
		return nil, "", fmt.Errorf("desktop: Xvfb did not report its display number (%q, %v); see %s", n, errors.Join(err, aerr), logPath)
	}
	return cmd, ":" + n, nil
}

// startChanger runs xsetroot -solid with a new colour, over and over, on
// display: the whole screen changes as often as xsetroot can run. Each run
// appends a byte to countFile; count returns how many ran.
func startChanger(display, countFile string) (*exec.Cmd, func() int64, error) {
	script := `while :; do for c in '#c03030' '#30c030' '#3030c0' '#c0c030'; do xsetroot -display "$1" -solid "$c" && printf x >>"$2"; done; done`
	cmd := exec.Command("/bin/sh", "-c", script, "changer", display, countFile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start the screen changer: %w", err)
	}
	count := func() int64 {
		st, err := os.Stat(countFile)
		if err != nil {
			return 0
		}
		return st.Size()
	}
	return cmd, count, nil
}

// killGroupWait ends cmd's process group (SIGTERM, SIGKILL after 5 s) and
// waits for cmd.
func killGroupWait(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	// SIGTERM first: x11vnc then removes its MIT-SHM segments, which a
	// SIGKILL leaves behind until the machine runs out of them.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { // ends when the process exits, at the latest after the SIGKILL below
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// vncPassword is a fresh 8-character password (VNC uses 8).
func vncPassword() string {
	const letters = "abcdefghijkmnopqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}

// measureFloor starts x11vnc on display with the agent's flags (a one-time
// password file, loopback, -autoport) and counts frames from it directly.
func (d *desktopResults) measureFloor(ctx context.Context, display, dir, logDir string) error {
	pwDir, err := os.MkdirTemp(dir, "floor-vnc-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(pwDir)
	password := vncPassword()
	pwFile := filepath.Join(pwDir, "passwd")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(logDir, "desktop-floor-x11vnc.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command("x11vnc", "-display", display, "-localhost", "-autoport", "5900", "-passwdfile", "rm:"+pwFile,
		"-forever", "-nevershared", "-norc", "-nocmds", "-noremote", "-nossl", "-noipv6", "-nolookup")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + pwDir, "DISPLAY=" + display}
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start x11vnc: %w", err)
	}
	defer killGroupWait(cmd)
	port, err := readPortLine(ctx, out, 30*time.Second)
	if err != nil {
		return fmt.Errorf("x11vnc on %s: %w; see %s", display, err, logf.Name())
	}
	go func() { _, _ = io.Copy(io.Discard, out) }() // ends when x11vnc does
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 10*time.Second)
	if err != nil {
		return err
	}
	rc, err := newViewer(conn, password)
	if err != nil {
		conn.Close()
		return fmt.Errorf("x11vnc directly: %w", err)
	}
	defer rc.Close()
	step("console: desktop floor: x11vnc directly on 127.0.0.1:%d, %v", port, d.window)
	var v []time.Duration
	f, err := countFrames(ctx, rc, 2*time.Second, d.window, func() {
		c, _ := procCPU(cmd.Process.Pid)
		v = append(v, c)
	})
	if err != nil {
		return err
	}
	d.floor, d.floorVNCCPU = f, v[1]-v[0]
	step("  %.1f updates/s (%.1f screens/s), %.1f MB/s", f.perSecond(), f.screensPerSecond(), f.mbps())
	return nil
}

// readPortLine reads x11vnc's stdout until its "PORT=NNNN" line.
func readPortLine(ctx context.Context, r io.Reader, limit time.Duration) (int, error) {
	type res struct {
		port int
		err  error
	}
	ch := make(chan res, 1)
	go func() { // ends at the PORT line or when the reader does (x11vnc killed)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if p, ok := parsePortLine(sc.Text()); ok {
				ch <- res{port: p}
				return
			}
		}
		ch <- res{err: errors.New("x11vnc exited before it reported its port")}
	}()
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case x := <-ch:
		return x.port, x.err
	case <-t.C:
		return 0, fmt.Errorf("no PORT= line within %v", limit)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// parsePortLine parses x11vnc's "PORT=5900" line.
func parsePortLine(line string) (int, bool) {
	v, ok := strings.CutPrefix(strings.TrimSpace(line), "PORT=")
	if !ok {
		return 0, false
	}
	p, err := strconv.Atoi(v)
	if err != nil || p <= 0 || p > 65535 {
		return 0, false
	}
	return p, true
}
