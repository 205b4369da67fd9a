package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// TestTierSecrets: the first call seeds, later calls (and stores opened on
// the same database) get the seeded secrets without seeding; relays that
// start together agree on one seed.
func TestTierSecrets(t *testing.T) {
	ctx := context.Background()
	s, url := newStore(t)
	if got := s.Shared(); got != (engine == dialectPostgres) {
		t.Fatalf("Shared() = %v on %s", got, engine)
	}

	const relays = 4
	others := []*Store{s}
	for len(others) < relays {
		others = append(others, openTestStore(t, url))
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		seeds  int
		values = map[string]bool{}
		errs   []error
	)
	for i, st := range others {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, seeded, err := st.TierSecrets(ctx, func() ([]TierSecret, error) {
				return []TierSecret{{Name: "ca.crt", KeyID: "k1", Value: fmt.Sprintf("from relay %d", i)},
					{Name: "ca.key", KeyID: "k1", Value: fmt.Sprintf("key of relay %d", i)}}, nil
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			if seeded {
				seeds++
			}
			if len(got) != 2 || got[0].Name != "ca.crt" || got[1].Name != "ca.key" {
				errs = append(errs, fmt.Errorf("relay %d got %+v", i, got))
				return
			}
			values[got[0].Value] = true
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if seeds != 1 || len(values) != 1 {
		t.Fatalf("%d relays seeded, %d different CAs seen; want 1 and 1", seeds, len(values))
	}

	// A seed that fails stores nothing.
	s2, _ := newStore(t)
	if _, _, err := s2.TierSecrets(ctx, func() ([]TierSecret, error) { return nil, fmt.Errorf("no CA") }); err == nil {
		t.Fatal("a failed seed returned no error")
	}
	got, seeded, err := s2.TierSecrets(ctx, func() ([]TierSecret, error) {
		return []TierSecret{{Name: "x", KeyID: "k", Value: "v"}}, nil
	})
	if err != nil || !seeded || len(got) != 1 {
		t.Fatalf("after a failed seed: %+v %v %v", got, seeded, err)
	}
}
