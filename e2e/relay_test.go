package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/wire"
	_ "modernc.org/sqlite"
)

// Three agents enroll and come online; their inventory and scoped tags are
// visible; selectors pick them; a used-up token enrolls nobody more.
func TestEnrollAndList(t *testing.T) {
	r := StartRelay(t)
	admin := r.Login(r.AdminToken())
	token := admin.Token("--tags", "site=paris", "--uses", "3")
	agents := []*Agent{
		r.Enroll(token).Start(),
		r.Enroll(token, "--tags", "role=kiosk").Start(),
		r.Enroll(token, "--tags", "site=lyon").Start(), // the token's scoped tag wins
	}
	waitFor(t, 20*time.Second, "three agents online with their inventory", func() bool {
		n := 0
		for _, a := range admin.Agents("") {
			if a.Online && a.OS != "" { // inventory lands with the next batch write
				n++
			}
		}
		return n == 3
	})
	list := admin.Agents("")
	for _, a := range list {
		if a.OS != "linux" || a.Arch == "" || a.Hostname == "" || a.Version == "" || a.LastSeen == nil {
			t.Errorf("agent %s: incomplete inventory %+v", a.ID, a)
		}
		if a.Tags["site"] != "paris" {
			t.Errorf("agent %s: site tag %q, want the token's scoped paris", a.ID, a.Tags["site"])
		}
	}
	if got := admin.Agents("role=kiosk"); len(got) != 1 || got[0].ID != agents[1].ID {
		t.Errorf("role=kiosk selected %v", ids(got))
	}
	if got := admin.Agents("site in (paris,berlin),os=linux,role!=kiosk"); len(got) != 2 {
		t.Errorf("compound selector selected %v", ids(got))
	}
	if got := admin.Agents("id=" + agents[2].ID); len(got) != 1 {
		t.Errorf("id selector selected %v", ids(got))
	}
	// JSON field names are a contract for scripts.
	raw := admin.Run("agents", "list", "-o", "json")
	for _, f := range []string{`"id"`, `"hostname"`, `"os"`, `"arch"`, `"version"`, `"tags"`, `"online"`, `"last_seen"`} {
		if !strings.Contains(raw, f) {
			t.Errorf("agents list -o json lacks %s", f)
		}
	}
	table := admin.Run("agents", "list")
	if !strings.Contains(table, agents[0].ID) || !strings.Contains(strings.ToUpper(table), "HOSTNAME") {
		t.Errorf("table output:\n%s", table)
	}
	if _, stderr, err := admin.Try("agents", "list", "--target", "site=="); err == nil || !strings.Contains(stderr, "selector") {
		t.Errorf("bad selector: err %v, stderr %q", err, stderr)
	}

	// The token is used up: a fourth enrollment is refused and writes nothing.
	dir := filepath.Join(t.TempDir(), "fourth")
	_, stderr, err := try(nil, bin("patchbay-agent"), "enroll", "--server", r.URL, "--token", token, "--ca-fingerprint", r.FP, "--data", dir)
	if err == nil || !strings.Contains(stderr, "no uses left") {
		t.Fatalf("fourth enrollment: err %v, stderr %q", err, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "agent.json")); err == nil {
		t.Fatal("a refused enrollment left an identity behind")
	}
	if n := len(admin.Agents("")); n != 3 {
		t.Fatalf("%d agents after a refused enrollment, want 3", n)
	}
}

func ids(list []apiv1.Agent) []string {
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = a.ID
	}
	return out
}

// An agent killed goes offline at once (the kernel closes its socket); one
// frozen (SIGSTOP, the socket stays open) goes offline within the keepalive
// window of three heartbeats and comes back by itself when thawed.
func TestOfflineDetection(t *testing.T) {
	r := StartRelay(t)
	admin := r.Login(r.AdminToken())
	token := admin.Token("--uses", "2")
	killed, frozen := r.Enroll(token).Start(), r.Enroll(token).Start()
	waitFor(t, 20*time.Second, "agents online", func() bool { return admin.Online(killed.ID) && admin.Online(frozen.ID) })

	killed.proc.kill()
	d := waitFor(t, 5*time.Second, "killed agent offline", func() bool { return !admin.Online(killed.ID) })
	t.Logf("killed agent offline after %v", d)

	frozen.proc.signal(syscall.SIGSTOP)
	// Heartbeat 1s: the relay drops a link silent for 3s.
	d = waitFor(t, 8*time.Second, "frozen agent offline", func() bool { return !admin.Online(frozen.ID) })
	t.Logf("frozen agent offline after %v (keepalive window 3s)", d)
	frozen.proc.signal(syscall.SIGCONT)
	waitFor(t, 15*time.Second, "thawed agent back online", func() bool { return admin.Online(frozen.ID) })

	a := admin.Agents("id=" + killed.ID)[0]
	if a.LastSeen == nil || time.Since(*a.LastSeen) > time.Minute {
		t.Errorf("offline agent's last_seen = %v", a.LastSeen)
	}
}

