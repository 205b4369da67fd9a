package audit

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// chain builds a valid chain of n records.
func chain(n int) []Record {
	recs := make([]Record, 0, n)
	prev := ""
	t0 := time.Date(2026, 11, 3, 9, 0, 0, 123456789, time.UTC)
	for i := 1; i <= n; i++ {
		r := Record{
			Seq:      int64(i),
			Time:     NormalTime(t0.Add(time.Duration(i) * time.Second)),
			Actor:    fmt.Sprintf("token:%d (admin)", i%3),
			Action:   "token.create",
			Target:   fmt.Sprintf("target-%d", i),
			PrevHash: prev,
		}
		if i%2 == 0 {
			r.Detail = map[string]string{"uses": fmt.Sprint(i), "tags": "site=paris"}
		}
		r.Hash = r.ComputeHash()
		prev = r.Hash
		recs = append(recs, r)
	}
	return recs
}

// verify runs recs through a Verifier and Finish against the head of orig.
func verify(recs []Record, headSeq int64, headHash string) (int64, error) {
	var v Verifier
	for _, r := range recs {
		if err := v.Add(r); err != nil {
			return v.Count(), err
		}
	}
	return v.Count(), v.Finish(headSeq, headHash)
}

func TestValidChain(t *testing.T) {
	recs := chain(100)
	n, err := verify(recs, 100, recs[99].Hash)
	if err != nil || n != 100 {
		t.Fatalf("verify = %d, %v; want 100, nil", n, err)
	}
	if n, err := verify(nil, 0, ""); err != nil || n != 0 {
		t.Fatalf("empty chain: %d, %v", n, err)
	}
}

func TestComputeHash(t *testing.T) {
	base := Record{Seq: 1, Time: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), Actor: "a", Action: "b", Target: "c"}
	h := base.ComputeHash()
	if len(h) != 64 {
		t.Fatalf("hash %q is not 64 hex digits", h)
	}
	withHash := base
	withHash.Hash = "ignored"
	empty := base
	empty.Detail = map[string]string{}
	zeros := base
	zeros.PrevHash = strings.Repeat("0", 64)
	local := base
	local.Time = base.Time.In(time.FixedZone("X", 3600)).Add(999) // same instant to the microsecond
	for name, r := range map[string]Record{"hash ignored": withHash, "empty detail": empty, "zero prev": zeros, "zone and ns": local} {
		if got := r.ComputeHash(); got != h {
			t.Errorf("%s: hash changed", name)
		}
	}
	// Field boundaries must not be ambiguous.
	shifted := base
	shifted.Actor, shifted.Action = "ab", ""
	d1, d2 := base, base
	d1.Detail = map[string]string{"k": "v=w"}
	d2.Detail = map[string]string{"k=v": "w"}
	if shifted.ComputeHash() == h || d1.ComputeHash() == d2.ComputeHash() {
		t.Fatal("ambiguous encoding")
	}
}

func TestTamperDetected(t *testing.T) {
	orig := chain(100)
	head, headHash := int64(100), orig[99].Hash
	edit := func(i int, f func(*Record)) []Record {
		recs := append([]Record(nil), orig...)
		r := recs[i]
		if r.Detail != nil {
			d := make(map[string]string, len(r.Detail))
			for k, v := range r.Detail {
				d[k] = v
			}
			r.Detail = d
		}
		f(&r)
		recs[i] = r
		return recs
	}
	without := func(i int) []Record {
		recs := append([]Record(nil), orig[:i]...)
		return append(recs, orig[i+1:]...)
	}
	swapped := append([]Record(nil), orig...)
	swapped[40], swapped[41] = swapped[41], swapped[40]

	tests := []struct {
		name    string
		recs    []Record
		wantSeq int64
	}{
		{"seq", edit(9, func(r *Record) { r.Seq = 1000 }), 10},
		{"time", edit(19, func(r *Record) { r.Time = r.Time.Add(time.Microsecond) }), 20},
		{"actor", edit(29, func(r *Record) { r.Actor = "system" }), 30},
		{"action", edit(0, func(r *Record) { r.Action = "login" }), 1},
		{"target", edit(99, func(r *Record) { r.Target += "x" }), 100},
		{"detail value", edit(49, func(r *Record) { r.Detail["uses"] = "7" }), 50},
		{"detail added", edit(50, func(r *Record) { r.Detail = map[string]string{"x": "y"} }), 51},
		{"detail removed", edit(51, func(r *Record) { r.Detail = nil }), 52},
		{"prev hash", edit(59, func(r *Record) { r.PrevHash = orig[10].Hash }), 60},
		{"hash", edit(69, func(r *Record) { r.Hash = orig[70].Hash }), 70},
		{"rehashed record", edit(79, func(r *Record) { r.Actor = "x"; r.Hash = r.ComputeHash() }), 81},
		{"first removed", without(0), 1},
		{"middle removed", without(49), 50},
		{"last removed", orig[:99], 100},
		{"reordered", swapped, 41},
		{"duplicated", append(append([]Record(nil), orig[:30]...), orig[29:]...), 31},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := verify(tc.recs, head, headHash)
			var ce *ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *ChainError", err)
			}
			if ce.Seq != tc.wantSeq {
				t.Fatalf("err = %v, want seq %d", err, tc.wantSeq)
			}
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("audit record %d: ", tc.wantSeq)) {
				t.Fatalf("message %q", err)
			}
		})
	}
}

func TestHeadMismatch(t *testing.T) {
	recs := chain(10)
	for _, tc := range []struct {
		name    string
		seq     int64
		hash    string
		wantSeq int64
	}{
		{"head hash differs", 10, recs[8].Hash, 10},
		{"chain longer than head", 9, recs[8].Hash, 10},
		{"head beyond chain", 12, "", 11},
	} {
		_, err := verify(recs, tc.seq, tc.hash)
		var ce *ChainError
		if !errors.As(err, &ce) || ce.Seq != tc.wantSeq {
			t.Errorf("%s: err = %v, want seq %d", tc.name, err, tc.wantSeq)
		}
	}
}

func TestVerifierSticky(t *testing.T) {
	recs := chain(5)
	var v Verifier
	bad := recs[1]
	bad.Actor = "x"
	_ = v.Add(recs[0])
	first := v.Add(bad)
	if first == nil {
		t.Fatal("tampered record accepted")
	}
	if err := v.Add(recs[2]); err != first {
		t.Fatalf("later Add = %v, want the first error", err)
	}
	if err := v.Finish(5, recs[4].Hash); err != first {
		t.Fatalf("Finish = %v, want the first error", err)
	}
	if v.Count() != 1 {
		t.Fatalf("count = %d, want 1", v.Count())
	}
}
