package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/patchbay/patchbay/internal/backoff"
	"github.com/patchbay/patchbay/internal/wire"
)

// The browser terminal's keystroke round trip, next to the one of the
// technician side that patchbay ssh uses (the sessions part's typist), on
// the same agent in the same run, a key on each in turn.

// keyHookScript hooks the page's xterm.js (the module the terminal screen
// imports) before the terminal opens: a capturing keydown listener on the
// document takes the time a key reaches the page, and Terminal.write's
// callback (xterm.js has parsed the data into its buffer) takes the time
// the echo is there. window.__pbKeys.arm(k) expects key k,
// window.__pbKeys.echo() resolves with its round trip in ms,
// window.__pbKeys.until(s) resolves once s was written. It also hooks the
// WebSocket class, to split each round trip into the page's input side
// (keydown -> the SSH packet sent on the websocket), the network side (->
// the first binary message back created: relay, agent, cat, Chromium's
// network service), the wait for the page's main thread (-> its listener
// runs) and the output side (-> the echo parsed into the buffer).
const keyHookScript = `(async () => {
  const { Terminal } = await import('/assets/vendor/xterm.mjs');
  const P = Terminal.prototype;
  if (P.__pbWrite) return true;
  P.__pbWrite = P.write;
  const st = { text: '', want: null, t0: 0, sent: 0, recv: 0, made: 0, rtts: [], parts: [], waiters: [] };
  const wake = () => { for (const w of st.waiters.splice(0)) w(); };
  document.addEventListener('keydown', (e) => {
    if (st.want !== null && st.t0 === 0 && e.key === st.want) {
      st.t0 = performance.now();
      st.free = 0;
      // When the main thread is next free for a task after this key.
      const ch = new MessageChannel();
      ch.port1.onmessage = () => { if (st.free === 0) st.free = performance.now(); };
      ch.port2.postMessage(0);
    }
  }, true);
  // The session websocket the screen opens next: when the key's SSH
  // packet leaves and the first binary message after it arrives.
  const W = window.WebSocket;
  window.WebSocket = class extends W {
    constructor(...a) {
      super(...a);
      this.addEventListener('message', (m) => {
        if (st.sent !== 0 && st.recv === 0 && typeof m.data !== 'string') { st.recv = performance.now(); st.made = m.timeStamp; }
      });
    }
    send(d) {
      if (st.t0 !== 0 && st.sent === 0) st.sent = performance.now();
      return super.send(d);
    }
  };
  const dec = new TextDecoder();
  P.write = function (data, cb) {
    const s = typeof data === 'string' ? data : dec.decode(data, { stream: true });
    return P.__pbWrite.call(this, data, () => {
      st.text = (st.text + s).slice(-4096);
      if (st.want !== null && st.t0 !== 0 && s.includes(st.want)) {
        const now = performance.now();
        st.rtts.push(now - st.t0);
        st.parts.push(st.sent && st.recv ? [st.sent - st.t0, st.made - st.sent, st.recv - st.made, now - st.recv, st.free ? st.free - st.t0 : -1] : null);
        st.want = null;
        st.t0 = 0;
      }
      wake();
      if (cb) cb();
    });
  };
  const wait = (ok) => new Promise((resolve) => {
    const check = () => { if (ok()) resolve(); else st.waiters.push(check); };
    check();
  });
  window.__pbKeys = {
    arm: (k) => { st.want = k; st.t0 = 0; st.sent = 0; st.recv = 0; st.made = 0; return st.rtts.length; },
    echo: async (n) => { await wait(() => st.rtts.length > n); return st.rtts[n]; },
    until: async (s) => { await wait(() => st.text.includes(s)); return true; },
    parts: () => JSON.stringify(st.parts),
  };
  return true;
})()`

// browserTermCommand is typed into the browser terminal's shell: the
// typist's command (raw mode, no echo, then cat), announcing itself with a
// word that the typed line does not contain.
const browserTermCommand = "stty raw -echo; printf '%s%s\\n' RE ADY; exec cat\r"

