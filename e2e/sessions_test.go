package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/asciicast"
)

// sessionFleet is a relay, an admin, a technician "alice" and one agent whose
// consent backend is an exec: script that records what it was asked and
// answers as the test says (approve, deny or never).
type sessionFleet struct {
	r      *Relay
	admin  *CLI
	alice  *CLI
	agent  *Agent
	asked  string // file the consent script appends each request to
	answer string // file holding the script's answer: approve, deny or hang
}

func newSessionFleet(t *testing.T, agentArgs ...string) *sessionFleet {
	t.Helper()
	f := &sessionFleet{r: StartRelay(t)}
	f.admin = f.r.Login(f.r.AdminToken())
	alice := strings.TrimSpace(strings.SplitN(f.admin.Run("api-tokens", "create", "--role", "technician", "--name", "alice"), "\n", 2)[0])
	f.alice = f.r.Login(alice)
	dir := t.TempDir()
	f.asked, f.answer = filepath.Join(dir, "asked.jsonl"), filepath.Join(dir, "answer")
	f.setAnswer(t, "approve")
	script := filepath.Join(dir, "consent.sh")
	body := `#!/bin/sh
cat >> ` + f.asked + `
echo >> ` + f.asked + `
case "$(cat ` + f.answer + `)" in
approve) echo by=jane; exit 0 ;;
deny) echo "not now, I am presenting" >&2; exit 1 ;;
*) sleep 30 ;;
esac
`
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	f.agent = f.r.Enroll(f.admin.Token())
	args := append([]string{"--consent-backend", "exec:" + script}, agentArgs...)
	f.agent.StartWith(args...)
	waitFor(t, 20*time.Second, "agent online", func() bool { return f.admin.Online(f.agent.ID) })
	// The agent gets its host certificate right after it connects.
	waitFor(t, 10*time.Second, "agent host certificate", func() bool {
		_, err := os.Stat(filepath.Join(f.agent.Dir, "ssh_host_ed25519_key-cert.pub"))
		return err == nil
	})
	return f
}

func (f *sessionFleet) setAnswer(t *testing.T, a string) {
	t.Helper()
	if err := os.WriteFile(f.answer, []byte(a), 0o600); err != nil {
		t.Fatal(err)
	}
}

// StartWith runs the agent with more run flags.
func (a *Agent) StartWith(args ...string) *Agent {
	a.proc = startProc(a.t, "agent "+a.ID, nil, append([]string{bin("patchbay-agent"), "run", "--data", a.Dir,
		"--log-level", "debug", "--log-format", "json"}, args...)...)
	return a
}

