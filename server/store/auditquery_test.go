package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/audit"
)

func TestQueryAudit(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	const agent = "0190a000-0000-7000-8000-00000000a1a1"
	const other = "0190a000-0000-7000-8000-00000000b2b2"
	base := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	add := func(at time.Time, actor, action, target string, detail map[string]string) {
		t.Helper()
		if _, err := s.AppendAudit(ctx, audit.Record{Time: at, Actor: actor, Action: action, Target: target, Detail: detail}); err != nil {
			t.Fatal(err)
		}
	}
	add(base, "Alice (admin, api token 1a2b3c4d)", "token.create", "tok-1", nil)                                            // 1
	add(base.Add(500*time.Millisecond), "bob (technician)", "session.request", "s-1", map[string]string{"agent_id": agent}) // 2
	add(base.Add(time.Second), "agent "+agent+" (carol)", "session.approved", "s-1", nil)                                   // 3
	add(base.Add(time.Second+123456*time.Microsecond), "alice (admin)", "agent.revoke", other, nil)                         // 4
	add(base.Add(2*time.Second), "enroll-token x", "agent.enroll", agent, nil)                                              // 5
	add(base.Add(3*time.Second), "100%_sure (viewer)", "session.recording.read", "s-2", nil)                                // 6
	add(base.Add(4*time.Second), "dave (admin)", "sessionXrequest", "x", map[string]string{"note": "run for " + other})     // 7
	// The session s-2 is one of agent's: reading its recording is about the agent.
	if err := s.CreateSession(ctx, Session{ID: "s-2", AgentID: agent, Technician: "bob", RequestedAt: base}, nil); err != nil {
		t.Fatal(err)
	}

	seqs := func(q AuditQuery) []int64 {
		t.Helper()
		q.Scope = Scope{All: true}
		recs, err := s.QueryAudit(ctx, q)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		out := []int64{}
		for _, r := range recs {
			out = append(out, r.Seq)
		}
		return out
	}
	tests := []struct {
		name string
		q    AuditQuery
		want []int64
	}{
		{"all", AuditQuery{}, []int64{1, 2, 3, 4, 5, 6, 7}},
		{"after and limit", AuditQuery{After: 2, Limit: 2}, []int64{3, 4}},
		{"before", AuditQuery{Before: 3}, []int64{1, 2}},
		{"newest first", AuditQuery{Newest: true, Limit: 3}, []int64{7, 6, 5}},
		{"newest before", AuditQuery{Newest: true, Before: 5, Limit: 2}, []int64{4, 3}},
		{"actor ignores case", AuditQuery{Actor: "ALICE"}, []int64{1, 4}},
		{"actor wildcards are literal", AuditQuery{Actor: "0%_s"}, []int64{6}},
		{"actor underscore is literal", AuditQuery{Actor: "a_i"}, []int64{}},
		{"action exact", AuditQuery{Action: "session.request"}, []int64{2}},
		{"action exact is not a prefix", AuditQuery{Action: "session"}, []int64{}},
		{"action prefix", AuditQuery{Action: "session.*"}, []int64{2, 3, 6}},
		{"action star alone", AuditQuery{Action: "*"}, []int64{1, 2, 3, 4, 5, 6, 7}},
		{"agent: detail, actor, session, target", AuditQuery{AgentID: agent}, []int64{2, 3, 5, 6}},
		{"other agent: target and detail", AuditQuery{AgentID: other}, []int64{4, 7}},
		{"since is inclusive", AuditQuery{Since: base.Add(time.Second)}, []int64{3, 4, 5, 6, 7}},
		{"until is exclusive", AuditQuery{Until: base.Add(time.Second)}, []int64{1, 2}},
		{"sub-second bounds", AuditQuery{Since: base.Add(time.Second + time.Microsecond), Until: base.Add(time.Second + 123457*time.Microsecond)}, []int64{4}},
		{"since in another zone", AuditQuery{Since: base.Add(2 * time.Second).In(time.FixedZone("X", -5*3600))}, []int64{5, 6, 7}},
		{"combined", AuditQuery{Actor: "alice", Action: "agent.*", Since: base}, []int64{4}},
		{"combined newest", AuditQuery{AgentID: agent, Newest: true, Limit: 2}, []int64{6, 5}},
	}
	for _, tc := range tests {
		if got := seqs(tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestAuditCursor(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	if seq, err := s.AuditCursor(ctx, "tls://a:6514"); err != nil || seq != 0 {
		t.Fatalf("new cursor = %d, %v; want 0", seq, err)
	}
	for _, n := range []int64{5, 9} {
		if err := s.SetAuditCursor(ctx, "tls://a:6514", n, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetAuditCursor(ctx, "tcp://b:514", 2, time.Now()); err != nil {
		t.Fatal(err)
	}
	if seq, err := s.AuditCursor(ctx, "tls://a:6514"); err != nil || seq != 9 {
		t.Fatalf("cursor = %d, %v; want 9", seq, err)
	}
}
