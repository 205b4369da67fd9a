// Package authlimit slows down guessing of the relay's credentials (API
// tokens, console sign-ins, and later passwords and TOTP codes) and keeps
// count of the failures for the audit log.
//
// Failures are counted per source address and per user name. A source that
// fails too often is refused (429, with when to retry) before its
// credentials are even checked, whatever user it names. A user name that
// fails too often is refused from every source except those that signed in
// successfully as that user before (kept in memory, for KnownFor): an
// attacker's guesses alone can throttle their own address and unknown
// addresses, but never lock the real user out of the address they use.
//
// Each limit is a token bucket: Burst failures at once, then one more per
// Every. A success from a source forgets that source's failures for the
// user it signed in as, not the source's failures for other users.
//
// The Limiter keeps, per source, how many failures it saw since the last
// Flush; the relay flushes once a minute into one audit record per source
// (auth.failures), so a flood of guesses costs a bounded number of audit
// records, and logs the first failure of each source per flush period.
package authlimit

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Config tunes a Limiter; zero fields take the defaults.
type Config struct {
	SourceBurst int           // failures a source may make at once (default 20)
	SourceEvery time.Duration // then one more per (default 3s)
	UserBurst   int           // failures against one user name at once (default 10)
	UserEvery   time.Duration // then one more per (default 10s)
	KnownFor    time.Duration // how long a successful source stays exempt from its user's limit (default 30 days)
	MaxEntries  int           // sources and users tracked at most (default 100,000); the oldest are dropped
}

// Defaults.
const (
	DefaultSourceBurst = 20
	DefaultSourceEvery = 3 * time.Second
	DefaultUserBurst   = 10
	DefaultUserEvery   = 10 * time.Second
	DefaultKnownFor    = 30 * 24 * time.Hour
	DefaultMaxEntries  = 100_000
	maxUsersInSummary  = 5
)

// bucket is a token bucket of failures: level is how many failures are
// "in" it at at; it drains by one per every.
type bucket struct {
	level float64
	at    time.Time
}

func (b *bucket) drain(now time.Time, every time.Duration) {
	if d := now.Sub(b.at); d > 0 {
		b.level = math.Max(0, b.level-float64(d)/float64(every))
		b.at = now
	}
}

// full reports whether one more failure would exceed burst, and when a
// failure fits again.
func (b *bucket) full(now time.Time, burst int, every time.Duration) (time.Duration, bool) {
	b.drain(now, every)
	if b.level+1 <= float64(burst) {
		return 0, false
	}
	wait := time.Duration((b.level + 1 - float64(burst)) * float64(every))
	return max(wait, time.Second).Round(time.Second), true
}

// Summary is what a source did since the last Flush.
type Summary struct {
	Source    string
	Failures  int
	Throttled int       // attempts refused with 429
	Users     []string  // user names tried (at most 5; "" for bare tokens)
	First     time.Time // first failure or refusal of the period
	Last      time.Time
}

type sourceState struct {
	bucket
	sum Summary
}

type userState struct {
	bucket
	known map[string]time.Time // source -> last successful sign-in
}

// Limiter is safe for concurrent use. The zero value is not usable: New.
type Limiter struct {
	cfg Config

	mu      sync.Mutex
	sources map[string]*sourceState // guarded by mu
	users   map[string]*userState   // guarded by mu
}

