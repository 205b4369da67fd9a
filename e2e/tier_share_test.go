package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// newTierKey makes a tier key the way an operator does and returns its path.
func newTierKey(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tier.key")
	out := run(t, nil, bin("patchbay-server"), "tier-key", "new", path)
	if !strings.Contains(out, "--tier-key-file") {
		t.Fatalf("tier-key new does not say what to do with the key: %q", out)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("tier-key new wrote no key: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	if _, errOut, err := try(nil, bin("patchbay-server"), "tier-key", "new", path); err == nil || !strings.Contains(errOut, "never replaced") {
		t.Fatalf("tier-key new over an existing key: %v %q", err, errOut)
	}
	return path
}

// TestTierShare: relay A (embedded NATS) and relay B, started on an empty
// data directory with only the database and the tier key, serve one CA.
// An agent enrolled through B and run with --server A --server B connects
// to A; a session recorded through A; A is killed with SIGKILL: the agent
// is back online on B within seconds, and B serves the recording made
// through A.
func TestTierShare(t *testing.T) {
	t.Parallel() // independent: its own relays, data and agents
	base := startTier(t)
	db, key, natsAddr, a := base.db, base.key, base.natsAddr, base.a
	if a.Log().Count("stored this relay's CA, SSH CAs and TLS ticket key in the database") != 1 {
		t.Fatalf("relay A did not store the tier's secrets:\n%s", a.Log())
	}
	bCreds := filepath.Join(t.TempDir(), "nats-user")
	copyTierFile(t, filepath.Join(a.Dir, "nats-user"), bCreds)
	b := StartRelayArgs(t, "--db", db, "--nats", "nats://"+natsAddr, "--nats-creds", bCreds, "--tier-key-file", key)
	if a.FP != b.FP {
		t.Fatalf("relay B (empty data directory) answers with CA %s, relay A with %s", b.FP, a.FP)
	}
	if b.Log().Count("took the tier's CA, SSH CAs and TLS ticket key from the database") != 1 {
		t.Fatalf("relay B does not say it took the tier's secrets:\n%s", b.Log())
	}
	for _, name := range tierFiles {
		x, _ := os.ReadFile(filepath.Join(a.Dir, name))
		y, err := os.ReadFile(filepath.Join(b.Dir, name))
		if err != nil || !bytes.Equal(x, y) {
			t.Fatalf("relay B's %s is not relay A's: %v", name, err)
		}
	}

	// Without the tier key, or with another one, a relay is refused, by name.
	_, errOut, err := try(nil, bin("patchbay-server"), "serve", "--data", t.TempDir(), "--listen", freePort(t), "--db", db)
	if err == nil || !strings.Contains(errOut, "--tier-key-file") {
		t.Fatalf("a relay on PostgreSQL without a tier key: %v\n%s", err, errOut)
	}
	_, errOut, err = try(nil, bin("patchbay-server"), "serve", "--data", t.TempDir(), "--listen", freePort(t), "--db", db,
		"--tier-key-file", newTierKey(t))
	if err == nil || !strings.Contains(errOut, "stored with another tier key") {
		t.Fatalf("a relay with another tier key: %v\n%s", err, errOut)
	}

	token := strings.TrimSpace(run(t, nil, bin("patchbay-server"), "admin-token", "--data", b.Dir, "--db", db))
	adminB := b.Login(token)
	techToken := strings.TrimSpace(strings.SplitN(adminB.Run("api-tokens", "create", "--role", "technician", "--name", "tina"), "\n", 2)[0])
	techA, techB := a.Login(techToken), b.Login(techToken)

	// Enrolled through B (whose CA came from the database); run with A first.
	ag := b.Enroll(adminB.Token(), "--server", a.URL)
	ag.StartWith("--server", a.URL, "--server", b.URL, "--consent-mode", "unattended")
	waitFor(t, 20*time.Second, "the agent online on A", func() bool {
		return linesWith(a.Log().String(), "agent connected", ag.ID) > 0 && adminB.Online(ag.ID)
	})
	var cfg struct {
		Servers []string `json:"servers"`
	}
	raw, _ := os.ReadFile(filepath.Join(ag.Dir, "agent.json"))
	if err := json.Unmarshal(raw, &cfg); err != nil || strings.Join(cfg.Servers, " ") != a.URL+" "+b.URL {
		t.Fatalf("agent.json servers %v (%v), want [%s %s]", cfg.Servers, err, a.URL, b.URL)
	}
	waitFor(t, 10*time.Second, "the agent's SSH host certificate", func() bool {
		_, err := os.Stat(filepath.Join(ag.Dir, "ssh_host_ed25519_key-cert.pub"))
		return err == nil
	})

	// A terminal session through A, recorded by A.
	sshCfg := techA.sshConfig(t)
	cmd := exec.Command("ssh", "-tt", "-F", sshCfg, ag.ID+".patchbay")
	cmd.Env = append(os.Environ(), "PATCHBAY_REASON=INC-77 tier")
	cmd.Stdin = strings.NewReader("echo tier-marker-$((6*7))\nexit\n")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || !strings.Contains(out.String(), "tier-marker-42") {
		t.Fatalf("ssh -tt through A: %v\n%s", err, out.String())
	}
	id := techA.sessions(t)[0].ID
	waitFor(t, 10*time.Second, "the recording stored on A", func() bool {
		var s apiv1.Session
		json.Unmarshal([]byte(techA.Run("sessions", "show", id, "-o", "json")), &s)
		return s.RecordingSize > 0 && s.State == "ended"
	})
	cast := techA.Run("sessions", "recording", id)
	if !strings.Contains(cast, "tier-marker-42") {
		t.Fatalf("the recording on A lacks the session's output:\n%s", tail(cast, 500))
	}

	// A dies; the agent is back on B within seconds.
	connectedOnB := linesWith(b.Log().String(), "agent connected", ag.ID)
	a.proc.kill()
	killed := time.Now()
	waitFor(t, 10*time.Second, "the agent connected to B", func() bool {
		return linesWith(b.Log().String(), "agent connected", ag.ID) > connectedOnB
	})
	back := time.Since(killed)
	waitFor(t, 5*time.Second, "the agent online for a technician on B", func() bool { return techB.Online(ag.ID) })
	t.Logf("the agent was back on relay B %v after relay A was killed", back.Round(time.Millisecond))
	if back > 5*time.Second {
		t.Errorf("the agent took %v to fail over to B, want a few seconds", back)
	}

	// B serves the recording made through A, from the database.
	if got := techB.Run("sessions", "recording", id); got != cast {
		t.Fatalf("relay B serves a different recording (%d bytes, want %d):\n%s", len(got), len(cast), tail(got, 500))
	}
	if _, err := os.Stat(filepath.Join(b.Dir, "recordings", id+".cast")); err == nil {
		t.Fatal("relay B has the recording as a file: the test would not show it came from the database")
	}
}
