package authlimit

import "time"

// Ticket is an attempt begun with Begin: what it reserved. The zero Ticket
// (from a nil Limiter's caller) reserves nothing.
type Ticket struct {
	source, user string
	userHeld     bool // the user's bucket holds one for this attempt
	held         bool // the source's bucket holds one (false once ended)
}

// Begin is Allow for a credential whose check is slow (a password is hashed
// for ~100 ms): when allowed, the attempt is counted as a failure at once,
// so a flood of requests in flight cannot all pass the limit before the
// first of them has failed (the bench saw 73 wrong passwords checked where
// 13 were allowed). End the attempt with exactly one of Fail, Succeed or
// Release.
func (l *Limiter) Begin(source, user string, now time.Time) (*Ticket, *Throttled) {
	if th := l.Allow(source, user, now); th != nil {
		return nil, th
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t := &Ticket{source: source, user: user, held: true}
	s := l.source(source, now)
	s.drain(now, l.cfg.SourceEvery)
	s.level++
	if user != "" {
		u := l.user(user, now)
		if _, known := u.known[source]; !known {
			u.drain(now, l.cfg.UserEvery)
			u.level++
			t.userHeld = true
		}
	}
	return t, nil
}

// Fail ends t as a failed attempt: it stays counted, and goes into the
// source's summary. It reports whether this is the source's first failure
// since the last Flush (log only those).
func (l *Limiter) Fail(t *Ticket, now time.Time) (first bool) {
	if t == nil || !t.held {
		return false
	}
	t.held = false
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.source(t.source, now)
	first = s.sum.Failures == 0
	s.sum.Failures++
	l.note(s, t.user, now)
	return first
}

// Succeed ends t as a successful sign-in: the attempt is given back, and
// the source becomes known for the user (see Succeeded).
func (l *Limiter) Succeed(t *Ticket, now time.Time) {
	if t == nil || !t.held {
		return
	}
	l.Release(t, now)
	l.Succeeded(t.source, t.user, now)
}

// Release ends t without a verdict (the check could not be made, or a
// second factor is still to come): the attempt is given back.
func (l *Limiter) Release(t *Ticket, now time.Time) {
	if t == nil || !t.held {
		return
	}
	t.held = false
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.sources[t.source]; s != nil {
		s.drain(now, l.cfg.SourceEvery)
		s.level = max(0, s.level-1)
	}
	if u := l.users[t.user]; u != nil && t.userHeld {
		u.drain(now, l.cfg.UserEvery)
		u.level = max(0, u.level-1)
	}
}

// user returns the state of name, creating it. Called with mu held.
func (l *Limiter) user(name string, now time.Time) *userState {
	u := l.users[name]
	if u == nil {
		makeRoom(l.users, l.cfg.MaxEntries)
		u = &userState{bucket: bucket{at: now}}
		l.users[name] = u
	}
	return u
}
