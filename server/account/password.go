// Package account holds the credentials of people (not tokens): argon2id
// password hashes, TOTP second factors (RFC 6238) with replay protection,
// and single-use recovery codes. It is pure logic with no storage: the API
// keeps what it returns in the store (server/store does not import this
// package) and hands it back to check a login.
//
// Passwords are hashed with argon2id (RFC 9106) and kept as a PHC string,
//
//	$argon2id$v=19$m=65536,t=2,p=1$<salt, base64>$<hash, base64>
//
// so a hash made with other parameters still verifies; Verify then says it
// needs a rehash, and the relay stores a new hash at that login.
package account

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over the memory
	Threads uint8  // lanes
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultParams cost one login 50-100 ms of one core on the 2-core machines
// Patchbay's relays are sized for: 64 MiB, 2 passes, 1 lane. Measured with
// BenchmarkHash (go test -run X -bench Hash -benchtime 20x ./server/account)
// on this project's build machine (AMD EPYC, 2 vCPU): 76 ms per hash when
// the machine was otherwise idle, 91-98 ms while another test run shared
// its cores. (1 pass over 64 MiB measured 44 ms, under the 50 ms floor.)
// 64 MiB is over three times OWASP's minimum for argon2id (19 MiB, t=2), so
// each guess costs an attacker's GPUs 64 MiB of memory as well as time.
// Concurrent hashes are bounded (see sem), so a flood of logins costs at
// most NumCPU x 64 MiB.
var DefaultParams = Params{Memory: 64 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Limits on what Hash accepts and what a stored hash may ask for.
const (
	MinPasswordLen = 12
	MaxPasswordLen = 1024
	maxMemory      = 1 << 20 // 1 GiB in KiB: a stored hash asking for more is refused
	maxTime        = 16
)

// sem bounds how many hashes run at once: each takes Memory KiB and a core
// for ~80 ms, and a flood of guesses must not starve agents and other users.
var sem = make(chan struct{}, max(1, runtime.NumCPU()))

// ErrMalformedHash is a stored hash that is not an argon2id PHC string this
// package can verify.
var ErrMalformedHash = errors.New("stored password hash is not an argon2id PHC string")

// CheckPassword says what is wrong with a new password, or nil.
func CheckPassword(pw string) error {
	switch n := len([]rune(pw)); {
	case n < MinPasswordLen:
		return fmt.Errorf("password too short: %d characters, want at least %d", n, MinPasswordLen)
	case len(pw) > MaxPasswordLen:
		return fmt.Errorf("password too long: want at most %d bytes", MaxPasswordLen)
	}
	return nil
}

// Hash returns the PHC string of pw with DefaultParams and a random salt.
func Hash(pw string) (string, error) {
	return HashWith(pw, DefaultParams)
}

// HashWith hashes pw with p (tests use cheaper parameters).
func HashWith(pw string, p Params) (string, error) {
	if len(pw) > MaxPasswordLen {
		return "", fmt.Errorf("hash password: longer than %d bytes", MaxPasswordLen)
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: salt: %w", err)
	}
	key := idKey(pw, salt, p)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

func idKey(pw string, salt []byte, p Params) []byte {
	sem <- struct{}{}
	defer func() { <-sem }()
	return argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
}

// Verify reports whether pw matches the PHC string stored (compared in
// constant time), and whether stored was made with parameters other than
// DefaultParams, so the caller should store Hash(pw) now that it knows pw.
func Verify(stored, pw string) (ok, rehash bool, err error) {
	p, salt, want, err := parse(stored)
	if err != nil {
		return false, false, err
	}
	if len(pw) > MaxPasswordLen {
		return false, false, nil
	}
	got := idKey(pw, salt, p)
	ok = subtle.ConstantTimeCompare(got, want) == 1
	d := DefaultParams
	rehash = p.Memory != d.Memory || p.Time != d.Time || p.Threads != d.Threads ||
		p.SaltLen != d.SaltLen || p.KeyLen != d.KeyLen
	return ok, rehash, nil
}

// dummy is a hash of nothing anyone types, for VerifyNothing (made at first
// use: hashing costs ~80 ms, which a program that never verifies should not pay).
var dummy = sync.OnceValue(func() string {
	h, _ := Hash("\x00patchbay: no such user\x00")
	return h
})

// VerifyNothing costs what a Verify costs and always fails: a login for an
// unknown user takes as long as one with a wrong password, so response
// times do not tell which user names exist.
func VerifyNothing(pw string) {
	Verify(dummy(), pw)
}

// parse splits a PHC string into its parameters, salt and key.
func parse(s string) (Params, []byte, []byte, error) {
	var p Params
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, ErrMalformedHash
	}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return p, nil, nil, ErrMalformedHash
		}
		switch k {
		case "m":
			p.Memory = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			if n > 255 {
				return p, nil, nil, ErrMalformedHash
			}
			p.Threads = uint8(n)
		default:
			return p, nil, nil, ErrMalformedHash
		}
	}
	if p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory || p.Time < 1 || p.Time > maxTime || p.Threads < 1 {
		return p, nil, nil, ErrMalformedHash
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	key, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 {
		return p, nil, nil, ErrMalformedHash
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}

// NewPassword returns a random password of 20 characters from an alphabet
// without look-alikes (about 110 bits), for an admin to hand over once.
func NewPassword() string {
	const alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 20)
	for i := range b {
		b[i] = alphabet[randIntn(len(alphabet))]
	}
	return string(b)
}

// randIntn returns a uniform random int in [0, n) from crypto/rand.
func randIntn(n int) int {
	limit := 256 - 256%n
	var b [1]byte
	for {
		rand.Read(b[:])
		if int(b[0]) < limit {
			return int(b[0]) % n
		}
	}
}
