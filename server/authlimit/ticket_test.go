package authlimit

import (
	"testing"
	"time"
)

// Slow checks in flight cannot all pass the limit: each begun attempt
// holds its place until it ends (the auth bench saw 73 wrong passwords
// checked where 13 were allowed, with 64 requests in flight).
func TestBeginHoldsPlacesInFlight(t *testing.T) {
	l := New(Config{SourceBurst: 1000, UserBurst: 10, UserEvery: 10 * time.Second})
	var held []*Ticket
	for range 64 {
		if tk, th := l.Begin("203.0.113.9", "alice", t0); th == nil {
			held = append(held, tk)
		}
	}
	if len(held) != 10 {
		t.Fatalf("%d attempts in flight passed; want the user's burst, 10", len(held))
	}
	for i, tk := range held {
		first := l.Fail(tk, t0)
		if first != (i == 0) {
			t.Fatalf("Fail %d first = %v", i, first)
		}
		l.Fail(tk, t0) // a second end of the same ticket changes nothing
	}
	if _, th := l.Begin("203.0.113.10", "alice", t0); th == nil {
		t.Fatal("an 11th guess passed after 10 failures")
	}
	sums := l.Flush(t0)
	if len(sums) != 2 || sums[1].Failures != 10 || sums[1].Throttled != 54 {
		t.Fatalf("summaries %+v; want 10 failures and 54 refusals from the first source", sums)
	}
}

// A successful or undecided attempt gives its place back.
func TestSucceedAndReleaseGiveBack(t *testing.T) {
	l := New(Config{SourceBurst: 2, SourceEvery: time.Hour, UserBurst: 2, UserEvery: time.Hour})
	for range 5 {
		tk, th := l.Begin("192.0.2.1", "bob", t0)
		if th != nil {
			t.Fatalf("right password refused: %v", th)
		}
		l.Succeed(tk, t0)
	}
	for range 5 {
		tk, th := l.Begin("192.0.2.2", "carol", t0)
		if th != nil {
			t.Fatalf("released attempt kept its place: %v", th)
		}
		l.Release(tk, t0)
	}
	// bob's address is now known: guesses from elsewhere do not lock it.
	for range 2 {
		tk, _ := l.Begin("198.51.100.1", "bob", t0)
		l.Fail(tk, t0)
	}
	if _, th := l.Begin("198.51.100.2", "bob", t0); th == nil {
		t.Fatal("bob's user limit not reached from new addresses")
	}
	if _, th := l.Begin("192.0.2.1", "bob", t0); th != nil {
		t.Fatalf("bob from his known address: %v", th)
	}
}
