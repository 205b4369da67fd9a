package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/wire"
)

// The console's remote desktop: the browser's SSH client (Go in
// WebAssembly) asks the agent for the desktop (desktop@patchbay.dev), the
// agent starts x11vnc on an Xvfb display for that session only, and noVNC in
// the page speaks RFB over a direct-tcpip channel of the SSH connection the
// relay only bridges. The canvas must show the colour xsetroot paints, and
// follow when it changes.
func TestConsoleDesktop(t *testing.T) {
	for _, tool := range []struct{ name, pkg string }{{"Xvfb", "xvfb"}, {"x11vnc", "x11vnc"}, {"xsetroot", "x11-xserver-utils"}} {
		if _, err := exec.LookPath(tool.name); err != nil {
			t.Fatalf("the console desktop test needs %s, which is missing: apt-get install -y %s (.ci/run does)", tool.name, tool.pkg)
		}
	}
	for _, f := range []string{"webssh.wasm", "wasm_exec.js", "novnc/core/rfb.js"} {
		if _, err := os.Stat(filepath.Join("..", "server", "console", "web", "vendor", f)); err != nil {
			t.Fatalf("the console's built files are missing (%v): run make web (make build and make test do)", err)
		}
	}
	display := startXvfb(t)
	xsetroot(t, display, "#3366cc")
	browser := startBrowser(t)
	f := newSessionFleet(t, "--desktop-display", display)
	p := newPage(t, browser)
	console := watchConsole(t, p)
	p.run(t, chromedp.Navigate(strings.TrimSpace(f.alice.Run("console", "--no-open"))))
	p.waitJS(t, "the Fleet screen", `document.querySelector('tr[data-id="`+f.agent.ID+`"]') !== null`)

	open := func(t *testing.T) {
		t.Helper()
		p.goTo(t, "#/agent/"+f.agent.ID, `document.querySelector("#agent-screen[data-loaded]") !== null`)
		p.run(t, chromedp.Click(`#agent-screen [data-action="desktop"]`))
		p.waitJS(t, "the desktop form", `document.querySelector('#desk-form') !== null`)
	}

	t.Run("the canvas shows the screen and follows it", func(t *testing.T) {
		open(t)
		// A reason is required, in the page as on the relay.
		p.run(t, chromedp.Click("#desk-connect"))
		p.waitJS(t, "the reason required", `document.querySelector('#desk-status').textContent.includes('reason is required')`)
		p.run(t, chromedp.SendKeys("#desk-reason", "INC-77 look at the screen"), chromedp.Click("#desk-connect"))
		p.waitDesktop(t, "the desktop connected")
		p.waitColour(t, "#3366cc")
		p.screenshot(t, "desktop")
		if p.bool(t, `document.querySelector('#desk-cad').hidden`) {
			t.Error("no Ctrl-Alt-Del button in a session with control")
		}
		if mode := p.str(t, `document.querySelector('#desk-mode').textContent`); mode != "Control" {
			t.Errorf("mode shown = %q, want Control", mode)
		}
		xsetroot(t, display, "#cc6633")
		p.waitColour(t, "#cc6633")
		p.screenshot(t, "desktop-changed")
		id := p.str(t, `document.querySelector('#desk-status').dataset.session`)
		// The user at the machine ends it: the page says so.
		run(t, nil, bin("patchbay-agent"), "sessions", "end", "all", "--data", f.agent.Dir)
		p.waitJS(t, "the session ended", `document.querySelector('#desk-status').dataset.state === 'ended'`)
		p.screenshot(t, "desktop-ended")
		if msg := p.str(t, `document.querySelector('#desk-status').textContent`); !strings.Contains(msg, "ended by the user") {
			t.Errorf("status after the user ended the session = %q, want it to say the user ended it", msg)
		}
		s := f.endedSession(t, id)
		if !slices.Contains(s.Capabilities, wire.CapDesktop) {
			t.Errorf("session %s asked for %v, want %s", id, s.Capabilities, wire.CapDesktop)
		}
	})

	t.Run("view only", func(t *testing.T) {
		xsetroot(t, display, "#3366cc")
		open(t)
		p.run(t, chromedp.Click("#desk-view-only"), chromedp.SendKeys("#desk-reason", "INC-78 only look"), chromedp.Click("#desk-connect"))
		p.waitDesktop(t, "the view-only desktop connected")
		p.waitColour(t, "#3366cc")
		p.screenshot(t, "desktop-view-only")
		if !p.bool(t, `document.querySelector('#desk-cad').hidden`) {
			t.Error("a Ctrl-Alt-Del button in a view-only session")
		}
		if msg := p.str(t, `document.querySelector('#desk-status').textContent`); !strings.Contains(msg, "view only") {
			t.Errorf("status of a view-only session = %q, want it to say view only", msg)
		}
		if mode := p.str(t, `document.querySelector('#desk-mode').textContent`); mode != "View only" {
			t.Errorf("mode shown = %q, want View only", mode)
		}
		id := p.str(t, `document.querySelector('#desk-status').dataset.session`)
		p.run(t, chromedp.Click("#desk-disconnect"))
		p.waitJS(t, "the session ended", `document.querySelector('#desk-status').dataset.state === 'ended'`)
		if msg := p.str(t, `document.querySelector('#desk-status').textContent`); !strings.Contains(msg, "You ended") {
			t.Errorf("status after Disconnect = %q", msg)
		}
		s := f.endedSession(t, id)
		if !slices.Contains(s.Capabilities, wire.CapDesktopView) || slices.Contains(s.Capabilities, wire.CapDesktop) {
			t.Errorf("view-only session %s asked for %v, want only %s", id, s.Capabilities, wire.CapDesktopView)
		}
		asked, _ := os.ReadFile(f.asked)
		if !strings.Contains(string(asked), `"INC-78 only look"`) || !strings.Contains(string(asked), `"`+wire.CapDesktopView+`"`) {
			t.Errorf("the consent backend was not asked for %s:\n%s", wire.CapDesktopView, asked)
		}
	})

	t.Run("a denied desktop shows the user's reason", func(t *testing.T) {
		f.setAnswer(t, "deny")
		open(t)
		p.run(t, chromedp.SendKeys("#desk-reason", "INC-79"), chromedp.Click("#desk-connect"))
		p.waitJS(t, "the session denied", `document.querySelector('#desk-status').dataset.state === 'denied'`)
		p.screenshot(t, "desktop-denied")
		if msg := p.str(t, `document.querySelector('#desk-status').textContent`); !strings.Contains(msg, "not now, I am presenting") {
			t.Errorf("denied status = %q, want the user's reason", msg)
		}
	})

	t.Run("an endpoint without x11vnc says so", func(t *testing.T) {
		f.setAnswer(t, "approve")
		// An agent whose PATH has the consent script's cat and no x11vnc.
		bare := t.TempDir()
		if err := os.Symlink("/bin/cat", filepath.Join(bare, "cat")); err != nil {
			t.Fatal(err)
		}
		a := f.r.Enroll(f.admin.Token())
		a.proc = startProc(t, "agent without x11vnc "+a.ID, []string{"PATH=" + bare}, bin("patchbay-agent"), "run", "--data", a.Dir,
			"--log-level", "debug", "--log-format", "json",
			"--consent-backend", "exec:"+filepath.Join(filepath.Dir(f.asked), "consent.sh"), "--desktop-display", display)
		waitFor(t, 20*time.Second, "the agent without x11vnc online", func() bool { return f.admin.Online(a.ID) })
		waitFor(t, 10*time.Second, "its host certificate", func() bool {
			_, err := os.Stat(filepath.Join(a.Dir, "ssh_host_ed25519_key-cert.pub"))
			return err == nil
		})
		p.goTo(t, "#/agent/"+a.ID, `document.querySelector("#agent-screen[data-loaded]") !== null`)
		p.run(t, chromedp.Click(`#agent-screen [data-action="desktop"]`))
		p.waitJS(t, "the desktop form", `document.querySelector('#desk-form') !== null`)
		p.run(t, chromedp.SendKeys("#desk-reason", "INC-80"), chromedp.Click("#desk-connect"))
		p.waitJS(t, "the desktop refused", `document.querySelector('#desk-status').dataset.state === 'failed'`)
		p.screenshot(t, "desktop-no-x11vnc")
		if msg := p.str(t, `document.querySelector('#desk-status').textContent`); !strings.Contains(msg, "x11vnc") {
			t.Errorf("status without x11vnc = %q, want it to name x11vnc", msg)
		}
	})

	// The page ran under its Content-Security-Policy without a violation
	// (noVNC styles its elements through the CSSOM, which the policy
	// allows); the watcher does see one when there is.
	if v := console.violations(); len(v) > 0 {
		t.Errorf("the console page broke its Content-Security-Policy:\n%s", strings.Join(v, "\n"))
	}
	p.bool(t, `(() => { const s = document.createElement('style'); s.textContent = 'body {}'; document.head.append(s); return true })()`)
	waitFor(t, 10*time.Second, "the CSP violation of an inline <style> seen in the console", func() bool { return len(console.violations()) > 0 })
}

