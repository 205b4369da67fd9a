package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/heapprofiler"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/chromedp"
)

// The console part drives Debian's Chromium headless through chromedp, with
// the flags of the e2e console tests.

// browser is one Chromium process.
type browser struct {
	ctx    context.Context // the browser's chromedp context (its first tab)
	cancel func()
}

// chromiumFlags are the flags the bench adds to chromedp's defaults (which
// include --headless); the relay's certificate is signed by its own CA.
var chromiumFlags = []string{"no-sandbox", "disable-background-networking", "disable-component-update", "disable-sync", "ignore-certificate-errors"}

// startBrowser starts Chromium (bin) with its profile in dir.
func startBrowser(ctx context.Context, bin, dir string) (*browser, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("console: Chromium: %w (apt-get install chromium, or --chromium PATH)", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoFirstRun,
		chromedp.UserDataDir(dir), chromedp.WindowSize(1280, 860))
	for _, f := range chromiumFlags {
		opts = append(opts, chromedp.Flag(f, true))
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancel := chromedp.NewContext(alloc)
	b := &browser{ctx: bctx, cancel: func() { cancel(); cancelAlloc() }}
	if err := chromedp.Do(bctx); err != nil {
		b.cancel()
		return nil, fmt.Errorf("console: start %s: %w", bin, err)
	}
	return b, nil
}

// Close ends the browser process.
func (b *browser) Close() { b.cancel() }

// pid is the browser process's PID, 0 when unknown.
func (b *browser) pid() int {
	if c := chromedp.FromContext(b.ctx); c != nil && c.Browser != nil && c.Browser.Process() != nil {
		return c.Browser.Process().Pid
	}
	return 0
}

// tab is one tab in its own browser context (its own cookies).
type tab struct {
	ctx    context.Context
	cancel func()
}

// newTab opens a tab in a fresh browser context.
func (b *browser) newTab() (*tab, error) {
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		return nil, fmt.Errorf("open a browser tab: %w", err)
	}
	return &tab{ctx: ctx, cancel: cancel}, nil
}

// Close closes the tab and its browser context.
func (t *tab) Close() { t.cancel() }

// do runs actions with a time limit.
func (t *tab) do(limit time.Duration, actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(t.ctx, limit)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

// evalJS evaluates expr in the tab, awaiting a promise, within limit.
func evalJS[T any](t *tab, limit time.Duration, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(t.ctx, limit)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// waitJS waits until expr is true in the tab (Chromium polls it on every
// animation frame), within limit.
func (t *tab) waitJS(what, expr string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(t.ctx, limit)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(limit))); err != nil {
		return fmt.Errorf("waiting for %s: %w; page: %s", what, err, clipText(t.text(), 300))
	}
	return nil
}

// text is the page's visible text, for error messages.
func (t *tab) text() string {
	s, _ := evalJS[string](t, 2*time.Second, `document.body ? document.body.innerText : ''`)
	return strings.Join(strings.Fields(s), " ")
}

// firstRowsScript runs in every new document of the tab before the page's
// own scripts: on each animation frame it looks for the Fleet screen's
// first agent row; the frame that first has one in the DOM paints it, and
// the next frame's callback (after that paint) resolves window.__pbRows
// with both times, in ms since the navigation started.
const firstRowsScript = `window.__pbRows = new Promise((resolve) => {
  const look = () => {
    if (document.querySelector('#agents tr[data-id]')) {
      const seen = performance.now();
      requestAnimationFrame(() => {
        const nav = performance.getEntriesByType('navigation')[0] || {};
        const api = performance.getEntriesByType('resource').filter((e) => e.name.includes('/v1/agents?'));
        resolve({seen, painted: performance.now(), rows: document.querySelectorAll('#agents tr[data-id]').length,
          html: nav.responseEnd || 0, dcl: nav.domContentLoadedEventEnd || 0,
          apiStart: api.length ? api[0].startTime : 0, apiEnd: api.length ? api[0].responseEnd : 0});
      });
      return;
    }
    requestAnimationFrame(look);
  };
  requestAnimationFrame(look);
});`

