package server

import (
	"context"
	"testing"
	"time"

	"github.com/patchbay/patchbay/agent/enroll"
	"github.com/patchbay/patchbay/agent/link"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/api"
	"github.com/patchbay/patchbay/server/store"
)

// A policy stored by another relay of a tier whose announcement this relay
// did not hear (it was cut off from NATS): this relay had sent its agent an
// empty set, then the agent, which got the policy elsewhere, reports a
// result for it. The relay reloads its policies, stores the result as a
// state change and acknowledges it; after the outage, resyncPolicies sends
// the agent the new set.
func TestResultForPolicyMadeElsewhere(t *testing.T) {
	s, _, url, _ := startTestRelay(t, t.TempDir())
	ctx := context.Background()
	now := time.Now()
	sets := make(chan wire.Policies, 8)
	acks := make(chan wire.CheckAck, 8)
	l, agentID := runLinkedAgent(t, s, url, "pc-1", func(env wire.Envelope) error {
		switch env.Type {
		case wire.MsgPolicies:
			var m wire.Policies
			if err := wire.DecodeBody(env, &m); err != nil {
				return err
			}
			sets <- m
		case wire.MsgCheckAck:
			var m wire.CheckAck
			if err := wire.DecodeBody(env, &m); err != nil {
				return err
			}
			acks <- m
		}
		return nil
	})
	set := func() wire.Policies {
		t.Helper()
		select {
		case m := <-sets:
			return m
		case <-time.After(10 * time.Second):
			t.Fatal("no policy set")
		}
		return wire.Policies{}
	}
	if err := l.Session().Send(wire.MsgPoliciesRequest, "", wire.PoliciesRequest{Proto: 1}); err != nil {
		t.Fatal(err)
	}
	if m := set(); len(m.Policies) != 0 {
		t.Fatalf("first set %+v, want none", m)
	}

	// Stored through "another relay": no announcement here.
	p := store.Policy{ID: store.NewID(), Name: "elsewhere", Target: "hostname=pc-1", Check: "builtin:disk-space",
		Params: map[string]string{"path": "/"}, Interval: time.Minute, MaxFixesDay: 3, MaxFixesSiteHour: 10, CreatedBy: "test", CreatedAt: now}
	if err := s.store.CreatePolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	res := wire.CheckResult{ID: store.NewID(), PolicyID: p.ID, State: wire.CheckFailed, Summary: "1% free", At: time.Now().UTC()}
	if err := l.Session().Send(wire.MsgCheckResults, "", wire.CheckResults{Results: []wire.CheckResult{res}}); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-acks:
		if len(a.IDs) != 1 || a.IDs[0] != res.ID {
			t.Fatalf("ack %+v", a)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no check ack")
	}
	states, err := s.store.CheckStates(ctx, agentID)
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 1 || states[0].PolicyID != p.ID || states[0].State != wire.CheckFailed {
		t.Fatalf("states %+v: the result for the policy made elsewhere was not stored", states)
	}

	// Back on the bus: the relay compares and sends the agent its set.
	s.checks.resyncPolicies()
	if m := set(); len(m.Policies) != 1 || m.Policies[0].ID != p.ID {
		t.Fatalf("set after the resync %+v, want the policy made elsewhere", m)
	}
	// Nothing changed since: no second send.
	s.checks.resyncPolicies()
	select {
	case m := <-sets:
		t.Fatalf("a resync with unchanged policies sent %+v", m)
	default:
	}
}

// runLinkedAgent enrolls an agent named host on relay s (at url) and runs
// its link, with control for the relay's messages, until the test ends;
// it returns once the relay holds the link.
func runLinkedAgent(t *testing.T, s *Server, url, host string, control func(wire.Envelope) error) (*link.Link, string) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	secret, hash := api.NewSecret(api.PrefixEnroll)
	if err := s.store.CreateEnrollToken(ctx, store.EnrollToken{ID: store.NewID(), Hash: hash, ExpiresAt: now.Add(time.Hour), CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	id, err := enroll.Enroll(ctx, enroll.Options{Server: url, Token: secret, CAFingerprint: s.ca.Fingerprint(), Dir: t.TempDir(), Hostname: host})
	if err != nil {
		t.Fatal(err)
	}
	l := link.New(id, link.Options{Control: control})
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = l.Run(lctx) }()
	t.Cleanup(func() { cancel(); <-done })
	pollUntil(t, 10*time.Second, "the agent to connect", func() bool { return s.hub.Online(id.AgentID) && l.Session() != nil })
	return l, id.AgentID
}

// A run's restart wish goes only to a link that asked for its policies: a
// new link of the same agent (perhaps an older build after a rollback)
// must ask again.
func TestRestartWishOnlyForALinkThatAskedForPolicies(t *testing.T) {
	s, _, url, _ := startTestRelay(t, t.TempDir())
	sets := make(chan struct{}, 8)
	l, agentID := runLinkedAgent(t, s, url, "pc-1", func(env wire.Envelope) error {
		if env.Type == wire.MsgPolicies {
			sets <- struct{}{}
		}
		return nil
	})
	if s.checks.takesRunReboot(agentID) {
		t.Fatal("the restart wish would go to a link that never asked for its policies")
	}
	if err := l.Session().Send(wire.MsgPoliciesRequest, "", wire.PoliciesRequest{Proto: 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sets:
	case <-time.After(10 * time.Second):
		t.Fatal("no policy set")
	}
	if !s.checks.takesRunReboot(agentID) {
		t.Fatal("a link that asked for its policies does not get the restart wish")
	}
	old := l.Session()
	old.Close(1001, "test: new link") // going away
	pollUntil(t, 10*time.Second, "the agent's new link", func() bool {
		return s.hub.Online(agentID) && l.Session() != nil && l.Session() != old
	})
	if s.checks.takesRunReboot(agentID) {
		t.Fatal("a new link that has not asked for its policies gets the restart wish")
	}
}
