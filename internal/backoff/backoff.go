// Package backoff computes jittered exponential delays for retry loops, such
// as an agent reconnecting to the relay.
//
// The delay before retry n (counting from 0) is d = Base * 2^n, capped at
// Max, and the value returned is drawn uniformly from [d/2, d]. Keeping at
// least half of d stops a fleet of agents that lost the relay at the same
// moment from reconnecting in a synchronised wave, while still growing the
// delay steadily. Call Reset after a success (for example once a connection
// has stayed up for a while) so the next failure starts again at Base.
//
//	var b backoff.Backoff // 1s, 2s, 4s, ... up to 60s, each jittered
//	for {
//		err := connect(ctx)
//		if ctx.Err() != nil {
//			return
//		}
//		if err == nil {
//			b.Reset()
//			continue
//		}
//		if b.Wait(ctx) != nil {
//			return
//		}
//	}
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Defaults used when Base or Max is zero (or negative).
const (
	DefaultBase = time.Second
	DefaultMax  = 60 * time.Second
)

// Backoff yields delays: Base * 2^attempt capped at Max, with jitter (uniform
// in [d/2, d], or [0, d] with Full); Reset after success. The zero value works: 1s base, 60s max.
// If Base exceeds Max, every delay is capped at Max.
//
// A Backoff is not safe for concurrent use; give each retry loop its own.
type Backoff struct {
	// Base is the delay before the first retry (before jitter).
	Base time.Duration
	// Max caps the delay (before jitter).
	Max time.Duration
	// Full draws each delay uniformly from [0, d] ("full jitter") instead
	// of [d/2, d]: retries of a fleet that failed together spread over the
	// whole window, as agents failing over to the survivors of a relay
	// tier should.
	Full bool

	attempt int
}

func (b *Backoff) limits() (base, maxd time.Duration) {
	base, maxd = b.Base, b.Max
	if base <= 0 {
		base = DefaultBase
	}
	if maxd <= 0 {
		maxd = DefaultMax
	}
	if base > maxd {
		base = maxd
	}
	return base, maxd
}

// Next returns the delay to wait before the next retry and advances the
// attempt counter.
func (b *Backoff) Next() time.Duration {
	base, maxd := b.limits()
	d := base
	for i := 0; i < b.attempt && d < maxd; i++ {
		if d > maxd/2 {
			d = maxd // doubling would pass Max (and could overflow)
			break
		}
		d *= 2
	}
	if d > maxd {
		d = maxd
	}
	b.attempt++
	if b.Full {
		return rand.N(d + 1)
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Attempt returns how many delays Next has produced since the last Reset
// (useful in log lines).
func (b *Backoff) Attempt() int { return b.attempt }

// Reset starts the sequence again at Base; call it after a success.
func (b *Backoff) Reset() { b.attempt = 0 }

// Wait sleeps for Next() or returns ctx.Err() as soon as ctx is done. A
// context that is already done returns at once without advancing the
// sequence.
func (b *Backoff) Wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !Sleep(ctx, b.Next()) {
		return ctx.Err()
	}
	return nil
}

// Sleep waits for d or until ctx ends; it reports whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
