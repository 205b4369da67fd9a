package sshd

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// killSession kills every process whose session ID is sid, found in /proc:
// jobs of an interactive shell run in process groups of their own. It
// returns when they have been signalled.
//
// Finding them means reading the stat file of every process on the machine,
// so sessions that end together (a technician's link drops, the agent stops,
// the relay ends many sessions at once) share one walk of /proc instead of
// one walk each: ending N sessions among P processes reads P files, not N×P.
func killSession(sid int) {
	if sid <= 1 || sid == os.Getpid() {
		return
	}
	reaper.kill(sid)
}

// reaper is the agent's one sessionReaper.
var reaper sessionReaper

// sessionReaper coalesces killSession calls into walks of /proc. The caller
// that finds no walk under way does the walks (one for each batch of sessions
// that came in meanwhile) until none is pending; the others wait for the walk
// that covers their session. No goroutine of its own.
type sessionReaper struct {
	mu      sync.Mutex
	pending map[int]bool  // sessions the next walk kills; guarded by mu
	next    chan struct{} // closed when the next walk is done; guarded by mu
	walking bool          // a caller is doing walks; guarded by mu
}

func (r *sessionReaper) kill(sid int) {
	r.mu.Lock()
	if r.pending == nil {
		r.pending, r.next = map[int]bool{}, make(chan struct{})
	}
	r.pending[sid] = true
	done := r.next
	if r.walking {
		r.mu.Unlock()
		<-done
		return
	}
	r.walking = true
	for len(r.pending) > 0 {
		sids, walked := r.pending, r.next
		r.pending, r.next = map[int]bool{}, make(chan struct{})
		r.mu.Unlock()
		killSessions(sids)
		close(walked)
		r.mu.Lock()
	}
	r.walking = false
	r.mu.Unlock()
}

// killSessions sends SIGKILL to every process in one of the sessions sids.
func killSessions(sids map[int]bool) {
	dir, err := os.Open("/proc")
	if err != nil {
		return
	}
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return
	}
	self := os.Getpid()
	buf := make([]byte, 1024) // a stat line is a few hundred bytes
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 1 || pid == self {
			continue
		}
		stat, ok := readStat(name, buf)
		if ok && sids[procSession(stat)] {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// readStat reads /proc/NAME/stat into buf.
func readStat(name string, buf []byte) ([]byte, bool) {
	f, err := os.Open("/proc/" + name + "/stat")
	if err != nil {
		return nil, false // gone meanwhile
	}
	defer f.Close()
	n, err := f.Read(buf)
	if err != nil || n == 0 {
		return nil, false
	}
	return buf[:n], true
}

// procSession returns the session field of /proc/PID/stat, or -1. The fields
// after the command name (which may contain anything) are: state ppid pgrp session.
func procSession(stat []byte) int {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return -1
	}
	rest := stat[i+1:]
	for field := 0; ; field++ {
		rest = bytes.TrimLeft(rest, " ")
		end := bytes.IndexByte(rest, ' ')
		if end < 0 {
			end = len(rest)
		}
		if field == 3 {
			sid, err := strconv.Atoi(string(bytes.TrimRight(rest[:end], "\n")))
			if err != nil {
				return -1
			}
			return sid
		}
		if end == len(rest) {
			return -1
		}
		rest = rest[end:]
	}
}
