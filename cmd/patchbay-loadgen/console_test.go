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
	if len(m.renderers) == 0 || m.largest().rss < 1024 {
		t.Errorf("renderers under browser PID %d: %+v, want one with at least 1 MiB resident", br.pid(), m.renderers)
	}
}