func (c *CLI) sessions(t *testing.T) []apiv1.Session {
	t.Helper()
	var out []apiv1.Session
	if err := json.Unmarshal([]byte(c.Run("sessions", "list", "-o", "json")), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// sshConfig writes the OpenSSH config block `patchbay ssh-config` prints.
func (c *CLI) sshConfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ssh_config")
	if err := os.WriteFile(path, []byte(c.Run("ssh-config")), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSessionExecApprovedAuditedAndListed(t *testing.T) {
	f := newSessionFleet(t)
	out, stderr, err := f.alice.Try("ssh", f.agent.ID, "--reason", "INC-4711 disk full", "--", "echo", "hello")
	if err != nil || out != "hello\n" {
		t.Fatalf("patchbay ssh -- echo hello: %v\nstdout %q\nstderr %s", err, out, stderr)
	}
	asked, _ := os.ReadFile(f.asked)
	for _, want := range []string{`"technician":"alice"`, `"reason":"INC-4711 disk full"`, `"exec"`} {
		if !strings.Contains(string(asked), want) {
			t.Errorf("consent backend did not see %s:\n%s", want, asked)
		}
	}
	// The remote exit status is the CLI's. Without a certificate the CLI
	// first gets one over REST, then opens the session on the same client.
	cliDir := filepath.Dir(strings.TrimPrefix(f.alice.env[0], "PATCHBAY_CONFIG="))
	if err := os.Remove(filepath.Join(cliDir, "id_ed25519-cert.pub")); err != nil {
		t.Fatal(err)
	}
	_, stderr, err = f.alice.Try("ssh", f.agent.ID, "--reason", "exit code", "--", "exit 3")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Errorf("remote exit 3: got %v, stderr %q", err, stderr)
	}
	list := f.alice.sessions(t)
	if len(list) != 2 {
		t.Fatalf("sessions list: %d sessions, want 2", len(list))
	}
	s := list[1] // newest first: the first session is last
	if s.Technician != "alice" || s.AgentID != f.agent.ID || s.Reason != "INC-4711 disk full" || s.Consent.Decision != "approved" ||
		s.Consent.By != "jane" || s.Consent.Backend != "exec" || s.Started == nil || s.Ended == nil || s.State != "ended" {
		t.Errorf("session as listed: %+v", s)
	}
	audit := f.admin.Run("audit", "list", "-o", "json")
	for _, action := range []string{"session.request", "session.approved", "session.end", "ssh-cert.issue"} {
		if !strings.Contains(audit, `"`+action+`"`) {
			t.Errorf("audit log has no %s", action)
		}
	}
}

func TestSessionRefusedOrUnansweredRunsNothing(t *testing.T) {
	f := newSessionFleet(t, "--consent-timeout", "2s")
	marker := filepath.Join(t.TempDir(), "ran")
	f.setAnswer(t, "deny")
	_, stderr, err := f.alice.Try("ssh", f.agent.ID, "--reason", "INC-1", "--", "touch", marker)
	if err == nil || !strings.Contains(stderr, "not now, I am presenting") {
		t.Errorf("denied session: err %v, stderr %q", err, stderr)
	}
	f.setAnswer(t, "hang")
	start := time.Now()
	_, stderr, err = f.alice.Try("ssh", f.agent.ID, "--reason", "INC-2", "--", "touch", marker)
	if err == nil || !strings.Contains(stderr, "no answer within 2s") {
		t.Errorf("unanswered session: err %v, stderr %q", err, stderr)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("an unanswered request took %v to fail", d)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a refused session ran its command")
	}
	for _, s := range f.alice.sessions(t) {
		if s.State != "denied" || s.Started != nil {
			t.Errorf("refused session listed as %+v", s)
		}
	}
	if audit := f.admin.Run("audit", "list", "-o", "json"); strings.Count(audit, `"session.denied"`) != 2 {
		t.Errorf("want two session.denied audit records:\n%s", tail(audit, 2000))
	}
}

func TestStockOpenSSHWithScpAndRecording(t *testing.T) {
	f := newSessionFleet(t)
	cfg := f.alice.sshConfig(t)
	host := f.agent.ID + ".patchbay"
	env := []string{"PATCHBAY_REASON=INC-9 logs"}
	if out := run(t, env, "ssh", "-F", cfg, host, "echo", "hi"); out != "hi\n" {
		t.Fatalf("ssh echo hi: %q", out)
	}

	// scp 5 MB each way, byte-identical (OpenSSH 9 scp speaks sftp).
	dir := t.TempDir()
	data := make([]byte, 5<<20)
	rand.Read(data)
	local, remote, back := filepath.Join(dir, "up.bin"), filepath.Join(dir, "remote.bin"), filepath.Join(dir, "down.bin")
	os.WriteFile(local, data, 0o600)
	run(t, env, "scp", "-q", "-F", cfg, local, host+":"+remote)
	run(t, env, "scp", "-q", "-F", cfg, host+":"+remote, back)
	for _, p := range []string{remote, back} {
		if got, _ := os.ReadFile(p); !bytes.Equal(got, data) {
			t.Fatalf("%s differs after scp (%d bytes)", p, len(got))
		}
	}

	// A terminal session, typed into, is recorded by the agent.
	cmd := exec.Command("ssh", "-tt", "-F", cfg, host)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader("echo typed-marker-$((6*7))\nexit\n")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || !strings.Contains(out.String(), "typed-marker-42") {
		t.Fatalf("ssh -tt: %v\n%s", err, out.String())
	}
	id := f.alice.sessions(t)[0].ID
	waitFor(t, 10*time.Second, "recording stored", func() bool {
		var s apiv1.Session
		json.Unmarshal([]byte(f.alice.Run("sessions", "show", id, "-o", "json")), &s)
		return s.RecordingSize > 0 && s.State == "ended"
	})
	cast := f.alice.Run("sessions", "recording", id)
	var typed, shown strings.Builder
	h, err := asciicast.Parse(strings.NewReader(cast), func(e asciicast.Event) error {
		switch e.Type {
		case "i":
			typed.WriteString(e.Data)
		case "o":
			shown.WriteString(e.Data)
		}
		return nil
	})
	if err != nil || h.Version != 2 {
		t.Fatalf("recording is not asciicast v2: %v\n%s", err, tail(cast, 1000))
	}
	if !strings.Contains(typed.String(), "echo typed-marker") || !strings.Contains(shown.String(), "typed-marker-42") {
		t.Errorf("recording lacks what was typed or shown:\ninput %q\noutput %q", typed.String(), tail(shown.String(), 500))
	}

	// Who reads it (issue 15): the session's technician (above), auditors
	// and admins; not a viewer, not another technician.
	token := func(role, name string) *CLI {
		return f.r.Login(strings.TrimSpace(strings.SplitN(f.admin.Run("api-tokens", "create", "--role", role, "--name", name), "\n", 2)[0]))
	}
	for _, who := range []*CLI{token("viewer", "vera"), token("technician", "bob")} {
		if _, errOut, err := who.Try("sessions", "recording", id); err == nil || !strings.Contains(errOut, "readable by its technician (alice), auditors and admins") {
			t.Errorf("a viewer or another technician read alice's recording: %v %q; want 403", err, errOut)
		}
	}
	for _, who := range []*CLI{token("auditor", "audrey"), f.admin} {
		if got := who.Run("sessions", "recording", id); got != cast {
			t.Errorf("an auditor or admin got a different recording (%d bytes, want %d)", len(got), len(cast))
		}
	}
}

func TestForeignCertificatesRefused(t *testing.T) {
	f := newSessionFleet(t)
	// alice's ssh config without her identity, so that only the key given
	// on the command line is offered (IdentityFile lines add up).
	var kept []string
	for _, l := range strings.Split(f.alice.Run("ssh-config"), "\n") {
		if !strings.Contains(l, "IdentityFile") && !strings.Contains(l, "CertificateFile") {
			kept = append(kept, l)
		}
	}
	cfg := filepath.Join(t.TempDir(), "ssh_config")
	os.WriteFile(cfg, []byte(strings.Join(kept, "\n")), 0o600)
	host := f.agent.ID + ".patchbay"
	dir := t.TempDir()

	// A certificate from a CA of our own making, for "alice".
	run(t, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "ca"))
	run(t, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "key"))
	run(t, nil, "ssh-keygen", "-q", "-s", filepath.Join(dir, "ca"), "-I", "alice", "-n", "alice", "-V", "+1h", filepath.Join(dir, "key.pub"))
	_, stderr, err := try([]string{"PATCHBAY_REASON=INC-3"}, "ssh", "-F", cfg, "-o", "IdentityFile="+filepath.Join(dir, "key"),
		"-o", "CertificateFile="+filepath.Join(dir, "key-cert.pub"), "-o", "IdentitiesOnly=yes", host, "echo", "in")
	if err == nil {
		t.Fatal("a certificate from another CA was accepted")
	}
	if !strings.Contains(stderr, "Permission denied") {
		t.Errorf("foreign CA: want Permission denied, got %q", stderr)
	}

	// Bob's genuine certificate on a session the user approved for alice.
	bobToken := strings.TrimSpace(strings.SplitN(f.admin.Run("api-tokens", "create", "--role", "technician", "--name", "bob"), "\n", 2)[0])
	bob := f.r.Login(bobToken)
	bobDir := filepath.Dir(strings.TrimPrefix(bob.env[0], "PATCHBAY_CONFIG="))
	_, stderr, err = try([]string{"PATCHBAY_REASON=INC-3"}, "ssh", "-F", cfg, "-o", "IdentityFile="+filepath.Join(bobDir, "id_ed25519"),
		"-o", "CertificateFile="+filepath.Join(bobDir, "id_ed25519-cert.pub"), "-o", "IdentitiesOnly=yes", host, "echo", "in")
	if err == nil {
		t.Fatal("bob's certificate was accepted on alice's session")
	}
	if !strings.Contains(stderr, "Permission denied") {
		t.Errorf("bob on alice's session: want Permission denied, got %q", stderr)
	}
	// The relay learns why from the agent.
	var s apiv1.Session
	waitFor(t, 5*time.Second, "refused session recorded", func() bool {
		s = f.alice.sessions(t)[0]
		return s.State == "ended"
	})
	if !strings.Contains(s.EndReason, `"bob"`) {
		t.Errorf("refused session ended with %q, want the certificate's key ID named", s.EndReason)
	}
}

