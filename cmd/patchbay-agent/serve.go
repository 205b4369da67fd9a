package main

import (
	"context"
	"errors"
	"path/filepath"
	"sync"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/agent/identity"
	"github.com/patchbay/patchbay/agent/journal"
	"github.com/patchbay/patchbay/agent/link"
	"github.com/patchbay/patchbay/agent/runner"
	"github.com/patchbay/patchbay/agent/trust"
	"github.com/patchbay/patchbay/agent/worker"
)

// serve runs the agent until ctx ends: the link to the relay and the worker
// that executes runs, wired together.
func serve(ctx context.Context, id *identity.Identity, log, alog zerolog.Logger) error {
	tlsCfg := id.TLSConfig()
	j, err := journal.Open(filepath.Join(id.Dir, "journal"))
	if err != nil {
		return err
	}
	r, err := runner.New(runner.Config{
		Dir:   filepath.Join(id.Dir, "runner"),
		Fetch: worker.NewFetcher(id.ServerURL, tlsCfg),
		Trust: func() (runner.Trust, error) { return runner.LoadTrust(trust.Path(id.Dir)) },
		Log:   alog,
	})
	if err != nil {
		return err
	}
	defer r.Close() // the sealed executables
	var l *link.Link
	send := func(typ string, body any) error {
		s := l.Session()
		if s == nil {
			return errors.New("offline")
		}
		return s.Send(typ, "", body)
	}
	w := worker.New(j, r, send, alog)
	l = link.New(id, link.Options{
		Version: fullVersion(),
		Logger:  log, // link adds agent_id itself
		Control: w.Control,
		OnState: func(s link.State, _ error) {
			if s == link.StateConnected {
				w.Connected()
			}
		},
	})
	var wg sync.WaitGroup
	var werr error
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		werr = w.Run(wctx)
		cancel() // a worker that cannot start stops the agent
	}()
	lerr := l.Run(wctx)
	cancel()
	wg.Wait()
	return errors.Join(lerr, werr)
}