// A relay killed and started again gets every agent back with no manual step.
func TestRelayRestart(t *testing.T) {
	r := StartRelay(t)
	admin := r.Login(r.AdminToken())
	token := admin.Token("--uses", "3")
	var agents []*Agent
	for i := 0; i < 3; i++ {
		agents = append(agents, r.Enroll(token).Start())
	}
	allOnline := func() bool {
		for _, a := range agents {
			if !admin.Online(a.ID) {
				return false
			}
		}
		return true
	}
	waitFor(t, 20*time.Second, "agents online", allOnline)
	// A graceful stop closes every link and exits within 10 s.
	r.proc.stop(t)
	r.Start()
	d := waitFor(t, 30*time.Second, "all agents back after a graceful restart", allOnline)
	t.Logf("all agents back %v after a graceful restart", d)
	r.proc.kill() // SIGKILL: no goodbye to anyone
	time.Sleep(500 * time.Millisecond)
	r.Start()
	d = waitFor(t, 30*time.Second, "all agents back after the relay was killed", allOnline)
	t.Logf("all agents back %v after the relay answered again", d)
	// The session ticket key lives in the data directory: agents resume their
	// TLS sessions with the restarted relay instead of full handshakes.
	if n := r.Log().Count(`"tls_resumed":true`); n < len(agents) {
		t.Errorf("%d resumed TLS sessions after the restart, want %d", n, len(agents))
	}
	for _, a := range agents {
		if a.proc.exited() {
			t.Errorf("agent %s exited during the relay restart", a.ID)
		}
	}
}

// Revoking an agent closes its link at once; its next handshakes are refused,
// including after a relay restart.
func TestRevokedAgentRefused(t *testing.T) {
	r := StartRelay(t)
	admin := r.Login(r.AdminToken())
	token := admin.Token("--uses", "2")
	bad, good := r.Enroll(token).Start(), r.Enroll(token).Start()
	waitFor(t, 20*time.Second, "agents online", func() bool { return admin.Online(bad.ID) && admin.Online(good.ID) })

	admin.Run("agents", "revoke", bad.ID)
	waitFor(t, 3*time.Second, "revoked agent offline", func() bool { return !admin.Online(bad.ID) })
	waitFor(t, 10*time.Second, "a refused handshake in the relay log", func() bool {
		return r.Log().Count("revoked") >= 2
	})
	r.proc.kill()
	r.Start()
	waitFor(t, 20*time.Second, "the other agent back", func() bool { return admin.Online(good.ID) })
	time.Sleep(3 * time.Second) // the revoked agent retries with backoff meanwhile
	a := admin.Agents("id=" + bad.ID)[0]
	if a.Online || !a.Revoked {
		t.Fatalf("revoked agent: online=%v revoked=%v", a.Online, a.Revoked)
	}
	// The refusal happens at the TLS handshake: a client with the revoked
	// certificate cannot even reach HTTP.
	_, err := tls.Dial("tcp", r.Addr, agentTLS(t, bad))
	if err == nil {
		// TLS 1.3 reports the server's alert on the first read.
		conn, _ := tls.Dial("tcp", r.Addr, agentTLS(t, bad))
		conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") && !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked certificate handshake: %v", err)
	}
	if !strings.Contains(admin.Run("audit", "list"), "agent.revoke") {
		t.Error("revocation not in the audit log")
	}
}

// agentTLS builds a client TLS config from an enrolled agent's files.
func agentTLS(t *testing.T, a *Agent) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(a.Dir, "agent.crt"), filepath.Join(a.Dir, "agent.key"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(a.Dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: "127.0.0.1"}
}

// A wrong CA fingerprint is refused by enroll and by login, and nothing is written.
func TestWrongFingerprint(t *testing.T) {
	r := StartRelay(t)
	admin := r.Login(r.AdminToken())
	token := admin.Token()
	wrong := "sha256:" + strings.Repeat("ab", 32)
	dir := filepath.Join(t.TempDir(), "agent")
	_, stderr, err := try(nil, bin("patchbay-agent"), "enroll", "--server", r.URL, "--token", token, "--ca-fingerprint", wrong, "--data", dir)
	if err == nil || !strings.Contains(stderr, "mismatch") {
		t.Fatalf("enroll with a wrong fingerprint: err %v, stderr %q", err, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "agent.json")); err == nil {
		t.Fatal("identity written despite the mismatch")
	}
	cfg := filepath.Join(t.TempDir(), "cli.json")
	_, stderr, err = try([]string{"PATCHBAY_CONFIG=" + cfg}, bin("patchbay"), "login", "--server", r.URL, "--token", r.AdminToken(), "--ca-fingerprint", wrong)
	if err == nil || !strings.Contains(stderr, "mismatch") {
		t.Fatalf("login with a wrong fingerprint: err %v, stderr %q", err, stderr)
	}
	if _, err := os.Stat(cfg); err == nil {
		t.Fatal("config written despite the mismatch")
	}
	// The token was not spent by the refused attempt.
	r.Enroll(token)
}

