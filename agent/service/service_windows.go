package service

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"
)

// recovery restarts the agent after any failure (a crash or a non-zero
// exit), backing off to a minute; the count resets after a day.
var recovery = []mgr.RecoveryAction{
	{Type: mgr.ServiceRestart, Delay: 5 * time.Second},
	{Type: mgr.ServiceRestart, Delay: 10 * time.Second},
	{Type: mgr.ServiceRestart, Delay: time.Minute},
}

func installWindows(o Options) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("service install: connect to the service manager (run as Administrator): %w", err)
	}
	defer m.Disconnect()
	cfg := mgr.Config{DisplayName: DisplayName, Description: Description, StartType: mgr.StartAutomatic}
	s, err := m.OpenService(Name)
	if err == nil {
		// Installed before: stop it, then update its definition.
		_ = stopWindows(s)
		cur, err := s.Config()
		if err != nil {
			s.Close()
			return fmt.Errorf("service install: read %s: %w", Name, err)
		}
		cur.DisplayName, cur.Description, cur.StartType = cfg.DisplayName, cfg.Description, cfg.StartType
		cur.BinaryPathName = windows.ComposeCommandLine(append([]string{o.Binary}, WindowsArgs(o.DataDir)...))
		if err := s.UpdateConfig(cur); err != nil {
			s.Close()
			return fmt.Errorf("service install: update %s: %w", Name, err)
		}
	} else {
		s, err = m.CreateService(Name, o.Binary, cfg, WindowsArgs(o.DataDir)...)
		if err != nil {
			return fmt.Errorf("service install: create %s: %w", Name, err)
		}
	}
	defer s.Close()
	if err := s.SetRecoveryActions(recovery, uint32((24 * time.Hour).Seconds())); err != nil {
		return fmt.Errorf("service install: set recovery actions: %w", err)
	}
	if err := s.SetRecoveryActionsOnNonCrashFailures(true); err != nil {
		return fmt.Errorf("service install: set recovery on non-crash failures: %w", err)
	}
	fmt.Fprintf(o.Out, "Installed service %s (automatic start, restarts on failure)\n", Name)
	if !o.Start {
		return nil
	}
	if err := s.Start(); err != nil {
		return fmt.Errorf("service install: start %s: %w", Name, err)
	}
	fmt.Fprintf(o.Out, "Started %s (sc.exe query %s)\n", Name, Name)
	return nil
}

// stopWindows asks the service to stop and waits up to 30 s.
func stopWindows(s *mgr.Service) error {
	st, err := s.Control(svc.Stop)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for st.State != svc.Stopped {
		if time.Now().After(deadline) {
			return errors.New("did not stop within 30s")
		}
		time.Sleep(300 * time.Millisecond) // the service manager has no event to wait on
		if st, err = s.Query(); err != nil {
			return err
		}
	}
	return nil
}

func uninstallWindows(o Options) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("service uninstall: connect to the service manager (run as Administrator): %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(Name)
	if err != nil {
		return fmt.Errorf("service uninstall: %s is not installed: %w", Name, err)
	}
	defer s.Close()
	_ = stopWindows(s)
	if err := s.Delete(); err != nil {
		return fmt.Errorf("service uninstall: delete %s: %w", Name, err)
	}
	fmt.Fprintf(o.Out, "Removed service %s\n", Name)
	return nil
}

func statusWindows() (Status, error) {
	st := Status{Manager: "windows", Where: Name, Active: "not installed"}
	m, err := mgr.Connect()
	if err != nil {
		return st, fmt.Errorf("service status: connect to the service manager: %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(Name)
	if err != nil {
		return st, nil
	}
	defer s.Close()
	st.Installed = true
	if cfg, err := s.Config(); err == nil {
		st.Enabled = cfg.StartType == mgr.StartAutomatic
	}
	q, err := s.Query()
	if err != nil {
		return st, fmt.Errorf("service status: query %s: %w", Name, err)
	}
	st.Active = map[svc.State]string{
		svc.Stopped: "stopped", svc.StartPending: "starting", svc.StopPending: "stopping", svc.Running: "running",
		svc.ContinuePending: "continuing", svc.PausePending: "pausing", svc.Paused: "paused",
	}[q.State]
	return st, nil
}
