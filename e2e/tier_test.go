package e2e

import (
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/pgtest"
)

// tierFiles are what the relays of a tier share: the agent CA, the SSH
// user and host CAs, and the TLS session ticket key (so that an agent
// resumes its TLS session on any relay). The relays share them through the
// database (tier_share_test.go); copying them by hand, as before, still
// works. Each relay makes its own server certificate with the shared CA.
var tierFiles = []string{"ca.crt", "ca.key", "ssh_user_ca", "ssh_user_ca.pub", "ssh_host_ca", "ssh_host_ca.pub", "tls-ticket.key"}

// startTierRelay starts a relay whose data directory first gets copies of
// from's tier files (and of extra files of from's, by name).
func startTierRelay(t *testing.T, from *Relay, args ...string) *Relay {
	t.Helper()
	r := &Relay{Dir: filepath.Join(t.TempDir(), "relay"), Addr: freePort(t), Heartbeat: "1s", Args: args, t: t}
	r.URL = "https://" + r.Addr
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range tierFiles {
		copyTierFile(t, filepath.Join(from.Dir, name), filepath.Join(r.Dir, name))
	}
	r.Start()
	r.FP = strings.TrimSpace(run(t, nil, bin("patchbay-server"), "fingerprint", "--data", r.Dir))
	return r
}

func copyTierFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatalf("copy a tier file: %v", err)
	}
	fi, err := os.Stat(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}

// TestTier: two relays on one PostgreSQL, relay A running the embedded
// NATS and relay B connected to it. An agent on A is online for a
// technician on B; revoking an API token on B ends its access on A; revoking
// the agent on B closes its link on A within a second.
// sharedPG is the one PostgreSQL the tier tests share, a database each;
// it starts at the first NewDB and TestMain stops it.
var sharedPG = pgtest.New()

// tierBase is relay A of a tier (with the embedded NATS) on a fresh
// database, and what the tier's other relays join it with.
type tierBase struct {
	db, key, natsAddr, creds string
	a                        *Relay
}

// startTier starts relay A: a database of sharedPG, a new tier key, the
// embedded NATS on a free port; extra are more flags for A.
func startTier(t *testing.T, extra ...string) tierBase {
	t.Helper()
	b := tierBase{db: sharedPG.NewDB(t), natsAddr: freePort(t), key: newTierKey(t)}
	b.a = StartRelayArgs(t, append([]string{"--db", b.db, "--nats", "embedded", "--nats-listen", b.natsAddr, "--tier-key-file", b.key}, extra...)...)
	b.creds = filepath.Join(b.a.Dir, "nats-user")
	return b
}

