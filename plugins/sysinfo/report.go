package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Report is what sysinfo found; Details is this as JSON.
type Report struct {
	OS             string   `json:"os"`
	UptimeSeconds  int64    `json:"uptime_seconds"`
	Load1          *float64 `json:"load1"` // null where the OS has no load average (Windows)
	Load5          *float64 `json:"load5"`
	Load15         *float64 `json:"load15"`
	MemTotal       uint64   `json:"mem_total"`     // bytes
	MemAvailable   uint64   `json:"mem_available"` // bytes
	MemUsedPercent int      `json:"mem_used_percent"`
	Disks          []Disk   `json:"disks"`
	DiskWarn       int      `json:"disk_warn_percent"`
	// FailedServices lists failed units; FailedServicesKnown is false when
	// they could not be listed (no systemd, a container, a sandbox root,
	// an OS where this is not checked), and ServicesNote says why.
	FailedServices      []string `json:"failed_services"`
	FailedServicesKnown bool     `json:"failed_services_known"`
	ServicesNote        string   `json:"services_note,omitempty"`
	RebootPending       bool     `json:"reboot_pending"`
	RebootReason        string   `json:"reboot_reason,omitempty"`
	// Problems are why Check says Needed; Notes are what could not be
	// read (not problems of the machine).
	Problems []string `json:"problems"`
	Notes    []string `json:"notes,omitempty"`
}

// Disk is one mounted filesystem's usage, computed like df.
type Disk struct {
	Mount     string `json:"mount"`
	Device    string `json:"device,omitempty"`
	FSType    string `json:"fstype,omitempty"`
	Total     uint64 `json:"total"`     // bytes
	Used      uint64 `json:"used"`      // bytes
	Available uint64 `json:"available"` // bytes an unprivileged user can still write
	Percent   int    `json:"percent"`   // used / (used + available), rounded up
}

// note records something that could not be read.
func (r *Report) note(format string, a ...any) { r.Notes = append(r.Notes, fmt.Sprintf(format, a...)) }

// finish derives the memory percentage and the problems.
func (r *Report) finish() {
	if r.MemTotal > 0 {
		r.MemUsedPercent = int((r.MemTotal - min(r.MemAvailable, r.MemTotal)) * 100 / r.MemTotal)
	}
	if r.Disks == nil {
		r.Disks = []Disk{}
	}
	if r.FailedServices == nil {
		r.FailedServices = []string{}
	}
	r.Problems = []string{}
	for _, d := range r.Disks {
		if d.Percent >= r.DiskWarn {
			r.Problems = append(r.Problems, fmt.Sprintf("disk %s %d%% full (warning at %d%%)", d.Mount, d.Percent, r.DiskWarn))
		}
	}
	if n := len(r.FailedServices); n > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d failed %s: %s", n, plural(n, "service", "services"), strings.Join(r.FailedServices, ", ")))
	}
	if r.RebootPending {
		r.Problems = append(r.Problems, "reboot pending: "+r.RebootReason)
	}
}

// needed reports whether something looks wrong.
func (r *Report) needed() bool { return len(r.Problems) > 0 }

// Summary is one line: "up 3d4h, load 0.52, mem 41% used, disk / 63%,
// 0 failed services, no reboot pending". The disk shown is the fullest.
func (r *Report) Summary() string {
	parts := []string{"up " + formatUptime(time.Duration(r.UptimeSeconds)*time.Second)}
	if r.Load1 != nil {
		parts = append(parts, fmt.Sprintf("load %.2f", *r.Load1))
	} else {
		parts = append(parts, "load n/a")
	}
	parts = append(parts, fmt.Sprintf("mem %d%% used", r.MemUsedPercent))
	if len(r.Disks) == 0 {
		parts = append(parts, "disk n/a")
	} else {
		fullest, over := r.Disks[0], 0
		for _, d := range r.Disks {
			if d.Percent > fullest.Percent {
				fullest = d
			}
			if d.Percent >= r.DiskWarn {
				over++
			}
		}
		s := fmt.Sprintf("disk %s %d%%", fullest.Mount, fullest.Percent)
		if over > 1 {
			s += fmt.Sprintf(" (%d disks at %d%% or more)", over, r.DiskWarn)
		}
		parts = append(parts, s)
	}
	if r.FailedServicesKnown {
		n := len(r.FailedServices)
		parts = append(parts, fmt.Sprintf("%d failed %s", n, plural(n, "service", "services")))
	} else {
		parts = append(parts, "failed services unknown")
	}
	if r.RebootPending {
		parts = append(parts, "reboot pending")
	} else {
		parts = append(parts, "no reboot pending")
	}
	return strings.Join(parts, ", ")
}

// Details renders the report as indented JSON.
func (r *Report) Details() string {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil { // only plain data: cannot happen
		return fmt.Sprintf(`{"error": %q}`, err.Error())
	}
	return string(b)
}

// formatUptime renders a duration as "3d4h", "4h12m" or "12m".
func formatUptime(d time.Duration) string {
	days := int64(d / (24 * time.Hour))
	hours := int64(d/time.Hour) % 24
	minutes := int64(d/time.Minute) % 60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd%dh", days, hours)
	case hours > 0:
		return fmt.Sprintf("%dh%dm", hours, minutes)
	default:
		return fmt.Sprintf("%dm", minutes)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// float returns a pointer to v, for the optional load averages.
func float(v float64) *float64 { return &v }
