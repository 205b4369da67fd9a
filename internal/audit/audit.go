// Package audit implements Patchbay's tamper-evident audit log format: records that each
// carry the SHA-256 of the record before them, and a Verifier that walks a chain and names
// the first record that was edited, removed or reordered.
//
// This package holds no database code; the store persists records and the chain head and
// feeds them back through a Verifier.
//
// What the chain proves: editing any field of any stored record, removing or reordering
// records, and removing records from the tail (when the stored head is compared with
// Finish) are all detected. What it cannot prove on its own: an attacker with write access
// who rewrites a record, recomputes every later hash and moves the head along with it.
// Anchoring the head elsewhere (exporting it, signing it) closes that gap.
package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"slices"
	"strings"
	"time"
)

// hashVersion is the first field of every hashed encoding, so a future change of the
// encoding cannot be confused with this one.
const hashVersion = "patchbay-audit-v1"

// zeroHash is what an empty PrevHash (the first record of a chain) is hashed as.
var zeroHash = strings.Repeat("0", sha256.Size*2)

// Record is one audit entry. Each record carries the hash of the one before.
type Record struct {
	Seq      int64             `json:"seq"`
	Time     time.Time         `json:"time"`   // UTC, truncated to microseconds before hashing
	Actor    string            `json:"actor"`  // e.g. "token:<id> (admin)", "agent:<uuid>", "system"
	Action   string            `json:"action"` // e.g. "enroll", "token.create", "token.revoke", "agent.revoke", "login"
	Target   string            `json:"target"`
	Detail   map[string]string `json:"detail,omitempty"`
	PrevHash string            `json:"prev_hash"` // hex; "" hashed as 64 zeros for seq 1
	Hash     string            `json:"hash"`      // hex SHA-256
}

// NormalTime returns t as the chain stores and hashes it: UTC, truncated to microseconds
// (the precision both SQLite text timestamps and PostgreSQL TIMESTAMP keep).
func NormalTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// ComputeHash returns the hex SHA-256 over an unambiguous canonical encoding of every
// field but Hash. The encoding is a sequence of items, where u64(n) is n as 8 bytes
// big-endian and str(s) is u64(len(s)) followed by the bytes of s:
//
//	str("patchbay-audit-v1")
//	u64(Seq)
//	str(NormalTime(Time).Format(time.RFC3339Nano))
//	str(Actor) str(Action) str(Target)
//	u64(len(Detail)), then for each key in ascending byte order: str(key) str(value)
//	str(PrevHash), or str(64 × "0") when PrevHash is ""
//
// Every variable-length item is length-prefixed, so no two different records share an
// encoding. A nil and an empty Detail encode the same.
func (r Record) ComputeHash() string {
	h := sha256.New()
	writeStr(h, hashVersion)
	writeU64(h, uint64(r.Seq))
	writeStr(h, NormalTime(r.Time).Format(time.RFC3339Nano))
	writeStr(h, r.Actor)
	writeStr(h, r.Action)
	writeStr(h, r.Target)
	keys := make([]string, 0, len(r.Detail))
	for k := range r.Detail {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	writeU64(h, uint64(len(keys)))
	for _, k := range keys {
		writeStr(h, k)
		writeStr(h, r.Detail[k])
	}
	prev := r.PrevHash
	if prev == "" {
		prev = zeroHash
	}
	writeStr(h, prev)
	return hex.EncodeToString(h.Sum(nil))
}

func writeU64(h hash.Hash, n uint64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	h.Write(b[:])
}

func writeStr(h hash.Hash, s string) {
	writeU64(h, uint64(len(s)))
	h.Write([]byte(s))
}

// ChainError names the first record at which a chain fails verification.
type ChainError struct {
	Seq    int64
	Reason string
}

// Error implements error as "audit record <seq>: <reason>".
func (e *ChainError) Error() string {
	return fmt.Sprintf("audit record %d: %s", e.Seq, e.Reason)
}

// Verifier checks a chain record by record in Seq order: Seq contiguous from 1, PrevHash
// equals the previous Hash, Hash equals ComputeHash. It reports the first bad record:
// once a check has failed, every later Add and Finish returns that same *ChainError.
// The zero value is ready to use; a Verifier holds no records, only the last one's seq and
// hash, so chains of any length verify in constant memory.
type Verifier struct {
	count    int64
	lastSeq  int64
	lastHash string
	err      *ChainError
}

// Add checks the next record of the chain. It returns nil or a *ChainError.
func (v *Verifier) Add(r Record) error {
	if v.err != nil {
		return v.err
	}
	want := v.lastSeq + 1
	switch {
	case r.Seq > want:
		return v.fail(want, fmt.Sprintf("missing (next record present is %d)", r.Seq))
	case r.Seq < want:
		return v.fail(want, fmt.Sprintf("out of order (found record %d after %d)", r.Seq, v.lastSeq))
	}
	prev := v.lastHash
	if r.PrevHash != prev {
		return v.fail(r.Seq, "prev_hash does not match the hash of the previous record")
	}
	if r.ComputeHash() != r.Hash {
		return v.fail(r.Seq, "hash does not match the record's content")
	}
	v.count++
	v.lastSeq = r.Seq
	v.lastHash = r.Hash
	return nil
}

// Finish compares the end of the chain with the stored head (the seq and hash of the last
// record, kept apart from the records). It detects records removed from the tail, which
// Add alone cannot see. An empty chain has head 0 and "".
func (v *Verifier) Finish(headSeq int64, headHash string) error {
	if v.err != nil {
		return v.err
	}
	switch {
	case v.lastSeq < headSeq:
		return v.fail(v.lastSeq+1, fmt.Sprintf("missing (chain ends at %d, head is %d)", v.lastSeq, headSeq))
	case v.lastSeq > headSeq:
		return v.fail(headSeq+1, fmt.Sprintf("beyond the head (head is %d, chain ends at %d)", headSeq, v.lastSeq))
	case v.lastHash != headHash:
		return v.fail(headSeq, "hash does not match the stored head")
	}
	return nil
}

// Count returns how many records have verified so far.
func (v *Verifier) Count() int64 { return v.count }

func (v *Verifier) fail(seq int64, reason string) error {
	v.err = &ChainError{Seq: seq, Reason: reason}
	return v.err
}
