//go:build windows

package main

// The Windows side: the Print Spooler service and its spool folder, through
// the service control manager (golang.org/x/sys/windows/svc/mgr) rather than
// sc.exe, whose stop returns before the service has stopped. Compiled and
// vetted on Linux; not tested on a Windows machine.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/windows/registry"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"

	"github.com/patchbay/patchbay/plugins/sdk"
)

const (
	spoolerService = "Spooler"
	serviceWait    = 60 * time.Second
	pollInterval   = 300 * time.Millisecond
)

// winState is the Details JSON of a Check on Windows.
type winState struct {
	Spooler   string     `json:"spooler"` // service state
	SpoolDir  string     `json:"spool_dir"`
	OlderThan string     `json:"older_than"`
	Stuck     []spoolJob `json:"stuck_jobs"`
	Waiting   int        `json:"waiting_jobs"` // younger than older_than
	// Local printers and the paused ones Fix resumes (read only while the
	// spooler runs).
	Printers []winPrinter `json:"printers,omitempty"`
	Paused   []string     `json:"paused_printers,omitempty"`
}

func errNoQueue() error {
	return errors.New("queue: not supported on Windows (the spool folder is shared by all printers)")
}

// spoolDir is the spooler's folder: the DefaultSpoolDirectory registry value
// when set, else %SystemRoot%\System32\spool\PRINTERS.
func spoolDir() string {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, `SYSTEM\CurrentControlSet\Control\Print\Printers`, registry.QUERY_VALUE)
	if err == nil {
		defer k.Close()
		if v, _, err := k.GetStringValue("DefaultSpoolDirectory"); err == nil && v != "" {
			if x, err := registry.ExpandString(v); err == nil {
				return x
			}
			return v
		}
	}
	root := os.Getenv("SystemRoot")
	if root == "" {
		root = `C:\Windows`
	}
	return filepath.Join(root, "System32", "spool", "PRINTERS")
}

func stateName(s svc.State) string {
	switch s {
	case svc.Stopped:
		return "stopped"
	case svc.StartPending:
		return "starting"
	case svc.StopPending:
		return "stopping"
	case svc.Running:
		return "running"
	case svc.ContinuePending:
		return "continuing"
	case svc.PausePending:
		return "pausing"
	case svc.Paused:
		return "paused"
	}
	return fmt.Sprintf("state %d", s)
}