func TestTokenExpiryAndRevocation(t *testing.T) {
	r := StartRelay(t)
	admin := r.Login(r.AdminToken())
	short := admin.Token("--ttl", "1s")
	time.Sleep(1500 * time.Millisecond)
	dir := filepath.Join(t.TempDir(), "a")
	_, stderr, err := try(nil, bin("patchbay-agent"), "enroll", "--server", r.URL, "--token", short, "--ca-fingerprint", r.FP, "--data", dir)
	if err == nil || !strings.Contains(stderr, "expired") {
		t.Fatalf("expired token: err %v, stderr %q", err, stderr)
	}
	_, stderr, err = try(nil, bin("patchbay-agent"), "enroll", "--server", r.URL, "--token", "pbe_nonsense", "--ca-fingerprint", r.FP, "--data", dir)
	if err == nil || !strings.Contains(stderr, "unknown") {
		t.Fatalf("unknown token: err %v, stderr %q", err, stderr)
	}
	revoked := admin.Token("--uses", "0")
	var id string
	for _, line := range strings.Split(admin.Run("tokens", "list", "-o", "json"), "\n") {
		if m := regexp.MustCompile(`"id": "([^"]+)"`).FindStringSubmatch(line); m != nil {
			id = m[1] // newest first: the last token created
			break
		}
	}
	admin.Run("tokens", "revoke", id)
	_, stderr, err = try(nil, bin("patchbay-agent"), "enroll", "--server", r.URL, "--token", revoked, "--ca-fingerprint", r.FP, "--data", dir)
	if err == nil || !strings.Contains(stderr, "revoked") {
		t.Fatalf("revoked token: err %v, stderr %q", err, stderr)
	}
	if n := len(admin.Agents("")); n != 0 {
		t.Fatalf("%d agents enrolled with bad tokens", n)
	}
}

// Roles: a viewer reads but cannot create tokens; a bad token is a 401 with
// a hint.
func TestRoles(t *testing.T) {
	r := StartRelay(t)
	admin := r.Login(r.AdminToken())
	viewerToken := strings.TrimSpace(strings.SplitN(admin.Run("api-tokens", "create", "--role", "viewer", "--name", "auditor"), "\n", 2)[0])
	viewer := r.Login(viewerToken)
	viewer.Run("agents", "list")
	viewer.Run("audit", "list")
	_, stderr, err := viewer.Try("tokens", "create")
	if err == nil || !strings.Contains(stderr, "admin") {
		t.Fatalf("viewer creating a token: err %v, stderr %q", err, stderr)
	}
	cfg := filepath.Join(t.TempDir(), "cli.json")
	_, stderr, err = try([]string{"PATCHBAY_CONFIG=" + cfg}, bin("patchbay"), "login", "--server", r.URL, "--token", "pbt_wrong", "--ca-fingerprint", r.FP)
	if err == nil || !strings.Contains(stderr, "token") {
		t.Fatalf("login with a bad token: err %v, stderr %q", err, stderr)
	}
	log := admin.Run("audit", "list", "-o", "json")
	if !strings.Contains(log, `"login"`) || !strings.Contains(log, "auditor") {
		t.Errorf("logins are not audited:\n%s", log)
	}
}