// startXvfb runs an X server on a display it picks (-displayfd) and returns
// the display, ":N", once the server is ready.
func startXvfb(t *testing.T) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// -noreset: the server would reset (the root's colour gone) each time its
	// last client leaves, as xsetroot does before x11vnc connects.
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1280x800x24", "-nolisten", "tcp", "-noreset")
	cmd.ExtraFiles = []*os.File{w}
	var log logBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start Xvfb: %v", err)
	}
	w.Close()
	t.Cleanup(func() { killGroup(cmd); cmd.Wait() })
	// Xvfb writes the display number when it accepts connections; the read
	// ends with it, or at EOF when Xvfb exits.
	s, _ := bufio.NewReader(r).ReadString('\n')
	n := strings.TrimSpace(s)
	if _, err := strconv.Atoi(n); err != nil {
		t.Fatalf("Xvfb did not report its display (%q): %s", n, log.String())
	}
	return ":" + n
}

// xsetroot paints the display's root window one colour.
func xsetroot(t *testing.T, display, colour string) {
	t.Helper()
	if out, err := exec.Command("xsetroot", "-display", display, "-solid", colour).CombinedOutput(); err != nil {
		t.Fatalf("xsetroot -display %s -solid %s: %v\n%s", display, colour, err, out)
	}
}

