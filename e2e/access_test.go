package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// cliDir is the directory of a CLI's config, where it keeps its SSH key
// and certificate.
func (c *CLI) cliDir() string {
	return filepath.Dir(strings.TrimPrefix(c.env[0], "PATCHBAY_CONFIG="))
}

// token is the API token the CLI logged in with.
func (c *CLI) token(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(strings.TrimPrefix(c.env[0], "PATCHBAY_CONFIG="))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil || cfg.Token == "" {
		t.Fatalf("CLI config without a token: %v", err)
	}
	return cfg.Token
}

// certSerial reads the serial of an OpenSSH certificate file.
func certSerial(t *testing.T, path string) uint64 {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*ssh.Certificate).Serial
}

// TestAccessEndsWhenATokenIsRevoked: revoking a technician's API token ends
// their live `patchbay ssh` within a second with the reason, their next
// request gets 401, the session records why, and the SSH certificate they
// held is refused by the agent itself afterwards, even on a session that a
// valid token of the same name opened (alice's new token after the old
// one leaked with her laptop).
func TestAccessEndsWhenATokenIsRevoked(t *testing.T) {
	f := newSessionFleet(t)
	// The certificate alice's CLI holds now, kept aside as a thief with her
	// laptop would have it.
	f.alice.Run("ssh-config")
	old := t.TempDir()
	for _, name := range []string{"id_ed25519", "id_ed25519-cert.pub"} {
		b, err := os.ReadFile(filepath.Join(f.alice.cliDir(), name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(old, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	serial := certSerial(t, filepath.Join(old, "id_ed25519-cert.pub"))
	aliceToken := f.alice.token(t)

	// A live interactive session: cat echoes what alice types.
	live := startLiveSSH(t, f.alice, f.agent.ID, "INC-77 printer queue")
	out := f.admin.Run("api-tokens", "revoke", "alice")
	if !strings.Contains(out, "Revoked API token alice") {
		t.Errorf("revoke said %q", out)
	}
	live.endsWithin(t, time.Second, "patchbay: session ended: the technician's access was revoked")

	// The agent ended it for the revoked certificate, and says which.
	agentLog := f.agent.proc.log
	waitFor(t, 5*time.Second, "the agent to log the revoked certificate", func() bool {
		return agentLog.Count("its certificate was revoked by the relay") == 1
	})
	for _, l := range strings.Split(agentLog.String(), "\n") {
		if strings.Contains(l, "its certificate was revoked by the relay") &&
			(!strings.Contains(l, fmt.Sprintf(`"serial":%d`, serial)) || !strings.Contains(l, `"key_id":"alice"`)) {
			t.Errorf("the agent's log line does not name serial %d and key ID alice: %s", serial, l)
		}
	}

	// alice's next request: 401.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, _ := http.NewRequest("GET", f.r.URL+"/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+aliceToken)
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("alice's next request: HTTP %d, want 401", res.StatusCode)
	}
	if _, errOut, err := f.alice.Try("sessions", "list"); err == nil || !strings.Contains(errOut, "revoked") {
		t.Errorf("alice's CLI after the revocation: %v %q", err, errOut)
	}

	// The session says why it ended.
	var s apiv1.Session
	waitFor(t, 5*time.Second, "the session to be recorded as ended", func() bool {
		s = f.admin.sessions(t)[0]
		return s.State == "ended"
	})
	if s.EndBy != "revoked" || !strings.HasPrefix(s.EndReason, "access revoked: API token alice was revoked by admin-") {
		t.Errorf("session ended by %q: %q", s.EndBy, s.EndReason)
	}

	// alice's new token (same name, valid) opens a session; OpenSSH offers
	// the old certificate on it: the agent itself refuses it.
	newToken := strings.TrimSpace(strings.SplitN(f.admin.Run("api-tokens", "create", "--role", "technician", "--name", "alice"), "\n", 2)[0])
	alice2 := f.r.Login(newToken)
	var kept []string
	for _, l := range strings.Split(alice2.Run("ssh-config"), "\n") {
		if !strings.Contains(l, "IdentityFile") && !strings.Contains(l, "CertificateFile") {
			kept = append(kept, l)
		}
	}
	cfg := filepath.Join(t.TempDir(), "ssh_config")
	if err := os.WriteFile(cfg, []byte(strings.Join(kept, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	host := f.agent.ID + ".patchbay"
	env := []string{"PATCHBAY_REASON=INC-78 printer again"}
	_, errOut, err := try(env, "ssh", "-F", cfg, "-o", "IdentityFile="+filepath.Join(old, "id_ed25519"),
		"-o", "CertificateFile="+filepath.Join(old, "id_ed25519-cert.pub"), "-o", "IdentitiesOnly=yes", host, "echo", "in")
	if err == nil {
		t.Fatal("the agent accepted a revoked certificate")
	}
	if !strings.Contains(errOut, "Permission denied") {
		t.Errorf("revoked certificate: want Permission denied, got %q", errOut)
	}
	waitFor(t, 5*time.Second, "the agent to log the refusal", func() bool {
		for _, l := range strings.Split(agentLog.String(), "\n") {
			if strings.Contains(l, "ssh authentication refused") && strings.Contains(l, `"revoked":true`) &&
				strings.Contains(l, fmt.Sprintf(`"serial":%d`, serial)) && strings.Contains(l, `"key_id":"alice"`) {
				return true
			}
		}
		return false
	})
	waitFor(t, 5*time.Second, "the refused session to be recorded", func() bool {
		s = f.admin.sessions(t)[0]
		return s.State == "ended"
	})
	if !strings.Contains(s.EndReason, fmt.Sprintf(`certificate "alice" (serial %d) is revoked`, serial)) {
		t.Errorf("refused session ended with %q, want the revoked certificate named", s.EndReason)
	}
	// Her new certificate works.
	if out, errOut, err := try(env, "ssh", "-F", alice2.sshConfig(t), host, "echo", "in"); err != nil || out != "in\n" {
		t.Errorf("alice's new certificate: %v %q %q", err, out, errOut)
	}
	var recs []struct {
		Action string            `json:"action"`
		Detail map[string]string `json:"detail"`
	}
	if err := json.Unmarshal([]byte(f.admin.Run("audit", "list", "-o", "json")), &recs); err != nil {
		t.Fatal(err)
	}
	counted := false
	for _, r := range recs {
		if r.Action == "api-token.revoke" && r.Detail["name"] == "alice" && r.Detail["ssh_certificates_revoked"] != "0" {
			counted = true
		}
	}
	if !counted {
		t.Errorf("no api-token.revoke audit record counting alice's certificates: %+v", recs)
	}
}

// liveSSH is a live `patchbay ssh AGENT -- cat` of a CLI's.
type liveSSH struct {
	stdout, stderr logBuffer
	done           chan error
}

// startLiveSSH starts `patchbay ssh agent --reason reason -- cat` as cli and
// waits until it echoes a line typed into it.
func startLiveSSH(t *testing.T, cli *CLI, agent, reason string) *liveSSH {
	t.Helper()
	s := &liveSSH{done: make(chan error, 1)}
	cmd := exec.Command(bin("patchbay"), "ssh", agent, "--reason", reason, "--", "cat")
	cmd.Env = append(os.Environ(), cli.env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = &s.stdout, &s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		<-s.done
	})
	io.WriteString(stdin, "typed-while-live\n")
	waitFor(t, 30*time.Second, "the session to echo what was typed", func() bool {
		return strings.Contains(s.stdout.String(), "typed-while-live")
	})
	return s
}

// endsWithin checks that the session's client exits, not with status 0,
// within limit from now (just after the command that should end it
// returned), telling the technician why (want on its stderr).
func (s *liveSSH) endsWithin(t *testing.T, limit time.Duration, want string) {
	t.Helper()
	returned := time.Now()
	select {
	case err := <-s.done:
		d := time.Since(returned)
		t.Logf("patchbay ssh exited %v after the command returned", d)
		if d > limit {
			t.Errorf("patchbay ssh exited %v after the command returned, want under %v", d, limit)
		}
		if err == nil {
			t.Error("patchbay ssh exited 0 after its access ended")
		}
		s.done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatalf("patchbay ssh still runs 10 s later; stderr %q", s.stderr.String())
	}
	if !strings.Contains(s.stderr.String(), want) {
		t.Errorf("the technician was not told why: stderr %q, want %q", s.stderr.String(), want)
	}
}
