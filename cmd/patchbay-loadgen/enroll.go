package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/patchbay/patchbay/internal/backoff"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/patchbay/patchbay/agent/enroll"
	"github.com/spf13/cobra"
)

func enrollCmd() *cobra.Command {
	var o enrollOptions
	var out string
	cmd := &cobra.Command{
		Use:   "enroll --server URL --ca-fingerprint F --token T --count N --out FILE",
		Short: "Enroll N simulated agents and save their identities to one file",
		Long: `Enroll --count simulated agents with one enrollment token (create it with
"patchbay tokens create --uses N") and write their identities (agent ID,
certificate, private key, CA) to --out as JSON lines, mode 0600.

Each agent gets its own P-256 key, generated here; requests run --concurrency
at a time over one HTTP client pinned to --ca-fingerprint. Agents are named
<--hostname-prefix><index>. Nothing is written unless every enrollment
succeeded (the token uses already spent are then lost: create a new token).`,
		Example: `  patchbay-loadgen enroll --server https://127.0.0.1:8443 --ca-fingerprint sha256:3f1c... \
      --token pbe_... --count 19000 --out bench/.cache/identities.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.server == "" || o.fingerprint == "" || o.token == "" || out == "" {
				return errors.New("--server, --ca-fingerprint, --token and --out are required")
			}
			if o.count <= 0 {
				return fmt.Errorf("--count %d: want at least 1", o.count)
			}
			start := time.Now()
			recs, err := enrollMany(cmd.Context(), o, os.Stderr)
			if err != nil {
				return err
			}
			if err := writeRecords(out, recs); err != nil {
				return fmt.Errorf("write identities: %w", err)
			}
			d := time.Since(start)
			fmt.Fprintf(os.Stderr, "enrolled %d agents in %.1f s (%.0f/s); identities in %s\n",
				len(recs), d.Seconds(), float64(len(recs))/d.Seconds(), out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.server, "server", "", "relay URL, e.g. https://127.0.0.1:8443")
	f.StringVar(&o.fingerprint, "ca-fingerprint", "", "the relay CA's fingerprint (patchbay-server fingerprint)")
	f.StringVar(&o.token, "token", "", "enrollment token with at least --count uses")
	f.IntVar(&o.count, "count", 0, "how many agents to enroll")
	f.IntVar(&o.first, "first-index", 0, "index of the first agent, used in its host name")
	f.StringVar(&o.prefix, "hostname-prefix", "loadgen-", "host name prefix of the simulated agents")
	f.IntVar(&o.concurrency, "concurrency", 16, "enrollment requests in flight")
	f.StringVar(&out, "out", "", "identities file to write (JSON lines, 0600)")
	return cmd
}

// enrollOptions describe a batch of enrollments.
type enrollOptions struct {
	server, fingerprint, token string
	count, first               int
	prefix                     string
	concurrency                int
}

// enrollMany enrolls o.count agents and returns their identities in index
// order. It stops at the first refusal from the relay; connection errors are
// retried twice. Progress goes to progress every few seconds.
func enrollMany(ctx context.Context, o enrollOptions, progress io.Writer) ([]record, error) {
	if o.concurrency <= 0 {
		o.concurrency = 16
	}
	if o.prefix == "" {
		o.prefix = "loadgen-"
	}
	hc, err := enroll.NewHTTPClient(o.server, o.fingerprint)
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	if tr, ok := hc.Transport.(*http.Transport); ok {
		tr.MaxIdleConnsPerHost = o.concurrency
	}
	defer hc.CloseIdleConnections()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	recs := make([]record, o.count)
	var next, done atomic.Int64
	var wg sync.WaitGroup
	for range min(o.concurrency, o.count) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= o.count || ctx.Err() != nil {
					return
				}
				r, err := enrollOne(ctx, hc, o, o.first+i)
				if err != nil {
					cancel(fmt.Errorf("agent %d: %w", o.first+i, err))
					return
				}
				recs[i] = r
				done.Add(1)
			}
		}()
	}
	stopProgress := startProgress(progress, "enrolled", o.count, &done)
	wg.Wait()
	stopProgress()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return recs, nil
}

func enrollOne(ctx context.Context, hc *http.Client, o enrollOptions, index int) (record, error) {
	opts := enroll.Options{
		Server:        o.server,
		Token:         o.token,
		CAFingerprint: o.fingerprint,
		Hostname:      fmt.Sprintf("%s%05d", o.prefix, index),
		HTTPClient:    hc,
	}
	var lastErr error
	for attempt := range 3 {
		if attempt > 0 && !backoff.Sleep(ctx, time.Duration(attempt)*500*time.Millisecond) {
			return record{}, ctx.Err()
		}
		id, err := enroll.Request(ctx, opts)
		if err == nil {
			return newRecord(id)
		}
		lastErr = err
		var re *enroll.RelayError
		if errors.As(err, &re) || ctx.Err() != nil {
			break // a refusal will not change; a cancelled run is over
		}
	}
	return record{}, lastErr
}

// startProgress prints "<what> n/total" to w every 5 seconds until the
// returned function is called.
func startProgress(w io.Writer, what string, total int, n *atomic.Int64) func() {
	if w == nil {
		return func() {}
	}
	stop := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				fmt.Fprintf(w, "  %s %d/%d (%.0f s)\n", what, n.Load(), total, time.Since(start).Seconds())
			}
		}
	}()
	return func() { close(stop); <-finished }
}
