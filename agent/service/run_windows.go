package service

import (
	"context"
	"fmt"

	"golang.org/x/sys/windows/svc"
)

func runService(ctx context.Context, run func(context.Context) error) error {
	isService, err := svc.IsWindowsService()
	if err != nil {
		return fmt.Errorf("service: detect the Windows service manager: %w", err)
	}
	if !isService {
		return run(ctx)
	}
	h := &handler{ctx: ctx, run: run}
	if err := svc.Run(Name, h); err != nil {
		return fmt.Errorf("service: run as Windows service %s: %w", Name, err)
	}
	return h.err
}

// handler translates between the Windows service manager and Supervise.
type handler struct {
	ctx context.Context
	run func(context.Context) error
	err error
}

func (h *handler) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	controls := make(chan Control)
	stop := make(chan struct{})
	defer close(stop)
	// Translates requests until Supervise has returned (stop closed).
	go func() {
		for {
			select {
			case <-stop:
				return
			case c := <-req:
				ctl := ControlOther
				switch c.Cmd {
				case svc.Interrogate:
					ctl = ControlInterrogate
				case svc.Stop:
					ctl = ControlStop
				case svc.Shutdown:
					ctl = ControlShutdown
				}
				select {
				case controls <- ctl:
				case <-stop:
					return
				}
			}
		}
	}()
	stopped, err := Supervise(h.ctx, h.run, controls, func(s State) {
		switch s {
		case StateStarting:
			status <- svc.Status{State: svc.StartPending}
		case StateRunning:
			status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
		case StateStopping:
			status <- svc.Status{State: svc.StopPending, WaitHint: 30000}
		}
	})
	h.err = err
	if err != nil && !stopped {
		// A service-specific exit code: the recovery actions restart it.
		return true, 1
	}
	return false, 0
}
