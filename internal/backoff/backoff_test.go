package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBounds(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: 3 * time.Second}
	want := []time.Duration{100, 200, 400, 800, 1600, 3000, 3000, 3000}
	for i, ms := range want {
		d := ms * time.Millisecond
		got := b.Next()
		if got < d/2 || got > d {
			t.Errorf("attempt %d: %v not in [%v, %v]", i, got, d/2, d)
		}
		if b.Attempt() != i+1 {
			t.Errorf("Attempt() = %d after %d calls", b.Attempt(), i+1)
		}
	}
}

func TestZeroValueDefaults(t *testing.T) {
	var b Backoff
	if d := b.Next(); d < DefaultBase/2 || d > DefaultBase {
		t.Errorf("first delay %v, want within [%v, %v]", d, DefaultBase/2, DefaultBase)
	}
	for range 200 {
		if d := b.Next(); d > DefaultMax {
			t.Fatalf("delay %v above default max %v", d, DefaultMax)
		}
	}
	if d := b.Next(); d < DefaultMax/2 {
		t.Errorf("after many attempts delay %v, want at least %v", d, DefaultMax/2)
	}
}

func TestNeverAboveMaxAndNoOverflow(t *testing.T) {
	cases := []Backoff{
		{Base: time.Nanosecond, Max: time.Duration(1<<63 - 1)},
		{Base: time.Hour, Max: time.Minute}, // base above max: capped
		{Base: 3 * time.Millisecond, Max: 10 * time.Millisecond},
		{Base: -1, Max: -1},
	}
	for _, b := range cases {
		_, maxd := b.limits()
		for i := range 1000 {
			d := b.Next()
			if d < 0 || d > maxd {
				t.Fatalf("%+v attempt %d: delay %v outside [0, %v]", b, i, d, maxd)
			}
		}
	}
}

func TestJitterVaries(t *testing.T) {
	b := Backoff{Base: time.Second, Max: time.Second}
	seen := map[time.Duration]bool{}
	lo, hi := time.Second, time.Duration(0)
	for range 1000 {
		d := b.Next()
		seen[d] = true
		lo, hi = min(lo, d), max(hi, d)
	}
	if len(seen) < 900 {
		t.Errorf("only %d distinct delays in 1000 draws", len(seen))
	}
	// Uniform on [0.5s, 1s]: 1000 draws should come near both ends.
	if lo > 550*time.Millisecond || hi < 950*time.Millisecond {
		t.Errorf("draws spread only over [%v, %v]", lo, hi)
	}
}

func TestReset(t *testing.T) {
	b := Backoff{Base: 10 * time.Millisecond, Max: time.Second}
	for range 10 {
		b.Next()
	}
	if d := b.Next(); d < 500*time.Millisecond {
		t.Fatalf("after 10 attempts delay %v, want >= 500ms", d)
	}
	b.Reset()
	if b.Attempt() != 0 {
		t.Errorf("Attempt() = %d after Reset", b.Attempt())
	}
	if d := b.Next(); d < 5*time.Millisecond || d > 10*time.Millisecond {
		t.Errorf("after Reset delay %v, want within [5ms, 10ms]", d)
	}
}

func TestWait(t *testing.T) {
	b := Backoff{Base: 20 * time.Millisecond, Max: 20 * time.Millisecond}
	start := time.Now()
	if err := b.Wait(context.Background()); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if el := time.Since(start); el < 10*time.Millisecond {
		t.Errorf("Wait returned after %v, want >= 10ms", el)
	}
}

func TestWaitCancelled(t *testing.T) {
	b := Backoff{Base: time.Hour, Max: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	start := time.Now()
	err := b.Wait(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Wait took %v after cancellation", el)
	}

	// Already done: returns at once and does not advance the sequence.
	b.Reset()
	if err := b.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on done ctx = %v", err)
	}
	if b.Attempt() != 0 {
		t.Errorf("Wait on a done context advanced the sequence to %d", b.Attempt())
	}

	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer dcancel()
	if err := b.Wait(dctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v, want DeadlineExceeded", err)
	}
}

// TestFullJitter: with Full, delay n is drawn from [0, d] where d doubles
// from Base up to Max; over many draws the delays cover the whole window
// (the lower half too, which equal jitter never uses) and stay in bounds.
func TestFullJitter(t *testing.T) {
	const draws = 2000
	ceilings := []time.Duration{100, 200, 400, 800, 1600, 3000, 3000}
	for i, ms := range ceilings {
		d := ms * time.Millisecond
		var low, high int
		var sum time.Duration
		for range draws {
			b := Backoff{Base: 100 * time.Millisecond, Max: 3 * time.Second, Full: true}
			for range i {
				b.Next()
			}
			got := b.Next()
			if got < 0 || got > d {
				t.Fatalf("attempt %d: %v not in [0, %v]", i, got, d)
			}
			if got < d/4 {
				low++
			}
			if got > 3*d/4 {
				high++
			}
			sum += got
		}
		// Each quarter holds about draws/4 = 500; the chance of fewer than
		// 350 in a uniform draw is negligible (< 1e-12).
		if low < 350 || high < 350 {
			t.Errorf("attempt %d: %d draws below d/4 and %d above 3d/4 of %d: not spread over [0, %v]", i, low, high, draws, d)
		}
		if mean := sum / draws; mean < 4*d/10 || mean > 6*d/10 {
			t.Errorf("attempt %d: mean %v, want about %v", i, mean, d/2)
		}
	}
	b := Backoff{Base: time.Second, Max: 4 * time.Second, Full: true}
	b.Next()
	b.Next()
	b.Reset()
	if got := b.Next(); got > time.Second {
		t.Errorf("after Reset the first delay is %v, want at most Base", got)
	}
}
