package link

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/mux"
	"github.com/rs/zerolog"
)

// Errors a link ends with, for errors.Is (the OnState callback receives them
// wrapped with details).
var (
	// ErrRejected: the relay refused this agent's credentials (revoked,
	// expired, or issued by a CA the relay no longer uses). Retrying does not
	// help until the agent is enrolled again; the link keeps retrying at the
	// backoff's pace anyway, in case the relay is fixed.
	ErrRejected = errors.New("relay refused this agent")
	// ErrUntrusted: the server is not the relay pinned at enrollment.
	ErrUntrusted = errors.New("relay certificate not trusted")
	// ErrSilent: the relay stopped answering heartbeats.
	ErrSilent = errors.New("relay stopped answering")
	// ErrClosed: the relay closed the link; the error text carries its code
	// and reason.
	ErrClosed = errors.New("relay closed the link")
)

// reenroll is the advice for a revoked agent: revocation is final on the
// relay, so the only way back is a new identity.
const reenroll = "revocation is final: to bring this machine back, enroll it again with a new token (patchbay-agent enroll --force)"

// dialError explains a failed dial: a TLS alert from the relay, a relay
// certificate from another CA, an HTTP refusal with the relay's message, or
// a network error.
func dialError(err error, resp *http.Response) error {
	if resp != nil {
		return httpError(resp)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" {
		switch text := op.Err.Error(); {
		case strings.Contains(text, "bad certificate"), strings.Contains(text, "certificate revoked"):
			return fmt.Errorf("%w: the TLS handshake failed with %q, most likely because this agent was revoked; %s", ErrRejected, text, reenroll)
		case strings.Contains(text, "certificate expired"):
			return fmt.Errorf("%w: its certificate has expired (%s); enroll again (patchbay-agent enroll --force)", ErrRejected, text)
		case strings.Contains(text, "unknown certificate authority"):
			return fmt.Errorf("%w: the relay does not know the CA that issued this agent's certificate (was the relay's data directory replaced?); enroll again (patchbay-agent enroll --force)", ErrRejected)
		}
	}
	var cve *tls.CertificateVerificationError
	var hostErr x509.HostnameError
	var authErr x509.UnknownAuthorityError
	switch {
	case errors.As(err, &hostErr):
		return fmt.Errorf("%w: %v (the relay's certificate does not cover the host in the relay URL)", ErrUntrusted, hostErr)
	case errors.As(err, &authErr), errors.As(err, &cve):
		return fmt.Errorf("%w: the server is not signed by the CA pinned at enrollment (another server, or a TLS-inspecting proxy?): %v", ErrUntrusted, err)
	}
	return fmt.Errorf("connect to relay: %w", err)
}

// httpError explains a refused websocket upgrade from the relay's JSON error.
func httpError(resp *http.Response) error {
	var msg string
	if resp.Body != nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		var e apiv1.Error
		if json.Unmarshal(body, &e) == nil {
			msg = e.Error
		}
	}
	if msg == "" {
		msg = "relay answered " + resp.Status + " instead of upgrading to a websocket"
		if resp.StatusCode == http.StatusNotFound {
			msg += " (is the server URL a Patchbay relay?)"
		}
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w: %s (HTTP %d)", ErrRejected, msg, resp.StatusCode)
	}
	return fmt.Errorf("connect to relay: %s (HTTP %d)", msg, resp.StatusCode)
}

// closeError wraps a close frame from the relay.
func closeError(ce *websocket.CloseError) error {
	reason := ce.Text
	if reason == "" {
		reason = "no reason given"
	}
	return &relayClose{code: ce.Code, reason: reason}
}

// relayClose is a link the relay closed with a websocket close frame.
type relayClose struct {
	code   int
	reason string
}

func (e *relayClose) Error() string {
	return fmt.Sprintf("relay closed the link (code %d): %s", e.code, e.reason)
}

func (e *relayClose) Is(target error) bool { return target == ErrClosed }

// logEnd writes the one log line for a connection that ended or failed.
func (l *Link) logEnd(up time.Duration, err error, delay time.Duration) {
	var ev *zerolog.Event
	msg := "connection to relay failed"
	if up > 0 {
		msg = "link to relay lost"
	}
	var rc *relayClose
	var ce *websocket.CloseError
	var mce *mux.CloseError
	if errors.As(err, &ce) {
		err = closeError(ce)
	}
	switch {
	case errors.Is(err, ErrRejected), errors.Is(err, ErrUntrusted):
		ev = l.log.Error()
	case errors.As(err, &rc):
		ev = l.closeEvent(rc)
	case errors.As(err, &mce):
		ev = l.log.Error().Int("code", mce.Code).Str("reason", mce.Reason)
		msg = "relay broke the link protocol; link closed"
	default:
		ev = l.log.Warn()
	}
	if up > 0 {
		ev = ev.Str("up", up.Round(time.Millisecond).String())
	}
	ev = ev.Str("server", l.Server())
	if len(l.targets) > 1 {
		ev = ev.Str("next_server", l.targets[nextTarget(int(l.cur.Load()), len(l.targets))].server)
	}
	ev.Err(err).Str("retry_in", delay.Round(time.Millisecond).String()).Msg(msg)
}

// closeEvent picks the level for a close frame from the relay: a relay
// restart is routine, a revocation is not.
func (l *Link) closeEvent(rc *relayClose) *zerolog.Event {
	var ev *zerolog.Event
	switch {
	case rc.code == websocket.CloseGoingAway, rc.code == websocket.CloseServiceRestart:
		ev = l.log.Info()
	case strings.Contains(rc.reason, "revoked"):
		ev = l.log.Error().Str("hint", reenroll)
	case strings.Contains(rc.reason, "replaced by a newer connection"):
		ev = l.log.Warn().Str("hint", "another agent connected with this identity: a cloned machine, or two agents sharing one data directory?")
	default:
		ev = l.log.Warn()
	}
	return ev.Int("code", rc.code).Str("reason", rc.reason)
}
