package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/plugins/sdk"
)

func TestStuckJobs(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	queues := []queue{{Name: "off"}, {Name: "on", Enabled: true, Accepting: true}}
	jobs := []job{
		{ID: "off-1", Queue: "off", Submitted: now.Add(-2 * time.Hour)},
		{ID: "off-2", Queue: "off", Submitted: now.Add(-time.Minute)},
		{ID: "on-3", Queue: "on", Submitted: now.Add(-3 * time.Hour)},
		{ID: "on-4", Queue: "on", Submitted: now.Add(-time.Second)},
		{ID: "on-5", Queue: "on"}, // date not understood
		{ID: "gone-6", Queue: "gone", Submitted: now.Add(-time.Hour)},
	}
	tests := []struct {
		name      string
		o         options
		stuck     []string
		waiting   int
		summary   string
		needed    bool
		wantErr   string
		numQueues int
	}{
		{"default: jobs on disabled queues", options{}, []string{"off-1", "off-2"}, 4,
			"queue off disabled and rejecting jobs; 2 stuck jobs", true, "", 2},
		{"older_than: any queue, by age", options{olderThan: time.Hour}, []string{"off-1", "on-3"}, 4,
			"queue off disabled and rejecting jobs; 2 stuck jobs", true, "", 2},
		{"older_than longer than every job", options{olderThan: 24 * time.Hour}, nil, 6,
			"queue off disabled and rejecting jobs", true, "", 2},
		{"one healthy queue", options{queue: "on"}, nil, 3, "1 queue, nothing stuck (3 jobs waiting)", false, "", 1},
		{"one queue, by age", options{queue: "on", olderThan: time.Hour}, []string{"on-3"}, 2, "1 stuck job", true, "", 1},
		{"unknown queue", options{queue: "nope"}, nil, 0, "", false, "no such CUPS queue", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := newCUPSState(tt.o, queues, jobs, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, j := range st.Stuck {
				ids = append(ids, j.ID)
			}
			if !reflect.DeepEqual(ids, tt.stuck) || st.Waiting != tt.waiting || len(st.Queues) != tt.numQueues {
				t.Fatalf("stuck %v waiting %d queues %d; want %v %d %d", ids, st.Waiting, len(st.Queues), tt.stuck, tt.waiting, tt.numQueues)
			}
			res, err := st.checkResult()
			if err != nil || res.Needed != tt.needed || res.Summary != tt.summary {
				t.Fatalf("check = %+v, %v; want needed=%v %q", res, err, tt.needed, tt.summary)
			}
		})
	}
}

func TestProblemsCapsQueueList(t *testing.T) {
	st := cupsState{Running: true}
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		st.Queues = append(st.Queues, queue{Name: n, Accepting: true})
	}
	got := strings.Join(st.problems(), "; ")
	if want := "queue a disabled; queue b disabled; queue c disabled; 2 more queues"; got != want {
		t.Fatalf("problems = %q, want %q", got, want)
	}
	if got := (cupsState{}).problems(); len(got) != 1 || got[0] != "the CUPS scheduler is not running" {
		t.Fatalf("not running: %q", got)
	}
}

func TestParseOptions(t *testing.T) {
	tests := []struct {
		params  sdk.Params
		wantErr string
	}{
		{sdk.Params{"older_than": "0s", "restart_scheduler": "true"}, ""},
		{sdk.Params{"older_than": "-1h"}, "negative"},
		{sdk.Params{"queue": "--all"}, "not a valid queue name"},
		{sdk.Params{"cups_server": "-h"}, "not host:port"},
		{sdk.Params{"cups_server": "localhost:631 -x"}, "not host:port"},
		{sdk.Params{"cups_server": "/run/cups/cups.sock"}, ""},
	}
	for _, tt := range tests {
		_, err := parseOptions(tt.params)
		if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("parseOptions(%v) = %v, want %q", tt.params, err, tt.wantErr)
		}
	}
	m := printerReset{}.Manifest()
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestSpoolFolder(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	files := map[string]time.Duration{ // name → age
		"FP00001.SPL": 3 * time.Hour, "FP00001.SHD": 3 * time.Hour,
		"FP00002.SPL": 3 * time.Hour, "fp00002.shd": time.Minute, // a pair is as young as its newest file
		"00003.TMP": 2 * time.Hour,
	}
	for name, age := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("data"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	jobs, err := listSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	var bases []string
	for _, j := range jobs {
		bases = append(bases, j.Base+":"+strings.Join(j.Files, ","))
	}
	if want := []string{"00003:00003.TMP", "FP00001:FP00001.SHD,FP00001.SPL", "FP00002:FP00002.SPL,fp00002.shd"}; !reflect.DeepEqual(bases, want) {
		t.Fatalf("listSpool = %v, want %v", bases, want)
	}
	tests := []struct {
		olderThan time.Duration
		clear     int
		keep      int
	}{{0, 3, 0}, {time.Hour, 2, 1}, {5 * time.Hour, 0, 3}}
	for _, tt := range tests {
		clear, keep := selectSpool(jobs, tt.olderThan, now)
		if len(clear) != tt.clear || keep != tt.keep {
			t.Errorf("selectSpool(%s) = %d clear, %d keep; want %d, %d", tt.olderThan, len(clear), keep, tt.clear, tt.keep)
		}
	}
	clear, _ := selectSpool(jobs, time.Hour, now)
	n, err := removeSpool(dir, clear)
	if err != nil || n != 2 {
		t.Fatalf("removeSpool = %d, %v", n, err)
	}
	left, err := listSpool(dir)
	if err != nil || len(left) != 1 || left[0].Base != "FP00002" {
		t.Fatalf("left = %+v, %v", left, err)
	}
	if _, err := listSpool(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("listSpool of a missing folder succeeded")
	}
}