// pageLoad is one measured load of the Fleet screen.
type pageLoad struct {
	seen, painted time.Duration // since the navigation started (performance.timeOrigin)
	rows          int
	// Also since the navigation started: the HTML's last byte,
	// DOMContentLoaded done, GET /v1/agents sent and answered.
	html, dcl, apiStart, apiEnd time.Duration
	wall                        time.Duration // the bench's own clock: Page.navigate sent -> rows reported
}

// loadFleet navigates the tab to url (the Fleet screen) from about:blank,
// as a new document, and returns when its first rows were painted.
func (t *tab) loadFleet(url string) (pageLoad, error) {
	if err := t.do(20*time.Second, chromedp.Navigate("about:blank")); err != nil {
		return pageLoad{}, err
	}
	start := time.Now()
	if err := t.do(60*time.Second, chromedp.Navigate(url)); err != nil {
		return pageLoad{}, err
	}
	v, err := evalJS[struct {
		Seen     float64 `json:"seen"`
		Painted  float64 `json:"painted"`
		Rows     int     `json:"rows"`
		HTML     float64 `json:"html"`
		DCL      float64 `json:"dcl"`
		APIStart float64 `json:"apiStart"`
		APIEnd   float64 `json:"apiEnd"`
	}](t, 60*time.Second, `window.__pbRows`)
	if err != nil {
		return pageLoad{}, fmt.Errorf("first rows of %s: %w; page: %s", url, err, clipText(t.text(), 300))
	}
	return pageLoad{seen: msDur(v.Seen), painted: msDur(v.Painted), rows: v.Rows, wall: time.Since(start),
		html: msDur(v.HTML), dcl: msDur(v.DCL), apiStart: msDur(v.APIStart), apiEnd: msDur(v.APIEnd)}, nil
}

// watchFirstRows installs firstRowsScript for every new document of the tab.
func (t *tab) watchFirstRows() error {
	return t.do(10*time.Second, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: firstRowsScript})
		return err
	}))
}

// msDur converts JavaScript milliseconds to a Duration.
func msDur(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// pageMemory is what the tab's page holds.
type pageMemory struct {
	heapUsed, heapTotal int64 // bytes, V8 (Performance.getMetrics JSHeapUsedSize, JSHeapTotalSize)
	heapUsedGC          int64 // JSHeapUsedSize after HeapProfiler.collectGarbage
	nodes               int64 // DOM nodes (Performance.getMetrics Nodes)
	renderers           []procMem
	tab                 procMem // the tab's renderer, found by ballast; pid 0 when not found
}

// procMem is one process's resident memory.
type procMem struct {
	pid       int
	rss, anon int64 // KiB: VmRSS, RssAnon
}

// memory reads the page's V8 heap and DOM size, then again after a full
// garbage collection, and the RSS of the browser's renderer processes.
func (t *tab) memory(browserPID int) (pageMemory, error) {
	var m pageMemory
	err := t.do(30*time.Second, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, performance.Enable, performance.EnableParams{}); err != nil {
			return err
		}
		res, err := cdp.Call(ctx, tg, performance.GetMetrics, cdp.Empty{})
		if err != nil {
			return err
		}
		vals := metricMap(res.Metrics)
		m.heapUsed, m.heapTotal, m.nodes = int64(vals["JSHeapUsedSize"]), int64(vals["JSHeapTotalSize"]), int64(vals["Nodes"])
		if _, err := cdp.Call(ctx, tg, heapprofiler.CollectGarbage, cdp.Empty{}); err != nil {
			return err
		}
		if res, err = cdp.Call(ctx, tg, performance.GetMetrics, cdp.Empty{}); err != nil {
			return err
		}
		m.heapUsedGC = int64(metricMap(res.Metrics)["JSHeapUsedSize"])
		return nil
	}))
	if err != nil {
		return m, fmt.Errorf("page metrics: %w", err)
	}
	if m.heapUsed == 0 {
		return m, errors.New("page metrics: no JSHeapUsedSize in Performance.getMetrics")
	}
	if browserPID > 0 {
		m.renderers = renderers(browserPID)
		m.tab = t.findRenderer(browserPID, m.renderers)
	}
	return m, nil
}