func TestTier(t *testing.T) {
	t.Parallel() // independent: its own relays, data and agents
	base := startTier(t)
	db, key, natsAddr, creds, a := base.db, base.key, base.natsAddr, base.creds, base.a
	fi, err := os.Stat(creds)
	if err != nil {
		t.Fatalf("--nats embedded wrote no credentials: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", creds, fi.Mode().Perm())
	}
	if a.Log().Count("--nats nats://"+natsAddr) == 0 {
		t.Fatalf("relay A does not say how other relays connect:\n%s", a.Log())
	}
	// B gets a copy of the credentials, as on another machine.
	bCreds := filepath.Join(t.TempDir(), "nats-user")
	copyTierFile(t, creds, bCreds)
	b := startTierRelay(t, a, "--db", db, "--nats", "nats://"+natsAddr, "--nats-creds", bCreds, "--tier-key-file", key)
	if a.FP != b.FP {
		t.Fatalf("relays of a tier answer with different CAs: %s and %s", a.FP, b.FP)
	}

	// Without the credentials the embedded NATS refuses a relay.
	_, errOut, err := try(nil, bin("patchbay-server"), "serve", "--data", t.TempDir(), "--listen", freePort(t), "--db", db,
		"--nats", "nats://"+natsAddr, "--tier-key-file", key)
	if err == nil || !strings.Contains(errOut, "connect to NATS") {
		t.Fatalf("a relay without NATS credentials: %v\n%s", err, errOut)
	}

	// Nor does a relay join a tier with a database of its own.
	_, errOut, err = try(nil, bin("patchbay-server"), "serve", "--data", t.TempDir(), "--listen", freePort(t),
		"--nats", "nats://"+natsAddr, "--nats-creds", bCreds)
	if err == nil || !strings.Contains(errOut, "--db postgres://") {
		t.Fatalf("a relay with --nats and SQLite: %v\n%s", err, errOut)
	}

	token := strings.TrimSpace(run(t, nil, bin("patchbay-server"), "admin-token", "--data", a.Dir, "--db", db))
	adminA, adminB := a.Login(token), b.Login(token)
	ag := a.Enroll(adminA.Token()).Start()
	waitFor(t, 15*time.Second, "the agent online on A", func() bool { return adminA.Online(ag.ID) })
	waitFor(t, 5*time.Second, "B to see the agent online on A", func() bool { return adminB.Online(ag.ID) })

	// A technician on A whose API token is revoked on B: relay A ends the
	// token's access and tells its agent of the revoked certificate.
	techToken := strings.TrimSpace(strings.SplitN(adminA.Run("api-tokens", "create", "--role", "technician", "--name", "tina"), "\n", 2)[0])
	tech := a.Login(techToken)
	tech.Run("ssh-config") // an SSH certificate, issued by A
	if out := adminB.Run("api-tokens", "revoke", "tina"); !strings.Contains(out, "Revoked API token tina") {
		t.Fatalf("revoke on B said %q", out)
	}
	waitFor(t, 5*time.Second, "relay A to end tina's access and tell its agent", func() bool {
		for _, l := range strings.Split(a.Log().String(), "\n") {
			if strings.Contains(l, `"access ended"`) && strings.Contains(l, `"agents_told":1`) {
				return true
			}
		}
		return false
	})

	// Revoking the agent on B closes its link on A within a second.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, _ := http.NewRequest("POST", b.URL+"/v1/agents/"+ag.ID+"/revoke", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	closedBefore := linesWith(a.Log().String(), "agent disconnected", ag.ID)
	start := time.Now()
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("revoke on B: HTTP %d", res.StatusCode)
	}
	waitFor(t, time.Second, "relay A to close the revoked agent's link (within 1s of the revocation on B)", func() bool {
		return linesWith(a.Log().String(), "agent disconnected", ag.ID) > closedBefore
	})
	t.Logf("relay A closed the link %v after the revocation on B", time.Since(start).Round(time.Millisecond))
	// A refuses it from now on, and no relay shows it online.
	waitFor(t, 10*time.Second, "relay A to refuse the revoked agent's reconnect", func() bool {
		return linesWith(a.Log().String(), "refused revoked agent at the TLS handshake", ag.ID) > 0
	})
	waitFor(t, 5*time.Second, "the agent offline on B", func() bool { return !adminB.Online(ag.ID) })
	if got := adminA.Agents("id=" + ag.ID); len(got) != 1 || !got[0].Revoked || got[0].Online {
		t.Fatalf("relay A lists the agent as %+v, want revoked and offline", got)
	}
}

// linesWith counts the lines of log that contain every one of subs.
func linesWith(log string, subs ...string) int {
	n := 0
next:
	for _, l := range strings.Split(log, "\n") {
		for _, s := range subs {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		n++
	}
	return n
}

// TestTierNATSOutage: the tier's NATS (embedded in relay N) goes down;
// relays A and B keep serving, a revocation made on B meanwhile is stored
// and answered with a clear error, and when NATS is back A catches up from
// the database and closes the agent's link; presence comes back by itself.
func TestTierNATSOutage(t *testing.T) {
	base := startTier(t)
	db, key, natsAddr, creds, n := base.db, base.key, base.natsAddr, base.creds, base.a
	a := startTierRelay(t, n, "--db", db, "--nats", "nats://"+natsAddr, "--nats-creds", creds, "--tier-key-file", key)
	b := startTierRelay(t, n, "--db", db, "--nats", "nats://"+natsAddr, "--nats-creds", creds, "--tier-key-file", key)
	token := strings.TrimSpace(run(t, nil, bin("patchbay-server"), "admin-token", "--data", a.Dir, "--db", db))
	adminA, adminB := a.Login(token), b.Login(token)
	keep := a.Enroll(adminA.Token()).Start()
	gone := a.Enroll(adminA.Token()).Start()
	waitFor(t, 15*time.Second, "B to see both agents online on A", func() bool { return adminB.Online(keep.ID) && adminB.Online(gone.ID) })

	n.proc.stop(t)
	waitFor(t, 10*time.Second, "A and B to notice the NATS outage", func() bool {
		return a.Log().Count("lost the NATS server") > 0 && b.Log().Count("lost the NATS server") > 0
	})
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, _ := http.NewRequest("POST", b.URL+"/v1/agents/"+gone.ID+"/revoke", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("revoke on B during the NATS outage: HTTP %d, want 503", res.StatusCode)
	}
	// A still serves: its agents are online for its own technicians.
	if !adminA.Online(keep.ID) {
		t.Fatal("relay A lost its agent during the NATS outage")
	}

	n.Start() // the same port, data and credentials
	waitFor(t, 15*time.Second, "A to catch up and close the revoked agent's link", func() bool {
		return a.Log().Count("caught up with revocations made while NATS was unreachable") > 0 &&
			linesWith(a.Log().String(), "agent disconnected", gone.ID) > 0
	})
	waitFor(t, 10*time.Second, "B to see the kept agent online and the revoked one offline", func() bool {
		return adminB.Online(keep.ID) && !adminB.Online(gone.ID)
	})
}
