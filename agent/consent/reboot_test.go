//go:build unix

package consent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// These tests ask the restart question through the real backends (an exec
// program, the helper protocol with a zenity-compatible dialog script, the
// terminal) and run a real restart program that records its arguments; the
// only stand-in is the list of logged-in users (a test cannot log a user
// in).

// someone and nobody are the logged-in users as WithLoggedIn gives them.
func someone(context.Context) ([]string, error) { return []string{"bob"}, nil }
func nobody(context.Context) ([]string, error)  { return nil, nil }

// rebootRequest is a restart question as the worker puts it.
func rebootRequest() Request {
	return Request{SessionID: "0190a8b2-7c1e-7d3a-9f00-0000000000aa", Hostname: "desk-42", Technician: "alice@helpdesk",
		Reason: "INC-9", Fix: "plugin patchinstall 1.0.0: Installs updates"}
}

// restartProgram writes a reboot_command that appends its arguments to a
// file, one line per run.
func restartProgram(t *testing.T) (prog, log string) {
	dir := t.TempDir()
	log = filepath.Join(dir, "restarts")
	return writeScript(t, dir, "restart.sh", fmt.Sprintf("echo \"$@\" >> %q\n", log)), log
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestRebootPolicyFields(t *testing.T) {
	d := DefaultPolicy()
	if d.Reboot != RebootAsk || d.RebootTonight != "22:00" || d.RebootCommand != "" {
		t.Fatalf("defaults = %+v", d)
	}
	for _, tc := range []struct {
		p    Policy
		want string
	}{
		{Policy{Reboot: "sometimes"}, `consent reboot "sometimes": want ask, never or force`},
		{Policy{RebootTonight: "25:00"}, `consent reboot_tonight "25:00": want a 24-hour clock time such as 22:00`},
		{Policy{RebootTonight: "9:00"}, `consent reboot_tonight "9:00"`},
		{Policy{RebootCommand: "shutdown -r now"}, `consent reboot_command "shutdown -r now": want an absolute path`},
		{Policy{RebootCommand: "/usr/sbin/../sbin/x"}, `want an absolute path`},
	} {
		if err := tc.p.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.p, err, tc.want)
		}
	}

	// Saved and loaded like the other fields; the file stays 0600.
	dir := t.TempDir()
	prog, _ := restartProgram(t)
	p := Policy{Mode: ModePrompt, Reboot: RebootForce, RebootTonight: "23:30", RebootCommand: prog}
	if err := SavePolicy(dir, p); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(PolicyPath(dir))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("policy file mode %v, %v", st.Mode(), err)
	}
	b, _ := os.ReadFile(PolicyPath(dir))
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil || raw["reboot"] != "force" || raw["reboot_tonight"] != "23:30" || raw["reboot_command"] != prog {
		t.Fatalf("saved %s", b)
	}
	got, err := LoadPolicy(dir)
	if err != nil || got.Reboot != RebootForce || got.RebootTonight != "23:30" || got.RebootCommand != prog {
		t.Fatalf("loaded %+v, %v", got, err)
	}
	// A hand-edited bad value names the file and the field.
	writeFile(t, PolicyPath(dir), `{"mode":"prompt","reboot":"always"}`, 0o600)
	if _, err := LoadPolicy(dir); err == nil || !strings.Contains(err.Error(), `reboot "always"`) {
		t.Fatalf("LoadPolicy = %v", err)
	}
	// A restart program others may change is refused when the agent starts.
	if err := os.Chmod(prog, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Policy{Mode: ModeUnattended, RebootCommand: prog}, nil, testLogger(t)); err == nil ||
		!strings.Contains(err.Error(), "writable by group or others") {
		t.Fatalf("New with a world-writable reboot_command = %v", err)
	}
}

