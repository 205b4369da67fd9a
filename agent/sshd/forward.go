package sshd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

const forwardDialTimeout = 10 * time.Second

// forwardRule is the destination rule, quoted in refusals.
const forwardRule = "only this machine's loopback (127.0.0.0/8, ::1, localhost) may be reached"

// loopbackTargets returns the addresses to dial for host, or false when host
// is not a loopback destination. "localhost" is never resolved (a changed
// hosts file could point it anywhere): it is 127.0.0.1, then ::1.
func loopbackTargets(host string, port uint32) ([]string, bool) {
	p := strconv.FormatUint(uint64(port), 10)
	if host == "localhost" || host == "localhost." {
		return []string{net.JoinHostPort("127.0.0.1", p), net.JoinHostPort("::1", p)}, true
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || addr.Zone() != "" {
		return nil, false
	}
	addr = addr.Unmap()
	if !addr.IsLoopback() {
		return nil, false
	}
	return []string{net.JoinHostPort(addr.String(), p)}, true
}

// serveForward handles a direct-tcpip channel (ssh -L, -W, -D).
func (s *server) serveForward(ctx context.Context, nc ssh.NewChannel) {
	var p struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
		_ = nc.Reject(ssh.ConnectionFailed, "patchbay: malformed direct-tcpip request")
		return
	}
	dest := net.JoinHostPort(p.Host, strconv.FormatUint(uint64(p.Port), 10))
	log := s.log.With().Str("destination", dest).Logger()
	reject := func(reason ssh.RejectionReason, msg string) {
		log.Warn().Msg(msg)
		_ = nc.Reject(reason, msg)
	}
	targets, ok := loopbackTargets(p.Host, p.Port)
	// The session's own desktop is reached with the desktop capabilities
	// alone; with view only, whatever the capabilities, through the filter.
	isDesktop, viewOnly := false, false
	if ok {
		isDesktop, viewOnly = s.desktopTarget(targets)
	}
	if isDesktop {
		log = log.With().Bool("desktop", true).Bool("view_only", viewOnly).Logger()
	}
	if !isDesktop && !s.granted(capForward) {
		reject(ssh.Prohibited, s.refusal("port forwarding to "+dest, capForward))
		return
	}
	if !isDesktop && !s.permits(extFwd) {
		reject(ssh.Prohibited, "patchbay: port forwarding refused: the certificate does not permit it (no permit-port-forwarding extension)")
		return
	}
	if !ok {
		reject(ssh.Prohibited, fmt.Sprintf("patchbay: port forwarding to %s refused: %s", dest, forwardRule))
		return
	}
	toServer := io.Copy
	if viewOnly {
		if s.cfg.ViewOnlyCopy == nil { // desktopRequest refuses this; never copy input unfiltered
			reject(ssh.Prohibited, "patchbay: desktop refused: no view-only filter")
			return
		}
		toServer = s.cfg.ViewOnlyCopy
	}
	if p.Port == 0 || p.Port > 65535 {
		reject(ssh.ConnectionFailed, fmt.Sprintf("patchbay: port forwarding to %s refused: bad port", dest))
		return
	}
	dctx, cancel := context.WithTimeout(ctx, forwardDialTimeout)
	var conn net.Conn
	var err error
	for _, t := range targets {
		if conn, err = (&net.Dialer{}).DialContext(dctx, "tcp", t); err == nil {
			break
		}
	}
	cancel()
	if err != nil {
		reject(ssh.ConnectionFailed, fmt.Sprintf("patchbay: connect to %s: %v", dest, err))
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		_ = conn.Close()
		return
	}
	if isDesktop {
		log.Info().Msg("desktop connection opened")
	} else {
		log.Info().Msg("port forward opened")
	}

	var wg sync.WaitGroup
	chClosed := make(chan struct{})
	wg.Go(func() {
		ssh.DiscardRequests(reqs) // until the channel is closed
		close(chClosed)
	})
	toConn := make(chan struct{})
	toClient := make(chan struct{})
	wg.Go(func() {
		defer close(toConn)
		_, err := toServer(conn, activityRW{ch, s})
		if err != nil && viewOnly && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
			// The filter stopped at something it would not pass on.
			log.Warn().Err(err).Msg("view-only desktop: the client's stream was refused; closed")
			_ = conn.Close()
			_ = ch.Close()
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	})
	wg.Go(func() {
		defer close(toClient)
		_, _ = io.Copy(activityRW{ch, s}, conn)
		_ = ch.CloseWrite()
	})
	// Until both directions finished, the client closed the channel, or the session ends.
	for toConn != nil || toClient != nil {
		select {
		case <-toConn:
			toConn = nil
		case <-toClient:
			toClient = nil
		case <-chClosed:
			toConn, toClient, chClosed = nil, nil, nil
		case <-ctx.Done():
			toConn, toClient = nil, nil
		}
	}
	_ = conn.Close()
	_ = ch.Close()
	wg.Wait()
	log.Debug().Msg("port forward closed")
}