// New returns a Limiter with cfg's zero fields set to the defaults.
func New(cfg Config) *Limiter {
	if cfg.SourceBurst <= 0 {
		cfg.SourceBurst = DefaultSourceBurst
	}
	if cfg.SourceEvery <= 0 {
		cfg.SourceEvery = DefaultSourceEvery
	}
	if cfg.UserBurst <= 0 {
		cfg.UserBurst = DefaultUserBurst
	}
	if cfg.UserEvery <= 0 {
		cfg.UserEvery = DefaultUserEvery
	}
	if cfg.KnownFor <= 0 {
		cfg.KnownFor = DefaultKnownFor
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	return &Limiter{cfg: cfg, sources: map[string]*sourceState{}, users: map[string]*userState{}}
}

// Throttled is the refusal of an attempt: the caller answers 429 with
// Retry-After.
type Throttled struct {
	RetryAfter time.Duration
	Source     string
	User       string // set when the user's limit refused it
}

func (t *Throttled) Error() string {
	if t.User != "" {
		return fmt.Sprintf("too many failed sign-ins for user %s from new addresses: retry in %s (sign in from an address you used before, or ask an admin)",
			t.User, t.RetryAfter)
	}
	return fmt.Sprintf("too many failed sign-ins from %s: retry in %s", t.Source, t.RetryAfter)
}

// Allow reports whether an attempt from source for user ("" when the
// credential names no user, as an API token) may be checked at now. A
// refusal is counted in the source's summary.
func (l *Limiter) Allow(source, user string, now time.Time) *Throttled {
	l.mu.Lock()
	defer l.mu.Unlock()
	var refusal *Throttled
	if s := l.sources[source]; s != nil {
		if wait, full := s.full(now, l.cfg.SourceBurst, l.cfg.SourceEvery); full {
			refusal = &Throttled{RetryAfter: wait, Source: source}
		}
	}
	if u := l.users[user]; refusal == nil && user != "" && u != nil {
		if _, known := u.known[source]; !known {
			if wait, full := u.full(now, l.cfg.UserBurst, l.cfg.UserEvery); full {
				refusal = &Throttled{RetryAfter: wait, Source: source, User: user}
			}
		}
	}
	if refusal != nil {
		s := l.source(source, now)
		s.sum.Throttled++
		l.note(s, user, now)
	}
	return refusal
}

// Failed records a failed attempt. It reports whether this is the source's
// first failure since the last Flush (the caller logs only those).
func (l *Limiter) Failed(source, user string, now time.Time) (first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.source(source, now)
	s.drain(now, l.cfg.SourceEvery)
	s.level++
	first = s.sum.Failures == 0
	s.sum.Failures++
	l.note(s, user, now)
	if user != "" {
		u := l.user(user, now)
		if _, known := u.known[source]; !known {
			u.drain(now, l.cfg.UserEvery)
			u.level++
		}
	}
	return first
}

// Succeeded records a successful sign-in: source becomes known for user
// (exempt from the user's limit) and its failures for that user are
// forgotten.
func (l *Limiter) Succeeded(source, user string, now time.Time) {
	if user == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.user(user, now)
	if u.known == nil {
		u.known = map[string]time.Time{}
	}
	u.known[source] = now
	for src, at := range u.known {
		if now.Sub(at) > l.cfg.KnownFor {
			delete(u.known, src)
		}
	}
}

// Flush returns and resets every source's summary with something in it,
// ordered by source, and drops state that has drained.
func (l *Limiter) Flush(now time.Time) []Summary {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Summary
	for src, s := range l.sources {
		if s.sum.Failures > 0 || s.sum.Throttled > 0 {
			out = append(out, s.sum)
		}
		s.sum = Summary{Source: src}
		if s.drain(now, l.cfg.SourceEvery); s.level == 0 {
			delete(l.sources, src)
		}
	}
	for name, u := range l.users {
		if u.drain(now, l.cfg.UserEvery); u.level == 0 && len(u.known) == 0 {
			delete(l.users, name)
		}
	}
	slices.SortFunc(out, func(a, b Summary) int {
		switch {
		case a.Source < b.Source:
			return -1
		case a.Source > b.Source:
			return 1
		}
		return 0
	})
	return out
}

// source returns the state of src, creating it. Called with mu held.
func (l *Limiter) source(src string, now time.Time) *sourceState {
	s := l.sources[src]
	if s == nil {
		makeRoom(l.sources, l.cfg.MaxEntries)
		s = &sourceState{bucket: bucket{at: now}, sum: Summary{Source: src}}
		l.sources[src] = s
	}
	return s
}

// note adds an attempt for user at now to s's summary. Called with mu held.
func (l *Limiter) note(s *sourceState, user string, now time.Time) {
	if s.sum.First.IsZero() {
		s.sum.First = now
	}
	s.sum.Last = now
	if !slices.Contains(s.sum.Users, user) && len(s.sum.Users) < maxUsersInSummary {
		s.sum.Users = append(s.sum.Users, user)
	}
}

// makeRoom makes room in m for one more entry when it holds limit,
// dropping an arbitrary one (map order is random: O(1), and an attacker
// cannot aim the eviction at a chosen entry).
func makeRoom[V any](m map[string]V, limit int) {
	if len(m) < limit {
		return
	}
	for k := range m {
		delete(m, k)
		return
	}
}

// SourceOf is the source an address counts as: the IP of a host:port, and
// for IPv6 its /64 (one host usually has a whole /64 to rotate through).
func SourceOf(remoteAddr string) string {
	host := remoteAddr
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.String()
		}
	}
	return ip.String()
}
