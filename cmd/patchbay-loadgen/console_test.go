package main

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestIsRenderer(t *testing.T) {
	for cmd, want := range map[string]bool{
		"/usr/lib/chromium/chromium\x00--type=renderer\x00--no-sandbox\x00": true,
		"/usr/lib/chromium/chromium\x00--type=zygote\x00":                   false,
		"/usr/lib/chromium/chromium\x00--headless\x00--type=renderer":       true,
		"/bin/sh\x00-c\x00echo --type=renderer-ish\x00":                     false,
		"/usr/lib/chromium/chromium --type=renderer --no-sandbox":           true, // the process title Chromium sets
	} {
		if got := isRenderer([]byte(cmd)); got != want {
			t.Errorf("isRenderer(%q) = %v, want %v", cmd, got, want)
		}
	}
}

func TestDescends(t *testing.T) {
	parent := map[int]int{10: 1, 11: 10, 12: 11, 13: 12, 20: 1, 21: 20}
	for _, c := range []struct {
		pid, root int
		want      bool
	}{{11, 10, true}, {13, 10, true}, {13, 11, true}, {21, 10, false}, {10, 10, false}, {99, 10, false}} {
		if got := descends(parent, c.pid, c.root); got != c.want {
			t.Errorf("descends(%d, %d) = %v, want %v", c.pid, c.root, got, c.want)
		}
	}
}

func TestKeyPairRatios(t *testing.T) {
	ms := func(vs ...float64) []time.Duration {
		var out []time.Duration
		for _, v := range vs {
			out = append(out, msDur(v))
		}
		return out
	}
	k := keyPair{browser: ms(1, 2, 3, 4, 10), cli: ms(1, 1, 2, 2, 5), shell: ms(1, 1, 2, 2, 5)}
	p50, p99 := k.ratios(k.cli)
	if p50 != 1.5 || p99 != 2 {
		t.Errorf("ratios = %v, %v; want 1.5, 2", p50, p99)
	}
	if k.keysMet() {
		t.Error("p99 at 2× meets a 1.5× target")
	}
	k.browser = ms(1, 2, 3, 4, 7.5)
	if !k.keysMet() {
		t.Error("1.5× at p50 and p99 does not meet a 1.5× target")
	}
	k.shell = ms(1, 1, 1, 1, 5)
	if k.keysMet() {
		t.Error("p50 at 3× the shell peer's meets a 1.5× target")
	}
	k.shell = k.cli
	k.failed = 1
	if k.keysMet() {
		t.Error("a failed key still meets the target")
	}
	if (keyPair{browser: ms(1)}).keysMet() {
		t.Error("no peer figure meets the target")
	}
}

func TestGrewBy(t *testing.T) {
	before := []procMem{{pid: 1, anon: 100}, {pid: 2, anon: 100}, {pid: 3, anon: 100}}
	after := []procMem{{pid: 1, anon: 120}, {pid: 2, anon: 40000}, {pid: 4, anon: 90000}}
	if got := grewBy(before, after, 32768); got.pid != 2 || got.anon != 100 {
		t.Errorf("grewBy = %+v, want PID 2 with its figures from before", got)
	}
	if got := grewBy(before, after[:1], 32768); got.pid != 0 {
		t.Errorf("grewBy with no growth = %+v, want none", got)
	}
}

func TestMedianLoad(t *testing.T) {
	ls := []pageLoad{{painted: 3 * time.Millisecond}, {painted: time.Millisecond}, {painted: 2 * time.Millisecond}}
	if got := medianLoad(ls); got != 2*time.Millisecond {
		t.Errorf("medianLoad = %v, want 2ms", got)
	}
}

