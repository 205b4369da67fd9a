package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestFormatUptime(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0m"},
		{59 * time.Second, "0m"},
		{12 * time.Minute, "12m"},
		{4*time.Hour + 12*time.Minute, "4h12m"},
		{3*24*time.Hour + 4*time.Hour + 59*time.Minute, "3d4h"},
	}
	for _, tt := range tests {
		if got := formatUptime(tt.d); got != tt.want {
			t.Errorf("formatUptime(%s) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestReportSummaryAndProblems(t *testing.T) {
	base := func() *Report {
		return &Report{
			OS: "linux", UptimeSeconds: 3*86400 + 4*3600, Load1: float(0.52), Load5: float(0.5), Load15: float(0.4),
			MemTotal: 1000, MemAvailable: 590, DiskWarn: 90,
			Disks:               []Disk{{Mount: "/", Percent: 63}, {Mount: "/boot", Percent: 20}},
			FailedServicesKnown: true,
		}
	}
	tests := []struct {
		name       string
		edit       func(r *Report)
		want       string
		wantNeeded bool
	}{
		{"healthy", func(*Report) {}, "up 3d4h, load 0.52, mem 41% used, disk / 63%, 0 failed services, no reboot pending", false},
		{"full disks", func(r *Report) { r.Disks[0].Percent, r.Disks[1].Percent = 95, 97 },
			"up 3d4h, load 0.52, mem 41% used, disk /boot 97% (2 disks at 90% or more), 0 failed services, no reboot pending", true},
		{"at threshold", func(r *Report) { r.Disks[1].Percent = 90 },
			"up 3d4h, load 0.52, mem 41% used, disk /boot 90%, 0 failed services, no reboot pending", true},
		{"failed", func(r *Report) { r.FailedServices = []string{"a.service"} },
			"up 3d4h, load 0.52, mem 41% used, disk / 63%, 1 failed service, no reboot pending", true},
		{"reboot", func(r *Report) { r.RebootPending, r.RebootReason = true, "x" },
			"up 3d4h, load 0.52, mem 41% used, disk / 63%, 0 failed services, reboot pending", true},
		{"unknowns", func(r *Report) { r.Load1, r.Disks, r.FailedServicesKnown = nil, nil, false },
			"up 3d4h, load n/a, mem 41% used, disk n/a, failed services unknown, no reboot pending", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base()
			tt.edit(r)
			r.finish()
			if got := r.Summary(); got != tt.want {
				t.Errorf("summary = %q\nwant      %q", got, tt.want)
			}
			if r.needed() != tt.wantNeeded {
				t.Errorf("needed = %v, problems %q", r.needed(), r.Problems)
			}
			var back map[string]any
			if err := json.Unmarshal([]byte(r.Details()), &back); err != nil {
				t.Fatal(err)
			}
			if _, ok := back["disks"].([]any); !ok {
				t.Errorf("details: disks is %T, want a list:\n%s", back["disks"], r.Details())
			}
			if _, ok := back["failed_services"].([]any); !ok {
				t.Errorf("details: failed_services is %T, want a list", back["failed_services"])
			}
			if tt.wantNeeded && !strings.Contains(r.Details(), `"problems": [`) {
				t.Errorf("details lack problems:\n%s", r.Details())
			}
		})
	}
}
