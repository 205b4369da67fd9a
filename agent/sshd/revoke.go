package sshd

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/internal/wire"
)

// ErrRevoked is the cause (errors.Is) of a session ended because the
// certificate it authenticated with was revoked: the relay revoked the
// technician's API token, or disabled the person. The client is told
// "patchbay: session ended: the technician's access was revoked".
var ErrRevoked = errors.New("the technician's access was revoked")

// MaxRevocations bounds the serials a Revocations keeps. Certificates live
// at most a day, so a relay would have to revoke this many in one day to
// fill it; if one ever does, every certificate is refused until the
// dropped entries would have expired (fail closed), and the caller logs it.
const MaxRevocations = 1 << 18

// pruneEvery is how often lookups drop expired entries (Add always does).
const pruneEvery = time.Minute

// Revocations is the set of revoked SSH user certificate serials the relay
// told this agent about (wire.MsgSSHRevoked), each kept until its
// certificate expires. Authentication refuses a revoked serial, and a live
// connection whose certificate is revoked ends at once (Config.Revocations).
// It is safe for concurrent use; it starts no goroutine.
type Revocations struct {
	now func() time.Time

	mu        sync.Mutex
	serials   map[uint64]wire.RevokedCert
	watchers  map[uint64][]*revocationWatch
	fullUntil time.Time // entries were dropped: refuse everything until then
	pruned    time.Time
}

type revocationWatch struct{ fn func(wire.RevokedCert) }

// NewRevocations returns an empty set. now is the clock (nil: time.Now).
func NewRevocations(now func() time.Time) *Revocations {
	if now == nil {
		now = time.Now
	}
	return &Revocations{now: now, serials: map[uint64]wire.RevokedCert{}, watchers: map[uint64][]*revocationWatch{}}
}

// Add records revoked certificates and ends the live connections that
// authenticated with one of them (their watchers run before Add returns).
// Certificates already expired are ignored. It returns how many serials
// were new, and whether the set is full (some were dropped: every
// certificate is refused until they would have expired).
func (r *Revocations) Add(certs []wire.RevokedCert) (added int, full bool) {
	now := r.now()
	var fire []func()
	r.mu.Lock()
	r.pruneLocked(now)
	for _, c := range certs {
		if !now.Before(c.ValidBefore) {
			continue
		}
		if old, ok := r.serials[c.Serial]; ok {
			if c.ValidBefore.After(old.ValidBefore) {
				r.serials[c.Serial] = c
			}
			continue
		}
		if len(r.serials) >= MaxRevocations {
			if c.ValidBefore.After(r.fullUntil) {
				r.fullUntil = c.ValidBefore
			}
			continue
		}
		r.serials[c.Serial] = c
		added++
		for _, w := range r.watchers[c.Serial] {
			fire = append(fire, func() { w.fn(c) })
		}
	}
	full = now.Before(r.fullUntil)
	r.mu.Unlock()
	for _, f := range fire {
		f()
	}
	return added, full
}

// Revoked reports whether the certificate with serial is revoked, with
// what the relay said about it. While the set is full every serial is
// reported revoked (full is true).
func (r *Revocations) Revoked(serial uint64) (c wire.RevokedCert, revoked, full bool) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.pruned) >= pruneEvery {
		r.pruneLocked(now)
	}
	if now.Before(r.fullUntil) {
		return wire.RevokedCert{Serial: serial}, true, true
	}
	c, ok := r.serials[serial]
	return c, ok && now.Before(c.ValidBefore), false
}

// Len is the number of revoked serials kept.
func (r *Revocations) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.serials)
}

// watch calls fn once if serial is revoked later (from Add); stop ends the
// watch. revoked reports whether it already is: then fn is never called.
func (r *Revocations) watch(serial uint64, fn func(wire.RevokedCert)) (stop func(), c wire.RevokedCert, revoked bool) {
	c, revoked, _ = r.Revoked(serial)
	if revoked {
		return func() {}, c, true
	}
	w := &revocationWatch{fn: fn}
	r.mu.Lock()
	// Checked again under the lock that Add holds while it collects watchers.
	if c, ok := r.serials[serial]; ok {
		r.mu.Unlock()
		return func() {}, c, true
	}
	r.watchers[serial] = append(r.watchers[serial], w)
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		list := r.watchers[serial]
		for i, x := range list {
			if x == w {
				list = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(r.watchers, serial)
		} else {
			r.watchers[serial] = list
		}
	}, wire.RevokedCert{}, false
}

// pruneLocked drops the entries of certificates expired at now.
func (r *Revocations) pruneLocked(now time.Time) {
	r.pruned = now
	for s, c := range r.serials {
		if !now.Before(c.ValidBefore) {
			delete(r.serials, s)
		}
	}
}

// checkRevoked refuses a certificate whose serial the relay revoked.
func (s *server) checkRevoked(cert *ssh.Certificate) error {
	if s.cfg.Revocations == nil {
		return nil
	}
	_, revoked, full := s.cfg.Revocations.Revoked(cert.Serial)
	switch {
	case full:
		return fmt.Errorf("certificate %q (serial %d) refused: the agent holds more than %d revoked certificates and refuses every certificate until they expire",
			cert.KeyId, cert.Serial, MaxRevocations)
	case revoked:
		return fmt.Errorf("certificate %q (serial %d) is revoked: %w", cert.KeyId, cert.Serial, ErrRevoked)
	}
	return nil
}

// watchRevocation ends the session with ErrRevoked when the certificate it
// authenticated with is revoked. It returns the function that stops
// watching (nil without Config.Revocations).
func (s *server) watchRevocation() (stop func()) {
	if s.cfg.Revocations == nil {
		return nil
	}
	serial, err := strconv.ParseUint(s.perms.Extensions[extSerial], 10, 64)
	if err != nil {
		s.cancel(fmt.Errorf("certificate serial unknown: %w", err)) // cannot happen: authenticate set it
		return nil
	}
	keyID := s.perms.Extensions[extKeyID]
	revoke := func(wire.RevokedCert) {
		s.log.Warn().Uint64("serial", serial).Str("key_id", keyID).
			Msg("ssh session ended: its certificate was revoked by the relay (the technician's access ended)")
		s.cancel(ErrRevoked)
	}
	stop, c, revoked := s.cfg.Revocations.watch(serial, revoke)
	if revoked {
		revoke(c) // revoked between authentication and now
	}
	return stop
}
