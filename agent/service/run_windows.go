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

// handler answers the service manager while run runs on its own goroutine,
// which Execute owns and waits for.
type handler struct {
	ctx context.Context
	run func(context.Context) error
	err error
}

func (h *handler) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending}
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.run(ctx) }()
	status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	for {
		select {
		case h.err = <-done:
			status <- svc.Status{State: svc.StopPending}
			if h.err != nil {
				// A service-specific exit code: the recovery actions restart it.
				return true, 1
			}
			return false, 0
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				status <- svc.Status{State: svc.StopPending, WaitHint: 30000}
				cancel()
				h.err = <-done
				return false, 0
			}
		}
	}
}