// browserTerm is the console's terminal screen connected to an agent.
type browserTerm struct{ t *tab }

// openBrowserTerm opens #/terminal?agent=ID in t (logged in), connects with
// a reason (the agent's consent policy approves) and starts the typist's
// command in the shell.
func openBrowserTerm(t *tab, server, agent string) (*browserTerm, error) {
	if err := t.do(30*time.Second, chromedp.Navigate(server+"/#/terminal?agent="+url.QueryEscape(agent))); err != nil {
		return nil, err
	}
	if err := t.waitJS("the terminal form", `document.querySelector('#term-form') !== null`, 20*time.Second); err != nil {
		return nil, err
	}
	if _, err := evalJS[bool](t, 20*time.Second, keyHookScript); err != nil {
		return nil, fmt.Errorf("hook the page's xterm.js: %w", err)
	}
	if err := t.do(20*time.Second, chromedp.SendKeys("#term-reason", "make bench: browser keystrokes"), chromedp.Click("#term-connect")); err != nil {
		return nil, err
	}
	if err := t.waitJS("the session approved", `document.querySelector('#term-status').dataset.state === 'approved'`, 60*time.Second); err != nil {
		return nil, err
	}
	if err := t.waitJS("the terminal open", `document.querySelector('#terminal').dataset.state === 'open'`, 20*time.Second); err != nil {
		return nil, err
	}
	bt := &browserTerm{t: t}
	if err := bt.typeText(browserTermCommand); err != nil {
		return nil, err
	}
	if _, err := evalJS[bool](t, 30*time.Second, `window.__pbKeys.until('READY')`); err != nil {
		return nil, fmt.Errorf("wait for the typist's command in the browser terminal: %w; page: %s", err, clipText(t.text(), 300))
	}
	return bt, nil
}

// typeText sends text as key presses (keyDown with its text, keyUp) to the
// focused terminal, as a keyboard does.
func (bt *browserTerm) typeText(text string) error {
	return bt.t.do(20*time.Second, chromedp.Focus("#terminal .xterm-helper-textarea"), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for _, r := range text {
			if err := pressKey(ctx, tg, r); err != nil {
				return err
			}
		}
		return nil
	}))
}

// pressKey dispatches one key's keyDown (with its text) and keyUp.
func pressKey(ctx context.Context, tg *chromedp.Target, r rune) error {
	key, code, vk := string(r), "", int64(0)
	if r == '\r' {
		key, code, vk = "Enter", "Enter", 13
	}
	for _, ev := range []input.DispatchKeyEventParams{
		{Type: input.DispatchKeyEventTypeKeyDown, Key: key, Code: code, WindowsVirtualKeyCode: vk, Text: string(r)},
		{Type: input.DispatchKeyEventTypeKeyUp, Key: key, Code: code, WindowsVirtualKeyCode: vk},
	} {
		if _, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, ev); err != nil {
			return err
		}
	}
	return nil
}

// key presses b in the browser terminal and returns its round trip as the
// page measured it: keydown reaching the page -> the echo parsed into the
// terminal's buffer.
func (bt *browserTerm) key(b byte) (time.Duration, error) {
	n, err := evalJS[int](bt.t, 5*time.Second, fmt.Sprintf(`window.__pbKeys.arm(%q)`, string(b)))
	if err != nil {
		return 0, err
	}
	err = bt.t.do(5*time.Second, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		return pressKey(ctx, tg, rune(b))
	}))
	if err != nil {
		return 0, fmt.Errorf("press %q: %w", b, err)
	}
	ms, err := evalJS[float64](bt.t, 10*time.Second, fmt.Sprintf(`window.__pbKeys.echo(%d)`, n))
	if err != nil {
		return 0, fmt.Errorf("echo of %q in the browser terminal: %w", b, err)
	}
	return msDur(ms), nil
}

