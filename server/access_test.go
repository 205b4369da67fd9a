package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/agent/enroll"
	"github.com/patchbay/patchbay/agent/identity"
	"github.com/patchbay/patchbay/agent/link"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/api"
	"github.com/patchbay/patchbay/server/store"
)

// call sends an API request with a bearer token and decodes a JSON answer.
func call(t *testing.T, c *http.Client, method, url, token string, in, out any) int {
	t.Helper()
	var body bytes.Buffer
	if in != nil {
		json.NewEncoder(&body).Encode(in)
	}
	req, _ := http.NewRequest(method, url, &body)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if out != nil && res.StatusCode/100 == 2 {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return res.StatusCode
}

// revocationAgent is a real agent link that reports the ssh_revoked
// messages it is sent.
type revocationAgent struct {
	got    chan wire.SSHRevoked
	cancel context.CancelFunc
	done   chan struct{}
}

func startRevocationAgent(t *testing.T, id *identity.Identity) *revocationAgent {
	t.Helper()
	a := &revocationAgent{got: make(chan wire.SSHRevoked, 16), done: make(chan struct{})}
	l := link.New(id, link.Options{Control: func(env wire.Envelope) error {
		if env.Type == wire.MsgSSHRevoked {
			var m wire.SSHRevoked
			if err := wire.DecodeBody(env, &m); err != nil {
				return err
			}
			a.got <- m
		}
		return nil
	}})
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go func() {
		defer close(a.done)
		_ = l.Run(ctx)
	}()
	t.Cleanup(a.stop)
	return a
}

func (a *revocationAgent) stop() {
	a.cancel()
	<-a.done
}

func (a *revocationAgent) next(t *testing.T) wire.SSHRevoked {
	t.Helper()
	select {
	case m := <-a.got:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("the agent was not told of the revoked certificates")
	}
	return wire.SSHRevoked{}
}

func TestRevokedTokenCertificatesReachEveryAgent(t *testing.T) {
	dir := t.TempDir()
	s, c, url, stop := startTestRelay(t, dir)
	ctx := context.Background()
	now := time.Now()
	adminSecret, _, err := api.MintAPIToken(ctx, s.store, "test", apiv1.RoleAdmin, "admin", 0, now)
	if err != nil {
		t.Fatal(err)
	}
	aliceSecret, alice, err := api.MintAPIToken(ctx, s.store, "test", apiv1.RoleTechnician, "alice", 0, now)
	if err != nil {
		t.Fatal(err)
	}
	enrollSecret, hash := api.NewSecret(api.PrefixEnroll)
	if err := s.store.CreateEnrollToken(ctx, store.EnrollToken{ID: store.NewID(), Hash: hash, ExpiresAt: now.Add(time.Hour), CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	id, err := enroll.Enroll(ctx, enroll.Options{Server: url, Token: enrollSecret, CAFingerprint: s.ca.Fingerprint(), Dir: t.TempDir(), Hostname: "pc-1"})
	if err != nil {
		t.Fatal(err)
	}

	// alice gets two certificates; both are recorded.
	var serials []uint64
	for range 2 {
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		sshPub, _ := ssh.NewPublicKey(pub)
		var cert apiv1.SSHCert
		if code := call(t, c, "POST", url+"/v1/ssh/certificate", aliceSecret, apiv1.SSHCertRequest{PublicKey: string(ssh.MarshalAuthorizedKey(sshPub))}, &cert); code != 200 {
			t.Fatalf("ssh certificate: %d", code)
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(cert.Certificate))
		if err != nil {
			t.Fatal(err)
		}
		serials = append(serials, k.(*ssh.Certificate).Serial)
	}

	a := startRevocationAgent(t, id)
	pollUntil(t, 10*time.Second, "the agent to connect", func() bool { return s.hub.Online(id.AgentID) })
	// Revoked by name; the connected agent is told before the answer.
	if code := call(t, c, "DELETE", url+"/v1/api-tokens/alice", adminSecret, nil, nil); code != http.StatusNoContent {
		t.Fatalf("revoke: %d", code)
	}
	answered := time.Now()
	checkSerials(t, a.next(t), serials)
	if d := time.Since(answered); d > time.Second {
		t.Errorf("the connected agent was told %v after the revoke answered", d)
	}
	if code := call(t, c, "POST", url+"/v1/ssh/certificate", aliceSecret, apiv1.SSHCertRequest{PublicKey: "x"}, nil); code != http.StatusUnauthorized {
		t.Errorf("the revoked token's next request: %d, want 401", code)
	}
	recs, err := s.store.ListAudit(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs {
		if r.Action == "api-token.revoke" && r.Target == alice.ID && r.Detail["ssh_certificates_revoked"] == "2" && r.Detail["name"] == "alice" {
			found = true
		}
	}
	if !found {
		t.Errorf("no api-token.revoke audit record naming 2 certificates: %+v", recs)
	}

	// An agent that connects later is told right after its welcome...
	a.stop()
	a = startRevocationAgent(t, id)
	checkSerials(t, a.next(t), serials)
	a.stop()
	// ... also by a relay that restarted (the list comes from the store).
	stop()
	startTestRelayAt(t, dir, strings.TrimPrefix(url, "https://"))
	a = startRevocationAgent(t, id)
	checkSerials(t, a.next(t), serials)
}

func checkSerials(t *testing.T, m wire.SSHRevoked, want []uint64) {
	t.Helper()
	got := map[uint64]bool{}
	for _, c := range m.Certs {
		if c.KeyID != "alice" || time.Until(c.ValidBefore) < time.Hour {
			t.Errorf("revoked certificate %+v", c)
		}
		got[c.Serial] = true
	}
	if len(got) != len(want) {
		t.Errorf("revoked %v, want %v", m.Certs, want)
	}
	for _, s := range want {
		if !got[s] {
			t.Errorf("serial %d not revoked: %+v", s, m.Certs)
		}
	}
}
