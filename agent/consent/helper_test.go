package consent

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// tableSessions is a machine's sessions as a table: session -> owner uid.
type tableSessions struct {
	owners map[string]string
	consol string
}

func (s tableSessions) owner(session string) (string, error) {
	if uid, ok := s.owners[session]; ok {
		return uid, nil
	}
	return "", errNoSession
}

func (s tableSessions) console() string { return s.consol }

// me is the user the test runs as.
func me(t *testing.T) *user.User {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// helperSocket is a fresh socket path in a directory only we can write.
func helperSocket(t *testing.T) string {
	dir, err := os.MkdirTemp("", "pbh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "helper.sock")
}

// startHelperConsent starts a Consent with the helper backend; ours is
// session "x11::5" (owned by us) and "x11::6" belongs to uid 424242.
func startHelperConsent(t *testing.T, p Policy, s Sessions, console string, arrived chan<- string) *Consent {
	t.Helper()
	p.Backend, p.HelperSocket = "helper", helperSocket(t)
	src := tableSessions{owners: map[string]string{"x11::5": me(t).Uid, "x11::7": me(t).Uid, "x11::6": "424242"}, consol: console}
	return start(t, p, s, options{sessions: src, onHelper: func(u, sess string) {
		if arrived != nil {
			arrived <- sess
		}
	}})
}

// scriptTool is a dialog tool whose question and indicator are one shell
// script: its exit status is the answer (0 Allow / End session, 1 Deny).
func scriptTool(t *testing.T, body string) *dialogTool {
	path := filepath.Join(t.TempDir(), "dialog.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return &dialogTool{
		name: "script", path: path,
		question: func(title, text, _ string, _ time.Duration) ([]string, []string) {
			return []string{"ask", title, text}, nil
		},
		verdict: func(res progResult) verdict {
			switch res.exit {
			case 0:
				return verdictApprove
			case 1:
				return verdictDeny
			}
			return verdictFailed
		},
		indicator: func(title, text string) ([]string, []string) { return []string{"indicator", title, text}, nil },
	}
}

// runTestHelper runs the real helper loop (runHelperOnce) against c's socket
// until the test ends; it returns the helper's outcome channel.
func runTestHelper(t *testing.T, c *Consent, session string, tool *dialogTool) <-chan error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := runHelperOnce(ctx, HelperConfig{Socket: c.policy.HelperSocket, Session: session, User: me(t).Username, Log: testLogger(t)}, tool)
		done <- err
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return done
}

func TestHelperApproveAndDeny(t *testing.T) {
	arrived := make(chan string, 1)
	c := startHelperConsent(t, Policy{Timeout: 20 * time.Second}, &fakeSessions{}, "x11::5", arrived)
	// The script answers by the reason: "yes" approves, anything else denies.
	tool := scriptTool(t, `case "$3" in *"Reason: yes"*) exit 0;; *) exit 1;; esac`)
	runTestHelper(t, c, "x11::5", tool)
	<-arrived

	var asked []string
	req := testRequest("s-1", "alice", "yes", time.Time{})
	req.OnAsk = func(deadline time.Time, who string) { asked = append(asked, who) }
	d := c.Decide(context.Background(), req)
	if !d.Approved || d.By != me(t).Username || d.Backend != "helper" {
		t.Fatalf("decision %+v, want approved by %s through the helper", d, me(t).Username)
	}
	if want := me(t).Username + " at desk-42"; len(asked) != 1 || asked[0] != want {
		t.Errorf("OnAsk told %q, want [%q]", asked, want)
	}
	d = c.Decide(context.Background(), testRequest("s-2", "alice", "no", time.Time{}))
	if d.Approved || d.By != me(t).Username || d.Message != "denied by the user" {
		t.Fatalf("decision %+v, want denied by the user", d)
	}
}

func TestHelperTimeoutAndCancel(t *testing.T) {
	arrived := make(chan string, 1)
	c := startHelperConsent(t, Policy{Timeout: time.Second}, &fakeSessions{}, "x11::5", arrived)
	// The dialog never answers: the service's deadline ends it (killing it).
	runTestHelper(t, c, "x11::5", scriptTool(t, `exec sleep 60`))
	<-arrived
	start := time.Now()
	d := c.Decide(context.Background(), testRequest("s-1", "alice", "r", time.Time{}))
	if d.Approved || d.By != ByTimeout {
		t.Fatalf("decision %+v, want a timeout", d)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("timeout took %s", el)
	}
}

func TestHelperNoUser(t *testing.T) {
	for _, tc := range []struct {
		policy  string
		approve bool
	}{{NoUserDeny, false}, {NoUserAllow, true}, {NoUserNotify, true}} {
		t.Run(tc.policy, func(t *testing.T) {
			c := startHelperConsent(t, Policy{WhenNoUser: tc.policy}, nil, "x11::5", nil)
			asked := false
			req := testRequest("s-1", "alice", "r", time.Time{})
			req.OnAsk = func(time.Time, string) { asked = true }
			d := c.Decide(context.Background(), req)
			if d.Approved != tc.approve || d.By != ByNoUser || !strings.Contains(d.Message, "when_no_user") {
				t.Fatalf("decision %+v, want approved=%v by %s", d, tc.approve, ByNoUser)
			}
			if asked {
				t.Error("OnAsk called although nobody was asked")
			}
		})
	}
}

func TestHelperAskConsoleOnly(t *testing.T) {
	arrived := make(chan string, 2)
	// Session x11::7 is ours but not the console: its helper must not be
	// asked. Its script would approve; the console's denies.
	c := startHelperConsent(t, Policy{Timeout: 20 * time.Second}, &fakeSessions{}, "x11::5", arrived)
	runTestHelper(t, c, "x11::7", scriptTool(t, `exit 0`))
	<-arrived
	d := c.Decide(context.Background(), testRequest("s-0", "alice", "r", time.Time{}))
	if d.Approved || d.By != ByNoUser {
		t.Fatalf("only a non-console helper: decision %+v, want no user", d)
	}
	runTestHelper(t, c, "x11::5", scriptTool(t, `exit 1`))
	<-arrived
	d = c.Decide(context.Background(), testRequest("s-1", "alice", "r", time.Time{}))
	if d.Approved || d.Message != "denied by the user" {
		t.Fatalf("decision %+v, want the console's deny", d)
	}
}

func TestHelperAskAll(t *testing.T) {
	arrived := make(chan string, 2)
	c := startHelperConsent(t, Policy{Timeout: 20 * time.Second, Ask: AskAll}, &fakeSessions{}, "", arrived)
	runTestHelper(t, c, "x11::7", scriptTool(t, `exit 0`))
	<-arrived
	d := c.Decide(context.Background(), testRequest("s-1", "alice", "r", time.Time{}))
	if !d.Approved {
		t.Fatalf("decision %+v, want approved by the only helper (ask all, no console)", d)
	}
}

// rawHelper connects to the socket and sends lines as a hostile or broken
// helper would, returning the service's first answer line.
func rawHelper(t *testing.T, c *Consent, lines ...string) string {
	t.Helper()
	conn, err := net.Dial("unix", c.policy.HelperSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	for _, l := range lines {
		if _, err := conn.Write([]byte(l)); err != nil {
			return "write: " + err.Error()
		}
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil && line == "" {
		return "closed: " + err.Error()
	}
	return line
}

func TestHelperRefusesFalseClaims(t *testing.T) {
	c := startHelperConsent(t, Policy{}, nil, "x11::5", nil)
	other := "nobody"
	if me(t).Username == other {
		other = "root"
	}
	for _, tc := range []struct{ name, line, want string }{
		{"another user", `{"type":"hello","user":"` + other + `","session":"x11::5"}` + "\n", "runs as uid " + me(t).Uid},
		{"another user's session", `{"type":"hello","user":"` + me(t).Username + `","session":"x11::6"}` + "\n", "belongs to uid 424242"},
		{"no such session", `{"type":"hello","user":"` + me(t).Username + `","session":"x11::9"}` + "\n", "no such session"},
		{"no such user", `{"type":"hello","user":"no-such-user-pb","session":"x11::5"}` + "\n", "no such user"},
		{"not hello first", `{"type":"answer","id":"s-1","approved":true}` + "\n", "want hello"},
		{"malformed", "{nope\n", "malformed helper message"},
		{"unknown field", `{"type":"hello","user":"a","session":"b","evil":1}` + "\n", "unknown field"},
		{"oversized", strings.Repeat("x", maxHelperLine+10) + "\n", "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := rawHelper(t, c, tc.line)
			if !strings.Contains(got, `"type":"refused"`) || !strings.Contains(got, tc.want) {
				t.Fatalf("service said %q, want a refusal containing %q", got, tc.want)
			}
		})
	}
	// After all that, an honest helper still gets in.
	got := rawHelper(t, c, `{"type":"hello","user":"`+me(t).Username+`","session":"x11::5"}`+"\n")
	if !strings.Contains(got, `"type":"welcome"`) || !strings.Contains(got, `"console":true`) {
		t.Fatalf("honest helper got %q, want a welcome on the console", got)
	}
}

// A helper may only answer requests it was shown.
func TestHelperCannotAnswerUnasked(t *testing.T) {
	arrived := make(chan string, 2)
	c := startHelperConsent(t, Policy{Timeout: 2 * time.Second}, &fakeSessions{}, "x11::5", arrived)
	runTestHelper(t, c, "x11::5", scriptTool(t, `exec sleep 60`)) // the console's, never answers
	<-arrived
	conn, err := net.Dial("unix", c.policy.HelperSocket) // a non-console helper of ours
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	conn.Write([]byte(`{"type":"hello","user":"` + me(t).Username + `","session":"x11::7"}` + "\n"))
	if l, _ := r.ReadString('\n'); !strings.Contains(l, "welcome") {
		t.Fatalf("got %q", l)
	}
	<-arrived
	ch := decideAsync(context.Background(), c, testRequest("s-1", "alice", "r", time.Time{}))
	waitFor(t, "the request to be pending", 5*time.Second, func() bool { return len(c.Pending()) == 1 })
	conn.Write([]byte(`{"type":"answer","id":"s-1","approved":true}` + "\n"))
	if d := await(t, ch, 10*time.Second); d.Approved || d.By != ByTimeout {
		t.Fatalf("decision %+v: an unasked helper's answer must be ignored", d)
	}
}

func TestHelperIndicatorEndsSession(t *testing.T) {
	arrived := make(chan string, 1)
	sess := &fakeSessions{}
	c := startHelperConsent(t, Policy{}, sess, "x11::5", arrived)
	// The indicator "presses" End session at once.
	runTestHelper(t, c, "x11::5", scriptTool(t, `[ "$1" = indicator ] && exit 0; exit 1`))
	<-arrived
	sess.mu.Lock()
	sess.live = []Live{{ID: "s-9", Technician: "alice", Capabilities: []string{"shell"}, Started: time.Now()}}
	sess.mu.Unlock()
	c.Started(Live{ID: "s-9", Technician: "alice", Capabilities: []string{"shell"}})
	waitFor(t, "the helper to end the session", 10*time.Second, func() bool { return len(sess.endedList()) == 1 })
	if got, want := sess.endedList()[0], "s-9 "+me(t).Username; got != want {
		t.Errorf("ended %q, want %q", got, want)
	}
}

func TestHelperReconnectsAndRefusalIsFinal(t *testing.T) {
	c := startHelperConsent(t, Policy{}, nil, "x11::5", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := runHelperOnce(ctx, HelperConfig{Socket: c.policy.HelperSocket, Session: "x11::6", User: me(t).Username, Log: testLogger(t)}, scriptTool(t, "exit 1"))
	if !errors.Is(err, ErrHelperRefused) || !strings.Contains(err.Error(), "424242") {
		t.Fatalf("helper claiming another user's session: %v, want ErrHelperRefused naming the owner", err)
	}
}

func TestClaimSession(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if s, err := claimSession(env(map[string]string{"DISPLAY": ":3"})); err != nil || s != "x11::3" {
		t.Errorf("DISPLAY=:3: %q %v", s, err)
	}
	if _, err := claimSession(env(map[string]string{"DISPLAY": "remote:3"})); err == nil {
		t.Error("a remote display was accepted as a session")
	}
	for in, ok := range map[string]bool{"x11::0": true, "x11::12.0": true, "x11::": false, "x11::-1": false, "x11::01": false, "x11:host:0": false, "3": false} {
		if _, err := x11Display(in); (err == nil) != ok {
			t.Errorf("x11Display(%q) err=%v, want ok=%v", in, err, ok)
		}
	}
	for in, ok := range map[string]bool{"3": true, "c12": true, "": false, "3;rm": false, "-p": false} {
		if validLogindID(in) != ok {
			t.Errorf("validLogindID(%q) = %v", in, !ok)
		}
	}
	if v, ok := loginctlProperty([]byte("Id=3\nUser=1000\n"), "User"); !ok || v != "1000" {
		t.Errorf("loginctlProperty = %q %v", v, ok)
	}
}

func FuzzHelperMessage(f *testing.F) {
	f.Add([]byte(`{"type":"hello","user":"alice","session":"x11::0"}`))
	f.Add([]byte(`{"type":"answer","id":"s","approved":true}`))
	f.Add([]byte(`{"type":"ask","id":"s","request":{"kind":"fix","technician":"t","reason":"r","hostname":"h"},"deadline":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"type":"live","sessions":[{"ID":"s"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeHelperMsg(b)
		if err != nil {
			return
		}
		if m.Type == "" {
			t.Fatal("decoded a message without a type")
		}
		// What decodes re-encodes and decodes to the same type.
		m2, err := decodeHelperMsg(encodeHelperMsg(m)[:len(encodeHelperMsg(m))-1])
		if err != nil || m2.Type != m.Type {
			t.Fatalf("round trip: %v (%q -> %q)", err, m.Type, m2.Type)
		}
		if m.Request != nil {
			r := m.Request.toRequest(m.ID, m.Deadline)
			_ = promptText(r, time.Now())
		}
	})
}

// A helper the service launched (Windows) is who the launcher says, over
// any connection, whatever it claims: the portable half of the launcher.
func TestHelperLaunchedOverPipes(t *testing.T) {
	c := startHelperConsent(t, Policy{Timeout: 20 * time.Second}, &fakeSessions{}, "wts:3", nil)
	ours, theirs := net.Pipe()
	attached := make(chan struct{})
	c.helper.wg.Add(1)
	go func() {
		defer c.helper.wg.Done()
		defer close(attached)
		c.helper.attach(ours, `PC\alice`, "S-1-5-21-1", "wts:3")
	}()
	ctx, cancel := context.WithCancel(context.Background())
	helperDone := make(chan struct{})
	go func() {
		defer close(helperDone)
		// It claims to be someone else: the launcher's word counts.
		runHelperConn(ctx, HelperConfig{User: "mallory", Session: "x11::6", Log: testLogger(t)}, scriptTool(t, `exit 0`), theirs)
	}()
	t.Cleanup(func() { cancel(); <-helperDone; <-attached })
	waitFor(t, "the launched helper to be attached", 5*time.Second, func() bool { return c.helper.asking("pc") != "" })
	d := c.Decide(context.Background(), testRequest("s-1", "bob", "r", time.Time{}))
	if !d.Approved || d.By != `PC\alice` {
		t.Fatalf("decision %+v, want approved by PC\\alice (the launcher's user)", d)
	}
}

// The helper is told when it is idle again after a prompt (it gives memory
// back then).
func TestHelperIdleAfterPrompt(t *testing.T) {
	arrived := make(chan string, 1)
	c := startHelperConsent(t, Policy{Timeout: 20 * time.Second}, &fakeSessions{}, "x11::5", arrived)
	idle := make(chan struct{}, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		runHelperOnce(ctx, HelperConfig{Socket: c.policy.HelperSocket, Session: "x11::5", User: me(t).Username, Log: testLogger(t),
			Idle: func() { idle <- struct{}{} }}, scriptTool(t, "exit 1"))
	}()
	t.Cleanup(func() { cancel(); <-done })
	<-arrived
	select {
	case <-idle:
		t.Fatal("idle before any prompt")
	default:
	}
	if d := c.Decide(context.Background(), testRequest("s-1", "alice", "r", time.Time{})); d.Approved {
		t.Fatalf("decision %+v, want denied", d)
	}
	select {
	case <-idle:
	case <-time.After(10 * time.Second):
		t.Fatal("the helper was not told it is idle after the prompt")
	}
}