// keyPair is the keystroke round trips of one run: the browser terminal's
// and the technician library's (patchbay ssh) on an exec session (the
// sessions part's typist) and on a shell session typed into as the browser
// terminal is, a key on each in turn.
type keyPair struct {
	browser, cli, shell []time.Duration
	// The browser's round trips split: keydown -> websocket send, -> the
	// first binary message back created (its event's timeStamp), -> its
	// listener run on the page's main thread, -> echo in the buffer.
	in, net, queued, out []time.Duration
	free                 []time.Duration // keydown -> the page's main thread next free for a task
	failed               int
	firstErr             string
	use                  cpuUse
}

// typeAll sends keys keys (after warm ones) on each of bt, ty (exec) and
// sh (shell) in turn, one round every every, rotating which goes first.
func typeAll(ctx context.Context, bt *browserTerm, ty, sh *typist, keys, warm int, every time.Duration) keyPair {
	var kp keyPair
	fail := func(err error) {
		kp.failed++
		if kp.firstErr == "" {
			kp.firstErr = err.Error()
		}
	}
	sides := []struct {
		key func(byte) (time.Duration, error)
		dst *[]time.Duration
	}{{bt.key, &kp.browser}, {ty.key, &kp.cli}, {sh.key, &kp.shell}}
	next := time.Now()
	for i := range keys + warm {
		if !backoff.Sleep(ctx, time.Until(next)) {
			fail(ctx.Err())
			return kp
		}
		b := byte('a' + i%26)
		for j := range sides {
			side := sides[(i+j)%len(sides)]
			rtt, err := side.key(b)
			if err != nil {
				fail(err)
			} else if i >= warm {
				*side.dst = append(*side.dst, rtt)
			}
		}
		if kp.failed > 10 {
			return kp
		}
		next = next.Add(every)
		if now := time.Now(); now.After(next) {
			next = now
		}
	}
	kp.split(bt, warm)
	return kp
}

// split reads the page's split of its round trips, less the warm ones.
func (kp *keyPair) split(bt *browserTerm, warm int) {
	raw, err := evalJS[string](bt.t, 10*time.Second, `window.__pbKeys.parts()`)
	if err != nil {
		return
	}
	var parts [][]float64
	if json.Unmarshal([]byte(raw), &parts) != nil || len(parts) < warm {
		return
	}
	for _, p := range parts[warm:] {
		if len(p) == 5 {
			if p[4] >= 0 {
				kp.free = append(kp.free, msDur(p[4]))
			}
			kp.in, kp.net = append(kp.in, msDur(p[0])), append(kp.net, msDur(p[1]))
			kp.queued, kp.out = append(kp.queued, msDur(p[2])), append(kp.out, msDur(p[3]))
		}
	}
}

// openShellTypist opens a shell session on agent with a terminal, as
// patchbay ssh AGENT does and as the browser terminal does, and types
// browserTermCommand into it; the typist then measures keys on cat.
func (t *technician) openShellTypist(ctx context.Context, agent string) (*typist, error) {
	return t.dialTypist(ctx, agent, "make bench: console keystrokes, shell", wire.CapShell, (*sshConn).startShellTypist)
}

func (c *sshConn) startShellTypist() (*typist, error) {
	ty, sess, err := c.terminalSession(1)
	if err != nil {
		return nil, err
	}
	if err := sess.Shell(); err != nil {
		return nil, fmt.Errorf("start the shell: %w", err)
	}
	if _, err := io.WriteString(ty.in, browserTermCommand); err != nil {
		return nil, err
	}
	if err := readUntil(ty.out, "READY\n"); err != nil {
		return nil, fmt.Errorf("wait for %q in the shell: %w", browserTermCommand, err)
	}
	return ty, nil
}

// readUntil reads r one byte at a time until what has been read ends with
// want.
func readUntil(r io.Reader, want string) error {
	var seen []byte
	var b [1]byte
	for !bytes.HasSuffix(seen, []byte(want)) {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return err
		}
		seen = append(seen, b[0])
		if len(seen) > 64<<10 {
			return fmt.Errorf("%q not in the first 64 KiB", want)
		}
	}
	return nil
}
