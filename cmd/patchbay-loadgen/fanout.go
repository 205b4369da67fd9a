package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchbay/patchbay/certs"
)

// The fan-out floor: what one round trip to each of N connections costs on
// this machine with nothing of Patchbay in the way. A process (the bench)
// holds N loopback connections whose other ends are in --procs child
// processes (as the agents are); it writes one fanoutMsg-byte message to
// every connection from a single goroutine (as the relay's dispatcher sends
// runs), and one goroutine per connection reads the fanoutMsg-byte answer
// (as a link's goroutine reads a result). The time until every answer is in,
// and the bench process's CPU over it, bound what a job over N agents can
// cost the relay: the same syscalls and wake-ups, without websocket framing,
// JSON, the job store or its transactions. Measured over plain TCP and over
// TLS 1.3 (AES-128-GCM, as the agent links negotiate).
const (
	fanoutMsg    = 300 // bytes each way, about a run request and a no-op result
	fanoutRounds = 6   // the first is a warm-up
)

// fanoutResult is the floor for one transport.
type fanoutResult struct {
	transport string          // "TCP" or "TLS 1.3"
	conns     int             // connections
	elapsed   []time.Duration // per measured round
	cpu       []time.Duration // the bench process's CPU per measured round
}

// perTrip returns the median time of a round and the median CPU per round
// trip, in µs.
func (f fanoutResult) perTrip() (time.Duration, float64) {
	return pct(f.elapsed, 50), float64(pct(f.cpu, 50).Nanoseconds()) / 1e3 / float64(max(f.conns, 1))
}

// measureFanout runs the floor over n connections spread over procs child
// processes (bin fanout-peers), each dialing from its own source address.
func measureFanout(ctx context.Context, bin, logDir string, n, procs int, useTLS bool) (fanoutResult, error) {
	res := fanoutResult{transport: "TCP", conns: n}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	defer ln.Close()
	var cfg *tls.Config
	if useTLS {
		// A CA and server certificate as the relay makes its own (ECDSA
		// P-256, chain of two), in the run's log directory.
		res.transport = "TLS 1.3"
		dir := filepath.Join(logDir, "fanout-pki")
		ca, err := certs.LoadOrCreateCA(dir)
		if err != nil {
			return res, err
		}
		cert, err := certs.LoadOrCreateServerCert(dir, ca, []string{"127.0.0.1"})
		if err != nil {
			return res, err
		}
		cfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	}

	var kids []*child
	defer func() {
		for _, k := range kids {
			k.kill()
		}
	}()
	per := (n + procs - 1) / procs
	for i := 0; i < procs && i*per < n; i++ {
		args := []string{"fanout-peers", "--addr", ln.Addr().String(), "--count", strconv.Itoa(min(per, n-i*per)),
			"--source", fmt.Sprintf("127.0.0.%d", i+2), "--tls=" + strconv.FormatBool(useTLS)}
		k, err := startChild(fmt.Sprintf("fanout peers %d", i), bin, args, filepath.Join(logDir, fmt.Sprintf("fanout.%d.log", i)), syscall.SIGKILL, nil)
		if err != nil {
			return res, err
		}
		kids = append(kids, k)
	}

	// Accept (and for TLS, handshake) every connection; each gets a reader.
	var (
		pending atomic.Int64  // answers still missing in this round
		done    chan struct{} // closed by the reader of the round's last answer
		doneMu  sync.Mutex
		wg      sync.WaitGroup
	)
	conns := make([]net.Conn, n)   // as accepted; written by this goroutine only
	streams := make([]net.Conn, n) // what messages go over: conns[i], or TLS over it
	var ready sync.WaitGroup       // each connection accepted and, for TLS, its handshake done
	var failed atomic.Int64
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		wg.Wait()
	}()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(2 * time.Minute))
	for i := range conns {
		c, err := ln.Accept()
		if err != nil {
			return res, fmt.Errorf("accept %d of %d: %w", i, n, err)
		}
		conns[i] = c
		ready.Add(1)
		wg.Go(func() {
			if cfg != nil {
				tc := tls.Server(c, cfg)
				c.SetDeadline(time.Now().Add(time.Minute))
				err := tc.Handshake()
				c.SetDeadline(time.Time{})
				if err != nil {
					failed.Add(1)
					ready.Done()
					return
				}
				c = tc
			}
			streams[i] = c
			ready.Done()
			buf := make([]byte, fanoutMsg)
			for {
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				if pending.Add(-1) == 0 {
					doneMu.Lock()
					close(done)
					doneMu.Unlock()
				}
			}
		})
	}
	ready.Wait()
	if f := failed.Load(); f > 0 {
		return res, fmt.Errorf("%d of %d TLS handshakes failed", f, n)
	}

	msg := make([]byte, fanoutMsg)
	for round := 0; round < fanoutRounds; round++ {
		doneMu.Lock()
		done = make(chan struct{})
		roundDone := done
		doneMu.Unlock()
		pending.Store(int64(n))
		cpu0 := selfCPU()
		start := time.Now()
		for i, c := range streams {
			if _, err := c.Write(msg); err != nil {
				return res, fmt.Errorf("write to connection %d: %w", i, err)
			}
		}
		select {
		case <-roundDone:
		case <-time.After(time.Minute):
			return res, fmt.Errorf("round %d: %d of %d answers missing after a minute", round, pending.Load(), n)
		case <-ctx.Done():
			return res, ctx.Err()
		}
		el, cpu := time.Since(start), selfCPU()-cpu0
		if round > 0 {
			res.elapsed = append(res.elapsed, el)
			res.cpu = append(res.cpu, cpu)
		}
		time.Sleep(300 * time.Millisecond)
	}
	return res, nil
}