// check reads the spooler's state and the spool folder; it changes nothing.
func check(_ context.Context, o options) (sdk.CheckResult, error) {
	if o.queue != "" {
		return sdk.CheckResult{}, fmt.Errorf("check: %w", errNoQueue())
	}
	m, err := mgr.Connect()
	if err != nil {
		return sdk.CheckResult{}, fmt.Errorf("check: service manager: %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(spoolerService)
	if err != nil {
		return sdk.CheckResult{}, fmt.Errorf("check: open %s: %w", spoolerService, err)
	}
	defer s.Close()
	status, err := s.Query()
	if err != nil {
		return sdk.CheckResult{}, fmt.Errorf("check: query %s: %w", spoolerService, err)
	}
	dir := spoolDir()
	jobs, err := listSpool(dir)
	if err != nil {
		return sdk.CheckResult{}, fmt.Errorf("check: %w", err)
	}
	stuck, keep := selectSpool(jobs, o.olderThan, time.Now())
	st := winState{Spooler: stateName(status.State), SpoolDir: dir, OlderThan: o.olderThan.String(),
		Stuck: append([]spoolJob{}, stuck...), Waiting: keep}
	if status.State == svc.Running {
		if st.Printers, err = localPrinters(); err != nil {
			return sdk.CheckResult{}, fmt.Errorf("check: %w", err)
		}
		st.Paused = pausedPrinters(st.Printers)
	}
	details, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return sdk.CheckResult{}, fmt.Errorf("check: details: %w", err)
	}
	var p []string
	if status.State != svc.Running {
		p = append(p, "Print Spooler "+st.Spooler)
		if !o.restart {
			p[0] += " (restart_scheduler is false)"
		}
	}
	if len(stuck) > 0 {
		p = append(p, plural(len(stuck), "spooled job", "spooled jobs")+" to clear")
	}
	p = append(p, printerProblems(st.Paused)...)
	if len(p) == 0 {
		return sdk.CheckResult{Summary: "Print Spooler running, nothing stuck", Details: string(details)}, nil
	}
	return sdk.CheckResult{Needed: true, Summary: strings.Join(p, "; "), Details: string(details)}, nil
}

// winReport is the Details JSON of a Fix on Windows.
type winReport struct {
	Stopped   bool     `json:"spooler_stopped"`
	Started   bool     `json:"spooler_started"`
	Cleared   int      `json:"cleared_jobs"`
	Restarted []string `json:"dependents_restarted,omitempty"`
	Resumed   []string `json:"printers_resumed,omitempty"`
}

// fix clears the spool folder (stopping the spooler and the services that
// depend on it around it, then starting them again), starts the spooler
// if it is not running, and resumes paused printers.
func fix(ctx context.Context, o options, out *sdk.Output) (sdk.FixResult, error) {
	if o.queue != "" {
		return sdk.FixResult{}, fmt.Errorf("fix: %w", errNoQueue())
	}
	m, err := mgr.Connect()
	if err != nil {
		return sdk.FixResult{}, fmt.Errorf("fix: service manager: %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(spoolerService)
	if err != nil {
		return sdk.FixResult{}, fmt.Errorf("fix: open %s: %w", spoolerService, err)
	}
	defer s.Close()
	status, err := s.Query()
	if err != nil {
		return sdk.FixResult{}, fmt.Errorf("fix: query %s: %w", spoolerService, err)
	}
	dir := spoolDir()
	jobs, err := listSpool(dir)
	if err != nil {
		return sdk.FixResult{}, fmt.Errorf("fix: %w", err)
	}
	stuck, _ := selectSpool(jobs, o.olderThan, time.Now())
	var r winReport
	if len(stuck) > 0 {
		deps, err := s.ListDependentServices(svc.Active)
		if err != nil {
			return sdk.FixResult{}, fmt.Errorf("fix: dependents of %s: %w", spoolerService, err)
		}
		for _, d := range deps {
			out.Printf("stopping %s (depends on the spooler)", d)
			if err := stopService(ctx, m, d); err != nil {
				return sdk.FixResult{}, fmt.Errorf("fix: %w", err)
			}
		}
		if status.State != svc.Stopped {
			out.Printf("stopping %s", spoolerService)
			if err := stopService(ctx, m, spoolerService); err != nil {
				return sdk.FixResult{}, fmt.Errorf("fix: %w", err)
			}
			r.Stopped = true
		}
		n, rmErr := removeSpool(dir, stuck)
		r.Cleared = n
		out.Printf("removed %s from %s", plural(n, "spooled job", "spooled jobs"), dir)
		// Start the spooler again whatever happened to the files: it was
		// running (or is wanted running) and we stopped it.
		if r.Stopped || o.restart {
			out.Printf("starting %s", spoolerService)
			if err := startService(ctx, m, spoolerService); err != nil {
				return sdk.FixResult{}, fmt.Errorf("fix: %w", err)
			}
			r.Started = true
		}
		for _, d := range deps {
			out.Printf("starting %s again", d)
			if err := startService(ctx, m, d); err != nil {
				return sdk.FixResult{}, fmt.Errorf("fix: %w", err)
			}
			r.Restarted = append(r.Restarted, d)
		}
		if rmErr != nil {
			return sdk.FixResult{}, fmt.Errorf("fix: cleared %d of %d jobs: %w", n, len(stuck), rmErr)
		}
	} else if status.State != svc.Running {
		if !o.restart {
			return sdk.FixResult{}, fmt.Errorf("fix: the Print Spooler is %s and restart_scheduler is false", stateName(status.State))
		}
		out.Printf("starting %s", spoolerService)
		if err := startService(ctx, m, spoolerService); err != nil {
			return sdk.FixResult{}, fmt.Errorf("fix: %w", err)
		}
		r.Started = true
	}
	// With the spooler running, resume the printers that are paused.
	var resumeErrs []error
	if ps, err := localPrinters(); err != nil {
		resumeErrs = append(resumeErrs, err)
	} else {
		for _, name := range pausedPrinters(ps) {
			out.Printf("resuming printer %s", name)
			if err := resumePrinter(name); err != nil {
				resumeErrs = append(resumeErrs, err)
				continue
			}
			r.Resumed = append(r.Resumed, name)
		}
	}
	var p []string
	if len(r.Resumed) > 0 {
		p = append(p, "resumed "+plural(len(r.Resumed), "printer", "printers")+" ("+strings.Join(r.Resumed, ", ")+")")
	}
	if r.Cleared > 0 {
		p = append(p, "cleared "+plural(r.Cleared, "spooled job", "spooled jobs"))
	}
	switch {
	case r.Stopped && r.Started:
		p = append(p, "restarted the Print Spooler")
	case r.Started:
		p = append(p, "started the Print Spooler")
	}
	summary := strings.Join(p, "; ")
	if summary == "" {
		summary = "nothing to do"
	}
	details, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return sdk.FixResult{}, fmt.Errorf("fix: details: %w", err)
	}
	out.Println(summary)
	if err := errors.Join(resumeErrs...); err != nil {
		return sdk.FixResult{}, fmt.Errorf("fix: %s; left: %w", summary, err)
	}
	return sdk.FixResult{Changed: r.Cleared > 0 || r.Started || len(r.Resumed) > 0, Summary: summary, Details: string(details)}, nil
}

// stopService asks the service to stop and waits until it has.
func stopService(ctx context.Context, m *mgr.Mgr, name string) error {
	s, err := m.OpenService(name)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	defer s.Close()
	status, err := s.Query()
	if err != nil {
		return fmt.Errorf("query %s: %w", name, err)
	}
	if status.State == svc.Stopped {
		return nil
	}
	if status.State != svc.StopPending {
		if _, err := s.Control(svc.Stop); err != nil {
			return fmt.Errorf("stop %s: %w", name, err)
		}
	}
	return waitState(ctx, s, name, svc.Stopped)
}

// startService starts the service and waits until it runs.
func startService(ctx context.Context, m *mgr.Mgr, name string) error {
	s, err := m.OpenService(name)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	defer s.Close()
	status, err := s.Query()
	if err != nil {
		return fmt.Errorf("query %s: %w", name, err)
	}
	if status.State == svc.Running {
		return nil
	}
	if status.State != svc.StartPending {
		if err := s.Start(); err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
	}
	return waitState(ctx, s, name, svc.Running)
}

func waitState(ctx context.Context, s *mgr.Service, name string, want svc.State) error {
	deadline := time.Now().Add(serviceWait)
	for {
		status, err := s.Query()
		if err != nil {
			return fmt.Errorf("query %s: %w", name, err)
		}
		if status.State == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: still %s after %s", name, stateName(status.State), serviceWait)
		}
		t := time.NewTimer(pollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w", name, ctx.Err())
		case <-t.C:
		}
	}
}
