package auditfwd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sync/atomic"
	"time"
)

// Target is where records go: a syslog receiver over TLS (RFC 5425) or,
// when the network between is trusted, plain TCP (RFC 6587).
type Target struct {
	URL      string // tls://HOST:PORT or tcp://HOST:PORT
	CAFile   string // PEM CAs that sign the receiver's certificate (default: the system's)
	CertFile string // PEM client certificate, for receivers that require one
	KeyFile  string // its PEM private key
}

// dialer connects to a Target.
type dialer struct {
	name    string // the canonical URL: the cursor's name
	addr    string // HOST:PORT
	tlsCfg  *tls.Config
	timeout time.Duration
}

// newDialer checks t and loads its files. Errors name the flag to fix.
func newDialer(t Target) (*dialer, error) {
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "tls" && u.Scheme != "tcp") || u.Host == "" || u.Port() == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("--syslog %q: want tls://HOST:PORT (or tcp://HOST:PORT for an unencrypted receiver)", t.URL)
	}
	d := &dialer{name: u.Scheme + "://" + u.Host, addr: u.Host, timeout: 10 * time.Second}
	if u.Scheme == "tcp" {
		if t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" {
			return nil, fmt.Errorf("--syslog %s: --syslog-ca, --syslog-cert and --syslog-key need tls://", t.URL)
		}
		return d, nil
	}
	d.tlsCfg = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--syslog-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--syslog-ca %s: no PEM certificate in it", t.CAFile)
		}
		d.tlsCfg.RootCAs = pool
	}
	switch {
	case t.CertFile != "" && t.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("--syslog-cert/--syslog-key: %w", err)
		}
		d.tlsCfg.Certificates = []tls.Certificate{cert}
	case t.CertFile != "" || t.KeyFile != "":
		return nil, errors.New("--syslog-cert and --syslog-key go together: give both or neither")
	}
	return d, nil
}

// conn is one connection to the receiver, counting the bytes handed to TCP
// so that what the receiver has acknowledged can be told apart from what
// is still in flight.
type conn struct {
	net.Conn              // the TLS or TCP connection records are written to
	tcp      *net.TCPConn // underneath
	written  atomic.Int64 // bytes written to tcp
	since    time.Time    // when records began to flow on it
}

// countingConn counts what is written through it.
type countingConn struct {
	*net.TCPConn
	n *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.TCPConn.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func (d *dialer) dial(ctx context.Context) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	nd := net.Dialer{KeepAlive: 30 * time.Second}
	raw, err := nd.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, err
	}
	tcp := raw.(*net.TCPConn)
	c := &conn{tcp: tcp}
	if d.tlsCfg == nil {
		c.Conn = countingConn{tcp, &c.written}
		return c, nil
	}
	tc := tls.Client(countingConn{tcp, &c.written}, d.tlsCfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		tcp.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	c.Conn = tc
	return c, nil
}

// acked returns how many of the bytes written the receiver's TCP has
// acknowledged, and whether that could be measured (Linux: SIOCOUTQ).
func (c *conn) acked() (int64, bool) {
	w := c.written.Load()
	n, ok := unacked(c.tcp)
	if !ok {
		return w, false
	}
	return w - int64(n), true
}