// audit verify passes on an intact log and names the first bad record after
// a row is edited or removed in the database behind the relay's back.
func TestAuditVerifyDetectsTampering(t *testing.T) {
	r := StartRelay(t)
	admin := r.Login(r.AdminToken())
	for i := 0; i < 3; i++ {
		admin.Token()
	}
	if out := admin.Run("audit", "verify"); !strings.Contains(out, "verified") {
		t.Fatalf("audit verify on an intact log: %q", out)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(r.Dir, "patchbay.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE audit_log SET actor = 'nobody' WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := admin.Try("audit", "verify")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr, "record 3") {
		t.Fatalf("verify after an edit: err %v, stderr %q", err, stderr)
	}
	// Deleting an earlier row: verification now fails first at the gap.
	if _, err := db.Exec(`DELETE FROM audit_log WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	_, stderr, err = admin.Try("audit", "verify")
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr, "record 2") {
		t.Fatalf("verify after a delete: err %v, stderr %q", err, stderr)
	}
}

// Garbage on the agent endpoint closes only the offending connection, with a
// reason; a connected agent does not notice.
func TestGarbageDoesNotDisturbAgents(t *testing.T) {
	r := StartRelay(t)
	admin := r.Login(r.AdminToken())
	token := admin.Token("--uses", "2")
	victim := r.Enroll(token).Start()
	attacker := r.Enroll(token) // enrolled, but its identity is used by the test directly
	waitFor(t, 20*time.Second, "victim online", func() bool { return admin.Online(victim.ID) })
	connectedBefore := r.Log().Count(`"agent connected"`)

	// Raw bytes instead of TLS.
	if c, err := net.Dial("tcp", r.Addr); err == nil {
		c.Write([]byte("\x16\x03\x01garbage garbage garbage\r\n\r\n"))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		c.Read(make([]byte, 64))
		c.Close()
	}

	hello := func() []byte {
		env, _ := wire.NewEnvelope(wire.MsgHello, "", wire.Hello{Proto: wire.Proto, Inventory: wire.Inventory{Hostname: "evil", OS: "linux", Arch: "amd64", Version: "x"}})
		msg, _ := wire.AppendControl(nil, env)
		return msg
	}()
	unknown := func() []byte {
		msg, _ := wire.AppendControl(nil, wire.Envelope{Type: "format-disk"})
		return msg
	}()
	cases := []struct {
		name   string
		msgs   [][]byte
		code   int
		reason string
	}{
		{"garbage frame", [][]byte{[]byte("\xff\xfe\xfd\xfc\xfb\xfa")}, websocket.CloseProtocolError, "unknown frame type"},
		{"frame before handshake", [][]byte{append(wire.AppendHeader(nil, wire.TypeData, 1), 'x')}, websocket.CloseProtocolError, "before the handshake"},
		{"unknown type first", [][]byte{unknown}, websocket.CloseProtocolError, "first message must be"},
		{"unknown type after hello", [][]byte{hello, unknown}, websocket.CloseProtocolError, "unexpected message type"},
		// gorilla answers an over-limit frame header itself with 1009 and no text.
		{"oversized", [][]byte{make([]byte, wire.MaxMessage+10)}, websocket.CloseMessageTooBig, ""},
		{"hostile inventory", [][]byte{func() []byte {
			env, _ := wire.NewEnvelope(wire.MsgHello, "", wire.Hello{Proto: wire.Proto, Inventory: wire.Inventory{Hostname: "a\x00b", OS: "linux", Arch: "amd64"}})
			m, _ := wire.AppendControl(nil, env)
			return m
		}()}, websocket.CloseProtocolError, "hostname"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := websocket.Dialer{TLSClientConfig: agentTLS(t, attacker), Subprotocols: []string{"patchbay.v1"}, HandshakeTimeout: 5 * time.Second}
			ws, _, err := d.Dial("wss://"+r.Addr+"/v1/agent/connect", nil)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer ws.Close()
			for _, m := range tc.msgs {
				ws.WriteMessage(websocket.BinaryMessage, m)
			}
			ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			for {
				_, _, err = ws.ReadMessage()
				if err != nil {
					break
				}
			}
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != tc.code || !strings.Contains(ce.Text, tc.reason) {
				t.Fatalf("close = %v, want code %d with %q", err, tc.code, tc.reason)
			}
		})
	}
	// No subprotocol, or an Origin header: refused before the upgrade.
	for _, hdr := range []map[string][]string{{"Origin": {"https://evil.example"}}, nil} {
		d := websocket.Dialer{TLSClientConfig: agentTLS(t, attacker), HandshakeTimeout: 5 * time.Second}
		if hdr != nil {
			d.Subprotocols = []string{"patchbay.v1"}
		}
		if ws, resp, err := d.Dial("wss://"+r.Addr+"/v1/agent/connect", hdr); err == nil {
			ws.Close()
			t.Errorf("upgrade with %v accepted", hdr)
		} else if resp == nil || resp.StatusCode < 400 {
			t.Errorf("upgrade with %v: %v", hdr, err)
		}
	}

	if !admin.Online(victim.ID) || r.proc.exited() {
		t.Fatal("the victim agent or the relay went down")
	}
	if after := r.Log().Count(`"agent connected"`); after != connectedBefore+1 { // +1: the attacker's one valid hello
		t.Errorf("agent connections went from %d to %d: the victim reconnected?", connectedBefore, after)
	}
	if n := r.Log().Count("protocol violation"); n < 4 {
		t.Errorf("%d protocol-violation log lines, want one per bad link", n)
	}
}
