package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// This file handles the Windows spool folder (%SystemRoot%\System32\spool\
// PRINTERS). It has no build tag so its logic is tested on every OS; only
// spooler_windows.go uses it in the plugin.

// spoolJob is one print job's files in the spool folder: the spooler keeps
// a job as FP00012.SPL (data) and FP00012.SHD (shadow) with the same base
// name, sometimes with a .TMP beside them.
type spoolJob struct {
	Base   string    `json:"base"`
	Files  []string  `json:"files"`
	Newest time.Time `json:"newest"` // the most recent modification among Files
	Bytes  int64     `json:"bytes"`
}

// listSpool groups the regular files directly in dir by base name (case
// insensitively, as Windows names are). Subdirectories are left alone.
func listSpool(dir string) ([]spoolJob, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool folder: %w", err)
	}
	byBase := map[string]*spoolJob{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue // finished meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("spool folder: %w", err)
		}
		name := e.Name()
		base := strings.ToUpper(strings.TrimSuffix(name, filepath.Ext(name)))
		j := byBase[base]
		if j == nil {
			j = &spoolJob{Base: base}
			byBase[base] = j
		}
		j.Files = append(j.Files, name)
		j.Bytes += fi.Size()
		if fi.ModTime().After(j.Newest) {
			j.Newest = fi.ModTime()
		}
	}
	jobs := make([]spoolJob, 0, len(byBase))
	for _, j := range byBase {
		sort.Strings(j.Files)
		jobs = append(jobs, *j)
	}
	sort.Slice(jobs, func(a, b int) bool { return jobs[a].Base < jobs[b].Base })
	return jobs, nil
}

// selectSpool keeps the jobs to clear: all of them when olderThan is zero,
// else those whose newest file is older than olderThan.
func selectSpool(jobs []spoolJob, olderThan time.Duration, now time.Time) (clear []spoolJob, keep int) {
	for _, j := range jobs {
		if olderThan > 0 && now.Sub(j.Newest) <= olderThan {
			keep++
			continue
		}
		clear = append(clear, j)
	}
	return clear, keep
}

// removeSpool deletes the jobs' files from dir and returns how many jobs
// went entirely. Files already gone count as removed.
func removeSpool(dir string, jobs []spoolJob) (int, error) {
	var errs []error
	removed := 0
	for _, j := range jobs {
		ok := true
		for _, f := range j.Files {
			if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove %s: %w", f, err))
				ok = false
			}
		}
		if ok {
			removed++
		}
	}
	return removed, errors.Join(errs...)
}
