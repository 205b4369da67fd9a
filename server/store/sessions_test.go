package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/audit"
)

func TestSessionLifecycle(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	mk := func(id, agent string) Session {
		t.Helper()
		x := Session{ID: id, AgentID: agent, Hostname: "pc-1", Technician: "alice", Actor: "alice (technician)",
			Reason: "INC-1", Capabilities: []string{"shell", "sftp"}, RequestedAt: ts}
		if err := s.CreateSession(ctx, x, &audit.Record{Actor: "alice", Action: "session.request", Target: id}); err != nil {
			t.Fatal(err)
		}
		return x
	}
	a, b, c := mk(NewID(), "agent-a"), mk(NewID(), "agent-a"), mk(NewID(), "agent-b")

	// a: approved, then ended twice (the first reason stays).
	approve := Decision{Approved: true, Granted: []string{"shell"}, Mode: "prompt", Backend: "exec", By: "jane", At: ts.Add(time.Second)}
	if err := s.DecideSession(ctx, a.ID, approve, &audit.Record{Actor: "agent", Action: "session.approved", Target: a.ID}); err != nil {
		t.Fatal(err)
	}
	if err := s.DecideSession(ctx, a.ID, Decision{Mode: "prompt", At: ts}, &audit.Record{Actor: "agent", Action: "session.denied", Target: a.ID}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deciding twice: %v", err)
	}
	if ok, err := s.EndSession(ctx, a.ID, "user", "ended by the user at the machine", ts.Add(time.Minute), &audit.Record{Actor: "agent", Action: "session.end", Target: a.ID}); !ok || err != nil {
		t.Fatalf("end: %v %v", ok, err)
	}
	if ok, _ := s.EndSession(ctx, a.ID, "technician", "later", ts.Add(2*time.Minute), &audit.Record{Actor: "agent", Action: "session.end", Target: a.ID}); ok {
		t.Fatal("a session ended twice")
	}
	// Each change came with its audit record, and the refused ones without.
	recs, err := s.ListAudit(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, r := range recs {
		if r.Target == a.ID {
			actions = append(actions, r.Action)
		}
	}
	if want := []string{"session.request", "session.approved", "session.end"}; !reflect.DeepEqual(actions, want) {
		t.Errorf("audit of session a: %v, want %v", actions, want)
	}
	if _, err := s.VerifyAudit(ctx); err != nil {
		t.Errorf("audit chain: %v", err)
	}
	got, err := s.GetSession(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := a
	want.State, want.Granted, want.ConsentMode, want.ConsentBackend, want.ConsentBy = SessionEnded, []string{"shell"}, "prompt", "exec", "jane"
	want.StartedAt, want.EndedAt, want.EndBy, want.EndReason = ts.Add(time.Second), ts.Add(time.Minute), "user", "ended by the user at the machine"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("session a:\n got %+v\nwant %+v", got, want)
	}

	// b: denied. c: still requested, then failed by a relay restart.
	if err := s.DecideSession(ctx, b.ID, Decision{Mode: "prompt", Backend: "web", By: "timeout", Message: "no answer within 60s", At: ts}, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := s.EndOpenSessions(ctx, "", "the relay restarted", ts.Add(time.Hour)); n != 1 || err != nil {
		t.Fatalf("end open sessions: %d %v", n, err)
	}
	if got, _ := s.GetSession(ctx, b.ID); got.State != SessionDenied || got.Message != "no answer within 60s" || !got.StartedAt.IsZero() {
		t.Errorf("denied session: %+v", got)
	}
	if got, _ := s.GetSession(ctx, c.ID); got.State != SessionFailed || got.EndReason != "the relay restarted" {
		t.Errorf("failed session: %+v", got)
	}

	if err := s.SetRecordingSize(ctx, a.ID, 1234); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListSessions(ctx, Scope{All: true}, "", 10)
	if err != nil || len(list) != 3 || list[0].ID != c.ID || list[2].ID != a.ID || list[2].RecordingSize != 1234 {
		t.Fatalf("list newest first: %v %+v", err, list)
	}
	if list, _ := s.ListSessions(ctx, Scope{All: true}, "agent-a", 1); len(list) != 1 || list[0].ID != b.ID {
		t.Errorf("list by agent with limit: %+v", list)
	}
	if _, err := s.GetSession(ctx, NewID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown session: %v", err)
	}
}
