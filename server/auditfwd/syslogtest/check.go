package syslogtest

import (
	"fmt"
	"strconv"
)

// RecordSD is the SD-ID of the audit record element (auditfwd.RecordID).
const RecordSD = "patchbay@32473"

// Seq returns the audit seq a message carries.
func (r Received) Seq() (int64, error) {
	e, ok := r.Msg.Element(RecordSD)
	if !ok {
		return 0, fmt.Errorf("message without [%s]: %q", RecordSD, r.Raw)
	}
	s, _ := e.Get("seq")
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("seq %q: %q", s, r.Raw)
	}
	return n, nil
}

// Highest returns the highest seq among msgs (0 for none or on a bad one).
func Highest(msgs []Received) int64 {
	var top int64
	for _, m := range msgs {
		if n, err := m.Seq(); err == nil {
			top = max(top, n)
		}
	}
	return top
}

// CheckAudit checks that msgs carry the audit records from..upTo as the
// forwarder promises: each is an audit message (APP-NAME patchbay, MSGID
// its action, prev_hash the hash of the record before); on one connection
// the seqs go up by one; a new connection may start again at an earlier
// record (a resend after a reconnect) but never skips one; every record
// from..upTo arrived. It returns how many messages were duplicates.
func CheckAudit(msgs []Received, from, upTo int64) (dups int, err error) {
	hashes := map[int64]string{}
	prevs := map[int64]string{}
	var top int64 = from - 1
	lastConn, lastSeq := 0, int64(0)
	for i, m := range msgs {
		seq, err := m.Seq()
		if err != nil {
			return dups, err
		}
		if m.Msg.AppName != "patchbay" {
			return dups, fmt.Errorf("message %d: APP-NAME %q", i, m.Msg.AppName)
		}
		e, _ := m.Msg.Element(RecordSD)
		action, _ := e.Get("action")
		if len(action) <= 32 && m.Msg.MsgID != action {
			return dups, fmt.Errorf("record %d: MSGID %q, action %q", seq, m.Msg.MsgID, action)
		}
		if m.Conn == lastConn && seq != lastSeq+1 {
			return dups, fmt.Errorf("record %d follows record %d on connection %d", seq, lastSeq, m.Conn)
		}
		if seq > top+1 {
			return dups, fmt.Errorf("record %d arrived before record %d (connection %d)", seq, top+1, m.Conn)
		}
		hash, _ := e.Get("hash")
		prev, _ := e.Get("prev_hash")
		if old, ok := hashes[seq]; ok {
			if old != hash {
				return dups, fmt.Errorf("record %d arrived twice with different hashes", seq)
			}
			dups++
		}
		hashes[seq], prevs[seq] = hash, prev
		top = max(top, seq)
		lastConn, lastSeq = m.Conn, seq
	}
	for s := from; s <= upTo; s++ {
		if _, ok := hashes[s]; !ok {
			return dups, fmt.Errorf("record %d never arrived", s)
		}
		if h, ok := hashes[s-1]; ok && prevs[s] != h {
			return dups, fmt.Errorf("record %d: prev_hash is not record %d's hash", s, s-1)
		}
	}
	return dups, nil
}
