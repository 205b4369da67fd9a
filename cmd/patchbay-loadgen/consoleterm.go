package main

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/patchbay/patchbay/internal/backoff"
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
// window.__pbKeys.until(s) resolves once s was written.
const keyHookScript = `(async () => {
  const { Terminal } = await import('/assets/vendor/xterm.mjs');
  const P = Terminal.prototype;
  if (P.__pbWrite) return true;
  P.__pbWrite = P.write;
  const st = { text: '', want: null, t0: 0, rtts: [], waiters: [] };
  const wake = () => { for (const w of st.waiters.splice(0)) w(); };
  document.addEventListener('keydown', (e) => {
    if (st.want !== null && st.t0 === 0 && e.key === st.want) st.t0 = performance.now();
  }, true);
  const dec = new TextDecoder();
  P.write = function (data, cb) {
    const s = typeof data === 'string' ? data : dec.decode(data, { stream: true });
    return P.__pbWrite.call(this, data, () => {
      st.text = (st.text + s).slice(-4096);
      if (st.want !== null && st.t0 !== 0 && s.includes(st.want)) {
        st.rtts.push(performance.now() - st.t0);
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
    arm: (k) => { st.want = k; st.t0 = 0; return st.rtts.length; },
    echo: async (n) => { await wait(() => st.rtts.length > n); return st.rtts[n]; },
    until: async (s) => { await wait(() => st.text.includes(s)); return true; },
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
// and the technician library's (patchbay ssh), a key on each in turn.
type keyPair struct {
	browser, cli []time.Duration
	failed       int
	firstErr     string
	use          cpuUse
}

// typeBoth sends keys keys on each of bt and ty in turn, one pair every
// every, and returns the round trips of those after the first warm ones.
func typeBoth(ctx context.Context, bt *browserTerm, ty *typist, keys, warm int, every time.Duration) keyPair {
	var kp keyPair
	fail := func(err error) {
		kp.failed++
		if kp.firstErr == "" {
			kp.firstErr = err.Error()
		}
	}
	next := time.Now()
	for i := range keys + warm {
		if !backoff.Sleep(ctx, time.Until(next)) {
			fail(ctx.Err())
			return kp
		}
		b := byte('a' + i%26)
		// Alternate which goes first, so neither always follows the other.
		first, second := func() { kp.cli = keyInto(kp.cli, ty.key, b, i >= warm, fail) }, func() { kp.browser = keyInto(kp.browser, bt.key, b, i >= warm, fail) }
		if i%2 == 1 {
			first, second = second, first
		}
		first()
		second()
		if kp.failed > 10 {
			return kp
		}
		next = next.Add(every)
		if now := time.Now(); now.After(next) {
			next = now
		}
	}
	return kp
}

func keyInto(dst []time.Duration, key func(byte) (time.Duration, error), b byte, keep bool, fail func(error)) []time.Duration {
	rtt, err := key(b)
	if err != nil {
		fail(err)
		return dst
	}
	if keep {
		dst = append(dst, rtt)
	}
	return dst
}
