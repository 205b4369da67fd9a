package store

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/patchbay/patchbay/internal/audit"
)

func TestIDPrefixRange(t *testing.T) {
	for _, tc := range []struct{ in, lo, hi string }{
		{"0190c6a8", "0190c6a8", "0190c6a9"},
		{"0190c6a9", "0190c6a9", "0190c6aa"},
		{"0190c6af", "0190c6af", "0190c6b"},
		{"0190c6a8-", "0190c6a8-", "0190c6a9"},
		{"0190c6a8-7", "0190c6a8-7", "0190c6a8-8"},
		{"0190ffff-f", "0190ffff-f", "0191"},
		{"fff", "fff", ""},
		{"a", "a", "b"},
	} {
		lo, hi, ok := IDPrefixRange(tc.in)
		if !ok || lo != tc.lo || hi != tc.hi {
			t.Errorf("IDPrefixRange(%q) = %q, %q, %v; want %q, %q", tc.in, lo, hi, ok, tc.lo, tc.hi)
		}
	}
	for _, bad := range []string{"", "web-01", "0190C6A8", "0190c6a8x", "0190c6a87", "-0190", strings.Repeat("a", 37)} {
		if _, _, ok := IDPrefixRange(bad); ok {
			t.Errorf("IDPrefixRange(%q) accepted", bad)
		}
	}
}

func TestFindAgents(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	mkToken(t, s, "tok", func(e *EnrollToken) { e.UsesAllowed = 0 })
	ids := []string{
		"0190c6a8-0000-7000-8000-000000000001",
		"0190c6a8-1111-7000-8000-000000000002",
		"0190c6b0-0000-7000-8000-000000000003",
		"0190c6b0-0000-7000-8000-000000000004",
		"cafe0000-0000-7000-8000-000000000005",
	}
	hosts := []string{"web-01", "web-02", "PC-042", "pc-042", "cafe"}
	for i, id := range ids {
		if _, _, err := s.EnrollAgent(ctx, "tok", Agent{ID: id, Hostname: hosts[i]}, ts); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeAgent(ctx, ids[1], ts); err != nil {
		t.Fatal(err)
	}
	found := func(ref string) []string {
		t.Helper()
		as, err := s.FindAgents(ctx, Scope{All: true}, ref, 10)
		if err != nil {
			t.Fatalf("FindAgents(%q): %v", ref, err)
		}
		var out []string
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	for ref, want := range map[string][]string{
		ids[0]:                  {ids[0]},
		"0190c6a8-1":            {ids[1]}, // revoked agents are found (to be shown as such)
		"0190c6a8":              {ids[0], ids[1]},
		"0190c6":                {ids[0], ids[1], ids[2], ids[3]},
		"WEB-01":                {ids[0]},
		"pc-042":                {ids[2], ids[3]},
		"cafe":                  {ids[4]}, // hostname and ID prefix of the same agent: once
		"0190c6a9":              nil,
		"nope":                  nil,
		"0190c6b0-0000-7000-80": {ids[2], ids[3]},
	} {
		if got := found(ref); !slices.Equal(got, want) {
			t.Errorf("FindAgents(%q) = %v, want %v", ref, got, want)
		}
	}
	if as, _ := s.FindAgents(ctx, Scope{All: true}, "0190", 3); len(as) != 3 {
		t.Errorf("limit 3 gave %d agents", len(as))
	}
	rev, err := s.RevokedTargets(ctx, Scope{All: true}, true)
	if err != nil || len(rev) != 1 || rev[0].ID != ids[1] || rev[0].Hostname != "web-02" {
		t.Errorf("RevokedTargets = %+v, %v", rev, err)
	}
}

func TestFindJobsAndSessions(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	j1, _ := testJob(t, s, 1)
	j2, _ := testJob(t, s, 1)
	if js, err := s.FindJobs(ctx, Scope{All: true}, j1.ID, 10); err != nil || len(js) != 1 || js[0].ID != j1.ID {
		t.Fatalf("FindJobs(full ID) = %v, %v", js, err)
	}
	if js, err := s.FindJobs(ctx, Scope{All: true}, j2.ID[:30], 10); err != nil || len(js) != 1 || js[0].ID != j2.ID {
		t.Fatalf("FindJobs(long prefix) = %v, %v", js, err)
	}
	if js, err := s.FindJobs(ctx, Scope{All: true}, j1.ID[:4], 10); err != nil || len(js) != 2 {
		t.Fatalf("FindJobs(short prefix) = %d jobs, %v", len(js), err)
	}
	if js, err := s.FindJobs(ctx, Scope{All: true}, "web-01", 10); err != nil || len(js) != 0 {
		t.Fatalf("FindJobs(not an ID) = %v, %v", js, err)
	}
	id := "0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b"
	x := Session{ID: id, AgentID: "a", Hostname: "pc-1", Technician: "alice", Reason: "r", RequestedAt: ts}
	if err := s.CreateSession(ctx, x, &audit.Record{Actor: "alice", Action: "session.request", Target: id}); err != nil {
		t.Fatal(err)
	}
	if ss, err := s.FindSessions(ctx, Scope{All: true}, "0193a1b2-7c", 10); err != nil || len(ss) != 1 || ss[0].ID != id {
		t.Fatalf("FindSessions(prefix) = %v, %v", ss, err)
	}
	if ss, err := s.FindSessions(ctx, Scope{All: true}, "0193a1b3", 10); err != nil || len(ss) != 0 {
		t.Fatalf("FindSessions(other prefix) = %v, %v", ss, err)
	}
}

// TestLookupQueryPlans: naming one agent, job or session reads an index,
// never the whole table (19,000 agents).
func TestLookupQueryPlans(t *testing.T) {
	s, _ := newSQLiteStore(t) // EXPLAIN QUERY PLAN is SQLite's
	ctx := context.Background()
	where, _, _ := prefixWhere("0190", 2)
	for q, want := range map[string][]string{
		`SELECT id FROM agents WHERE LOWER(hostname) = $1`:                                            {"agents_hostname_lower"},
		`SELECT id FROM agents WHERE ` + where + ` ORDER BY id LIMIT $1`:                              {"sqlite_autoindex_agents_1"},
		`SELECT id FROM jobs WHERE ` + where + ` ORDER BY id LIMIT $1`:                                {"sqlite_autoindex_jobs_1"},
		`SELECT id FROM sessions WHERE ` + where + ` ORDER BY id LIMIT $1`:                            {"sqlite_autoindex_sessions_1"},
		`SELECT id FROM agents WHERE LOWER(hostname) = $1 UNION SELECT id FROM agents WHERE ` + where: {"agents_hostname_lower", "sqlite_autoindex_agents_1"},
	} {
		args := make([]any, 5)
		for i := range args {
			args[i] = "0190"
		}
		rows, err := s.db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args[:strings.Count(q, "$")-strings.Count(q, "$1")+1]...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")
		for _, w := range want {
			if !strings.Contains(p, w) {
				t.Errorf("%s\n  plan %q, want %s", q, p, w)
			}
		}
		if strings.Contains(p, "SCAN agents") || strings.Contains(p, "SCAN jobs") || strings.Contains(p, "SCAN sessions") {
			t.Errorf("%s\n  plan %q scans the table", q, p)
		}
	}
}
