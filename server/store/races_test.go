package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests race two or more relays (Stores on the same database) or
// requests through the rules that PostgreSQL, unlike SQLite's serialised
// writers, could let slip: each must hold on both engines.

// race runs fn(i) for i in [0, n) at once and returns their errors.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// relays opens n more Stores on the database of url, as other relays of a tier.
func relays(t *testing.T, url string, n int) []*Store {
	t.Helper()
	out := make([]*Store, n)
	for i := range out {
		out[i] = openTestStore(t, url)
	}
	return out
}

func TestRaceCreateUserSameName(t *testing.T) {
	ctx := context.Background()
	s, url := newStore(t)
	stores := append(relays(t, url, 2), s)
	errs := race(12, func(i int) error {
		return stores[i%len(stores)].CreateUser(ctx, User{ID: NewID(), Name: "alice", Role: "admin", CreatedAt: ts})
	})
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrUserExists):
			t.Errorf("want nil or ErrUserExists, got %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d users created, want 1", ok)
	}
}

func TestRaceEnrollSameAgent(t *testing.T) {
	ctx := context.Background()
	s, url := newStore(t)
	mkToken(t, s, "many", nil)
	stores := append(relays(t, url, 2), s)
	id := NewID()
	errs := race(12, func(i int) error {
		_, _, err := stores[i%len(stores)].EnrollAgent(ctx, "many", Agent{ID: id, Hostname: "pc"}, ts)
		return err
	})
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrAgentExists):
			t.Errorf("want nil or ErrAgentExists, got %v", err)
		}
	}
	if ok != 1 || countAgents(t, s) != 1 {
		t.Fatalf("%d enrollments succeeded, %d agents: want 1 and 1", ok, countAgents(t, s))
	}
	// The failed enrollments gave their use back.
	if toks, err := s.ListEnrollTokens(ctx); err != nil || toks[0].Uses != 1 {
		t.Fatalf("uses %+v, %v; want 1", toks, err)
	}
}

func TestRaceFirstSetting(t *testing.T) {
	ctx := context.Background()
	s, url := newStore(t)
	stores := append(relays(t, url, 2), s)
	for _, err := range race(9, func(i int) error {
		return stores[i%len(stores)].SetSetting(ctx, SettingRequireTOTP, fmt.Sprint(i), ts)
	}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if v, err := s.Setting(ctx, SettingRequireTOTP); err != nil || v == "" {
		t.Fatalf("setting %q, %v", v, err)
	}
}

func TestRacePublish(t *testing.T) {
	ctx := context.Background()
	s, url := newStore(t)
	stores := append(relays(t, url, 2), s)

	// The same plugin published by several relays at once: one creates it,
	// the others find it published (idempotent, no error).
	a, b := artifact(KindPlugin, "p", "1.0.0", "linux", "amd64", "plugin bytes", ts)
	created := make([]bool, 6)
	for _, err := range race(6, func(i int) error {
		var err error
		created[i], err = stores[i%len(stores)].PutArtifact(ctx, a, b)
		return err
	}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(fmt.Sprint(created), "true"); n != 1 {
		t.Fatalf("%d publishes created the plugin, want 1", n)
	}

	// Scripts of one name and version with overlapping OS lists and other
	// bytes: at most one may be published (no unique index backs this rule).
	var (
		mu sync.Mutex
		ok int
	)
	for _, err := range race(6, func(i int) error {
		a, b := artifact(KindScript, "s", "1.0.0", []string{"linux", "linux,windows", ""}[i%3], "", fmt.Sprint("script ", i), ts)
		c, err := stores[i%len(stores)].PutArtifact(ctx, a, b)
		if c {
			mu.Lock()
			ok++
			mu.Unlock()
		}
		return err
	}) {
		if err != nil && !errors.Is(err, ErrArtifactConflict) {
			t.Fatal(err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d overlapping scripts published, want 1", ok)
	}
}

func TestRaceClaimRuns(t *testing.T) {
	ctx := context.Background()
	s, url := newStore(t)
	stores := append(relays(t, url, 2), s)
	j, runs := testJob(t, s, 600)
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.ID
	}
	at := time.Now() // the same instant for every claim: it must not matter
	var (
		mu      sync.Mutex
		claimed = map[string]int{}
	)
	for _, err := range race(6, func(i int) error {
		var got []string
		var err error
		if i%2 == 0 {
			got, err = stores[i%len(stores)].ClaimRuns(ctx, ids, at)
		} else {
			got, err = stores[i%len(stores)].ClaimSeqRange(ctx, j.ID, -1, runs, at)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, id := range got {
			claimed[id]++
		}
		return err
	}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	var twice []string
	for id, n := range claimed {
		if n > 1 {
			twice = append(twice, id)
		}
	}
	if len(claimed) != len(runs) || len(twice) > 0 {
		t.Fatalf("%d of %d runs claimed; %d claimed more than once, such as %s",
			len(claimed), len(runs), len(twice), strings.Join(twice[:min(len(twice), 3)], " "))
	}
}