// The renderer of a real Chromium's tab is found under the browser process
// and its memory read.
func TestBrowserRenderers(t *testing.T) {
	const bin = "/usr/bin/chromium"
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("this test drives Chromium, and %s is missing: apt-get install -y chromium", bin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	br, err := startBrowser(ctx, bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	tb, err := br.newTab()
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	if v, err := evalJS[int](tb, 10*time.Second, `document.body.append('x'); 6*7`); err != nil || v != 42 {
		t.Fatalf("evaluate in the tab: %v, %v", v, err)
	}
	if br.pid() == 0 {
		t.Fatal("no browser PID")
	}
	m, err := tb.memory(br.pid())
	if err != nil {
		t.Fatal(err)
	}
	if m.heapUsed <= 0 || m.heapUsedGC <= 0 || m.nodes <= 0 {
		t.Errorf("page metrics: %+v", m)
	}
	if len(m.renderers) == 0 || m.tab.pid == 0 || m.tab.rss < 1024 {
		t.Errorf("renderers under browser PID %d: %+v, the tab's %+v; want the tab's found, at least 1 MiB resident", br.pid(), m.renderers, m.tab)
	}
}

func TestParsePortLine(t *testing.T) {
	for line, want := range map[string]int{"PORT=5900": 5900, "  PORT=5901\n": 5901, "PORT=": 0, "PORT=70000": 0, "The VNC desktop is: localhost:0": 0} {
		got, ok := parsePortLine(line)
		if ok != (want != 0) || got != want {
			t.Errorf("parsePortLine(%q) = %d, %v; want %d", line, got, ok, want)
		}
	}
}

func TestParseDesktopPassword(t *testing.T) {
	for line, want := range map[string]string{
		"password: Ab3dEf9h":                 "Ab3dEf9h",
		"one-time password Ab3dEf9h":         "Ab3dEf9h",
		`VNC password (one use): "Zz12xy34"`: "Zz12xy34",
		"listening on 127.0.0.1:5901":        "",
		"password: short":                    "",
	} {
		got, ok := parseDesktopPassword(line)
		if ok != (want != "") || got != want {
			t.Errorf("parseDesktopPassword(%q) = %q, %v; want %q", line, got, ok, want)
		}
	}
}

func TestFrameCount(t *testing.T) {
	f := frameCount{updates: 50, pixels: 2 * 1280 * 800 * 10, bytesIn: 40e6, window: 10 * time.Second, screenW: 1280, screenH: 800}
	if f.perSecond() != 5 || f.screensPerSecond() != 2 || f.mbps() != 4 {
		t.Errorf("per second: %v updates, %v screens, %v MB; want 5, 2, 4", f.perSecond(), f.screensPerSecond(), f.mbps())
	}
	if (frameCount{}).perSecond() != 0 || (frameCount{}).mbps() != 0 || (frameCount{}).screensPerSecond() != 0 {
		t.Error("an empty count is not zero")
	}
	d := desktopResults{relay: frameCount{bytesIn: 9e6, bytesOut: 1e6}, relayUse: cpuUse{relay: 50 * time.Millisecond}}
	if got := d.relayCPUPerMB(); got != 5*time.Millisecond {
		t.Errorf("relay CPU per MB = %v, want 5ms", got)
	}
}

// The bench's RFB viewer against a real x11vnc on a real Xvfb whose screen
// changes: it authenticates with the one-time password and counts updates.
func TestDesktopFloor(t *testing.T) {
	if err := checkDesktopTools(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	xvfb, display, err := startXvfb(ctx, dir+"/xvfb.log")
	if err != nil {
		t.Fatal(err)
	}
	defer killGroupWait(xvfb)
	changer, changes, err := startChanger(display, dir+"/changes")
	if err != nil {
		t.Fatal(err)
	}
	defer killGroupWait(changer)
	d := &desktopResults{window: time.Second}
	if err := d.measureFloor(ctx, display, dir, dir); err != nil {
		t.Fatal(err)
	}
	if d.floor.updates < 2 || d.floor.bytesIn < 1280*800*4 || d.floor.screenW != 1280 || d.floor.screenH != 800 {
		t.Errorf("floor: %+v; want several updates of a 1280x800 screen", d.floor)
	}
	if changes() == 0 {
		t.Error("the screen changer did not run xsetroot")
	}
}
