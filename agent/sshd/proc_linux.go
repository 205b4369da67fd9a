package sshd

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// killSession kills every process whose session ID is sid, found in /proc:
// jobs of an interactive shell run in process groups of their own.
func killSession(sid int) {
	if sid <= 1 || sid == os.Getpid() {
		return
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 1 {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if procSession(stat) == sid {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// procSession returns the session field of /proc/PID/stat, or -1. The fields
// after the command name (which may contain anything) are: state ppid pgrp session.
func procSession(stat []byte) int {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return -1
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 4 {
		return -1
	}
	sid, err := strconv.Atoi(string(f[3]))
	if err != nil {
		return -1
	}
	return sid
}