// ballastMiB is what findRenderer makes the page allocate and touch.
const ballastMiB = 64

// findRenderer tells the tab's renderer among before (Chromium keeps
// others: spare renderers, pages in the back-forward cache, other tabs):
// the page allocates and writes ballastMiB MiB, and the renderer whose
// anonymous memory grew by at least half of that is the tab's. The ballast
// is dropped and collected again before returning; before's figures were
// read without it.
func (t *tab) findRenderer(browserPID int, before []procMem) procMem {
	if _, err := evalJS[bool](t, 10*time.Second, fmt.Sprintf(`(() => { window.__pbBallast = new Uint8Array(%d * 1048576).fill(1); return true })()`, ballastMiB)); err != nil {
		return procMem{}
	}
	after := renderers(browserPID)
	_, _ = evalJS[bool](t, 10*time.Second, `(() => { delete window.__pbBallast; return true })()`)
	_ = t.do(10*time.Second, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, heapprofiler.CollectGarbage, cdp.Empty{})
		return err
	}))
	return grewBy(before, after, ballastMiB<<10/2)
}

// grewBy returns the process of before whose anonymous memory is at least
// kib KiB larger in after (the one that grew most), or a zero procMem.
func grewBy(before, after []procMem, kib int64) procMem {
	var best procMem
	var grew int64
	for _, b := range before {
		for _, a := range after {
			if a.pid == b.pid && a.anon-b.anon >= kib && a.anon-b.anon > grew {
				best, grew = b, a.anon-b.anon
			}
		}
	}
	return best
}

func metricMap(ms []*performance.Metric) map[string]float64 {
	out := make(map[string]float64, len(ms))
	for _, m := range ms {
		out[m.Name] = m.Value
	}
	return out
}

// renderers returns the renderer processes under the browser process root
// (Chromium's --type=renderer children, through its zygote), largest first.
func renderers(root int) []procMem {
	var out []procMem
	for _, pid := range descendantsWhere(root, func(pid int) bool {
		cmd, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		return err == nil && isRenderer(cmd)
	}) {
		if rss, err := procStatus(pid, "VmRSS"); err == nil {
			anon, _ := procStatus(pid, "RssAnon")
			out = append(out, procMem{pid: pid, rss: rss, anon: anon})
		}
	}
	slices.SortFunc(out, func(a, b procMem) int { return int(b.rss - a.rss) })
	return out
}

// descendantsWhere returns the processes under root for which match is
// true.
func descendantsWhere(root int, match func(pid int) bool) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	parent := map[int]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if fs, err := procStat(pid); err == nil && len(fs) >= 2 {
			if pp, err := strconv.Atoi(fs[1]); err == nil {
				parent[pid] = pp
			}
		}
	}
	var out []int
	for pid := range parent {
		if descends(parent, pid, root) && match(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// isRenderer reports whether a /proc/PID/cmdline is a Chromium renderer's.
// Its arguments are NUL-separated, or space-separated once Chromium has
// rewritten its process title.
func isRenderer(cmdline []byte) bool {
	args := strings.FieldsFunc(string(cmdline), func(r rune) bool { return r == 0 || r == ' ' })
	return slices.Contains(args, "--type=renderer")
}

// descends reports whether pid is under root in the parent map.
func descends(parent map[int]int, pid, root int) bool {
	for p, n := pid, 0; p > 1 && n < 32; p, n = parent[p], n+1 {
		if parent[p] == root {
			return true
		}
	}
	return false
}