func TestRebootThroughExec(t *testing.T) {
	dir := t.TempDir()
	seen := filepath.Join(dir, "seen")
	// The program records what it is sent and answers by the reason.
	script := writeScript(t, dir, "ask.sh", fmt.Sprintf(`in=$(cat); echo "$in" >> %q
case "$in" in
  *'"event":"reboot"'*) exit 0;;
  *'"reason":"1h"'*) echo by=bob; echo choice=1h; exit 0;;
  *'"reason":"now"'*) echo by=bob; echo choice=now; exit 0;;
  *'"reason":"junk"'*) echo choice=later; exit 0;;
  *'"reason":"slow"'*) exec sleep 30;;
esac
exit 1
`, seen))
	prog, restarts := restartProgram(t)
	policy := func(reboot string) Policy {
		return Policy{Mode: ModePrompt, Backend: "exec:" + script, Timeout: 2 * time.Second, Reboot: reboot, RebootCommand: prog}
	}
	ask := func(c *Consent, reason string) RebootDecision {
		req := rebootRequest()
		req.Reason = reason
		return c.DecideReboot(context.Background(), req)
	}

	t.Run("ask, a user chooses in 1 hour", func(t *testing.T) {
		c := start(t, policy(RebootAsk), nil, options{loggedIn: someone})
		before := len(readLines(t, seen))
		d := ask(c, "1h")
		if d.Choice != ChoiceHour || d.By != "bob" || d.Policy != RebootAsk || time.Until(d.When) < 59*time.Minute {
			t.Fatalf("decision = %+v", d)
		}
		if want := "restart: in 1 hour at " + d.When.Local().Format("15:04") + ", chosen by bob"; d.Text() != want {
			t.Errorf("text = %q, want %q", d.Text(), want)
		}
		lines := readLines(t, seen)
		var m execMessage
		if len(lines) != before+1 || json.Unmarshal([]byte(lines[len(lines)-1]), &m) != nil || m.Kind != KindReboot ||
			m.Fix != "plugin patchinstall 1.0.0: Installs updates" || m.Technician != "alice@helpdesk" {
			t.Fatalf("the program got %q", lines)
		}
		if err := c.ScheduleReboot(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		r := readLines(t, restarts)
		f := strings.Fields(r[len(r)-1])
		if len(f) != 3 || f[0] != "1h" {
			t.Fatalf("restart program got %q", r)
		}
		if secs, _ := strconv.Atoi(f[1]); secs < 3590 || secs > 3600 {
			t.Errorf("delay %s, want about 3600", f[1])
		}
		if when, err := time.Parse(time.RFC3339, f[2]); err != nil || when.Sub(d.When).Abs() > time.Second {
			t.Errorf("when %s, want %s", f[2], d.When)
		}
	})

	t.Run("ask, no answer means tonight", func(t *testing.T) {
		c := start(t, policy(RebootAsk), nil, options{loggedIn: someone})
		for _, reason := range []string{"slow", "no", "junk"} { // timeout, a refusal, no valid choice
			d := ask(c, reason)
			if d.Choice != ChoiceTonight || !strings.Contains(d.Text(), "restart: tonight at 22:00") {
				t.Fatalf("%s: decision = %+v (%s)", reason, d, d.Text())
			}
			if now := time.Now(); !d.When.After(now) || d.When.Sub(now) > 24*time.Hour || d.When.Hour() != 22 || d.When.Minute() != 0 {
				t.Errorf("%s: when %s, want the next 22:00", reason, d.When)
			}
		}
	})

	t.Run("ask, nobody logged in: now, nobody asked", func(t *testing.T) {
		c := start(t, policy(RebootAsk), nil, options{loggedIn: nobody})
		before := len(readLines(t, seen))
		d := ask(c, "1h")
		if d.Choice != ChoiceNow || d.By != ByNoUser || d.Text() != "restart now: nobody logged in" {
			t.Fatalf("decision = %+v", d)
		}
		if len(readLines(t, seen)) != before {
			t.Fatal("the program was asked with nobody logged in")
		}
		if err := c.ScheduleReboot(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		if r := readLines(t, restarts); !strings.HasPrefix(r[len(r)-1], "now 0 ") {
			t.Fatalf("restart program got %q", r)
		}
	})

	t.Run("ask, cannot tell who is logged in: asks", func(t *testing.T) {
		c := start(t, policy(RebootAsk), nil, options{loggedIn: func(context.Context) ([]string, error) { return nil, errors.New("no utmp") }})
		if d := ask(c, "now"); d.Choice != ChoiceNow || d.By != "bob" {
			t.Fatalf("decision = %+v", d)
		}
	})

	t.Run("never: nothing asked, nothing run", func(t *testing.T) {
		c := start(t, policy(RebootNever), nil, options{loggedIn: nobody})
		before, runs := len(readLines(t, seen)), len(readLines(t, restarts))
		d := ask(c, "now")
		if d.Choice != "" || !strings.HasPrefix(d.Text(), "restart pending: policy never") {
			t.Fatalf("decision = %+v", d)
		}
		if err := c.ScheduleReboot(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		if len(readLines(t, seen)) != before || len(readLines(t, restarts)) != runs {
			t.Fatal("policy never asked or restarted")
		}
	})

	t.Run("force: the user is told, not asked; restart now", func(t *testing.T) {
		c := start(t, policy(RebootForce), nil, options{loggedIn: someone})
		before := len(readLines(t, seen))
		d := ask(c, "1h")
		if d.Choice != ChoiceNow || d.By != ByPolicy || d.Text() != "restart now: policy force, bob logged in and told" {
			t.Fatalf("decision = %+v", d)
		}
		lines := readLines(t, seen)
		var m execMessage
		if len(lines) != before+1 || json.Unmarshal([]byte(lines[len(lines)-1]), &m) != nil || m.Event != "reboot" ||
			!strings.Contains(m.Text, "restarts now") {
			t.Fatalf("the program got %q", lines[before:])
		}
	})
}

func TestRebootRestartCommandFails(t *testing.T) {
	dir := t.TempDir()
	prog := writeScript(t, dir, "restart.sh", "echo 'shutdown: not allowed' >&2\nexit 1\n")
	c := start(t, Policy{Mode: ModeUnattended, RebootCommand: prog}, nil, options{loggedIn: nobody})
	d := c.DecideReboot(context.Background(), rebootRequest())
	err := c.ScheduleReboot(context.Background(), d)
	if err == nil || !strings.Contains(err.Error(), "exit 1") || !strings.Contains(err.Error(), "shutdown: not allowed") {
		t.Fatalf("ScheduleReboot = %v", err)
	}
}

func TestRebootUnattendedWithUser(t *testing.T) {
	c := start(t, Policy{Mode: ModeUnattended}, nil, options{loggedIn: someone})
	if d := c.DecideReboot(context.Background(), rebootRequest()); d.Choice != ChoiceTonight || d.By != ByAgent {
		t.Fatalf("decision = %+v: a user is logged in and nobody can be asked; want tonight", d)
	}
}

func TestRebootTTY(t *testing.T) {
	tty := newFakeTTY()
	c := start(t, Policy{Mode: ModePrompt, Backend: "tty", Timeout: 20 * time.Second}, nil, options{tty: tty, loggedIn: someone})
	ch := make(chan RebootDecision, 1)
	go func() { ch <- c.DecideReboot(context.Background(), rebootRequest()) }()
	waitFor(t, "the question", 10*time.Second, func() bool { return strings.Contains(tty.screen(), "[t]onight? [t]") })
	tty.typeLine(t, "h")
	select {
	case d := <-ch:
		if d.Choice != ChoiceHour {
			t.Fatalf("decision = %+v", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no decision")
	}
}
