package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/internal/apiv1"
)

// The attacker of the auth part of the bench (issue 15): `patchbay-loadgen
// auth-flood`, a process of its own, sends POST /v1/login/password with
// wrong passwords for one user name at a fixed rate, from one or many
// source addresses, and reports what the relay answered.

func authFloodCmd() *cobra.Command {
	var o floodOptions
	cmd := &cobra.Command{
		Use:   "auth-flood --server URL --ca-fingerprint F --user NAME [--rate 1000] [--duration 30s] [--sources 127.0.0.2[-127.0.0.255]]",
		Short: "Send wrong passwords to POST /v1/login/password at a fixed rate; report the answers as JSON",
		Long: `Send --rate wrong passwords a second for --user to the relay's password
login (POST /v1/login/password) for --duration, over keep-alive HTTPS
connections pinned to the relay's CA, from the --sources addresses in turn
(one address, or a range FIRST-LAST such as 127.0.0.2-127.0.0.255; every
127.0.0.0/8 address reaches a loopback relay on Linux). --workers requests
are in flight at most; a request that falls due while all of them are busy
is counted as skipped, not sent late.

Prints {"ready":true,...} once its clients are set up, then one JSON line at
the end: requests sent, answers by HTTP status, requests with no answer,
skipped ones, the largest Retry-After seen and the answers' latency (p50 and
p99 by status, ms).`,
		Example: `  patchbay-loadgen auth-flood --server https://127.0.0.1:8443 --ca-fingerprint sha256:3f1c... \
      --user alice --rate 1000 --duration 30s --sources 127.0.0.2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.server == "" || o.fingerprint == "" || o.user == "" {
				return errors.New("--server, --ca-fingerprint and --user are required")
			}
			if o.rate < 1 || o.duration <= 0 || o.workers < 1 {
				return errors.New("--rate, --duration and --workers must be positive")
			}
			return runFlood(cmd.Context(), o, os.Stdout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.server, "server", "", "relay URL, e.g. https://127.0.0.1:8443")
	f.StringVar(&o.fingerprint, "ca-fingerprint", "", "the relay CA's fingerprint")
	f.StringVar(&o.user, "user", "", "user name whose password is guessed")
	f.StringVar(&o.sources, "sources", "127.0.0.2", "source address, or a range FIRST-LAST, used in turn")
	f.IntVar(&o.rate, "rate", 1000, "wrong passwords per second")
	f.DurationVar(&o.duration, "duration", 30*time.Second, "how long to send")
	f.IntVar(&o.workers, "workers", 64, "requests in flight at most")
	return cmd
}

type floodOptions struct {
	server, fingerprint, user, sources string
	rate, workers                      int
	duration                           time.Duration
}

// floodReport is a JSON line of auth-flood.
type floodReport struct {
	Ready      bool            `json:"ready,omitempty"`
	Sources    int             `json:"sources"`
	Sent       int             `json:"sent"`
	Status     map[string]int  `json:"status"`  // HTTP status -> answers
	Errors     int             `json:"errors"`  // requests with no answer
	Skipped    int             `json:"skipped"` // due while every worker was busy
	Seconds    float64         `json:"seconds"`
	RetryAfter int             `json:"retry_after_max,omitempty"` // seconds
	LatencyMS  map[string]pcts `json:"latency_ms,omitempty"`      // by status
	LastError  string          `json:"last_error,omitempty"`
}

// pcts are a latency distribution's p50 and p99 in ms.
type pcts struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	N   int     `json:"n"`
}

// parseSources parses an address or a range FIRST-LAST of one family, at
// most 65,536 addresses.
func parseSources(s string) ([]netip.Addr, error) {
	first, last, isRange := strings.Cut(strings.TrimSpace(s), "-")
	a, err := netip.ParseAddr(strings.TrimSpace(first))
	if err != nil {
		return nil, fmt.Errorf("--sources %q: %w", s, err)
	}
	if !isRange {
		return []netip.Addr{a}, nil
	}
	b, err := netip.ParseAddr(strings.TrimSpace(last))
	if err != nil {
		return nil, fmt.Errorf("--sources %q: %w", s, err)
	}
	if a.Is4() != b.Is4() || b.Less(a) {
		return nil, fmt.Errorf("--sources %q: want FIRST-LAST of one address family, FIRST not after LAST", s)
	}
	var out []netip.Addr
	for x := a; ; x = x.Next() {
		if len(out) == 1<<16 {
			return nil, fmt.Errorf("--sources %q: more than 65,536 addresses", s)
		}
		out = append(out, x)
		if x == b {
			return out, nil
		}
	}
}

// sourceClient is an HTTPS client pinned to the relay's CA (fp) that dials
// from source, keeping up to idle connections open.
func sourceClient(server, fp, source string, idle int) (*http.Client, error) {
	u, err := url.Parse(server)
	if err != nil {
		return nil, fmt.Errorf("server %q: %w", server, err)
	}
	ip := net.ParseIP(source)
	if ip == nil {
		return nil, fmt.Errorf("source address %q: not an IP address", source)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = certs.PinnedClientConfig(fp, u.Hostname())
	tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 10 * time.Second}).DialContext
	tr.ForceAttemptHTTP2 = false
	tr.MaxIdleConnsPerHost = idle
	tr.MaxIdleConns = 0
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}, nil
}

// floodStats collects the answers; safe for concurrent use.
type floodStats struct {
	mu         sync.Mutex
	status     map[string]int
	lat        map[string][]time.Duration
	errors     int
	retryAfter int
	last       string
}

func (s *floodStats) add(code int, retryAfter string, lat time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errors++
		s.last = err.Error()
		return
	}
	if s.status == nil {
		s.status, s.lat = map[string]int{}, map[string][]time.Duration{}
	}
	k := strconv.Itoa(code)
	s.status[k]++
	s.lat[k] = append(s.lat[k], lat)
	if n, err := strconv.Atoi(retryAfter); err == nil && n > s.retryAfter {
		s.retryAfter = n
	}
}

// report returns the final report.
func (s *floodStats) report(sent, skipped, sources int, wall time.Duration) floodReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := floodReport{Sources: sources, Sent: sent, Status: map[string]int{}, Errors: s.errors, Skipped: skipped,
		Seconds: wall.Seconds(), RetryAfter: s.retryAfter, LatencyMS: map[string]pcts{}, LastError: s.last}
	for k, v := range s.status {
		r.Status[k] = v
		r.LatencyMS[k] = pcts{P50: msf(pct(s.lat[k], 50)), P99: msf(pct(s.lat[k], 99)), N: len(s.lat[k])}
	}
	return r
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// guess sends one wrong password and returns the answer's status.
func guess(ctx context.Context, hc *http.Client, endpoint, user string, i int) (int, string, error) {
	body, _ := json.Marshal(apiv1.PasswordLoginRequest{User: user, Password: fmt.Sprintf("wrong-guess-%08d", i)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, res.Header.Get("Retry-After"), nil
}

// due is how many requests are due after elapsed at rate per second.
func due(elapsed time.Duration, rate int) int {
	return int(elapsed.Seconds() * float64(rate))
}

func runFlood(ctx context.Context, o floodOptions, out io.Writer) error {
	srcs, err := parseSources(o.sources)
	if err != nil {
		return err
	}
	idle := max(2, 2*o.workers/len(srcs))
	clients := make([]*http.Client, len(srcs))
	for i, s := range srcs {
		if clients[i], err = sourceClient(o.server, o.fingerprint, s.String(), idle); err != nil {
			return err
		}
		defer clients[i].CloseIdleConnections()
	}
	endpoint := strings.TrimRight(o.server, "/") + "/v1/login/password"
	enc := json.NewEncoder(out)
	if err := enc.Encode(floodReport{Ready: true, Sources: len(srcs), Status: map[string]int{}}); err != nil {
		return err
	}

	var st floodStats
	jobs := make(chan int, o.workers)
	var wg sync.WaitGroup
	for range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				t0 := time.Now()
				code, ra, err := guess(ctx, clients[i%len(clients)], endpoint, o.user, i)
				st.add(code, ra, time.Since(t0), err)
			}
		}()
	}
	start := time.Now()
	tick := time.NewTicker(2 * time.Millisecond)
	sent, skipped, next := 0, 0, 0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-tick.C:
			el := now.Sub(start)
			if el >= o.duration {
				break loop
			}
			for n := due(el, o.rate); next < n; next++ {
				select {
				case jobs <- next:
					sent++
				default:
					skipped++
				}
			}
		}
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
	return enc.Encode(st.report(sent, skipped, len(srcs), time.Since(start)))
}