func TestUserEndsSessionWithinASecond(t *testing.T) {
	f := newSessionFleet(t)
	cmd := exec.Command(bin("patchbay"), "ssh", f.agent.ID, "--reason", "INC-5", "--", "sleep 60")
	cmd.Env = append(os.Environ(), f.alice.env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waitFor(t, 20*time.Second, "session live on the agent", func() bool {
		out, _, _ := try(nil, bin("patchbay-agent"), "sessions", "list", "--data", f.agent.Dir, "-o", "json")
		return strings.Contains(out, "alice")
	})
	start := time.Now()
	run(t, nil, bin("patchbay-agent"), "sessions", "end", "all", "--data", f.agent.Dir)
	ended := time.Now() // the end command (a -race binary, slow to start) has returned
	select {
	case err := <-done:
		if err == nil {
			t.Error("a session ended by the user exited 0")
		}
		if d := time.Since(ended); d > time.Second {
			t.Errorf("the technician's session ended %v after the user ended it (%v with the end command)", d, time.Since(start))
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the technician's session did not end")
	}
	if !strings.Contains(stderr.String(), "ended by the user") {
		t.Errorf("technician was not told why: %q", stderr.String())
	}
	var s apiv1.Session
	waitFor(t, 5*time.Second, "session ended in the relay", func() bool {
		s = f.alice.sessions(t)[0]
		return s.State == "ended"
	})
	if s.EndBy != "user" || !strings.Contains(s.EndReason, "ended by the user") {
		t.Errorf("session end recorded as %q: %q", s.EndBy, s.EndReason)
	}
}

func TestBadSessionRequestsRefusedClearly(t *testing.T) {
	f := newSessionFleet(t)
	viewerToken := strings.TrimSpace(strings.SplitN(f.admin.Run("api-tokens", "create", "--role", "viewer", "--name", "auditor"), "\n", 2)[0])
	viewer := f.r.Login(viewerToken)
	offline := f.r.Enroll(f.admin.Token())
	tests := []struct {
		name string
		cli  *CLI
		args []string
		want string
	}{
		{"viewer", viewer, []string{"ssh", f.agent.ID, "--reason", "x", "--", "true"}, "technician role"},
		{"unknown agent", f.alice, []string{"ssh", "no-such-host", "--reason", "x", "--", "true"}, "no agent with ID, ID prefix or hostname"},
		{"offline agent", f.alice, []string{"ssh", offline.ID, "--reason", "x", "--", "true"}, "offline"},
		{"escape in reason", f.alice, []string{"ssh", f.agent.ID, "--reason", "hi\x1b[2J", "--", "true"}, "control character"},
		{"long reason", f.alice, []string{"ssh", f.agent.ID, "--reason", strings.Repeat("x", 600), "--", "true"}, "limit 500"},
		{"unknown capability", f.alice, []string{"proxy", "--reason", "x", "--capabilities", "shell,root", f.agent.ID}, "unknown capability"},
	}
	for _, tt := range tests {
		_, stderr, err := tt.cli.Try(tt.args...)
		if err == nil || !strings.Contains(stderr, tt.want) {
			t.Errorf("%s: err %v, stderr %q, want %q", tt.name, err, stderr, tt.want)
		}
	}
	if asked, _ := os.ReadFile(f.asked); len(asked) != 0 {
		t.Errorf("a refused request reached the consent backend:\n%s", asked)
	}
	// Nothing was disturbed: a good request still works.
	if out := f.alice.Run("ssh", f.agent.ID, "--reason", "after", "--", "echo", "ok"); out != "ok\n" {
		t.Errorf("session after bad requests: %q", out)
	}
}

func TestLocalForwardToEndpointLoopback(t *testing.T) {
	f := newSessionFleet(t)
	// A service on the endpoint's loopback (the same machine here): it
	// answers "pong" to whatever it reads.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4)
			io.ReadFull(c, buf)
			c.Write([]byte("pong"))
			c.Close()
		}
	}()
	local := freePort(t)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	cmd := exec.Command(bin("patchbay"), "ssh", f.agent.ID, "--reason", "INC-7 VNC", "-L", local+":localhost:"+port, "--", "sleep 20")
	cmd.Env = append(os.Environ(), f.alice.env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var got []byte
	waitFor(t, 20*time.Second, "forwarded connection answers", func() bool {
		c, err := net.DialTimeout("tcp", local, time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		c.Write([]byte("ping"))
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		got, _ = io.ReadAll(c)
		return string(got) == "pong"
	})
	asked, _ := os.ReadFile(f.asked)
	if !strings.Contains(string(asked), `"forward"`) {
		t.Errorf("forwarding was not named in the consent request:\n%s", asked)
	}
}