// waitDesktop waits until the session is approved and noVNC has connected
// to the VNC server (or fails with the page's status).
func (p *page) waitDesktop(t *testing.T, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 40*time.Second)
	defer cancel()
	state, err := chromedp.Run(ctx, chromedp.Poll[string](`(() => {
		const st = document.querySelector('#desk-status').dataset.state;
		if (st === 'failed' || st === 'denied' || st === 'ended') return st;
		const d = document.querySelector('#desktop');
		return d && d.dataset.state === 'open' && d.querySelector('canvas') ? 'open' : false;
	})()`, chromedp.WithPollingTimeout(40*time.Second)))
	if err != nil || state != "open" {
		p.screenshot(t, "desktop-failed")
		t.Fatalf("waiting for %s: %v (state %q)\npage: %s", what, err, state, p.text())
	}
}

// waitColour waits until nine in ten of a grid of pixels of the noVNC
// canvas are within a few steps of colour ("#rrggbb").
func (p *page) waitColour(t *testing.T, colour string) {
	t.Helper()
	rgb, err := strconv.ParseUint(strings.TrimPrefix(colour, "#"), 16, 32)
	if err != nil {
		t.Fatal(err)
	}
	sample := fmt.Sprintf(`(() => {
		const c = document.querySelector('#desktop canvas');
		if (!c || c.width < 100 || c.height < 100) return {match: 0, seen: 'no canvas'};
		const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
		const want = [%d, %d, %d];
		let match = 0, n = 0;
		const seen = {};
		for (let y = 0; y < 20; y++) for (let x = 0; x < 20; x++) {
			const i = (Math.floor((y + 0.5) * c.height / 20) * c.width + Math.floor((x + 0.5) * c.width / 20)) * 4;
			const px = [d[i], d[i + 1], d[i + 2]];
			n++;
			if (px.every((v, k) => Math.abs(v - want[k]) <= 4)) match++;
			const key = '#' + px.map((v) => v.toString(16).padStart(2, '0')).join('');
			seen[key] = (seen[key] || 0) + 1;
		}
		return {match: match / n, seen: JSON.stringify(seen) + ' on ' + c.width + 'x' + c.height};
	})()`, rgb>>16, rgb>>8&0xff, rgb&0xff)
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](sample+`.match >= 0.9`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		defer cancel()
		got, _ := chromedp.Run(ctx, chromedp.Evaluate[colourSample](sample))
		p.screenshot(t, "desktop-colour-"+strings.TrimPrefix(colour, "#"))
		t.Fatalf("the canvas did not show %s: %.0f%% of the sampled pixels match; seen %s\npage: %s", colour, got.Match*100, got.Seen, p.text())
	}
}

// colourSample is what waitColour's script finds on the canvas.
type colourSample struct {
	Match float64 `json:"match"` // the share of the sampled pixels that match
	Seen  string  `json:"seen"`  // the colours seen, and the canvas size
}

// consoleWatch collects what the page's console says about its
// Content-Security-Policy.
type consoleWatch struct {
	mu  sync.Mutex
	csp []string
}

// watchConsole reads the page's console until the page's context ends.
func watchConsole(t *testing.T, p *page) *consoleWatch {
	t.Helper()
	w := &consoleWatch{}
	messages := chromedp.Console(p.ctx) // subscribed now: nothing is lost
	go func() {                         // ends with the page's context (newPage's cleanup)
		for m, err := range messages {
			if err != nil {
				return
			}
			if strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "Content-Security-Policy") {
				w.mu.Lock()
				w.csp = append(w.csp, m.String())
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *consoleWatch) violations() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.csp...)
}

// endedSession waits until the relay lists session id as ended.
func (f *sessionFleet) endedSession(t *testing.T, id string) (ended apiv1.Session) {
	t.Helper()
	waitFor(t, 15*time.Second, "session "+id+" ended in the relay", func() bool {
		for _, s := range f.admin.sessions(t) {
			if s.ID == id && s.Ended != nil {
				ended = s
				return true
			}
		}
		return false
	})
	return ended
}
