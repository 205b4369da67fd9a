package bus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// NATSConfig configures a connection to a NATS server or cluster.
type NATSConfig struct {
	// URL is one NATS URL or several separated by commas (a cluster):
	// nats://HOST:PORT or tls://HOST:PORT. Outside loopback the connection
	// must use TLS: tls://, or nats:// with CAFile.
	URL string
	// CredsFile holds the credentials: a NATS .creds file (user JWT and
	// NKey seed, as nsc writes them) or one line "user:password" (what
	// --nats embedded writes). Empty: none, or those in the URL.
	CredsFile string
	// CAFile is a PEM file of the CA(s) that sign the server's certificate
	// (default: the system's). Setting it turns TLS on.
	CAFile string
	// Name is the connection's name as the server's monitoring shows it.
	Name string
	// OnReconnect, if set, is called after each reconnection (on nats.go's
	// callback goroutine, one call at a time): what was published while
	// the server was unreachable was lost, so catch up from the store.
	OnReconnect func()
	Log         zerolog.Logger
}

// publishTimeout bounds a Publish whose context has no deadline: the
// server must have taken the message by then.
const publishTimeout = 2 * time.Second

// NATS carries messages between the relays of a tier over a NATS
// connection. Subscribers are called on the connection's goroutine for
// their subscription, one message at a time. While the server is
// unreachable, Publish fails at once and the connection reconnects by
// itself; subscriptions resume when it is back.
//
// Ownership: DialNATS opens the connection (and nats.go's goroutines);
// Close drains nothing and closes it.
type NATS struct {
	nc  *nats.Conn
	log zerolog.Logger
}

// DialNATS connects to cfg.URL and returns once connected.
func DialNATS(ctx context.Context, cfg NATSConfig) (*NATS, error) {
	opts, err := natsOptions(cfg)
	if err != nil {
		return nil, err
	}
	log := cfg.Log
	opts = append(opts,
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ReconnectJitter(500*time.Millisecond, time.Second),
		nats.Timeout(5*time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn().Err(err).Msg("bus: lost the NATS server; reconnecting (revocations and presence wait until it is back)")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info().Str("url", nc.ConnectedUrlRedacted()).Msg("bus: reconnected to NATS")
			if cfg.OnReconnect != nil {
				cfg.OnReconnect()
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			ev := log.Warn().Err(err)
			if sub != nil {
				ev = ev.Str("subject", sub.Subject)
			}
			ev.Msg("bus: NATS error")
		}),
	)
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(cfg.URL, opts...)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("bus: connect to NATS %s: %w (is the server running, and are --nats-creds and --nats-ca right?)", redact(cfg.URL), r.err)
		}
		log.Info().Str("url", r.nc.ConnectedUrlRedacted()).Str("server", r.nc.ConnectedServerName()).Msg("bus: connected to NATS")
		return &NATS{nc: r.nc, log: log}, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("bus: connect to NATS %s: %w", redact(cfg.URL), ctx.Err())
	}
}

// natsOptions checks the URL's security and turns the credentials and CA
// files into options.
func natsOptions(cfg NATSConfig) ([]nats.Option, error) {
	if cfg.URL == "" {
		return nil, errors.New("bus: no NATS URL: give --nats nats://HOST:PORT or tls://HOST:PORT")
	}
	secure := cfg.CAFile != ""
	var remote []string
	for _, raw := range strings.Split(cfg.URL, ",") {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("bus: NATS URL %q: want nats://HOST:PORT or tls://HOST:PORT", redact(raw))
		}
		switch u.Scheme {
		case "tls":
			secure = true
		case "nats":
		default:
			return nil, fmt.Errorf("bus: NATS URL %s: scheme %q, want nats:// or tls://", redact(raw), u.Scheme)
		}
		if !isLoopback(u.Hostname()) {
			remote = append(remote, u.Host)
		}
	}
	if len(remote) > 0 && !secure {
		return nil, fmt.Errorf("bus: NATS server %s is not on loopback: the connection must use TLS: use tls://%s (and --nats-ca FILE if a private CA signs its certificate)",
			remote[0], remote[0])
	}
	opts := []nats.Option{nats.Name(cfg.Name)}
	if secure {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("bus: read --nats-ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("bus: --nats-ca %s holds no PEM certificate", cfg.CAFile)
			}
			tc.RootCAs = pool
		}
		opts = append(opts, nats.Secure(tc))
	}
	if cfg.CredsFile != "" {
		o, err := credsOption(cfg.CredsFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, o)
	}
	return opts, nil
}

// credsOption reads a .creds file or a "user:password" file.
func credsOption(path string) (nats.Option, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bus: read --nats-creds: %w", err)
	}
	text := string(raw)
	if strings.Contains(text, "BEGIN NATS USER JWT") {
		return nats.UserCredentials(path), nil
	}
	line, _, _ := strings.Cut(strings.TrimSpace(text), "\n")
	user, pass, ok := strings.Cut(strings.TrimSpace(line), ":")
	if !ok || user == "" || pass == "" {
		return nil, fmt.Errorf("bus: --nats-creds %s: want a NATS .creds file or one line user:password", path)
	}
	return nats.UserInfo(user, pass), nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redact hides a password in a URL for messages.
func redact(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// Conn returns the connection, for JetStream users (server/presence).
func (b *NATS) Conn() *nats.Conn { return b.nc }

// Publish sends data on subject and returns once the server has it, or an
// error when the server is unreachable (the message is then not sent).
func (b *NATS) Publish(ctx context.Context, subject string, data []byte) error {
	if st := b.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("bus: publish %s: not connected to NATS (%s); the relay reconnects by itself, try again", subject, st)
	}
	if err := b.nc.Publish(subject, data); err != nil {
		return fmt.Errorf("bus: publish %s: %w", subject, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, publishTimeout)
		defer cancel()
	}
	if err := b.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("bus: publish %s: the NATS server did not confirm: %w", subject, err)
	}
	return nil
}

// Subscribe calls fn for every message on subject until the returned
// function is called. A handler that panics on a message (a malformed one
// that slipped through its checks) loses that message with one log line;
// the relay goes on.
func (b *NATS) Subscribe(subject string, fn func(data []byte)) (unsubscribe func(), err error) {
	sub, err := b.nc.Subscribe(subject, func(m *nats.Msg) { b.deliver(m, fn) })
	if err != nil {
		return nil, fmt.Errorf("bus: subscribe %s: %w", subject, err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

func (b *NATS) deliver(m *nats.Msg, fn func([]byte)) {
	defer func() {
		if r := recover(); r != nil {
			b.log.Error().Str("subject", m.Subject).Int("bytes", len(m.Data)).Interface("panic", r).
				Msg("bus: message dropped: its handler failed on it")
		}
	}()
	fn(m.Data)
}

// Close closes the connection. Subscriptions end with it.
func (b *NATS) Close() { b.nc.Close() }
