// Package bus carries messages between the parts of a relay, and later
// between relay nodes. Local is the in-process implementation used by a
// single relay; a NATS implementation joins several relays (a later issue).
package bus

import (
	"context"
	"sync"
)

// Local delivers every published message to this process's subscribers,
// synchronously, in subscription order. The zero value is ready to use.
type Local struct {
	mu   sync.RWMutex
	subs map[string][]*sub // by subject
}

type sub struct{ fn func([]byte) }

// Publish calls every subscriber of subject with data.
func (b *Local) Publish(_ context.Context, subject string, data []byte) error {
	b.mu.RLock()
	subs := b.subs[subject]
	b.mu.RUnlock()
	for _, s := range subs {
		s.fn(data)
	}
	return nil
}

// Subscribe registers fn for subject until the returned function is called.
func (b *Local) Subscribe(subject string, fn func(data []byte)) (unsubscribe func(), err error) {
	s := &sub{fn: fn}
	b.mu.Lock()
	if b.subs == nil {
		b.subs = make(map[string][]*sub)
	}
	b.subs[subject] = append(b.subs[subject], s)
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		list := b.subs[subject]
		for i, x := range list {
			if x == s {
				b.subs[subject] = append(list[:i:i], list[i+1:]...)
				break
			}
		}
	}, nil
}
