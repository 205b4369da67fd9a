package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/server/api"
	"github.com/patchbay/patchbay/server/presence"
)

// DefaultTierURL is the URL other relays of a tier reach this one at when
// --tier-url is not given: https://HOST:PORT with PORT from listen and HOST
// the first --hostname, else listen's own address if it names one, else
// this machine's host name.
func DefaultTierURL(listen string, hostnames []string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("--tier-url: cannot derive it from --listen %q: %w; give --tier-url https://HOST:PORT", listen, err)
	}
	switch {
	case len(hostnames) > 0 && strings.TrimSpace(hostnames[0]) != "":
		host = strings.Trim(strings.TrimSpace(hostnames[0]), "[]")
	case host != "" && !net.ParseIP(host).IsUnspecified():
	default:
		if host, err = os.Hostname(); err != nil || host == "" {
			return "", fmt.Errorf("--tier-url: --listen %q names no host and this machine's host name is unknown (%v); give --tier-url https://HOST:PORT", listen, err)
		}
	}
	return "https://" + net.JoinHostPort(host, port), nil
}

// checkTierURL checks that u is https://HOST:PORT and that this relay's
// server certificate covers HOST, so the other relays can verify it.
func checkTierURL(u string, cert tls.Certificate) error {
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "https" || p.Port() == "" || (p.Path != "" && p.Path != "/") || p.RawQuery != "" || p.User != nil {
		return fmt.Errorf("--tier-url %q: want https://HOST:PORT, where the other relays of the tier reach this one", u)
	}
	if cert.Leaf == nil {
		return nil
	}
	if err := cert.Leaf.VerifyHostname(p.Hostname()); err != nil {
		return fmt.Errorf("--tier-url %q: this relay's server certificate does not cover %s (%v): add --hostname %s, or give a --tier-url with one of its names",
			u, p.Hostname(), err, p.Hostname())
	}
	return nil
}

// sessionForwarder forwards a technician's session websocket, authorised on
// this relay, to the relay of the tier that holds the agent (api.Forward).
// It dials that relay over TLS verified against the tier's CA and presents
// a relay client certificate minted at start, which is what lets the other
// relay accept api.HeaderRelay; the technician's credential travels with
// the request, and the other relay authorises and audits it again.
// httputil.ReverseProxy copies the upgraded connection both ways with a
// fixed buffer per direction: each leg's TCP flow control holds the other
// back, and nothing is queued in between.
//
// Ownership: each forwarded session runs on its request's goroutine;
// endAll ends them all and waits.
type sessionForwarder struct {
	node      string
	where     func(id string) (node string, ok bool)
	relays    *presence.Relays
	transport *http.Transport
	log       zerolog.Logger

	mu       sync.Mutex
	ctx      context.Context // ended by endAll
	cancel   context.CancelFunc
	sessions linkGroup
}

func newSessionForwarder(node string, ca *certs.CA, where func(string) (string, bool), relays *presence.Relays, log zerolog.Logger) (*sessionForwarder, error) {
	cert, err := ca.IssueRelayClientCert(node)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	f := &sessionForwarder{node: node, where: where, relays: relays, log: log,
		transport: &http.Transport{
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, Certificates: []tls.Certificate{cert}},
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
		}}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	return f, nil
}

// ForwardSession implements api.SessionForwarder: a session's websocket,
// or a request that the relay holding the agent answers (a session's end,
// an inventory refresh).
func (f *sessionForwarder) ForwardSession(w http.ResponseWriter, r *http.Request, agentID string) {
	node, ok := f.where(agentID)
	if !ok || node == f.node || node == "" {
		api.WriteError(w, http.StatusConflict, "agent %s went offline or moved while the request was forwarded: try again", agentID)
		return
	}
	target, err := f.relays.URL(r.Context(), node)
	if err != nil {
		f.log.Warn().Err(err).Str("agent_id", agentID).Str("relay", node).Msg("cannot forward a session: the relay that holds the agent has no known URL")
		api.WriteError(w, http.StatusBadGateway, "forward %s: agent %s is held by relay %s, whose address this relay cannot find: %v", r.URL.Path, agentID, node, err)
		return
	}
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		api.WriteError(w, http.StatusBadGateway, "forward %s: relay %s advertises %q, not an https:// URL", r.URL.Path, node, target)
		return
	}

	if !f.sessions.start() {
		api.WriteError(w, http.StatusServiceUnavailable, "session: this relay is shutting down; try again")
		return
	}
	defer f.sessions.done()
	f.mu.Lock()
	all := f.ctx
	f.mu.Unlock()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(all, cancel)()

	// The session outlives http.Server's read and write timeouts.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})

	start := time.Now()
	log := f.log.With().Str("agent_id", agentID).Str("relay", node).Str("relay_url", target).Logger()
	log = log.With().Str("request", r.Method+" "+r.URL.Path).Logger()
	log.Info().Msg("forwarding a session to the relay that holds the agent")
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = u.Scheme, u.Host
			pr.Out.Host = pr.In.Host // the web console's Origin is checked against it
			pr.Out.Header.Set(api.HeaderRelay, f.node)
			pr.Out.Header.Set(api.HeaderRelayClient, pr.In.RemoteAddr)
		},
		Transport: f.transport,
		ErrorLog:  newStdLogger(f.log),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			log.Warn().Err(err).Msg("forwarded session failed")
			api.WriteError(w, http.StatusBadGateway, "forward %s: relay %s at %s, which holds agent %s, did not answer: %v", r.URL.Path, node, target, agentID, err)
		},
	}
	rp.ServeHTTP(w, r.WithContext(ctx))
	log.Info().Dur("duration", time.Since(start)).Msg("forwarded session ended")
}

// endAll ends the forwarded sessions and waits for them (those asked for
// meanwhile are refused); sessions forwarded afterwards run until endAll is
// called again.
func (f *sessionForwarder) endAll() {
	f.mu.Lock()
	f.cancel()
	f.mu.Unlock()
	f.sessions.wait()
	f.mu.Lock()
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.mu.Unlock()
	f.sessions.open()
	f.transport.CloseIdleConnections()
}
