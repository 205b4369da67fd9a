package e2e

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTierSessionEndAcrossRelays: a session opened through relay A to an
// agent on A is ended through relay B (patchbay sessions end, as the
// console's button does: POST /v1/sessions/{id}/end). B forwards the end
// to A, which holds the agent and brokers the session: the session ends,
// its websocket closes, and the audit log has the request, the
// technician's reason and the end.
func TestTierSessionEndAcrossRelays(t *testing.T) {
	t.Parallel() // independent: its own relays, data and agents
	base := startTier(t)
	db, key, natsAddr, a := base.db, base.key, base.natsAddr, base.a
	bCreds := filepath.Join(t.TempDir(), "nats-user")
	copyTierFile(t, filepath.Join(a.Dir, "nats-user"), bCreds)
	b := StartRelayArgs(t, "--db", db, "--nats", "nats://"+natsAddr, "--nats-creds", bCreds, "--tier-key-file", key)

	token := strings.TrimSpace(run(t, nil, bin("patchbay-server"), "admin-token", "--data", a.Dir, "--db", db))
	adminA := a.Login(token)
	techToken := strings.TrimSpace(strings.SplitN(adminA.Run("api-tokens", "create", "--role", "technician", "--name", "tina"), "\n", 2)[0])
	techA, techB := a.Login(techToken), b.Login(techToken)
	ag := a.Enroll(adminA.Token())
	ag.StartWith("--server", a.URL, "--consent-mode", "unattended")
	waitFor(t, 20*time.Second, "the agent online on A and seen on B", func() bool {
		return linesWith(a.Log().String(), "agent connected", ag.ID) > 0 && techB.Online(ag.ID)
	})

	cc := newConsoleClient(t, a)
	ws := cc.openSession(cc.login(techToken), ag.ID, "INC-91 opened on A", "shell,exec")
	sessions := techA.sessions(t)
	if len(sessions) != 1 || sessions[0].State != "approved" {
		t.Fatalf("sessions on A: %+v, want one live", sessions)
	}
	id := sessions[0].ID

	out := techB.Run("sessions", "end", id, "--reason", "INC-91 ended from B")
	if !strings.Contains(out, "ending session "+id) {
		t.Fatalf("sessions end through B said %q", out)
	}
	if linesWith(b.Log().String(), "forwarding a session to the relay that holds the agent", ag.ID, "/end") != 1 {
		t.Fatalf("relay B did not forward the end to A:\n%s", tail(b.Log().String(), 3000))
	}
	code, text := closeOf(t, ws)
	t.Logf("the session's websocket closed: %d %q", code, text)
	waitFor(t, 10*time.Second, "the session ended in the store", func() bool {
		s := techB.sessions(t)
		return len(s) == 1 && s[0].State == "ended"
	})

	var records []struct {
		Actor  string            `json:"actor"`
		Action string            `json:"action"`
		Target string            `json:"target"`
		Detail map[string]string `json:"detail"`
	}
	if err := json.Unmarshal([]byte(adminA.Run("audit", "list", "-o", "json")), &records); err != nil {
		t.Fatal(err)
	}
	requests, ends := 0, 0
	for _, r := range records {
		if r.Target != id {
			continue
		}
		switch r.Action {
		case "session.end.request":
			if strings.Contains(r.Actor, "tina") && r.Detail["reason"] == "INC-91 ended from B" {
				requests++
			}
		case "session.end":
			ends++
		}
	}
	if requests != 1 || ends != 1 {
		t.Fatalf("audit log: %d session.end.request by tina with her reason, %d session.end; want one each:\n%s",
			requests, ends, tail(adminA.Run("audit", "list"), 3000))
	}

	// The forwarding headers on the end route are a relay's only: a client
	// that sends them to A without a relay certificate is refused.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, _ := http.NewRequest("POST", a.URL+"/v1/sessions/"+id+"/end", nil)
	req.Header.Set("Authorization", "Bearer "+techToken)
	req.Header.Set("X-Patchbay-Relay", "forged")
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("a forged relay header on the end route: HTTP %d, want 403", res.StatusCode)
	}

	// Ended already: ending it again through B is refused as on one relay.
	if _, stderr, err := techB.Try("sessions", "end", id); err == nil || !strings.Contains(stderr, "not live") {
		t.Fatalf("ending an ended session through B: %v %s", err, stderr)
	}
}
