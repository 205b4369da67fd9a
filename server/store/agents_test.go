package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"
)

// mkToken stores an enrollment token whose secret hash is hash.
func mkToken(t *testing.T, s *Store, hash string, mod func(*EnrollToken)) EnrollToken {
	t.Helper()
	tok := EnrollToken{ID: NewID(), Hash: hash, CreatedAt: ts, ExpiresAt: ts.Add(24 * time.Hour), CreatedBy: "test"}
	if mod != nil {
		mod(&tok)
	}
	if err := s.CreateEnrollToken(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	return tok
}

func countAgents(t *testing.T, s *Store) int {
	t.Helper()
	as, err := s.ListAgents(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(as)
}

func TestEnrollAgent(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	tok := mkToken(t, s, "good", func(e *EnrollToken) {
		e.Tags = map[string]string{"site": "paris", "env": "prod"}
		e.UsesAllowed = 3
	})
	in := Agent{
		ID: NewID(), Hostname: "pc-01", OS: "linux", Arch: "amd64", OSVersion: "Debian 12", Version: "1.0.0",
		Users: []string{"alice"}, IPs: []string{"10.0.0.5"},
		AgentTags: map[string]string{"site": "lyon", "role": "desk"},
		FirstSeen: ts, RevokedAt: ts, // ignored
	}
	got, gotTok, err := s.EnrollAgent(ctx, "good", in, ts.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := in
	want.Tags = map[string]string{"site": "paris", "env": "prod", "role": "desk"} // scoped wins
	want.ScopedTags = tok.Tags
	want.TokenID = tok.ID
	want.SiteID = DefaultSiteID // the token's
	want.EnrolledAt = ts.Add(time.Minute)
	want.FirstSeen, want.RevokedAt = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("returned\n%+v\nwant\n%+v", got, want)
	}
	if gotTok.Uses != 1 || gotTok.ID != tok.ID {
		t.Fatalf("token %+v", gotTok)
	}
	stored, err := s.GetAgent(ctx, in.ID)
	if err != nil || !reflect.DeepEqual(stored, want) {
		t.Fatalf("stored\n%+v, %v\nwant\n%+v", stored, err, want)
	}

	// No ID: one is generated. No own tags: effective tags are the scoped ones.
	a2, _, err := s.EnrollAgent(ctx, "good", Agent{Hostname: "pc-02"}, ts)
	if err != nil || a2.ID == "" || !reflect.DeepEqual(a2.Tags, tok.Tags) || a2.AgentTags != nil {
		t.Fatalf("second agent %+v, %v", a2, err)
	}
	// Same ID again.
	if _, _, err := s.EnrollAgent(ctx, "good", Agent{ID: in.ID}, ts); !errors.Is(err, ErrAgentExists) {
		t.Fatalf("re-enroll: %v", err)
	}
	if err := s.RevokeAgent(ctx, in.ID, ts); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.EnrollAgent(ctx, "good", Agent{ID: in.ID}, ts); !errors.Is(err, ErrAgentRevoked) {
		t.Fatalf("re-enroll revoked: %v", err)
	}
	toks, _ := s.ListEnrollTokens(ctx)
	if toks[0].Uses != 2 {
		t.Fatalf("failed enrollments used the token: uses %d", toks[0].Uses)
	}

	// A token without scoped tags, without expiry, unlimited.
	mkToken(t, s, "open", func(e *EnrollToken) { e.ExpiresAt = time.Time{} })
	for i := range 5 {
		a, tk, err := s.EnrollAgent(ctx, "open", Agent{AgentTags: map[string]string{"k": "v"}}, ts.AddDate(5, 0, 0))
		if err != nil || tk.Uses != i+1 || !reflect.DeepEqual(a.Tags, map[string]string{"k": "v"}) || a.ScopedTags != nil {
			t.Fatalf("open token %d: %+v %+v %v", i, a, tk, err)
		}
	}
}

func TestEnrollAgentTokenErrors(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	mkToken(t, s, "expired", func(e *EnrollToken) { e.ExpiresAt = ts })
	mkToken(t, s, "usedup", func(e *EnrollToken) { e.UsesAllowed = 2; e.Uses = 2 })
	revoked := mkToken(t, s, "revoked", nil)
	if err := s.RevokeEnrollToken(ctx, revoked.ID, ts); err != nil {
		t.Fatal(err)
	}
	before, _ := s.ListEnrollTokens(ctx)

	for _, tc := range []struct {
		hash string
		now  time.Time
		want error
	}{
		{"nope", ts.Add(-time.Hour), ErrTokenUnknown},
		{"expired", ts, ErrTokenExpired}, // expiry instant itself is expired
		{"expired", ts.Add(time.Hour), ErrTokenExpired},
		{"usedup", ts, ErrTokenUsedUp},
		{"revoked", ts, ErrTokenRevoked},
	} {
		t.Run(fmt.Sprintf("%s@%s", tc.hash, tc.now.Format(time.Kitchen)), func(t *testing.T) {
			_, _, err := s.EnrollAgent(ctx, tc.hash, Agent{Hostname: "x"}, tc.now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	after, _ := s.ListEnrollTokens(ctx)
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("tokens changed:\n%+v\n%+v", before, after)
	}
	if n := countAgents(t, s); n != 0 {
		t.Fatalf("%d agents inserted", n)
	}
	// Just before expiry still works.
	if _, _, err := s.EnrollAgent(ctx, "expired", Agent{}, ts.Add(-time.Microsecond)); err != nil {
		t.Fatal(err)
	}
}

func TestEnrollAgentRace(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	mkToken(t, s, "five", func(e *EnrollToken) { e.UsesAllowed = 5 })
	const n = 20
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		ok     int
		others []error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := s.EnrollAgent(ctx, "five", Agent{Hostname: fmt.Sprintf("pc-%02d", i)}, ts)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, ErrTokenUsedUp):
				others = append(others, err)
			}
		}()
	}
	wg.Wait()
	if ok != 5 || len(others) > 0 {
		t.Fatalf("%d successes (want 5), other errors: %v", ok, others)
	}
	if got := countAgents(t, s); got != 5 {
		t.Fatalf("%d agents stored", got)
	}
	toks, _ := s.ListEnrollTokens(ctx)
	if toks[0].Uses != 5 {
		t.Fatalf("uses = %d", toks[0].Uses)
	}
}

func TestInventoriesAndSeen(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	mkToken(t, s, "tok", func(e *EnrollToken) { e.Tags = map[string]string{"site": "paris"} })
	var ids []string
	for i := range 3 {
		a, _, err := s.EnrollAgent(ctx, "tok", Agent{Hostname: fmt.Sprintf("h%d", i), AgentTags: map[string]string{"old": "1"}}, ts)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	seen1, seen2 := ts.Add(time.Hour), ts.Add(2*time.Hour)
	err := s.UpdateInventories(ctx, []Inventory{
		{AgentID: ids[0], Hostname: "zz-last", OS: "windows", Arch: "arm64", OSVersion: "11", Version: "1.2.0",
			Users: []string{"bob", "carol"}, IPs: []string{"10.1.1.1", "fe80::1"},
			Tags: map[string]string{"site": "berlin", "dept": "hr"}, Seen: seen1},
		{AgentID: "unknown", Hostname: "ghost", Seen: seen1},
		{AgentID: ids[1], Hostname: "aa-first", Seen: seen1},
	})
	if err != nil {
		t.Fatal(err)
	}
	a0, _ := s.GetAgent(ctx, ids[0])
	if a0.Hostname != "zz-last" || a0.OS != "windows" || a0.Arch != "arm64" || a0.OSVersion != "11" || a0.Version != "1.2.0" ||
		!reflect.DeepEqual(a0.Users, []string{"bob", "carol"}) || !reflect.DeepEqual(a0.IPs, []string{"10.1.1.1", "fe80::1"}) {
		t.Fatalf("inventory not written: %+v", a0)
	}
	if !reflect.DeepEqual(a0.AgentTags, map[string]string{"site": "berlin", "dept": "hr"}) ||
		!reflect.DeepEqual(a0.Tags, map[string]string{"site": "paris", "dept": "hr"}) {
		t.Fatalf("tags: own %v effective %v", a0.AgentTags, a0.Tags)
	}
	if !a0.FirstSeen.Equal(seen1) || !a0.LastSeen.Equal(seen1) {
		t.Fatalf("seen %v %v", a0.FirstSeen, a0.LastSeen)
	}
	a1, _ := s.GetAgent(ctx, ids[1])
	if a1.AgentTags != nil || !reflect.DeepEqual(a1.Tags, map[string]string{"site": "paris"}) {
		t.Fatalf("nil inventory tags: own %v effective %v", a1.AgentTags, a1.Tags)
	}
	if _, err := s.GetAgent(ctx, "unknown"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown inventory created an agent: %v", err)
	}

	// Second inventory keeps first_seen.
	if err := s.UpdateInventories(ctx, []Inventory{{AgentID: ids[0], Hostname: "zz-last", Seen: seen2}}); err != nil {
		t.Fatal(err)
	}
	a0, _ = s.GetAgent(ctx, ids[0])
	if !a0.FirstSeen.Equal(seen1) || !a0.LastSeen.Equal(seen2) {
		t.Fatalf("seen %v %v", a0.FirstSeen, a0.LastSeen)
	}

	// TouchLastSeen: batch; sets first_seen only when never seen.
	seen3 := ts.Add(3 * time.Hour)
	if err := s.TouchLastSeen(ctx, []string{ids[0], ids[2], "unknown"}, seen3); err != nil {
		t.Fatal(err)
	}
	a0, _ = s.GetAgent(ctx, ids[0])
	a2, _ := s.GetAgent(ctx, ids[2])
	if !a0.FirstSeen.Equal(seen1) || !a0.LastSeen.Equal(seen3) || !a2.FirstSeen.Equal(seen3) || !a2.LastSeen.Equal(seen3) {
		t.Fatalf("touch: %v %v / %v %v", a0.FirstSeen, a0.LastSeen, a2.FirstSeen, a2.LastSeen)
	}
	if err := s.TouchLastSeen(ctx, nil, seen3); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateInventories(ctx, nil); err != nil {
		t.Fatal(err)
	}

	// ListAgents orders by hostname, id.
	list, err := s.ListAgents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, a := range list {
		hosts = append(hosts, a.Hostname)
	}
	if !reflect.DeepEqual(hosts, []string{"aa-first", "h2", "zz-last"}) {
		t.Fatalf("order %v", hosts)
	}
}

func TestRevokeAgent(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	mkToken(t, s, "tok", nil)
	var ids []string
	for range 3 {
		a, _, err := s.EnrollAgent(ctx, "tok", Agent{}, ts)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	if got, err := s.RevokedAgentIDs(ctx); err != nil || got != nil {
		t.Fatalf("none revoked: %v, %v", got, err)
	}
	for i, at := range []time.Time{ts.Add(time.Hour), ts.Add(2 * time.Hour)} { // idempotent
		if err := s.RevokeAgent(ctx, ids[1], at); err != nil {
			t.Fatalf("revoke %d: %v", i, err)
		}
	}
	if err := s.RevokeAgent(ctx, "nope", ts); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	a, _ := s.GetAgent(ctx, ids[1])
	if !a.RevokedAt.Equal(ts.Add(time.Hour)) {
		t.Fatalf("revoked at %v", a.RevokedAt)
	}
	if got, err := s.RevokedAgentIDs(ctx); err != nil || !reflect.DeepEqual(got, []string{ids[1]}) {
		t.Fatalf("revoked ids %v, %v", got, err)
	}
}

func TestCountActiveAgents(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	mkToken(t, s, "tok", nil)
	var ids []string
	for _, enrolled := range []time.Time{ts, ts, ts, ts.Add(-30 * 24 * time.Hour), ts.Add(-30 * 24 * time.Hour)} {
		a, _, err := s.EnrollAgent(ctx, "tok", Agent{}, enrolled)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	// ids[0..2] enrolled now, never seen; ids[3] enrolled a month ago and
	// seen today; ids[4] enrolled a month ago and not seen since.
	if err := s.TouchLastSeen(ctx, []string{ids[3]}, ts.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchLastSeen(ctx, []string{ids[4]}, ts.Add(-20*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAgent(ctx, ids[2], ts); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		since time.Time
		want  int
	}{
		{ts.Add(-7 * 24 * time.Hour), 3},  // ids 0, 1 (enrolled), 3 (seen); not 2 (revoked), 4 (gone)
		{ts.Add(-60 * 24 * time.Hour), 4}, // ids 4 too
		{ts.Add(30 * time.Minute), 1},     // only the one seen after
		{ts.Add(2 * time.Hour), 0},
	} {
		if got, err := s.CountActiveAgents(ctx, tt.since); err != nil || got != tt.want {
			t.Errorf("CountActiveAgents(%v) = %d, %v; want %d", tt.since, got, err, tt.want)
		}
	}
}

// TargetPage pages through the agents that are not revoked, in ID order,
// with their effective tags only when asked for.
func TestTargetPage(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	mkToken(t, s, "tok", func(e *EnrollToken) { e.Tags = map[string]string{"site": "paris"} })
	var ids []string
	for i := range 5 {
		a, _, err := s.EnrollAgent(ctx, "tok", Agent{Hostname: fmt.Sprintf("h%d", i), AgentTags: map[string]string{"n": fmt.Sprint(i)}}, ts)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	if err := s.UpdateInventories(ctx, []Inventory{{AgentID: ids[0], Hostname: "h0", OS: "linux", Arch: "amd64", Seen: ts}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAgent(ctx, ids[3], ts); err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	for _, withTags := range []bool{true, false} {
		var got []Target
		for after := ""; ; {
			page, err := s.TargetPage(ctx, Scope{All: true}, after, 2, withTags)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, page...)
			if len(page) < 2 {
				break
			}
			after = page[len(page)-1].ID
		}
		if len(got) != 4 {
			t.Fatalf("withTags=%v: %d targets, want 4 (one revoked)", withTags, len(got))
		}
		for i, tg := range got {
			if i > 0 && tg.ID <= got[i-1].ID {
				t.Fatalf("withTags=%v: not in ID order: %v", withTags, got)
			}
			if withTags != (tg.Tags["site"] == "paris") {
				t.Fatalf("withTags=%v: agent %s tags %v", withTags, tg.Hostname, tg.Tags)
			}
			if tg.Hostname == "h0" && (tg.OS != "linux" || tg.Arch != "amd64") {
				t.Fatalf("inventory not read: %+v", tg)
			}
		}
	}
}

func TestAgentCertKeepsTheFirst(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	mkToken(t, s, "good", nil)
	a, _, err := s.EnrollAgent(ctx, "good", Agent{ID: NewID(), Hostname: "pc-01"}, ts)
	if err != nil {
		t.Fatal(err)
	}
	if der, err := s.AgentCert(ctx, a.ID); der != nil || err != nil {
		t.Fatalf("before: %x %v", der, err)
	}
	if ok, err := s.SetAgentCert(ctx, a.ID, []byte{1, 2, 3}); !ok || err != nil {
		t.Fatalf("set: %v %v", ok, err)
	}
	if ok, err := s.SetAgentCert(ctx, a.ID, []byte{4}); ok || err != nil {
		t.Fatalf("second set: %v %v", ok, err)
	}
	if der, err := s.AgentCert(ctx, a.ID); string(der) != "\x01\x02\x03" || err != nil {
		t.Fatalf("after: %x %v", der, err)
	}
	if _, err := s.SetAgentCert(ctx, NewID(), []byte{1}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown agent: %v", err)
	}
	if _, err := s.AgentCert(ctx, NewID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown agent: %v", err)
	}
}
