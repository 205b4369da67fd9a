//go:build unix

package consent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// asked counts the requests the exec program saw (one line each).
func asked(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

func TestRememberedApprovals(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "asked")
	deny := filepath.Join(dir, "deny")
	// Approves unless the deny file exists; counts every time it is asked.
	script := writeScript(t, dir, "ask.sh", fmt.Sprintf("cat >/dev/null\necho asked >> %q\n[ -e %q ] && exit 1\necho by=alice.local\nexit 0\n", log, deny))
	p := execPolicy(ModePrompt, script)
	p.Remember = 400 * time.Millisecond
	c := start(t, p, nil, options{})
	ctx := context.Background()
	req := func(id, tech string, caps ...string) Request {
		r := testRequest(id, tech, "INC-1", time.Time{})
		r.Capabilities = caps
		return r
	}
	steps := []struct {
		name     string
		req      Request
		approved bool
		asks     int // the program's count after this step
		setup    func()
	}{
		{"first request asks", req("s1", "bob", "shell", "sftp"), true, 1, nil},
		{"same technician, fewer capabilities: remembered", req("s2", "bob", "sftp"), true, 1, nil},
		{"same technician, same capabilities: remembered", req("s3", "bob", "sftp", "shell"), true, 1, nil},
		{"another capability asks", req("s4", "bob", "forward"), true, 2, nil},
		{"another technician asks", req("s5", "eve", "sftp"), true, 3, nil},
		{"after Forget it asks again", req("s6", "bob", "sftp"), true, 4, c.Forget},
		{"a denial is not remembered", req("s7", "mallory", "shell"), false, 5, func() { os.WriteFile(deny, nil, 0o600) }},
		{"and asks again", req("s8", "mallory", "shell"), true, 6, func() { os.Remove(deny) }},
		{"expired: asks again", req("s9", "bob", "sftp"), true, 7, func() { time.Sleep(500 * time.Millisecond) }},
	}
	for _, st := range steps {
		if st.setup != nil {
			st.setup()
		}
		d := c.Decide(ctx, st.req)
		if d.Approved != st.approved {
			t.Fatalf("%s: decision %+v, want approved=%v", st.name, d, st.approved)
		}
		if n := asked(t, log); n != st.asks {
			t.Fatalf("%s: the user was asked %d times in all, want %d", st.name, n, st.asks)
		}
		if st.name == "same technician, fewer capabilities: remembered" &&
			(d.By != "alice.local" || !strings.Contains(d.Message, "earlier approval of session s1")) {
			t.Fatalf("%s: decision %+v does not say whose approval it reused", st.name, d)
		}
	}
}

func TestRememberOffByDefault(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "asked")
	script := writeScript(t, dir, "ask.sh", fmt.Sprintf("cat >/dev/null\necho asked >> %q\nexit 0\n", log))
	c := start(t, execPolicy(ModePrompt, script), nil, options{})
	for i := range 3 {
		if d := c.Decide(context.Background(), testRequest(fmt.Sprint("s", i), "bob", "", time.Time{})); !d.Approved {
			t.Fatalf("decision %+v", d)
		}
	}
	if n := asked(t, log); n != 3 {
		t.Fatalf("asked %d times, want 3 (nothing remembered by default)", n)
	}
}