// selfCPU is this process's user+system CPU so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// fanoutPeersCmd is the far end of the fan-out floor: it dials --count
// connections and answers every fanoutMsg-byte message with as many bytes.
func fanoutPeersCmd() *cobra.Command {
	var (
		addr, source string
		count        int
		useTLS       bool
	)
	cmd := &cobra.Command{
		Use:    "fanout-peers --addr HOST:PORT --count N [--source IP] [--tls]",
		Short:  "The far end of make bench's fan-out floor (started by bench)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d := &net.Dialer{Timeout: 30 * time.Second}
			if source != "" {
				ip := net.ParseIP(source)
				if ip == nil {
					return fmt.Errorf("--source %q is not an IP address", source)
				}
				d.LocalAddr = &net.TCPAddr{IP: ip}
			}
			var wg sync.WaitGroup
			errs := make(chan error, count)
			for i := 0; i < count; i++ {
				c, err := d.DialContext(cmd.Context(), "tcp", addr)
				if err != nil {
					return fmt.Errorf("dial %d: %w", i, err)
				}
				if useTLS {
					// The floor measures the cost per message, not
					// authentication: the bench's certificate is not
					// checked.
					c = tls.Client(c, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
				}
				wg.Go(func() {
					defer c.Close()
					buf := make([]byte, fanoutMsg)
					for {
						if _, err := io.ReadFull(c, buf); err != nil {
							if !errors.Is(err, io.EOF) {
								errs <- err
							}
							return
						}
						if _, err := c.Write(buf); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			if err, ok := <-errs; ok {
				fmt.Fprintln(os.Stderr, "fanout-peers:", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "", "address of the bench's listener")
	f.StringVar(&source, "source", "", "local IP address to dial from")
	f.IntVar(&count, "count", 0, "connections to hold")
	f.BoolVar(&useTLS, "tls", false, "TLS 1.3 over each connection")
	return cmd
}

// fanoutConns is the floor's connection count for a bench of agents: the
// size of the 10,000-agent job, or fewer when the bench is smaller.
func fanoutConns(agents int) int {
	switch {
	case agents >= 10000:
		return 10000
	case agents >= 1000:
		return 1000
	}
	return 0
}
